"""Reading a finished search: over/underfitting diagnosis and scikit-learn style tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bandit_tune.driver.arms import error_line as error_line  # re-exported: results' view
from bandit_tune.driver.arms import results_before_last_exploit
from bandit_tune.driver.project import load_arms as load_arms  # re-exported: results' view
from bandit_tune.objective import best_index, best_of, orient, sign

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
    up = sign(direction)
    scale = 1.0 if up > 0 else max(abs(val), 1e-12)
    gap = up * (train - val) / scale
    if gap > OVERFIT_GAP:
        return "overfit", gap
    shortfall = (
        up * (best_val - train) / (1.0 if up > 0 else max(abs(best_val), 1e-12))
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
    found = best_of(best_val.tolist(), direction)
    best = (
        float(found)
        if found is not None
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


CHANCE_MARGIN = 0.01
"""An accuracy within this of the chance level counts as chance."""


def chance_level(objective: str, y_val: Any) -> float | None:
    """The accuracy of always answering the most common class in ``y_val``; ``None`` if n/a.

    Only for accuracy objectives and class labels (integers, or one-hot rows).
    """
    if "acc" not in objective.lower() or y_val is None:
        return None
    try:
        labels = np.asarray(y_val)
    except Exception:  # noqa: BLE001 — several outputs: no single chance level
        return None
    if labels.ndim == 2 and labels.shape[1] > 1:
        labels = labels.argmax(axis=1)
    if labels.ndim != 1 or not len(labels) or labels.dtype.kind not in "iub":
        if labels.ndim != 1 or labels.dtype.kind != "f" or np.any(np.mod(labels, 1)):
            return None
    _, counts = np.unique(labels, return_counts=True)
    return float(counts.max() / counts.sum())


def mark_chance(frame: Any, chance: float | None) -> bool:
    """Label arms whose best accuracy stayed at ``chance`` (diagnosis ``"chance"``).

    Returns whether every arm that scored did (the models learned nothing: a data
    problem rather than a hyperparameter one).
    """
    if chance is None or not len(frame):
        return False
    scored = frame["best_score"].notna()
    at_chance = scored & (frame["best_score"] <= chance + CHANCE_MARGIN)
    frame.loc[at_chance, "diagnosis"] = "chance"
    return bool(scored.any() and at_chance[scored].all())


def leaderboard(arms: dict[str, Any]) -> Any:
    """One row per arm from an ``arms.json`` payload, best first."""
    import pandas as pd

    name, direction = arms["objective"]
    rows = []
    for arm_id, results in arms["results"].items():
        scores = [r[name] for r in results if name in r and _finite(r[name])]
        decisions = arms["decisions"].get(arm_id, [])
        found = best_of(scores, direction)
        best = math.nan if found is None else found
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
            if decision in ("PAUSE", "STOP", "EXPLOIT") and step in epochs and not completed:
                marker = {"PAUSE": "o", "STOP": "x", "EXPLOIT": "^"}[decision]
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


def plot_schedules(frame: Any, path: str, log: Sequence[str] = ()) -> str:
    """Draw each mutable hyperparameter's schedule over epochs, one line per arm; save it.

    Population-based training's view: ``frame`` is ``results_`` with its
    ``schedule`` column (the values each arm's model trained with, through the
    arms it copied). The best arm is the thick red line. ``log``: the
    hyperparameters drawn on a log scale (those sampled on one).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schedules = [s for s in frame["schedule"] if s]
    names = sorted({k for s in schedules for seg in s for k in seg} - {"from_epoch", "to_epoch"})
    if not names:
        raise ValueError("the search has no mutable hyperparameters to draw")
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False)
    best = frame["schedule"].iloc[0]
    for ax, name in zip(axes[0], names):
        values: list[float] = []
        for plan in frame["schedule"]:
            if not plan:
                continue
            xs = [seg["from_epoch"] for seg in plan] + [plan[-1]["to_epoch"]]
            ys = [seg[name] for seg in plan] + [plan[-1][name]]
            if not all(_finite(y) for y in ys):
                continue
            values += [float(y) for y in ys]
            is_best = plan is best
            ax.step(
                xs,
                ys,
                where="post",
                color="tab:red" if is_best else "tab:blue",
                alpha=1.0 if is_best else 0.35,
                linewidth=2.5 if is_best else 1.0,
                zorder=3 if is_best else 2,
                label="best arm" if is_best else None,
            )
        if name in log and values and min(values) > 0:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(f"{name} schedule per arm")
        if best:
            ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _arm_key(score: float, status: str, direction: str) -> tuple[int, float]:
    # usable arms first, best score first; then arms that diverged (a score from before
    # the divergence, but a broken model: never the best while a usable arm scored);
    # then arms with no score
    if math.isnan(score):
        return (2, 0.0)
    return (int(status == "diverged"), -orient(score, direction))


