"""The seed notes' GridSearchCV example (epochs x steps_per_epoch, cv=5), on bandit_tune.

The notes wrap a Keras model in scikit-learn's ``GridSearchCV``; here the same
grid runs as bandit_tune arms on Ray Tune, each arm training one model per fold,
and prints the same lines: ``Best: ... using ...`` and ``mean (std) with: params``.

    python examples/grid_search_cv.py                       # the notes' grid: epochs [20, 25]
    python examples/grid_search_cv.py --epochs 2 3 --steps 5 10
"""

import argparse

import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import bandit_tune as bt


def build_model(hp):
    """The notes' build_fn: a small classifier (its size is not tuned here)."""
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def make_hypermodel(epochs, steps_per_epoch):
    class SeedGrid(bt.HyperModel):
        """GridSearchCV's param_grid = dict(epochs=..., steps_per_epoch=...) as fit arguments."""

        def build(self, hp):
            return build_model(hp)

        def fit(self, hp, model, *args, **kwargs):
            kwargs["epochs"] = hp.Choice("epochs", epochs)
            return model.fit(
                *args, steps_per_epoch=hp.Choice("steps_per_epoch", steps_per_epoch), **kwargs
            )

    return SeedGrid()


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, nargs="+", default=[20, 25])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--directory", default="bandit_tune_results")
    args = parser.parse_args(argv)

    X, Y = load_digits(return_X_y=True)
    X_train, X_test, Y_train, Y_test = train_test_split(
        X / 16.0, Y, test_size=0.2, stratify=Y, random_state=0
    )
    grid = bt.GridSearch(
        make_hypermodel(args.epochs, args.steps),
        objective="val_accuracy",
        max_epochs=max(args.epochs),
        directory=args.directory,
        project_name="grid_search_cv",
        overwrite=True,
        verbose=0,
    )
    grid_result = grid.fit(X_train, Y_train, cv=args.cv)  # model.fit -> grid.fit, as in the notes

    # summarize results
    print("Best: %f using %s" % (grid_result.best_score_, grid_result.best_params_))
    means = grid_result.cv_results_["mean_test_score"]
    stds = grid_result.cv_results_["std_test_score"]
    params = grid_result.cv_results_["params"]
    for mean, stdev, param in zip(means, stds, params):
        print("%f (%f) with: %r" % (mean, stdev, param))
    return grid_result


if __name__ == "__main__":
    main()
