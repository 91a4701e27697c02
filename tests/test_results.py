import math

import pandas as pd
import pytest

from bandit_tune.results import add_diagnosis, diagnose


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