def companion_metric(objective: str) -> str | None:
    """The loss that breaks ties of ``objective``: ``val_loss`` for a validation metric.

    ``loss`` for a training metric; ``None`` when the objective is that loss itself.
    """
    companion = "val_loss" if objective.startswith("val_") else "loss"
    return None if companion == objective else companion


def tie_break(loss: float, epochs: int) -> tuple[float, int]:
    """The order among arms with equal best scores (lower first).

    The lower companion loss at the best epoch (:func:`companion_metric`) first,
    then the arm that trained more epochs.
    """
    return (math.inf if loss != loss else float(loss), -int(epochs))


#: The columns of :func:`arm_table`, in order; the hyperparameters' follow ``arm_id``.
_COLUMNS = (
    "arm_id",
    "epochs",
    "best_score",
    "best_epoch",
    "best_epoch_loss",
    "last_score",
    "rung",
    "promotions",
    "status",
    "error",
    "failures",
    "checkpoint",
    "curve",
    "curve_seconds",
)


def order_arms(frame: Any, direction: str) -> Any:
    """``frame`` (one row per arm) sorted best first; the order of ``results_``.

    Equal best scores are ordered by :func:`tie_break`, then by arm order; the live
    view (:class:`~bandit_tune.tuner.progress.Progress`) names the same best arm.
    """
    losses = frame["best_epoch_loss"] if "best_epoch_loss" in frame else [math.nan] * len(frame)
    epochs_trained = frame["epochs"] if "epochs" in frame else [0] * len(frame)
    keys = [
        (*_arm_key(float(score), status, direction), *tie_break(float(loss), int(epochs)))
        for score, status, loss, epochs in zip(
            frame["best_score"], frame["status"], losses, epochs_trained, strict=True
        )
    ]
    order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: ties keep arm order
    return frame.iloc[order]


def rank_arms(scores: Sequence[float], statuses: Sequence[str], direction: str) -> list[int]:
    """``rank_test_score`` of arms in ``results_`` order: 1 is the best, ties share a rank."""
    first: dict[tuple[int, float], int] = {}
    return [
        first.setdefault(_arm_key(float(score), status, direction), position + 1)
        for position, (score, status) in enumerate(zip(scores, statuses, strict=True))
    ]


