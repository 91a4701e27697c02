"""The main job: Hyperband over the seed notes' space on scikit-learn's bundled digits."""

from __future__ import annotations

import os
import time
from typing import Any


def load_digits_split(seed: int = 0) -> tuple[tuple[Any, Any], tuple[Any, Any], tuple[Any, Any]]:
    """Digits as 8x8 images in [0, 1], split 60/20/20 into train, validation and test.

    The split is stratified and made once, before any tuning, so the test set
    never influences a decision (the seed notes' first lesson).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    y = digits.target.astype("int64")
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=0.25, stratify=y_rest, random_state=seed
    )
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def build_model(hp: Any) -> Any:
    """The seed notes' keras-tuner model: Flatten -> Dense(units, relu) -> Dense(10, softmax)."""
    import keras

    units = hp.Int("units", min_value=32, max_value=512, step=32)
    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8)),
            keras.layers.Flatten(),
            keras.layers.Dense(units=units, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    learning_rate = hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def run_demo(max_epochs: int = 27, directory: str = "bandit_tune_results", seed: int = 0) -> int:
    """Run Hyperband on digits, print the plan, the leaderboard and the test accuracy."""
    import bandit_tune

    start = time.monotonic()
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_digits_split(seed)
    tuner = bandit_tune.Hyperband(
        build_model,
        objective="val_accuracy",
        max_epochs=max_epochs,
        factor=3,
        seed=seed,
        directory=directory,
        project_name="digits_demo",
        overwrite=True,
    )
    print(tuner.policy.describe())  # type: ignore[union-attr]
    print(f"data: {len(x_train)} train / {len(x_val)} validation / {len(x_test)} test digits")
    tuner.search(x_train, y_train, validation_data=(x_val, y_val), batch_size=32)
    board = tuner.results_[["arm_id", "units", "learning_rate", "epochs", "best_score", "status"]]
    print("\nLeaderboard (best 10 of", len(board), "arms):")
    print(board.head(10).to_string(index=False))
    print(f"\nepochs trained: {int(tuner.results_['epochs'].sum())} (plan: {tuner.policy.budget})")  # type: ignore[union-attr]
    test = tuner.evaluate(x_test, y_test)
    print(
        f"best: {tuner.best_params_}  val_accuracy={tuner.best_score_:.4f}  "
        f"test accuracy={test['accuracy']:.4f}"
    )
    plot = tuner.plot(os.path.join(tuner.project_dir, "curves.png"))
    print(f"learning curves: {plot}")
    print(f"wall time: {time.monotonic() - start:.1f} s; results in {tuner.project_dir}")
    return 0
