"""Arms multiplexed over long-lived Ray workers: many short arms without a trial each.

Through Ray Tune every arm segment is a trial: started, reported, paused and
resumed by Ray Tune's controller, often in a new worker process. With thousands
of arms that live one to three epochs each, that bookkeeping, not training,
decides the speed. :func:`run_arms` keeps one Ray actor per slot alive for the
whole search, and for every search of the process after it, and moves arms
between them itself: an arm is an object of the user's class, stepped one epoch
per call; a paused arm stays in its worker's memory (and on disk) so resuming it
there costs nothing, and elsewhere it is loaded from its checkpoint. The same
:class:`~bandit_tune.driver.Runner` as in replay and under
:class:`~bandit_tune.BanditScheduler` decides, so every policy runs unchanged.

The arm class has the methods of Ray Tune's class API (a ``ray.tune.Trainable``
subclass works as it is; so does any class with these methods)::

    class Curve:
        def setup(self, config):           # build the model from the configuration
            self.config, self.epoch = config, 0
        def step(self):                    # train one epoch; return its metrics
            self.epoch += 1
            return {"score": 1 - 1 / (self.epoch * self.config["lr"] + 1)}
        def save_checkpoint(self, checkpoint_dir):
            with open(os.path.join(checkpoint_dir, "epoch"), "w") as f:
                f.write(str(self.epoch))
        def load_checkpoint(self, checkpoint_dir):
            with open(os.path.join(checkpoint_dir, "epoch")) as f:
                self.epoch = int(f.read())

    result = run_arms(Curve, [{"lr": lr} for lr in (0.1, 0.3, 1.0)],
                      ASHA(max_t=9, eta=3), metric="score")
    result.best_config

A function works too, written as for Ray Tune but reporting through this
module (``tune.report`` and ``tune.get_checkpoint`` become :func:`report` and
:func:`get_checkpoint`): it runs in a thread of the worker, and a paused arm is
that thread waiting inside ``report``::

    def train(config):
        start = get_checkpoint()           # a folder, or None
        ...
        for epoch in range(first, 100):
            ...
            report({"score": score}, checkpoint=folder)   # copied before it returns

``step`` (or a report) may return ``"done": True`` to end the arm. Checkpoints are written
when an arm pauses (into ``directory/project_name/arms/<arm>/``); a search run
again with the same project resumes where a killed or interrupted one stopped.
On a multi-node cluster the directory must be shared by the nodes (as Ray
Tune's ``storage_path`` must), so an arm paused on one node can resume on
another.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bandit_tune.driver.checks import devices, integer, number
from bandit_tune.driver.project import open_project
from bandit_tune.driver.runner import Runner, check_directions
from bandit_tune.policies.base import ArmPolicy
from bandit_tune.pool.lifecycle import (
    IDLE_TIMEOUT_S,
    keep_idle,
    shutdown_pool,
    start_workers,
    warm_worker,
)
from bandit_tune.pool.search import PoolResult, PoolSearch
from bandit_tune.pool.worker import (
    ArmWorker,
    FunctionArm,
    _check_trainable,
    current_arm,
    get_checkpoint,
    latest_checkpoint,
    report,
)

__all__ = [
    "IDLE_TIMEOUT_S",
    "ArmWorker",
    "FunctionArm",
    "PoolResult",
    "PoolSearch",
    "current_arm",
    "get_checkpoint",
    "keep_idle",
    "latest_checkpoint",
    "report",
    "run_arms",
    "shutdown_pool",
    "start_workers",
    "warm_worker",
]


def _check_configs(configs: Any) -> list[dict[str, Any]]:
    if isinstance(configs, (str, bytes, dict)) or not isinstance(configs, Sequence):
        raise TypeError(
            f"configs must be a list of configuration dicts, got {type(configs).__name__}"
        )
    configs = list(configs)
    bad = next((i for i, c in enumerate(configs) if not isinstance(c, dict)), None)
    if not configs or bad is not None:
        raise ValueError(
            "configs must be a non-empty list of dicts"
            + (f"; item {bad} is a {type(configs[bad]).__name__}" if bad is not None else "")
        )
    return configs


def _check_metrics(policy: ArmPolicy, metric: Any, mode: Any) -> tuple[list[str], Any]:
    """``(metrics, modes)``: one direction per metric, that the policy takes."""
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ValueError(f"metric must be a metric name (or several), got {metric!r}")
    modes: Any = mode if isinstance(mode, str) else list(mode)
    if len(metrics) > 1 and (isinstance(modes, str) or len(modes) != len(metrics)):
        raise ValueError(f"give one mode per metric ({len(metrics)}), got {mode!r}")
    check_directions(policy, modes)
    return metrics, modes


def run_arms(
    trainable: type,
    configs: Sequence[dict[str, Any]],
    policy: ArmPolicy,
    *,
    metric: str | Sequence[str],
    mode: str | Sequence[str] = "max",
    cpus_per_arm: float = 1.0,
    gpus_per_arm: float = 0.0,
    max_concurrent: int | None = None,
    directory: str = "bandit_tune_results",
    project_name: str = "arms",
    overwrite: bool = False,
    max_failures: int = 1,
    keep_paused: int = 4,
    max_total_epochs: int | None = None,
    budget: str | float | None = None,
    address: str | None = None,
    parameters: dict[str, Any] | None = None,
    idle_timeout: float | None = IDLE_TIMEOUT_S,
) -> PoolResult:
    """Run ``configs`` as arms of ``policy`` on long-lived Ray workers; return the best.

    Args:
        trainable: the arm class (see the module: ``setup``, ``step``,
            ``save_checkpoint``, ``load_checkpoint``; a ``ray.tune.Trainable``
            subclass works).
        configs: the configurations, in the order new arms take them.
        policy: any :class:`~bandit_tune.policies.ArmPolicy`.
        metric: the metric ``step()`` returns that the policy judges (several for
            a multi-objective policy).
        mode: ``"max"`` or ``"min"`` (one per metric).
        cpus_per_arm: CPUs each worker reserves (fractions pack several on a CPU).
        gpus_per_arm: GPUs each worker reserves (fractions share a GPU).
        max_concurrent: workers (slots); default: as many as the resources fit.
        directory: where the project folder goes.
        project_name: the project folder's name (state and checkpoints).
        overwrite: start afresh instead of resuming the project's unfinished
            search (or reloading its finished one).
        max_failures: times an arm is placed again after its step raised or its
            worker died (a lost worker: at least 3 times); then it ends with its
            error recorded.
        keep_paused: paused arms a worker keeps in memory (older ones are dropped
            there and load from their checkpoint when resumed).
        idle_timeout: seconds the workers stay, idle, after the call for a next
            search of the process (it then starts at once); then they end and free
            their CPUs and GPUs for other Ray work. ``None``: kept until
            :func:`shutdown_pool`.
        max_total_epochs: stop once this many epochs were trained.
        budget: a wall-clock limit (``"90s"``, ``"10m"`` or seconds).
        address: a Ray cluster to join (default: a local Ray on 127.0.0.1).
        parameters: large objects every arm needs (the training data): put into
            Ray's object store once, fetched once per worker and passed to
            ``setup(config, **parameters)`` (Ray Tune's ``tune.with_parameters``).

    Raises:
        TypeError, ValueError: a bad argument, before anything starts.
        RuntimeError: every one of the first arms failed (the first error is shown).
        KeyboardInterrupt: after saving the state; run the same call to resume.
    """
    _check_trainable(trainable, parameters if isinstance(parameters, dict) else {})
    configs = _check_configs(configs)
    metrics, modes = _check_metrics(policy, metric, mode)
    _check_settings(cpus_per_arm, gpus_per_arm, max_concurrent, max_total_epochs)
    _check_keeping(max_failures, keep_paused, idle_timeout, parameters)
    runner = Runner(policy, mode=modes, metric=metrics[0], budget=_limits(budget, max_total_epochs))
    project, saved = open_project(directory, project_name, overwrite, keep_apart=False)
    with project:
        search = PoolSearch(
            trainable, configs, runner, metrics, float(cpus_per_arm), float(gpus_per_arm),
            max_concurrent, project.path, max_failures, keep_paused,
        )
        runner.extra_state = search.extra_state
        search.idle_timeout, search.parameters = idle_timeout, dict(parameters or {})
        if saved is not None:
            search.restore(saved)
            if saved.get("extra", {}).get("finished"):
                return search.result(0.0)
        return search.run(address)


def _check_settings(
    cpus_per_arm: Any, gpus_per_arm: Any, max_concurrent: Any, max_total_epochs: Any
) -> None:
    devices("cpus_per_arm", cpus_per_arm, zero=False)
    devices("gpus_per_arm", gpus_per_arm, zero=True)
    integer("max_concurrent", max_concurrent, optional=True)
    integer("max_total_epochs", max_total_epochs, optional=True)


def _check_keeping(max_failures: Any, keep_paused: Any, idle_timeout: Any, parameters: Any) -> None:
    integer("max_failures", max_failures, minimum=0)
    integer("keep_paused", keep_paused, minimum=0)
    number("idle_timeout", idle_timeout, optional=True)
    if parameters is not None and (
        not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters)
    ):
        raise TypeError(
            f"parameters must be a dict of keyword arguments for setup, got {parameters!r:.80}"
        )


def _limits(budget: Any, max_total_epochs: int | None) -> Any:
    """The search's budget (``None`` without a limit), its clock started now."""
    from bandit_tune.driver.budget import Budget, parse_budget

    seconds = None if budget is None else parse_budget(budget)
    if seconds is None and max_total_epochs is None:
        return None
    return Budget(
        seconds=seconds, max_total_epochs=max_total_epochs, started=time.monotonic(),
        clock=time.monotonic,
    )
