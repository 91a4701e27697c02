"""Accurate *and* small: tune a Keras MLP on two objectives and keep the trade-off.

Hyperband with a list of objectives runs its multi-objective form (MOHyperband):
each rung keeps the arms on the best Pareto fronts of (validation accuracy,
trainable parameters) instead of the most accurate ones only. At the end you get
the front - the arms no other arm beats in both - and pick from it.

    python examples/multi_objective.py [--max-epochs 9] [--directory results]
"""

import argparse

import bandit_tune
from bandit_tune import Objective
from bandit_tune.demo import load_digits_split


def build_model(hp):
    """An MLP whose width and depth set its size."""
    import keras

    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten()])
    for _ in range(hp.Int("layers", 1, 2)):
        model.add(keras.layers.Dense(hp.Choice("units", [8, 16, 64, 256]), activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 1e-3])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--directory", default="bandit_tune_results")
    args = parser.parse_args()

    (x, y), (x_val, y_val), (x_test, y_test) = load_digits_split(0)
    tuner = bandit_tune.Hyperband(
        build_model,
        objective=["val_accuracy", Objective("params", "min")],
        max_epochs=args.max_epochs,
        factor=3,
        seed=0,
        directory=args.directory,
        project_name="accurate_and_small",
        overwrite=True,
        verbose=0,
    )
    tuner.search(x, y, validation_data=(x_val, y_val))
    front = tuner.pareto_front()
    print(f"{len(tuner.results_)} arms; the Pareto front of (val_accuracy, params):")
    print(front[["units", "layers", "learning_rate", "val_accuracy", "params", "epochs"]])
    print(
        f"hypervolume above (accuracy 0.8, 100,000 parameters): "
        f"{tuner.hypervolume([0.8, 100_000]):.1f}"
    )
    # the smallest model within 1% of the most accurate one
    target = front["val_accuracy"].max() - 0.01
    chosen = tuner.get_best_models(
        1, preference=lambda row: -row["params"] if row["val_accuracy"] >= target else -1e12
    )[0]
    loss, accuracy = chosen.evaluate(x_test, y_test, verbose=0)
    print(f"chosen: {chosen.count_params()} parameters, test accuracy {accuracy:.4f}")
    print(f"front plot: {tuner.plot_front()}")
    return tuner, chosen


if __name__ == "__main__":
    main()
