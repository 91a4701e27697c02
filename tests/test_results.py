import math

import pandas as pd
import pytest

from bandit_tune.tuner.results import add_diagnosis, diagnose


@pytest.mark.parametrize(
    "train,val,best,direction,label",
    [
        (1.00, 0.80, 0.95, "max", "overfit"),  # memorised the training set
        (0.70, 0.69, 0.95, "max", "underfit"),  # cannot even fit the training data
        (0.96, 0.94, 0.95, "max", "ok"),
        (0.05, 0.50, 0.30, "min", "overfit"),  # losses: train far below val
        (0.90, 0.92, 0.30, "min", "underfit"),
        (math.nan, 0.9, 0.95, "max", "unknown"),
    ],
)
def test_diagnosis_labels(train, val, best, direction, label):
    assert diagnose(train, val, best, direction)[0] == label


def test_diagnosis_columns_read_the_train_metric_at_the_best_epoch():
    frame = pd.DataFrame({"arm_id": ["a", "b"], "best_score": [0.9, 0.6], "best_epoch": [2, 1]})
    histories = {
        "a": pd.DataFrame({"epoch": [1, 2], "accuracy": [0.5, 1.0], "val_accuracy": [0.5, 0.9]}),
        "b": pd.DataFrame({"epoch": [1], "accuracy": [0.55], "val_accuracy": [0.6]}),
    }
    add_diagnosis(frame, histories, "val_accuracy", "max")
    assert list(frame["diagnosis"]) == ["overfit", "underfit"]
    assert frame.loc[0, "train_score"] == 1.0 and frame.loc[0, "gap"] == pytest.approx(0.1)


def test_an_arm_that_diverged_ranks_after_every_usable_arm():
    from bandit_tune.tuner.results import order_arms as _order_arms
    from bandit_tune.tuner.results import rank_arms as _rank_arms

    frame = pd.DataFrame(
        {
            "arm_id": ["nan", "diverged", "low", "high", "tie", "error"],
            # "diverged" scored best before its loss went NaN: its model is broken
            "best_score": [math.nan, 0.99, 0.50, 0.90, 0.90, 0.70],
            "status": ["error", "diverged", "completed", "stopped", "completed", "error"],
        }
    )
    ordered = _order_arms(frame, "max")
    assert list(ordered["arm_id"]) == ["high", "tie", "error", "low", "diverged", "nan"]
    ranks = _rank_arms(list(ordered["best_score"]), list(ordered["status"]), "max")
    assert ranks == [1, 1, 3, 4, 5, 6]
    losses = frame.assign(best_score=[math.nan, 0.01, 0.5, 0.2, 0.2, 0.3])
    ordered = _order_arms(losses, "min")
    assert list(ordered["arm_id"]) == ["high", "tie", "error", "low", "diverged", "nan"]


def test_a_diverged_epoch_keeps_its_losses_and_voids_its_other_metrics():
    pytest.importorskip("keras")
    from bandit_tune.arm.checkpoints import mark_divergence

    logs = {"loss": math.nan, "accuracy": 0.1, "val_loss": math.nan, "val_accuracy": 0.12}
    metrics = {**logs, "epoch": 3, "trial_seconds": 1.0}
    assert mark_divergence(metrics, list(logs))
    assert metrics["diverged"] and math.isnan(metrics["val_accuracy"])
    assert math.isnan(metrics["accuracy"]) and math.isnan(metrics["loss"])
    assert metrics["epoch"] == 3 and metrics["trial_seconds"] == 1.0  # not a log: kept
    fine = {"loss": 0.3, "val_loss": math.inf, "val_accuracy": 0.9}
    assert mark_divergence(dict(fine), list(fine))  # an infinite loss diverged too
    fine["val_loss"] = 0.4
    assert not mark_divergence(fine, list(fine)) and fine["val_accuracy"] == 0.9


def test_chance_level_is_the_share_of_the_most_common_class():
    import numpy as np

    from bandit_tune.tuner.results import chance_level

    labels = np.array([0] * 6 + [1] * 3 + [2])
    assert chance_level("val_accuracy", labels) == 0.6
    assert chance_level("val_accuracy", np.eye(3)[labels]) == 0.6  # one-hot rows
    assert chance_level("val_loss", labels) is None  # not an accuracy
    assert chance_level("val_accuracy", np.array([0.5, 1.5])) is None  # not class labels
    assert chance_level("val_accuracy", None) is None


