"""Arm classes for the pool tests (importable by Ray workers) and a driver to kill."""

import json
import os
import sys
import time

import numpy as np

ARMS, EPOCHS = 20, 9


def curve(arm, epoch):
    """A deterministic learning curve per arm: saturating, arms cross."""
    rng = np.random.default_rng(arm)
    final = 0.5 + 0.45 * rng.random()
    rate = 0.3 + 1.2 * rng.random()
    return float(final - (final - 0.1) * epoch ** (-rate) + 0.004 * np.sin(7 * arm + epoch))


def curves(arms=ARMS, epochs=EPOCHS):
    return np.array([[curve(a, e) for e in range(1, epochs + 1)] for a in range(arms)])


class CurveArm:
    """One epoch of the arm's curve per step; the epoch is its whole state."""

    def setup(self, config):
        self.arm, self.epoch = int(config["arm"]), 0
        self.sleep = float(config.get("sleep", 0.0))
        self.pid = os.getpid()
        self.loaded = None

    def step(self):
        if self.sleep:
            time.sleep(self.sleep)
        self.epoch += 1
        return {
            "score": curve(self.arm, self.epoch),
            "epoch": self.epoch,
            "pid": self.pid,
            "loaded": self.loaded,
        }

    def save_checkpoint(self, folder):
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"epoch": self.epoch}, f)

    def load_checkpoint(self, folder):
        with open(os.path.join(folder, "state.json")) as f:
            self.epoch = json.load(f)["epoch"]
        self.loaded = self.epoch


def curve_function(config):
    """The same arm as a function trainable: reports each epoch with a checkpoint folder."""
    import tempfile

    from bandit_tune.pool import get_checkpoint, report

    start, epoch, loaded = get_checkpoint(), 0, None
    if start is not None:
        with open(os.path.join(start, "state.json")) as f:
            epoch = loaded = json.load(f)["epoch"]
    while epoch < config.get("epochs", EPOCHS):
        epoch += 1
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            report({"score": curve(int(config["arm"]), epoch), "epoch": epoch,
                    "loaded": loaded, "pid": os.getpid()}, checkpoint=folder)


class DiesOnce(CurveArm):
    """Arm 3's worker process dies in its first epoch, once (a marker file says)."""

    def step(self):
        marker = self.config_marker
        if self.arm == 3 and self.epoch == 0 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return super().step()

    def setup(self, config):
        super().setup(config)
        self.config_marker = config["marker"]


class Raises(CurveArm):
    """Arm 2 raises at its first epoch; the others train."""

    def step(self):
        if self.arm == 2:
            raise RuntimeError("arm 2 cannot train")
        return super().step()


class AlwaysRaises(CurveArm):
    def step(self):
        raise ValueError("a bug in step")


class NoScore(CurveArm):
    def step(self):
        return {"accuracy": 0.5}


def main(directory):
    """Hyperband(9, 3) over 20 arms on one worker, ~0.05 s per epoch; prints SUMMARY."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from bandit_tune import run_arms
    from bandit_tune.policies import Hyperband

    found = run_arms(
        CurveArm,
        [{"arm": i, "sleep": 0.05} for i in range(ARMS)],
        Hyperband(EPOCHS, 3),
        metric="score",
        max_concurrent=1,
        cpus_per_arm=0.5,
        directory=directory,
        project_name="p",
    )
    print(
        "SUMMARY "
        + json.dumps(
            {
                "decisions": found.decisions,
                "epochs": {r["arm"]: r["epochs"] for r in found.arms},
                "results": found.results,
            }
        )
    )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1])


class LrArm:
    """The PBT toy's arm (tests/pbt_toy.py): weights ``w``, one epoch per step at ``lr``."""

    def setup(self, config):
        self.lr, self.w = float(config["lr"]), 0.0

    def step(self):
        from pbt_toy import score, train

        self.w = train(self.w, self.lr)
        return {"score": score(self.w, self.lr), "w": self.w}

    def save_checkpoint(self, folder):
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"w": self.w}, f)

    def load_checkpoint(self, folder):
        with open(os.path.join(folder, "state.json")) as f:
            self.w = json.load(f)["w"]
