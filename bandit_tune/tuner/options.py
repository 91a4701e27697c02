"""The tuner's arguments: checked once, with errors that name the value and the way out.

:func:`check_options` takes what ``BanditTuner(...)`` was given and returns the
attributes the tuner keeps (the policy planned for a budget, the hypermodel
wrapped for keras-tuner's overrides). Every check of a number lives in
:mod:`bandit_tune.driver.checks`, shared with ``run_arms`` and the replays.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from bandit_tune import policies
from bandit_tune.driver.checks import devices as resource_share
from bandit_tune.driver.checks import flag, integer
from bandit_tune.policies.base import check_policy
from bandit_tune.policies.registry import policy_by_name
from bandit_tune.space import HyperParameters, SearchSpace

#: keras-tuner arguments the tuner does not take, with the way instead.
NOT_SUPPORTED = {
    "oracle": "the search's arms come from the tuner class (RandomSearch, GridSearch, "
    "BayesianOptimization, Hyperband) and its policy=",
    "hypermodel_kwargs": "pass a HyperModel instance or a build_model function",
}


def refuse_unsupported(tuner: str, kwargs: dict[str, Any]) -> None:
    """Raise for keyword arguments the tuner does not take, naming the way instead."""
    lines = [
        f"{name}: not supported; instead {NOT_SUPPORTED[name]}"
        for name in sorted(kwargs)
        if name in NOT_SUPPORTED
    ]
    unknown = sorted(name for name in kwargs if name not in NOT_SUPPORTED)
    if unknown:
        lines.append(
            f"unexpected arguments {unknown} (see docs/migrating-from-keras-tuner.md for the "
            "keras-tuner arguments bandit_tune takes)"
        )
    raise TypeError(f"{tuner}: " + "; ".join(lines))


def fits(total: float, share: float) -> int:
    """How many arms of ``share`` fit in ``total`` (as Ray counts: in 1/10,000ths).

    >>> fits(2, 0.5), fits(1, 0.3)
    (4, 3)
    """
    return int(round(float(total) * 10_000)) // max(1, int(round(share * 10_000)))


def slots(resources: dict[str, Any], max_concurrent: int | None, cpus: float, gpus: float) -> int:
    """Arms that train at once: ``max_concurrent``, else what the resources allow."""
    count = max_concurrent or max(1, fits(resources.get("CPU", 1), cpus))
    if gpus:
        count = min(count, fits(resources.get("GPU", 0), gpus) or 1)
    return int(count)


def check_population(policy: Any, max_trials: int | None, max_epochs: int) -> None:
    """Refuse, before any training, a population-based policy the search cannot run."""
    name = type(policy).__name__
    population = getattr(policy, "population_size", None)
    if population is not None and max_trials is not None and population > max_trials:
        raise ValueError(
            f"{name}(population_size={population}) is larger than max_trials={max_trials}: "
            f"the population would never be complete; pass max_trials={population} (or "
            "leave it out) or a smaller population_size"
        )
    max_t = getattr(policy, "max_t", None)
    if max_t is not None and max_t != max_epochs:
        raise ValueError(
            f"{name}(max_t={max_t}) trains each arm {max_t} epochs but the tuner's "
            f"max_epochs={max_epochs}; pass max_epochs={max_t}"
        )


def prepare_population(policy: Any, space: SearchSpace) -> None:
    """Give a population-based policy its mutations' ranges; try its explore step once."""
    with_space = getattr(policy, "with_space", None)
    if callable(with_space):
        with_space(space.params)
    explore = getattr(policy, "explore", None)
    if callable(explore):
        config = space.defaults()
        try:
            explore(config, np.random.default_rng(0))
        except ValueError as exc:
            name = type(policy).__name__
            raise ValueError(f"{name}: {exc} (tried before any training)") from None


def _refuse_keras_tuner_services(logger: Any, distribution_strategy: Any) -> None:
    if logger is not None:
        raise ValueError(
            "logger (keras-tuner's cloud logger) is not supported: the results are in "
            "tuner.results_ and in the project folder (state.json, arms.json), each arm's "
            "metrics in Ray Tune's result files; pass logger=None"
        )
    if distribution_strategy is not None:
        raise ValueError(
            "distribution_strategy (one model over several devices) is not supported: "
            "bandit_tune trains arms in parallel on Ray workers instead; give each arm "
            "devices with cpus_per_arm/gpus_per_arm, and join a cluster with address="
        )