def test_arms_at_chance_are_marked_and_all_at_chance_is_said():
    import pandas as pd

    from bandit_tune.tuner.results import mark_chance

    frame = pd.DataFrame(
        {"best_score": [0.95, 0.105, float("nan")], "diagnosis": ["ok", "ok", "unknown"]}
    )
    assert not mark_chance(frame, 0.1)
    assert list(frame["diagnosis"]) == ["ok", "chance", "unknown"]
    stuck = pd.DataFrame({"best_score": [0.1, 0.09], "diagnosis": ["ok", "ok"]})
    assert mark_chance(stuck, 0.1) and set(stuck["diagnosis"]) == {"chance"}
    assert not mark_chance(stuck, None)


def test_tied_arms_the_live_view_and_results_name_the_same_best_arm():
    """Many arms tie on val_accuracy (360 validation samples): val_loss, then epochs decide."""
    import io

    from bandit_tune.policies.registry import TrainToEnd
    from bandit_tune.ray_tune.scheduler import BanditScheduler
    from bandit_tune.tuner.progress import Progress
    from bandit_tune.tuner.results import order_arms

    scheduler = BanditScheduler(TrainToEnd(), metric="val_accuracy", mode="max")
    progress = Progress(scheduler, ("val_accuracy", "max"), 3, stream=io.StringIO(), live=False)
    scheduler.listeners.append(progress)
    runner = scheduler.runner
    # (arm, [(val_accuracy, val_loss) per epoch]): three arms reach 0.9
    curves = {
        "short": [(0.8, 0.6), (0.9, 0.40)],  # first to 0.9, stopped early
        "long": [(0.8, 0.7), (0.9, 0.40), (0.9, 0.35)],  # 0.9 at the same loss, more epochs
        "lossy": [(0.9, 0.50), (0.85, 0.45), (0.9, 0.30)],  # 0.9 first at a higher loss
        "low": [(0.7, 0.9)],
    }
    for arm_id in curves:
        runner.add_arm(arm_id, {"units": len(arm_id)})
    for epoch in range(3):
        for arm_id, curve in curves.items():
            if epoch < len(curve):
                accuracy, loss = curve[epoch]
                runner.report(
                    arm_id, epoch + 1, accuracy, {"val_accuracy": accuracy, "val_loss": loss}
                )
    rows = []
    for arm_id, curve in curves.items():
        best = max(range(len(curve)), key=lambda i: (curve[i][0], -i))  # first epoch at max
        rows.append(
            {
                "arm_id": arm_id,
                "best_score": curve[best][0],
                "best_epoch_loss": curve[best][1],
                "epochs": len(curve),
                "status": "completed",
            }
        )
    ordered = order_arms(pd.DataFrame(rows), "max")
    assert list(ordered["arm_id"]) == ["long", "short", "lossy", "low"]
    assert progress.best[1] == "long" and progress.best[2] == 2  # its best epoch


def test_the_live_line_of_a_resumed_search_counts_the_epochs_recorded_before():
    """A resumed search showed 'epochs 0/69' although 16 were recorded: the display takes
    up the restored arms' decisions (and their best arm) when it starts."""
    import io

    from bandit_tune.driver.host import RunnerHost
    from bandit_tune.policies import SuccessiveHalving
    from bandit_tune.tuner.progress import Progress

    first = RunnerHost(SuccessiveHalving(9, 3), metric="val_accuracy", mode="max")
    for arm_id, score in (("a", 0.5), ("b", 0.7), ("c", 0.6)):
        first.runner.add_arm(arm_id, {})
        first.runner.report(arm_id, 1, score, {"val_accuracy": score})
    resumed = RunnerHost(SuccessiveHalving(9, 3), metric="val_accuracy", mode="max")
    resumed.restore_snapshot(first.runner.state())
    out = io.StringIO()
    progress = Progress(resumed, ("val_accuracy", "max"), 9, 27, stream=out, live=False)
    with progress:
        pass
    assert progress.epochs == 3 and progress.best is not None and progress.best[1] == "b"
    assert "epochs 3/27" in out.getvalue()
