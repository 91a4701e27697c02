"""Replay recorded learning curves on a real Ray Tune, through :class:`BanditScheduler`.

The Ray twin of :func:`bandit_tune.replay.simulate`: each arm is a Ray trial that
reports its recorded curve one epoch at a time, with a checkpoint so it can be
paused and resumed. With one worker both give the same decisions for the same
policy and curves — which is how a policy tried in replay is trusted on Ray.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bandit_tune.policies.base import ArmPolicy

if TYPE_CHECKING:
    from bandit_tune.ray_tune.scheduler import BanditScheduler


def replay_trainable(
    config: dict[str, Any],
    curves: Any,
    seconds: Any = None,
    checkpoint_epochs: list[int] | None = None,
    before_report: Callable[[int, int], None] | None = None,
) -> None:
    """Ray function trainable: report ``curves[config["_arm"]]`` epoch by epoch, resumably.

    Each report carries the epoch's recorded seconds as ``time_this_iter_s`` (when
    ``seconds`` is given), which a recorded-clock budget counts. A checkpoint goes
    with the epochs in ``checkpoint_epochs`` (the policy's decision steps, where an
    arm may pause) and the last; ``None``: every epoch. ``before_report(arm, epoch)``,
    if given, is called in the worker before each report (it may block, e.g. to
    order the reports of several workers).
    """
    from ray import tune

    arm = int(config["_arm"])
    row = np.asarray(curves)[arm]
    times = None if seconds is None else np.asarray(seconds, dtype=float)[arm]
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            with open(os.path.join(directory, "replay.json")) as f:
                start = int(json.load(f)["epoch"])
    for epoch in range(start + 1, len(row) + 1):
        if before_report is not None:
            before_report(arm, epoch)
        report_only = checkpoint_epochs is not None and epoch not in checkpoint_epochs
        if report_only and epoch != len(row):
            report = {"score": float(row[epoch - 1]), "epoch": epoch, "arm": arm}
            if times is not None:
                report["time_this_iter_s"] = float(times[epoch - 1])
            tune.report(report)
            continue
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "replay.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            report = {"score": float(row[epoch - 1]), "epoch": epoch, "arm": arm}
            if times is not None:
                report["time_this_iter_s"] = float(times[epoch - 1])
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))


def _record_decisions(scheduler: Any) -> list[tuple[str, int, float, str]]:
    """A list the scheduler's decisions go into, arms named as the simulator names them."""
    decisions: list[tuple[str, int, float, str]] = []
    arm_of: dict[str, int] = {}

    def record(arm_id: str, step: int, score: float, decision: str) -> None:
        decisions.append((f"arm_{arm_of[arm_id]:05d}", step, score, decision))

    scheduler.listeners.append(record)
    original_add = scheduler.on_trial_add

    def on_trial_add(tune_controller: Any, trial: Any) -> None:
        arm_of[trial.trial_id] = int(trial.config["_arm"])
        original_add(tune_controller, trial)

    scheduler.on_trial_add = on_trial_add
    return decisions


def _replay_scheduler(
    policy: ArmPolicy, n_workers: Any, max_total_epochs: int | None, time_budget: float | None
) -> Any:
    """The scheduler of a replay: ``n_workers`` slots, budgets on the recorded clock."""
    from bandit_tune.driver.budget import Budget
    from bandit_tune.driver.checks import integer
    from bandit_tune.driver.runner import RecordedClock
    from bandit_tune.ray_tune.scheduler import BanditScheduler

    integer("n_workers", n_workers)
    scheduler = BanditScheduler(policy, time_attr="epoch")
    scheduler.slots = n_workers
    scheduler.prefer_local = False
    if max_total_epochs is not None or time_budget is not None:
        clock = RecordedClock()
        scheduler.runner.clock = clock
        scheduler.budget = Budget(
            seconds=time_budget, max_total_epochs=max_total_epochs, started=0.0, clock=clock
        )
    return scheduler


def replay_on_ray(
    policy: ArmPolicy,
    curves: Any,
    storage_path: str,
    name: str = "replay",
    max_total_epochs: int | None = None,
    time_budget: float | None = None,
    seconds: Any = None,
    n_workers: int = 1,
    before_report: Callable[[int, int], None] | None = None,
    on_scheduler: Callable[[BanditScheduler], None] | None = None,
    configs: Sequence[dict[str, Any]] | None = None,
) -> list[tuple[str, int, float, str]]:
    """Run ``curves`` (``[arms, epochs]``, higher is better) through ``policy`` on Ray.

    The Ray twin of :func:`bandit_tune.replay.simulate`: the same runner drives it, so with
    one worker both give the same decisions. With ``n_workers`` > 1 the order in
    which the workers' results arrive is Ray's; ``before_report`` (see
    :func:`replay_trainable`) can fix it, as the equivalence tests do, and then the
    decisions are the simulator's too. Replay trainables hold no model in memory,
    so a freed worker's own paused arms are not offered to the policy first (as
    they are for Keras arms, see :class:`~bandit_tune.ray_tune.scheduler.BanditScheduler`):
    the simulator does not model which worker ran an arm. ``on_scheduler`` is called
    with the :class:`~bandit_tune.ray_tune.scheduler.BanditScheduler` before the run (to
    observe it). ``max_total_epochs`` and
    ``time_budget`` are :func:`~bandit_tune.replay.simulate`'s ``budget`` and
    ``time_budget``; the wall-clock budget runs on a clock driven by the recorded
    epoch ``seconds`` (a scalar or an array like ``curves``; default 1.0), as the
    simulator's virtual clock is. ``configs`` (one per row of ``curves``) are the
    arms' hyperparameters, which the policy sees as :func:`~bandit_tune.replay.simulate`
    shows it a recorded set's.

    Returns every decision as ``(arm, step, score, decision)`` with arms named as
    :func:`bandit_tune.replay.simulate` names them (``arm_00000`` ...), in the order made.
    Ray must be initialised (see :func:`bandit_tune.ray_tune.cluster.ensure_ray`).
    """
    from ray import tune

    from bandit_tune.ray_tune.searchers import ArmSource

    scores = np.asarray(curves, dtype=float)
    times = np.broadcast_to(np.asarray(1.0 if seconds is None else seconds, float), scores.shape)
    scheduler = _replay_scheduler(policy, n_workers, max_total_epochs, time_budget)
    decisions = _record_decisions(scheduler)
    if on_scheduler is not None:
        on_scheduler(scheduler)
    if configs is not None and len(configs) != len(scores):
        raise ValueError(f"configs has {len(configs)} items; curves has {len(scores)} arms")
    source = ArmSource(
        [{"_arm": i, **(configs[i] if configs is not None else {})} for i in range(len(scores))],
        scheduler,
    )
    steps = policy.decision_steps()
    trainable = tune.with_parameters(
        replay_trainable,
        curves=scores,
        seconds=np.array(times),
        checkpoint_epochs=None if steps is None else [int(s) for s in steps],
        before_report=before_report,
    )
    config = tune.TuneConfig(
        metric="score", mode="max", search_alg=source, scheduler=scheduler, num_samples=-1,
        reuse_actors=True,
    )
    run = tune.RunConfig(storage_path=storage_path, name=name, verbose=0)
    tune.Tuner(tune.with_resources(trainable, {"cpu": 1}), tune_config=config, run_config=run).fit()
    return decisions