def _check_declarations(
    hyperparameters: Any, tune_new_entries: Any, allow_new_entries: Any, metrics: Any
) -> None:
    flag("tune_new_entries", tune_new_entries)
    flag("allow_new_entries", allow_new_entries)
    if hyperparameters is not None and not isinstance(hyperparameters, HyperParameters):
        raise TypeError(
            "hyperparameters must be a bandit_tune.HyperParameters (declare the parameters "
            f"on it: hp.Fixed(...), hp.Choice(...)), got {type(hyperparameters).__name__}"
        )
    if (hyperparameters is None or not hyperparameters.space) and (
        not tune_new_entries or not allow_new_entries
    ):
        raise ValueError(
            "tune_new_entries=False / allow_new_entries=False restrict the parameters "
            "beyond those declared in hyperparameters=, but no hyperparameters were "
            "declared: pass hyperparameters=hp with its declarations"
        )
    listed = isinstance(metrics, (list, tuple, str)) or callable(metrics)
    if metrics is not None and not listed:
        raise ValueError(f"metrics must be a list of metrics, got {metrics!r}")


def wrap_hypermodel(
    hypermodel: Any, run_trial_owner: type | None, hyperparameters: Any, overrides: dict[str, Any]
) -> Any:
    """The hypermodel with keras-tuner's per-search overrides applied when building.

    ``run_trial_owner``: a tuner class that overrides ``run_trial`` (it then runs in
    the arm's worker). ``overrides``: ``tune_new_entries``, ``allow_new_entries``,
    ``optimizer``, ``loss``, ``metrics`` and ``max_model_size``.
    """
    from bandit_tune.arm.hypermodel import RunTrialHyperModel, TunerHyperModel, as_hypermodel

    model = as_hypermodel(hypermodel)
    if run_trial_owner is not None:
        model = RunTrialHyperModel(model, run_trial_owner)
    built = ("optimizer", "loss", "metrics", "max_model_size")
    if hyperparameters is not None or any(overrides[k] is not None for k in built):
        model = TunerHyperModel(
            model,
            hyperparameters.copy() if hyperparameters is not None else None,
            overrides["tune_new_entries"],
            overrides["allow_new_entries"],
            *(overrides[k] for k in built),
        )
    return model


def _check_limits(
    budget: Any, max_total_epochs: Any, max_epochs: int, target_score: Any
) -> float | None:
    from bandit_tune.driver.budget import parse_budget

    seconds = None if budget is None else parse_budget(budget)
    if seconds is not None and seconds < 10:
        raise ValueError(
            f"budget={budget!r} is too small: starting Ray alone takes ~5 s; give at least 10 s"
        )
    if max_total_epochs is not None and (
        isinstance(max_total_epochs, bool)
        or not isinstance(max_total_epochs, int)
        or max_total_epochs < max_epochs
    ):
        raise ValueError(
            f"max_total_epochs must be an integer >= max_epochs={max_epochs} (one arm "
            f"trained to the end), got {max_total_epochs!r}"
        )
    if target_score is not None and (
        isinstance(target_score, bool)
        or not isinstance(target_score, (int, float))
        or not math.isfinite(target_score)
    ):
        raise ValueError(f"target_score must be a finite number, got {target_score!r}")
    return seconds


def _check_backend(backend: Any, fixed_sample: bool, storage_path: Any, tuner: str) -> None:
    if backend not in ("tune", "pool"):
        raise ValueError(f"backend must be 'tune' or 'pool', got {backend!r}")
    if backend == "pool" and not fixed_sample:
        raise ValueError(
            f"backend='pool' runs arms from a sample fixed before the search; "
            f"{tuner} proposes each arm from the results so far: use backend='tune'"
        )
    if backend == "pool" and storage_path is not None:
        raise ValueError(
            "storage_path is Ray Tune's; backend='pool' keeps checkpoints in "
            "directory/project_name (shared by the nodes of a cluster)"
        )


