"""Keras callbacks that break an arm: SIGKILL its worker once mid-epoch, or raise."""

import os
import signal

import keras


class KillOnce(keras.callbacks.Callback):
    """At batch 2 of ``epoch`` (1-based): write the arm's id to ``marker``, SIGKILL the worker."""

    def __init__(self, marker, epoch):
        super().__init__()
        self.marker, self.epoch, self.current = marker, epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 2 and not os.path.exists(self.marker):
            from ray import tune

            with open(self.marker, "w") as f:
                f.write(tune.get_context().get_trial_id())
            os.kill(os.getpid(), signal.SIGKILL)


class MissingModule(keras.callbacks.Callback):
    """Fails every arm as a module the workers cannot import would."""

    def on_train_begin(self, logs=None):
        raise ModuleNotFoundError("No module named 'only_on_the_driver'")


class ScrambleWeightsAt(keras.callbacks.Callback):
    """At the start of ``epoch`` (1-based), overwrite every weight with noise: the score drops."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            import numpy as np

            rng = np.random.default_rng(0)
            self.model.set_weights(
                [rng.normal(0, 5, size=w.shape).astype(w.dtype) for w in self.model.get_weights()]
            )
            self.model.stop_training = False
