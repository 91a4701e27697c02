"""Reading a finished search: over/underfitting diagnosis and scikit-learn style tables."""

from __future__ import annotations

import math
from typing import Any

OVERFIT_GAP = 0.05
"""Train-minus-validation gap that flags overfitting (objective units; relative for losses)."""
UNDERFIT_GAP = 0.05
"""Shortfall of an arm's training score below the best validation score that flags underfitting."""


def _train_name(objective: str) -> str | None:
    return objective[4:] if objective.startswith("val_") else None


def diagnose(train: float, val: float, best_val: float, direction: str) -> tuple[str, float]:
    """Classify one arm as the seed notes teach; return ``(label, gap)``.

    * ``overfit``: the training score is well above the validation score — the
      model learned the training set, not the task: lower its capacity.
    * ``underfit``: even the training score is well below the best arm's
      validation score — the model cannot fit the data: raise its capacity.
    * ``ok`` otherwise; ``unknown`` when no training metric was reported.

    Scores are compared so that higher is better (losses are negated); for losses
    the gaps are relative to the validation loss.
    """
    if not all(math.isfinite(v) for v in (train, val, best_val)):
        return "unknown", math.nan
    sign = 1.0 if direction == "max" else -1.0
    scale = 1.0 if direction == "max" else max(abs(val), 1e-12)
    gap = sign * (train - val) / scale
    if gap > OVERFIT_GAP:
        return "overfit", gap
    shortfall = (
        sign * (best_val - train) / (1.0 if direction == "max" else max(abs(best_val), 1e-12))
    )
    if shortfall > UNDERFIT_GAP:
        return "underfit", gap
    return "ok", gap


def add_diagnosis(frame: Any, histories: dict[str, Any], objective: str, direction: str) -> None:
    """Add ``train_score``, ``gap`` and ``diagnosis`` columns to a results frame, in place.

    The training metric is the objective without its ``val_`` prefix, read at
    each arm's best epoch.
    """
    train_name = _train_name(objective)
    best_val = frame["best_score"].dropna()
    best = (
        float(best_val.max() if direction == "max" else best_val.min())
        if len(best_val)
        else math.nan
    )
    trains, gaps, labels = [], [], []
    for _, row in frame.iterrows():
        history = histories.get(row["arm_id"])
        train = math.nan
        if train_name and history is not None and train_name in history and row["best_epoch"]:
            at = history.loc[history["epoch"] == row["best_epoch"], train_name]
            if len(at):
                train = float(at.iloc[0])
        label, gap = diagnose(train, float(row["best_score"]), best, direction)
        trains.append(train)
        gaps.append(gap)
        labels.append(label)
    frame["train_score"] = trains
    frame["gap"] = gaps
    frame["diagnosis"] = labels