def plan_policy(
    policy: Any,
    objectives: list[Any],
    max_epochs: int,
    max_trials: int | None,
    seconds: float | None,
    max_total_epochs: int | None,
    passes: int,
) -> Any:
    """The policy checked against the search, planned for its budget when it plans brackets."""
    if isinstance(policy, str):
        policy = policy_by_name(policy, max_epochs)
    if policy is None:
        return None
    if len(objectives) > 1 and not getattr(policy, "multi_objective", False):
        raise ValueError(
            f"{type(policy).__name__} is a single-objective policy and objective= "
            f"names {len(objectives)} objectives; use a multi-objective policy "
            "(bandit_tune.policies.MOHyperband, MOASHA, MOSuccessiveHalving) or one "
            "objective"
        )
    check_policy(policy)
    if getattr(policy, "mutable_keys", None) is not None:
        check_population(policy, max_trials, max_epochs)
    if (
        isinstance(policy, policies.Hyperband)
        and policy.cycle
        and (seconds is not None or max_total_epochs is not None)
    ):
        # whole brackets that fit; a wall-clock budget re-plans from measured epoch times
        # (the same kind and settings: MOHyperband keeps its ordering)
        policy = policy.planned_for(max_total_epochs or policy.budget * passes)
    return policy


def check_options(
    tuner: str,
    run_trial_owner: type | None,
    fixed_sample: bool,
    passes: int,
    arguments: dict[str, Any],
) -> dict[str, Any]:
    """The tuner's attributes from the constructor's ``arguments``, each checked.

    Args:
        tuner: the tuner class's name (for messages).
        run_trial_owner: the tuner class when it overrides ``run_trial``, else ``None``.
        fixed_sample: whether the tuner's arms are a sample fixed before the search
            (``backend="pool"`` takes only those).
        passes: Hyperband's ``hyperband_iterations`` (1 for other tuners).
        arguments: the constructor's arguments by name (``kwargs`` the unknown ones).
    """
    from bandit_tune.driver.project import check_project_name
    from bandit_tune.objective import objectives_of

    a = arguments
    _refuse_keras_tuner_services(a["logger"], a["distribution_strategy"])
    if a["kwargs"]:
        refuse_unsupported(tuner, a["kwargs"])
    if a["tuner_id"] is not None and not isinstance(a["tuner_id"], str):
        raise ValueError(f"tuner_id must be a string, got {a['tuner_id']!r}")
    _check_declarations(
        a["hyperparameters"], a["tune_new_entries"], a["allow_new_entries"], a["metrics"]
    )
    objectives = objectives_of(a["objective"])
    max_epochs = integer("max_epochs", a["max_epochs"])
    max_trials = integer("max_trials", a["max_trials"], optional=True)
    _check_backend(a["backend"], fixed_sample, a["storage_path"], tuner)
    seconds = _check_limits(a["budget"], a["max_total_epochs"], max_epochs, a["target_score"])
    overrides = {
        k: a[k]
        for k in ("tune_new_entries", "allow_new_entries", "optimizer", "loss", "metrics")
    }
    overrides["max_model_size"] = integer("max_model_size", a["max_model_size"], optional=True)
    return {
        "tuner_id": a["tuner_id"] or "tuner0",
        "max_consecutive_failed_trials": integer(
            "max_consecutive_failed_trials", a["max_consecutive_failed_trials"], optional=True
        ),
        "max_model_size": overrides["max_model_size"],
        "executions_per_trial": integer("executions_per_trial", a["executions_per_trial"]),
        **{k: overrides[k] for k in ("tune_new_entries", "allow_new_entries")},
        **{k: overrides[k] for k in ("optimizer", "loss", "metrics")},
        "hypermodel": wrap_hypermodel(
            a["hypermodel"], run_trial_owner, a["hyperparameters"], overrides
        ),
        "objectives": objectives,
        "objective": objectives[0],
        "max_epochs": max_epochs,
        "max_trials": max_trials,
        "seed": a["seed"],
        "directory": os.path.abspath(a["directory"] or "bandit_tune_results"),
        "project_name": check_project_name(
            "untitled_project" if a["project_name"] is None else a["project_name"]
        ),
        **_run_settings(a),
        "budget": seconds,
        "policy": plan_policy(
            a["policy"],
            objectives,
            max_epochs,
            max_trials,
            seconds,
            a["max_total_epochs"],
            passes,
        ),
    }


def _run_settings(a: dict[str, Any]) -> dict[str, Any]:
    """The arguments that say where and how arms run, checked."""
    kept = (
        "overwrite",
        "backend",
        "max_concurrent",
        "address",
        "max_retries_per_trial",
        "verbose",
        "hyperparameters",
        "max_total_epochs",
        "target_score",
        "storage_path",
    )
    return {
        **{k: a[k] for k in kept},
        "cpus_per_arm": resource_share("cpus_per_arm", a["cpus_per_arm"], zero=False),
        "gpus_per_arm": resource_share("gpus_per_arm", a["gpus_per_arm"], zero=True),
        "fast_input": flag("fast_input", a["fast_input"]),
    }