def arm_table(
    scheduler: Any,
    result_grid: Any,
    objective: tuple[str, str],
    names: Sequence[str],
    max_epochs: int,
    steps: Sequence[int] | None,
    errors: dict[str, str] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """``results_``: one row per arm of the search, best first; and each arm's history.

    Reads the driver's arm records (complete also when Ray's result files lag
    behind a fault) and Ray's result grid (errors, final checkpoints), or
    ``errors`` (arm -> error) where no grid exists (the pool's arms).
    """
    import pandas as pd

    objective_name, direction = objective
    companion = companion_metric(objective_name)
    arms = scheduler.runner.arms
    rows = []
    histories: dict[str, Any] = {}
    grid = _grid_by_arm(result_grid, scheduler.arm_of)
    # every arm of the search: this run's, and those of an interrupted run it resumed
    arm_ids = list(dict.fromkeys([*arms.ids(), *grid]))
    for arm_id in arm_ids:
        result = grid.get(arm_id)
        arm = arms.get(arm_id)
        recorded = arm.results if arm is not None else None
        metrics = dict(recorded[-1]) if recorded else {}
        if not metrics and result is not None:
            metrics = result.metrics or {}
        source = (arm.config if arm is not None else None) or (result.config if result else {})
        config = {k: source.get(k) for k in names}
        history = (
            pd.DataFrame(recorded)
            if recorded
            else (result.metrics_dataframe if result is not None else None)
        )
        error = None if result is None or result.error is None else str(result.error)
        if result is None and errors:
            error = errors.get(arm_id)
        checkpoint = arm.checkpoint if arm is not None else None
        if result is not None and result.checkpoint is not None:
            checkpoint = result.checkpoint.path
        score, best_epoch, best_loss, last, curve, curve_seconds = _best_of(
            history, objective_name, direction, companion, arm
        )
        if curve:
            histories[arm_id] = history
        trained = int(metrics.get("epoch", 0) or 0)
        status = _status(error, metrics, trained, max_epochs)
        rung = max([s for s in (steps or []) if s <= trained], default=trained)
        values = (
            trained,
            score,
            best_epoch,
            best_loss,
            last,
            rung,
            sum(1 for s in (steps or []) if s < trained),  # promotions
            status,
            error,
            arm.failures if arm is not None else 0,
            checkpoint,
            curve,
            curve_seconds or None,
        )
        rows.append({"arm_id": arm_id, **config, **dict(zip(_COLUMNS[1:], values, strict=True))})
    _add_schedules(rows, scheduler.runner)
    # a search whose budget ended before its first arm started has no rows: the same
    # columns, no arms
    if rows:
        frame = pd.DataFrame(rows)
    else:
        frame = pd.DataFrame(columns=[*_COLUMNS[:1], *names, *_COLUMNS[1:]])
    frame = order_arms(frame, direction).reset_index(drop=True)
    frame.attrs.update(objective=(objective_name, direction), params=list(names))
    add_diagnosis(frame, histories, objective_name, direction)
    return frame, histories


def _grid_by_arm(result_grid: Any, arm_of: dict[str, str]) -> dict[str, Any]:
    """Ray's results by arm: an arm re-created after a failure speaks through its later trial."""
    import os

    grid: dict[str, Any] = {}
    for result in result_grid or ():
        trial_id = (result.metrics or {}).get("trial_id") or os.path.basename(result.path)
        arm_id = arm_of.get(trial_id, trial_id)
        if result.error is not None and arm_id in grid and grid[arm_id].error is None:
            continue
        grid[arm_id] = result
    return grid


def _best_of(
    history: Any, name: str, direction: str, companion: str | None, arm: Any
) -> tuple[float, int, float, float, list[float], list[float]]:
    """An arm's ``(best score, its epoch, the companion loss there, last score, curve, seconds)``.

    The best epoch is the objective's one rule (:func:`bandit_tune.objective.best_index`)
    over the epochs the arm's model holds (after its last exploit, if any).
    """
    if history is None or name not in history:
        return math.nan, 0, math.nan, math.nan, [], []
    values = history[name].to_numpy(dtype=float)
    epochs = history["epoch"].to_numpy() if "epoch" in history else np.arange(1, len(values) + 1)
    finite = np.isfinite(values)
    own = results_before_last_exploit(arm, len(values))
    if own:  # an exploited arm's model holds only its epochs since then
        finite[:own] = False
    score, best_epoch, best_loss = math.nan, 0, math.nan
    pick = best_index(np.where(finite, values, np.nan).tolist(), direction)
    if pick is not None:
        score, best_epoch = float(values[pick]), int(epochs[pick])
        if companion is not None and companion in history:
            best_loss = float(history[companion].to_numpy(dtype=float)[pick])
    seconds = []
    if "time_this_iter_s" in history:
        seconds = [float(v) for v in history["time_this_iter_s"]]
    return score, best_epoch, best_loss, float(values[-1]), [float(v) for v in values], seconds


def _status(error: Any, metrics: dict[str, Any], trained: int, max_epochs: int) -> str:
    """How an arm ended: error, diverged, early_stopped, completed or stopped (by the policy)."""
    if error is not None:
        return "error"
    if metrics.get("diverged"):
        return "diverged"
    if metrics.get("early_stopped"):
        return "early_stopped"
    if trained >= max_epochs or metrics.get("completed"):
        return "completed"
    return "stopped"


def _add_schedules(rows: list[dict[str, Any]], runner: Any) -> None:
    """Population-based training: each arm's exploits and the schedule its model trained with."""
    arms = runner.arms
    exploiting = getattr(runner.policy, "mutable_keys", None) is not None
    if not exploiting and not any(a.lineage for a in arms):
        return
    from bandit_tune.driver.lineage import schedule

    saved = {a.arm_id: a.to_json() for a in arms}
    for row in rows:
        arm = arms.get(row["arm_id"])
        row["exploits"] = len(arm.lineage) if arm is not None else 0
        row["schedule"] = schedule(saved, row["arm_id"]) if arm is not None else None


def cv_table(
    frame: Any,
    histories: dict[str, Any],
    objective: tuple[str, str],
    params: Sequence[str],
    n_splits: int = 1,
) -> dict[str, Any]:
    """scikit-learn's ``cv_results_`` layout, one entry per arm in ``results_`` order.

    Scores are read at each arm's best epoch; ranks follow the objective's
    direction (rank 1 is the best arm, ties share the lower rank).
    """
    name, direction = objective
    splits: list[list[float]] = [[] for _ in range(n_splits)]
    means, stds = [], []
    for _, row in frame.iterrows():
        history = histories.get(row["arm_id"])
        at = None
        if history is not None and row["best_epoch"]:
            matches = history.loc[history["epoch"] == row["best_epoch"]]
            at = matches.iloc[-1] if len(matches) else None
        for k in range(n_splits):
            key = f"split{k}_{name}" if n_splits > 1 else name
            splits[k].append(float(at[key]) if at is not None and key in at else math.nan)
        means.append(float(row["best_score"]))
        std_key = f"{name}_std"
        stds.append(float(at[std_key]) if at is not None and std_key in at else 0.0)
    ranks = rank_arms(means, list(frame["status"]), direction)
    from bandit_tune.space import _plain

    chosen = [{k: _plain(row[k]) for k in params} for _, row in frame.iterrows()]
    results: dict[str, Any] = {"params": chosen}
    for k in params:
        results[f"param_{k}"] = np.array([p[k] for p in chosen], dtype=object)
    for k in range(n_splits):
        results[f"split{k}_test_score"] = np.array(splits[k])
    results["mean_test_score"] = np.array(means)
    results["std_test_score"] = np.array(stds)
    results["rank_test_score"] = np.array(ranks, dtype=int)
    return results


def add_pareto(frame: Any, histories: dict[str, Any], objectives: Sequence[tuple[str, str]]) -> Any:
    """A multi-objective ``results_``: a column per objective, ``pareto_rank``, front first.

    Each objective is read at the arm's ``best_epoch`` (of the first objective: the
    epoch its model is restored at), else at its last reported epoch. Rows are
    ordered as the policies order a rung: Pareto front (rank 1 is the front),
    crowding distance, then the order they had; arms with a missing objective last.
    """
    from bandit_tune.policies.pareto import non_dominated_fronts, pareto_order

    values = np.full((len(frame), len(objectives)), np.nan)
    for i, (_, row) in enumerate(frame.iterrows()):
        history = histories.get(row["arm_id"])
        if history is None or not len(history):
            continue
        at = history
        if "epoch" in history and row["best_epoch"]:
            picked = history[history["epoch"] == row["best_epoch"]]
            if len(picked):
                at = picked
        for j, (name, _) in enumerate(objectives):
            if name in at:
                values[i, j] = float(at[name].to_numpy(dtype=float)[-1])
    attrs = dict(frame.attrs)
    signs = np.array([sign(d) for _, d in objectives])
    oriented = [tuple(v) for v in values * signs]
    rank = np.zeros(len(frame), dtype=int)
    for r, front in enumerate(non_dominated_fronts(oriented), 1):
        rank[front] = r
    frame = frame.copy()
    for j, (name, _) in enumerate(objectives):
        column = values[:, j]
        whole = np.isfinite(column).all() and (column == np.round(column)).all()
        frame[name] = column.astype(np.int64) if whole else column  # params stay integers
    frame["pareto_rank"] = rank
    order = pareto_order(oriented) if len(frame) else []
    frame = frame.iloc[order].reset_index(drop=True)
    frame.attrs.update(attrs, objectives=[list(o) for o in objectives])
    return frame


def plot_front(frame: Any, objectives: Sequence[Sequence[str]], path: str) -> str:
    """Draw a multi-objective ``results_``: every arm, coloured by its rung, and the front.

    One panel per objective after the first (x) against the first (y); arms are
    coloured by the epochs they trained (the rung they reached), the front
    (``pareto_rank == 1``) is ringed, and each panel's own two-objective front is
    drawn as a step line. Saved to ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = objectives[0][0]
    others = [tuple(o) for o in objectives[1:]]
    fig, axes = plt.subplots(1, len(others), figsize=(6 * len(others), 4.5), squeeze=False)
    front = frame[frame["pareto_rank"] == 1]
    for ax, (name, _direction) in zip(axes[0], others):
        points = ax.scatter(
            frame[name], frame[first], c=frame["epochs"], cmap="viridis", s=18, zorder=2
        )
        # the trade-off of this pair alone, as a step line
        from bandit_tune.policies.pareto import non_dominated_fronts

        signs = [sign(objectives[0][1]), sign(_direction)]
        pair = frame[[first, name]].to_numpy(dtype=float) * signs
        pair_front = frame.iloc[non_dominated_fronts([tuple(p) for p in pair])[0]]
        ordered = pair_front.sort_values(name)
        ax.step(
            ordered[name], ordered[first], where="post", color="tab:red", linewidth=1.0, zorder=3
        )
        ax.scatter(
            front[name],
            front[first],
            s=60,
            facecolors="none",
            edgecolors="tab:red",
            zorder=4,
            label=f"Pareto front ({len(front)} arms)",
        )
        ax.set_xlabel(name)
        ax.set_ylabel(first)
        if name in ("params", "latency_ms") and (frame[name] > 0).all():
            ax.set_xscale("log")
        ax.legend(loc="lower right", fontsize=8)
        fig.colorbar(points, ax=ax, label="epochs trained (rung reached)")
    fig.suptitle(f"{len(frame)} arms; front over {', '.join(o[0] for o in objectives)}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
