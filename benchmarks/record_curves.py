"""Record the learning-curve sets shipped in ``bandit_tune/replay/data/`` (``load_curves`` names).

Trains ``--arms`` random Keras models of one task for ``--epochs`` epochs each, in
``--workers`` processes with one TensorFlow thread each, and stores per arm and
epoch the validation metrics and the epoch's seconds, with every arm's
configuration. The tasks differ in kind, all on data that ships with scikit-learn
or is generated:

- ``digits_mlp``: MLPs on the 8x8 digits (val_accuracy; the first set);
- ``digits_cnn``: small CNNs on the same digits split (val_accuracy);
- ``diabetes_mlp``: regression MLPs on the diabetes data, judged by val_loss (MSE
  of the standardised target); some learning rates diverge;
- ``noisy_labels``: MLPs on a generated 10-class problem with 30% of the training
  labels flipped: large, weakly regularised arms overfit, so curves rise, fall
  and cross.

::

    .venv/bin/python benchmarks/record_curves.py --task digits_cnn --arms 256 --epochs 27

Load the result with :func:`bandit_tune.load_curves` (``load_curves("digits_cnn")``).
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
TASKS = ("digits_mlp", "digits_cnn", "diabetes_mlp", "noisy_labels")


def sample_configs(
    n: int, seed: int = SPACE_SEED, task: str = "digits_mlp"
) -> list[dict[str, Any]]:
    """Draw ``n`` configurations of ``task``'s space (digits_mlp: the first shipped set's)."""
    rng = np.random.default_rng(seed if task == "digits_mlp" else seed + TASKS.index(task))
    configs = []
    for _ in range(n):
        if task == "digits_cnn":
            config = {
                "filters": int(rng.choice([4, 8, 16, 32])),
                "conv_layers": int(rng.integers(1, 3)),
                "dense_units": int(rng.choice([16, 32, 64, 128])),
                "dropout": round(float(rng.uniform(0.0, 0.5)), 3),
                "learning_rate": float(10 ** rng.uniform(-4.0, -1.5)),
                "batch_size": int(rng.choice([32, 64, 128])),
            }
        elif task == "diabetes_mlp":
            config = {
                "units": int(rng.choice([8, 16, 32, 64, 128, 256])),
                "layers": int(rng.integers(1, 4)),
                "dropout": round(float(rng.uniform(0.0, 0.3)), 3),
                "optimizer": str(rng.choice(["adam", "sgd"])),
                "learning_rate": float(10 ** rng.uniform(-4.0, -1.0)),
                "batch_size": int(rng.choice([8, 16, 32, 64])),
            }
        else:  # digits_mlp, noisy_labels
            config = {
                "units": int(rng.choice([16, 32, 64, 128, 256, 512])),
                "layers": int(rng.integers(1, 4)),
                "dropout": round(float(rng.uniform(0.0, 0.5)), 3),
                "learning_rate": float(10 ** rng.uniform(-4.5, -1.5)),
                "batch_size": int(rng.choice([16, 32, 64, 128])),
            }
        configs.append(config)
    return configs


def task_data(task: str) -> tuple[Any, Any, Any, Any]:
    """``(x_train, y_train, x_val, y_val)`` of ``task`` (fixed splits, seed 0)."""
    from sklearn.model_selection import train_test_split

    if task in ("digits_mlp", "digits_cnn"):
        from bandit_tune.demo import load_digits_split

        (x_train, y_train), (x_val, y_val), _ = load_digits_split(0)
        if task == "digits_cnn":
            x_train, x_val = x_train[..., None], x_val[..., None]
        return x_train, y_train, x_val, y_val
    if task == "diabetes_mlp":
        from sklearn.datasets import load_diabetes

        x, y = load_diabetes(return_X_y=True)
        x_rest, _, y_rest, _ = train_test_split(x, y, test_size=0.2, random_state=0)
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=0.25, random_state=0
        )
        mean, std = x_train.mean(0), x_train.std(0)
        y_mean, y_std = y_train.mean(), y_train.std()
        return (
            ((x_train - mean) / std).astype("float32"),
            ((y_train - y_mean) / y_std).astype("float32"),
            ((x_val - mean) / std).astype("float32"),
            ((y_val - y_mean) / y_std).astype("float32"),
        )
    if task == "noisy_labels":
        from sklearn.datasets import make_classification

        x, y = make_classification(
            n_samples=3000,
            n_features=20,
            n_informative=10,
            n_redundant=4,
            n_classes=10,
            n_clusters_per_class=1,
            class_sep=1.0,
            random_state=0,
        )
        x_rest, _, y_rest, _ = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=0
        )
        rng = np.random.default_rng(0)
        flip = rng.random(len(y_train)) < 0.3  # noisy training labels; validation stays clean
        y_train = np.where(flip, rng.integers(0, 10, len(y_train)), y_train)
        return x_train.astype("float32"), y_train, x_val.astype("float32"), y_val
    raise ValueError(f"unknown task {task!r}; one of {TASKS}")


def build(task: str, config: dict[str, Any], input_shape: tuple[int, ...]) -> Any:
    """The Keras model of ``task`` for ``config``, compiled."""
    import keras

    layers: list[Any] = [keras.Input(shape=input_shape)]
    if task == "digits_cnn":
        for i in range(config["conv_layers"]):
            layers.append(
                keras.layers.Conv2D(config["filters"] * 2**i, 3, padding="same", activation="relu")
            )
            if i == 0:
                layers.append(keras.layers.MaxPooling2D(2))
        layers += [
            keras.layers.Flatten(),
            keras.layers.Dense(config["dense_units"], activation="relu"),
            keras.layers.Dropout(config["dropout"]),
        ]
    else:
        layers.append(keras.layers.Flatten())
        for _ in range(config["layers"]):
            layers.append(keras.layers.Dense(config["units"], activation="relu"))
            layers.append(keras.layers.Dropout(config["dropout"]))
    if task == "diabetes_mlp":
        layers.append(keras.layers.Dense(1))
        optimizer = (
            keras.optimizers.SGD(learning_rate=config["learning_rate"], momentum=0.9)
            if config["optimizer"] == "sgd"
            else keras.optimizers.Adam(learning_rate=config["learning_rate"])
        )
        model = keras.Sequential(layers)
        model.compile(optimizer=optimizer, loss="mse")
        return model
    layers.append(keras.layers.Dense(10, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config["learning_rate"]),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def train_one(
    job: tuple[int, dict[str, Any], int, str],
) -> tuple[int, list[float], list[float], list[float]]:
    """Train one configuration; return its index, val accuracy, val loss and seconds per epoch."""
    index, config, epochs, task = job
    import keras

    keras.utils.set_random_seed(index)
    x_train, y_train, x_val, y_val = task_data(task)
    model = build(task, config, tuple(x_train.shape[1:]))
    acc: list[float] = []
    loss: list[float] = []
    secs: list[float] = []
    clock = [time.perf_counter()]

    class Record(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            clock[0] = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            secs.append(time.perf_counter() - clock[0])
            acc.append(float(logs.get("val_accuracy", np.nan)))
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


META = {
    "digits_mlp": (
        "sklearn load_digits, 60/20/20 stratified split (seed 0)",
        "Flatten, layers x (Dense(units, relu), Dropout), Dense(10), Adam",
    ),
    "digits_cnn": (
        "sklearn load_digits as 8x8x1 images, 60/20/20 stratified split (seed 0)",
        "conv_layers x Conv2D(filters * 2**i, 3, relu) (MaxPool after the first), "
        "Dense(dense_units, relu), Dropout, Dense(10), Adam",
    ),
    "diabetes_mlp": (
        "sklearn load_diabetes, 60/20/20 split (seed 0), features and target standardised",
        "layers x (Dense(units, relu), Dropout), Dense(1), MSE; Adam or SGD(momentum 0.9)",
    ),
    "noisy_labels": (
        "make_classification(3000, 20 features, 10 classes, seed 0), 60/20/20 split, "
        "30% of training labels replaced by random ones (validation clean)",
        "layers x (Dense(units, relu), Dropout), Dense(10), Adam",
    ),
}


def main() -> None:
    """Record the curves and write them as one compressed ``.npz``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=TASKS, default="digits_mlp")
    parser.add_argument("--arms", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=27)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--out", default=None, help="default: bandit_tune/replay/data/TASK_curves.npz"
    )
    args = parser.parse_args()
    out = args.out or os.path.join(
        os.path.dirname(__file__), "..", "bandit_tune", "data", f"{args.task}_curves.npz"
    )
    configs = sample_configs(args.arms, task=args.task)
    acc = np.full((args.arms, args.epochs), np.nan, dtype=np.float32)
    loss = np.full_like(acc, np.nan)
    secs = np.full_like(acc, np.nan)
    jobs = [(i, c, args.epochs, args.task) for i, c in enumerate(configs)]
    start = time.monotonic()
    with get_context("spawn").Pool(args.workers, initializer=_init_worker) as pool:
        for done, (i, a, lo, s) in enumerate(pool.imap_unordered(train_one, jobs), 1):
            acc[i], loss[i], secs[i] = a, lo, s
            if done % 10 == 0:
                print(f"{done}/{args.arms} arms, {time.monotonic() - start:.0f} s", flush=True)
    data, model = META[args.task]
    arrays = {"val_loss": loss, "seconds": secs}
    if args.task != "diabetes_mlp":
        arrays["val_accuracy"] = acc
    np.savez_compressed(
        out,
        **arrays,
        configs=np.array(json.dumps(configs)),
        meta=np.array(
            json.dumps(
                {
                    "task": args.task,
                    "data": data,
                    "model": model,
                    "epochs": args.epochs,
                    "arms": args.arms,
                    "space_seed": SPACE_SEED,
                    "recorded_by": "benchmarks/record_curves.py",
                }
            )
        ),
    )
    print(f"wrote {out} in {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
