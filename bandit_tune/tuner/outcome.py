"""What a search leaves: ``results_`` and the best arm, arms.json, a reloaded search, summaries.

Functions of explicit arguments that the tuner calls after (or instead of) a
run: :func:`table` and :func:`best` build the attributes a finished search sets,
from the runner's arm table; :func:`from_state` reads them back from a saved
snapshot; :func:`save_arms` writes ``arms.json``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from bandit_tune.driver.project import ARMS_FILE, write_json
from bandit_tune.objective import Objective, sign
from bandit_tune.space import HyperParameters, SearchSpace, _plain


class SavedSearch:
    """A saved search's arm records where the result table reads a scheduler's."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.arm_of: dict[str, str] = {}


def table(
    scheduler: Any,
    result_grid: Any,
    objectives: list[Objective],
    space: SearchSpace,
    max_epochs: int,
    steps: Sequence[int] | None,
    errors: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``results_`` (one row per arm, best first) and each arm's history, by attribute name."""
    from bandit_tune.tuner.results import add_pareto, arm_table

    objective = objectives[0]
    pair = (objective.name, objective.direction)
    results, histories = arm_table(
        scheduler, result_grid, pair, list(space.params), max_epochs, steps, errors=errors
    )
    if len(objectives) > 1:
        results = add_pareto(results, histories, [(o.name, o.direction) for o in objectives])
    for param in space:
        if param.kind == "fixed" and len(results):
            # a model-based searcher proposes only what varies: the constant is here too
            results[param.name] = [param.default] * len(results)
    return {"results_": results, "_histories": histories}


def best(
    results: Any,
    histories: dict[str, Any],
    runner: Any,
    objectives: list[Objective],
    space: SearchSpace,
    n_splits: int,
    stop_reason: str | None,
    project_dir: str,
    validation_labels: Any = None,
) -> dict[str, Any]:
    """The best arm and the per-split table (``best_params_``, ``cv_results_``...) by name.

    Raises ``RuntimeError`` naming the cause when no arm reported a finite objective.
    """
    from bandit_tune.tuner.results import cv_table

    objective = objectives[0]
    names = list(space.params)
    valid = results["best_score"].notna()
    _refuse_nothing_scored(results, valid, objective.name, stop_reason, project_dir)
    flag_chance(results, objective.name, validation_labels)
    best_index = int(results.index[valid][0])
    row = results.loc[best_index]
    pair = (objective.name, objective.direction)
    out: dict[str, Any] = {
        "cv_results_": cv_table(results, histories, pair, names, n_splits),
        "best_index_": best_index,
        "best_params_": {k: _plain(row[k]) for k in names},
        "best_score_": float(row["best_score"]),
    }
    if "schedule" in results:
        import pandas as pd

        from bandit_tune.driver.lineage import lineage_rows

        rows = lineage_rows({a.arm_id: a.to_json() for a in runner.arms})
        columns = ["order", "arm_id", "left_at", "donor", "donor_step"]
        # population-based training: every exploit (who copied whom, when, old and new
        # values), and the best arm's schedule (the values its model trained with)
        out["lineage_"] = pd.DataFrame(rows, columns=None if rows else columns)
        out["best_schedule_"] = list(row["schedule"])
    return out


def _refuse_nothing_scored(
    results: Any, valid: Any, name: str, reason: str | None, project_dir: str
) -> None:
    if not valid.any() and reason is not None and not results["epochs"].any():
        raise RuntimeError(
            f"the search stopped ({reason}) before any arm reported a "
            f"{name!r}: nothing was trained. Give a larger budget (starting "
            f"Ray and TensorFlow's first models takes 10-20 s on a small machine); "
            f"the project is in {project_dir}"
        )
    if not valid.any():
        errors = [e.strip() for e in results["error"] if isinstance(e, str) and e.strip()]
        cause = ""
        if errors:
            # the last line of a traceback names the error (e.g. an import that fails
            # in the workers): show it rather than only pointing at results_
            from bandit_tune.driver.arms import error_line

            cause = f" ({len(errors)} arm(s) failed; the first with: {error_line(errors[0])})"
        raise RuntimeError(
            f"no arm reported a finite {name!r}{cause}; see results_['error'] and {project_dir}"
        )


def flag_chance(results: Any, objective: str, labels: Any) -> None:
    """Mark arms whose accuracy stayed at chance; warn when every arm did."""
    from bandit_tune.tuner.results import chance_level, mark_chance

    chance = chance_level(objective, labels)
    if mark_chance(results, chance):
        warnings.warn(
            f"every arm's {objective} stayed at chance (<= {chance:.3f}, the share "
            "of the most common class): the models learned nothing, whatever the "
            "hyperparameters. Check the data: NaN or unscaled features, labels shuffled "
            "apart from x, a wrong loss",
            UserWarning,
            stacklevel=4,
        )


def warn_if_budget_too_small(results: Any, limits: Any, max_epochs: int) -> None:
    """Warn when a wall-clock budget ended the search before any arm reached ``max_epochs``."""
    if limits.reason is None or limits.seconds is None:
        return
    reached = int(results["epochs"].max()) if len(results) else 0
    if reached < max_epochs:
        warnings.warn(
            f"the budget of {limits.seconds:g} s fit only "
            f"{int(results['epochs'].sum())} epochs and no arm reached "
            f"max_epochs={max_epochs} (the best trained {reached}): the best arm is "
            "barely trained. Give a larger budget, or a smaller max_epochs",
            UserWarning,
            stacklevel=3,
        )


def save_arms(project_dir: str, objective: Objective, scheduler: Any) -> None:
    """Write every arm's reported results and decisions to ``project_dir/arms.json``.

    Kept by the driver itself, so it is complete even when Ray's own result
    files lag behind (a fault, a resumed trial).
    """
    os.makedirs(project_dir, mode=0o700, exist_ok=True)
    payload = {
        "objective": [objective.name, objective.direction],
        "results": scheduler.results,
        "decisions": scheduler.history,
        "policy": scheduler.policy.state_dict(),
        "rungs": list(scheduler.policy.decision_steps() or []),
    }
    write_json(os.path.join(project_dir, ARMS_FILE), payload)


def from_state(
    state: dict[str, Any], objectives: list[Objective], project_dir: str
) -> tuple[SearchSpace, SavedSearch, int, int | None]:
    """A saved search's ``(space, arm records, n_splits, max_epochs)``, checked against ours.

    ``max_epochs`` is ``None`` in a snapshot of an older version that did not keep it.
    """
    from bandit_tune.driver.arms import ArmTable
    from bandit_tune.driver.runner import Runner
    from bandit_tune.policies.registry import TrainToEnd
    from bandit_tune.space import deserialize

    extra = state.get("extra", {})
    if "space" not in extra:
        raise ValueError(
            f"the search in {project_dir} was saved by an older bandit_tune without "
            "its search space; run it again (overwrite=True) to reload it later"
        )
    objective = objectives[0]
    name, direction = (state.get("metric") or [None, None])[:2]
    mine: Any = objective.direction
    if len(objectives) > 1:
        mine = [o.direction for o in objectives]
    if name is not None and (name, direction) != (objective.name, mine):
        raise ValueError(
            f"the search in {project_dir} was run with objective {name!r} "
            f"({direction}), this tuner has {objective.name!r} "
            f"({objective.direction}); build the tuner with the same objective"
        )
    space = SearchSpace({p.name: p for p in map(deserialize, extra["space"])})
    runner = Runner(TrainToEnd(), mode=objective.direction)
    runner.root = project_dir
    runner.arms = ArmTable.from_json(state, paused_order=state.get("paused"), root=project_dir)
    max_epochs = extra.get("max_epochs")
    n_splits = int(extra.get("n_splits", 1))
    return space, SavedSearch(runner), n_splits, None if max_epochs is None else int(max_epochs)


def arm_hyperparameters(space: SearchSpace, given: Any, row: Any) -> HyperParameters:
    """An arm's :class:`HyperParameters`: the space (and ``given``), the arm's active values."""
    hp = HyperParameters()
    hp.merge(list(space), overwrite=False)
    if isinstance(given, HyperParameters):
        hp.merge(given, overwrite=False)
    values = {}
    for name in space.params:
        value = _plain(row[name]) if name in row else None
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            values[name] = value
    hp.values = values
    hp.values = {k: v for k, v in values.items() if hp.is_active(k)}
    return hp


def hypervolume(
    results: Any, front: Any, objectives: list[Objective], reference: Sequence[float] | None
) -> float:
    """The hypervolume of ``front`` (rows of ``results``) against ``reference`` (see the tuner)."""
    from bandit_tune.policies.pareto import hypervolume as volume

    names = [o.name for o in objectives]
    signs = np.array([sign(o.direction) for o in objectives])
    values = results[names].to_numpy(dtype=float) * signs
    values = values[np.isfinite(values).all(axis=1)]
    if reference is None:
        ref = values.min(axis=0) if len(values) else np.zeros(len(names))
    else:
        if len(reference) != len(names):
            raise ValueError(
                f"reference needs one value per objective ({len(names)}: {names}), "
                f"got {list(reference)}"
            )
        ref = np.asarray(reference, dtype=float) * signs
    return volume(front[names].to_numpy(dtype=float) * signs, ref)


def print_summary(
    results: Any, objective: Objective, space: SearchSpace, project_dir: str, num_trials: int
) -> None:
    """Print the best arms as keras-tuner does, plus epochs, status and diagnosis."""
    print("Results summary")
    print(f"Results in {project_dir}")
    print(f"Showing {min(num_trials, len(results))} best trials")
    print(f'Objective(name="{objective.name}", direction="{objective.direction}")')
    for _, row in results.head(num_trials).iterrows():
        print(f"\nTrial {row['arm_id']} summary\nHyperparameters:")
        for k in space.params:
            print(f"{k}: {_plain(row[k])}")
        print(f"Score: {row['best_score']}")
        print(f"Epochs: {row['epochs']} ({row['status']})")
        if isinstance(row.get("error"), str) and row["error"].strip():
            from bandit_tune.driver.arms import error_line

            print(f"Error: {error_line(row['error'])}")
        if row["diagnosis"] == "chance":
            print("Diagnosis: chance (no better than always answering the most common class)")
        if row["diagnosis"] in ("overfit", "underfit"):
            train = objective.name.removeprefix("val_")
            print(
                f"Diagnosis: {row['diagnosis']} (train {train} {row['train_score']:.4f} vs "
                f"{objective.name} {row['best_score']:.4f}, gap {row['gap']:+.4f})"
            )


def ordered(results: Any, preference: Any = None) -> Any:
    """``results`` as they rank, or by ``preference(row)`` (higher first) when given."""
    if preference is None:
        return results
    if not callable(preference):
        raise TypeError("preference must be a function of a results_ row")
    order = sorted(range(len(results)), key=lambda i: -float(preference(results.iloc[i])))
    return results.iloc[order]


def best_models(rows: Any, build: Any, hyperparameters: Any) -> list[Any]:
    """Each row's model, built by ``build(hyperparameters(row))`` and restored from its checkpoint.

    The weights are those of the epoch its ``best_score`` was reached at (keras-tuner's
    behaviour), read from the checkpoint; nothing is retrained.
    """
    from bandit_tune.arm.checkpoints import load_model

    models = []
    for _, row in rows.iterrows():
        checkpoint = row["checkpoint"]
        if checkpoint is None or (isinstance(checkpoint, float) and math.isnan(checkpoint)):
            raise RuntimeError(f"arm {row['arm_id']} has no checkpoint to restore")
        models.append(load_model(build, hyperparameters(row), str(checkpoint)))
    return models
