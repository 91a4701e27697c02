"""A Keras model and a callback for the population-based training tests (imported by workers)."""

from __future__ import annotations

import os
import time

import numpy as np


def build_model(hp):
    """An MLP whose SGD learning rate and dropout rate may change during training."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Flatten(),
            keras.layers.Dense(hp.Int("units", 16, 64, step=16, default=32), activation="relu"),
            keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5)),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(
            hp.Float("learning_rate", 1e-3, 0.5, sampling="log"), momentum=0.9
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _callback_base():
    import keras

    return keras.callbacks.Callback


class StartDump(_callback_base()):
    """At the first epoch of every fit: save the model's weights, optimizer state and rates."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self.folder = folder
        self._done = False

    def on_train_begin(self, logs=None):
        self._done = False

    def on_epoch_begin(self, epoch, logs=None):
        if self._done:
            return
        self._done = True
        import keras

        optimizer = self.model.optimizer
        arrays = {f"w{i}": w for i, w in enumerate(self.model.get_weights())}
        for i, v in enumerate(optimizer.variables):
            arrays[f"opt{i}"] = np.asarray(v.numpy())
        arrays["opt_names"] = np.asarray([v.name for v in optimizer.variables])
        layers = self.model.layers
        rates = [layer.rate for layer in layers if isinstance(layer, keras.layers.Dropout)]
        arrays["dropout"] = np.asarray(rates)
        arrays["epoch"] = np.asarray(epoch)
        os.makedirs(self.folder, exist_ok=True)
        name = f"{os.getpid()}_{time.time_ns()}.npz"
        np.savez(os.path.join(self.folder, name), **arrays)
