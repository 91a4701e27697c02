"""Replay recorded learning curves on a real Ray Tune, through :class:`BanditScheduler`.

The Ray twin of :func:`bandit_tune.simulate`: each arm is a Ray trial that
reports its recorded curve one epoch at a time, with a checkpoint so it can be
paused and resumed. With one worker both give the same decisions for the same
policy and curves — which is how a policy tried in replay is trusted on Ray.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

from bandit_tune.policies.base import ArmPolicy


def replay_trainable(config: dict[str, Any], curves: Any) -> None:
    """Ray function trainable: report ``curves[config["arm"]]`` epoch by epoch, resumably."""
    from ray import tune

    row = np.asarray(curves)[int(config["arm"])]
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            with open(os.path.join(directory, "replay.json")) as f:
                start = int(json.load(f)["epoch"])
    for epoch in range(start + 1, len(row) + 1):
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "replay.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            tune.report(
                {"score": float(row[epoch - 1]), "epoch": epoch, "arm": int(config["arm"])},
                checkpoint=tune.Checkpoint.from_directory(directory),
            )


def replay_on_ray(
    policy: ArmPolicy, curves: Any, storage_path: str, name: str = "replay"
) -> list[tuple[str, int, float, str]]:
    """Run ``curves`` (``[arms, epochs]``, higher is better) through ``policy`` on Ray, one worker.

    Returns every decision as ``(arm, step, score, decision)`` with arms named as
    :func:`bandit_tune.simulate` names them (``arm_00000`` ...), in the order made.
    Ray must be initialised (see :func:`bandit_tune.runtime.ensure_ray`).
    """
    from ray import tune

    from bandit_tune.scheduler import ArmSource, BanditScheduler

    scores = np.asarray(curves, dtype=float)
    scheduler = BanditScheduler(policy, time_attr="epoch")
    scheduler.slots = 1
    decisions: list[tuple[str, int, float, str]] = []
    arm_of: dict[str, int] = {}

    def record(arm_id: str, step: int, score: float, decision: str) -> None:
        decisions.append((f"arm_{arm_of[arm_id]:05d}", step, score, decision))

    scheduler.listeners.append(record)
    original_add = scheduler.on_trial_add

    def on_trial_add(tune_controller: Any, trial: Any) -> None:
        arm_of[trial.trial_id] = int(trial.config["arm"])
        original_add(tune_controller, trial)

    scheduler.on_trial_add = on_trial_add  # type: ignore[method-assign]
    source = ArmSource([{"arm": i} for i in range(len(scores))], scheduler)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(replay_trainable, curves=scores), {"cpu": 1}),
        tune_config=tune.TuneConfig(
            metric="score",
            mode="max",
            search_alg=source,
            scheduler=scheduler,
            num_samples=len(scores),
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(storage_path=storage_path, name=name, verbose=0),
    )
    tuner.fit()
    return decisions
