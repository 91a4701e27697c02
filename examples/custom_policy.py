"""A complete custom arm policy in under 30 lines, tried in replay, then run on Ray.

python examples/custom_policy.py            # replay, then Ray on digits
"""

import statistics

from bandit_tune.policies import ArmPolicy, Decision


class MedianAfterTwo(ArmPolicy):
    """Stop an arm whose score after 2 epochs is below the running median; the rest go on."""

    def __init__(self):
        self.at_two = []

    def on_result(self, arm_id, step, score):
        if step != 2:
            return Decision.CONTINUE
        below = len(self.at_two) >= 2 and score < statistics.median(self.at_two)
        self.at_two.append(score)
        return Decision.STOP if below else Decision.CONTINUE

    def decision_steps(self):
        return [2]  # the only step where it may stop an arm: checkpoint there

    def state_dict(self):
        return {"version": self.state_version, "policy": "MedianAfterTwo", "at_two": self.at_two}

    def load_state_dict(self, state):
        self.at_two = list(state["at_two"])


def main(argv=None):
    import argparse

    import numpy as np

    import bandit_tune
    from bandit_tune.demo import build_model, load_digits_split

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--directory", default="bandit_tune_results")
    args = parser.parse_args(argv)

    # 1. replay: recorded-style curves, milliseconds, no Ray, no TensorFlow
    rng = np.random.default_rng(0)
    curves = rng.uniform(0.2, 1.0, (200, 1)) * (1 - np.exp(-np.arange(1, 11) / 3))
    replay = bandit_tune.simulate(MedianAfterTwo(), curves, n_workers=4)
    print(
        f"replay: {len(replay.epochs)} arms, {replay.epochs_used} epochs "
        f"(of {curves.size}), best score {replay.best_score:.3f}"
    )

    # 2. the same class on Ray with real Keras models
    (x, y), (xv, yv), _ = load_digits_split(0)
    tuner = bandit_tune.BanditTuner(
        build_model,
        policy=MedianAfterTwo(),
        objective="val_accuracy",
        max_epochs=args.max_epochs,
        max_trials=args.trials,
        seed=0,
        directory=args.directory,
        project_name="custom_policy",
        overwrite=True,
        verbose=0,
    )
    tuner.search(x, y, validation_data=(xv, yv))
    print(tuner.results_[["units", "learning_rate", "epochs", "best_score", "status"]])
    return replay, tuner


if __name__ == "__main__":
    main()
