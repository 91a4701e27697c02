"""Population-based training: weak arms take a strong arm's weights and try new values.

Eight MLPs train side by side with SGD. Every few epochs the worst quarter copies
the weights and optimizer state of one of the best quarter and perturbs its
learning rate and dropout rate, so the population finds a schedule (typically a
learning rate that falls) that no fixed value has. At the end: who copied whom,
the best model's schedule to retrain with, and a plot of every arm's schedule.

    python examples/population_based_training.py [--max-epochs 24] [--directory results]
"""

import argparse

import bandit_tune
from bandit_tune.demo import load_digits_split


def build_model(hp):
    """A fixed MLP; the learning rate and the dropout rate may change during training."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(hp.Float("dropout", 0.0, 0.6)),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(
            hp.Float("learning_rate", 1e-3, 1.0, sampling="log"), momentum=0.9
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=24)
    parser.add_argument("--interval", type=int, default=4)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--directory", default="bandit_tune_results")
    args = parser.parse_args()

    (x, y), (x_val, y_val), (x_test, y_test) = load_digits_split(0)
    policy = bandit_tune.PopulationBasedTraining(
        max_t=args.max_epochs,
        population_size=args.population,
        perturbation_interval=args.interval,
        # None: the range build_model declares (checked: they leave the model's shape alone)
        hyperparam_mutations={"learning_rate": None, "dropout": None},
        seed=0,
    )
    tuner = bandit_tune.RandomSearch(
        build_model,
        objective="val_accuracy",
        max_epochs=args.max_epochs,
        policy=policy,
        directory=args.directory,
        project_name="pbt_digits",
        overwrite=True,
        seed=0,
    )
    tuner.search(x, y, validation_data=(x_val, y_val))
    print(f"{len(tuner.lineage_)} exploits; who copied whom:")
    print(tuner.lineage_[["arm_id", "left_at", "donor", "donor_step"]].to_string(index=False))
    print("the best model's schedule (retrain with it):")
    for segment in tuner.best_schedule_:
        values = {k: round(v, 4) for k, v in segment.items() if "epoch" not in k}
        print(f"  epochs {segment['from_epoch']:>2}-{segment['to_epoch']:<2} {values}")
    print(f"test accuracy of the best model: {tuner.evaluate(x_test, y_test)['accuracy']:.4f}")
    print("curves:", tuner.plot("pbt_curves.png"), "and pbt_curves_schedule.png")
    return tuner


if __name__ == "__main__":
    main()
