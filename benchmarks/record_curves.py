"""Record the learning curves shipped in ``bandit_tune/data/digits_mlp_curves.npz``.

Trains ``--arms`` random Keras MLPs on scikit-learn's digits (the demo's 60/20/20
split) for ``--epochs`` epochs each, in ``--workers`` processes with one
TensorFlow thread each, and stores per arm and epoch the validation accuracy,
the validation loss and the epoch's seconds, with every arm's configuration::

    .venv/bin/python benchmarks/record_curves.py --arms 300 --epochs 27 --workers 2

Load the result with :func:`bandit_tune.load_curves`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from multiprocessing import get_context
from typing import Any

import numpy as np

SPACE_SEED = 2026


def sample_configs(n: int, seed: int = SPACE_SEED) -> list[dict[str, Any]]:
    """Draw ``n`` MLP configurations (the space of the shipped curves)."""
    rng = np.random.default_rng(seed)
    configs = []
    for _ in range(n):
        configs.append(
            {
                "units": int(rng.choice([16, 32, 64, 128, 256, 512])),
                "layers": int(rng.integers(1, 4)),
                "dropout": round(float(rng.uniform(0.0, 0.5)), 3),
                "learning_rate": float(10 ** rng.uniform(-4.5, -1.5)),
                "batch_size": int(rng.choice([16, 32, 64, 128])),
            }
        )
    return configs


def train_one(
    job: tuple[int, dict[str, Any], int],
) -> tuple[int, list[float], list[float], list[float]]:
    """Train one configuration; return its index, val accuracy, val loss and seconds per epoch."""
    index, config, epochs = job
    import keras

    from bandit_tune.demo import load_digits_split

    keras.utils.set_random_seed(index)
    (x_train, y_train), (x_val, y_val), _ = load_digits_split(0)
    layers: list[Any] = [keras.Input(shape=(8, 8)), keras.layers.Flatten()]
    for _ in range(config["layers"]):
        layers.append(keras.layers.Dense(config["units"], activation="relu"))
        layers.append(keras.layers.Dropout(config["dropout"]))
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config["learning_rate"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    acc: list[float] = []
    loss: list[float] = []
    secs: list[float] = []
    clock = [time.perf_counter()]

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            clock[0] = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            secs.append(time.perf_counter() - clock[0])
            acc.append(float(logs["val_accuracy"]))
            loss.append(float(logs["val_loss"]))

    model.fit(
        x_train,
        y_train,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=config["batch_size"],
        verbose=0,
        callbacks=[Record()],
    )
    return index, acc, loss, secs


def _init_worker() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def main() -> None:
    """Record the curves and write them as one compressed ``.npz``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--out",
        default=os.path.join(
            os.path.dirname(__file__), "..", "bandit_tune", "data", "digits_mlp_curves.npz"
        ),
    )
    args = parser.parse_args()
    configs = sample_configs(args.arms)
    acc = np.full((args.arms, args.epochs), np.nan, dtype=np.float32)
    loss = np.full_like(acc, np.nan)
    secs = np.full_like(acc, np.nan)
    jobs = [(i, c, args.epochs) for i, c in enumerate(configs)]
    start = time.monotonic()
    with get_context("spawn").Pool(args.workers, initializer=_init_worker) as pool:
        for done, (i, a, lo, s) in enumerate(pool.imap_unordered(train_one, jobs), 1):
            acc[i], loss[i], secs[i] = a, lo, s
            if done % 10 == 0:
                print(f"{done}/{args.arms} arms, {time.monotonic() - start:.0f} s", flush=True)
    np.savez_compressed(
        args.out,
        val_accuracy=acc,
        val_loss=loss,
        seconds=secs,
        configs=np.array(json.dumps(configs)),
        meta=np.array(
            json.dumps(
                {
                    "data": "sklearn load_digits, 60/20/20 stratified split (seed 0)",
                    "model": "Flatten, layers x (Dense(units, relu), Dropout), Dense(10), Adam",
                    "epochs": args.epochs,
                    "arms": args.arms,
                    "space_seed": SPACE_SEED,
                    "recorded_by": "benchmarks/record_curves.py",
                }
            )
        ),
    )
    print(f"wrote {args.out} in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
