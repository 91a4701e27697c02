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


def load_arms(project_dir: str) -> dict[str, Any]:
    """Read the ``arms.json`` a tuner wrote into ``project_dir``."""
    import json
    import os

    path = os.path.join(project_dir, "arms.json")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{project_dir!r} holds no bandit_tune search (no arms.json); give the "
            "directory/project_name folder of a search"
        )
    with open(path) as f:
        return json.load(f)


def leaderboard(arms: dict[str, Any]) -> Any:
    """One row per arm from an ``arms.json`` payload, best first."""
    import pandas as pd

    name, direction = arms["objective"]
    rows = []
    for arm_id, results in arms["results"].items():
        scores = [r[name] for r in results if name in r and _finite(r[name])]
        decisions = arms["decisions"].get(arm_id, [])
        best = (max if direction == "max" else min)(scores) if scores else math.nan
        rows.append(
            {
                "arm_id": arm_id[-8:],
                "epochs": max((int(r.get("epoch", 0)) for r in results), default=0),
                f"best_{name}": best,
                "last_decision": decisions[-1][2] if decisions else "",
            }
        )
    frame = pd.DataFrame(rows)
    if len(frame):
        frame = frame.sort_values(f"best_{name}", ascending=direction == "min", na_position="last")
    return frame.reset_index(drop=True)


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def plot_arms(arms: dict[str, Any], path: str, rungs: list[int] | None = None) -> str:
    """Draw every arm's validation curve and the epochs spent per arm; save to ``path``.

    Left: the objective over epochs for each arm, rung epochs as dashed lines,
    a dot where an arm paused (waited at a rung), a cross where it was stopped,
    and the best arm in a thick line. Right: epochs trained per arm, best first.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, direction = arms["objective"]
    board = leaderboard(arms)
    best_id = None
    if len(board) and _finite(board.iloc[0][f"best_{name}"]):
        best_short = board.iloc[0]["arm_id"]
        best_id = next(a for a in arms["results"] if a.endswith(best_short))
    fig, (curves, spent) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    for arm_id, results in arms["results"].items():
        epochs = [int(r["epoch"]) for r in results if name in r]
        values = [float(r[name]) for r in results if name in r]
        if not epochs:
            continue
        is_best = arm_id == best_id
        curves.plot(
            epochs,
            values,
            color="tab:red" if is_best else "tab:blue",
            alpha=1.0 if is_best else 0.35,
            linewidth=2.5 if is_best else 1.0,
            zorder=3 if is_best else 2,
            label="best arm" if is_best else None,
        )
        top = max(rungs) if rungs else None
        for step, _, decision in arms["decisions"].get(arm_id, []):
            completed = decision == "STOP" and step == top
            if decision in ("PAUSE", "STOP") and step in epochs and not completed:
                marker = "o" if decision == "PAUSE" else "x"
                value = values[epochs.index(step)]
                curves.scatter([step], [value], marker=marker, s=22, color="black", zorder=4)
    for rung in rungs or []:
        curves.axvline(rung, color="grey", linestyle="--", linewidth=0.8)
    curves.set_xlabel("epoch")
    curves.set_ylabel(name)
    curves.set_title(f"{name} per arm (o paused at a rung, x stopped; dashed: rungs)")
    if best_id is not None:
        curves.legend(loc="lower right" if direction == "max" else "upper right")
    spent.barh(
        range(len(board)), board["epochs"], color=["tab:red"] + ["tab:blue"] * (len(board) - 1)
    )
    spent.invert_yaxis()
    spent.set_yticks(range(len(board)))
    spent.set_yticklabels(board["arm_id"], fontsize=6)
    spent.set_xlabel("epochs trained")
    spent.set_title(f"epochs per arm ({int(board['epochs'].sum())} in all), best first")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
