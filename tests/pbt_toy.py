"""A toy backend for population-based training tests: arms whose "weights" are one number.

It drives the real :class:`~bandit_tune.driver.Runner` (the one every backend uses)
as a pool of workers does: each running arm trains one epoch per round, reports
with a checkpoint at the policy's decision steps, and an arm that takes an
:class:`~bandit_tune.Exploit` restarts from the checkpoint the runner points it
at. An epoch moves the weights ``w`` towards 1 by ``lr * (1 - w)`` and the score is
``w - lr / 2``: a large learning rate learns fast but scores less, so the best
schedule falls over time — what PBT should find and no fixed value has.
"""

from __future__ import annotations

from typing import Any

from bandit_tune.driver.runner import NEW, RESUME, Runner
from bandit_tune.policies import Exploit


def train(w: float, lr: float) -> float:
    """One epoch."""
    return w + lr * (1.0 - w)


def score(w: float, lr: float) -> float:
    """The validation score after an epoch."""
    return w - lr / 2


def run(
    policy: Any,
    configs: list[dict[str, Any]],
    workers: int = 2,
    root: str | None = None,
    runner: Runner | None = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Run ``configs`` through ``policy``; returns weights, scores, runner and the event log.

    ``stop_after``: stop after this many results (a killed driver); ``runner``: a
    runner restored from a snapshot to go on with.
    """
    runner = runner or Runner(policy, mode="max")
    if root is not None:
        runner.root = root
    saved: dict[str, tuple[float, int]] = {}  # checkpoint path -> (weights, step)
    weights: dict[str, float] = {}
    for arm in runner.arms:  # a resumed runner: weights from the arms' checkpoints
        if arm.checkpoint and arm.checkpoint in saved:
            weights[arm.arm_id] = saved[arm.checkpoint][0]
    running: list[str] = []
    log: list[tuple[str, int, str]] = []
    results = 0
    next_config = len(runner.arms)

    def start(arm_id: str) -> None:
        arm = runner.arms[arm_id]
        if arm.checkpoint is not None:
            weights[arm_id] = run.store[arm.checkpoint][0]
        else:
            weights.setdefault(arm_id, 0.0)
        running.append(arm_id)

    def fill() -> None:
        nonlocal next_config
        while len(running) < workers:
            if runner.wake:
                start(runner.wake.popleft())
                continue
            more = next_config < len(configs)
            action, arm_id = runner.next_arm(len(running), more)
            runner.take_ended()
            if action == RESUME and arm_id is not None:
                start(arm_id)
            elif action == NEW:
                arm_id = f"arm_{next_config:03d}"
                runner.add_arm(arm_id, configs[next_config])
                next_config += 1
                start(arm_id)
            elif not running and runner.arms.paused:
                arm_id = runner.settle()
                runner.take_ended()
                if arm_id is None:
                    return
                start(arm_id)
            else:
                return

    steps = set(policy.decision_steps() or ())
    fill()
    while running:
        for arm_id in list(running):
            arm = runner.arms[arm_id]
            lr = float(arm.config["lr"])
            w = weights[arm_id] = train(weights[arm_id], lr)
            step = arm.step + 1
            checkpoint = None
            if step in steps:
                checkpoint = f"mem://{arm_id}/{step}/{len(run.store)}"
                run.store[checkpoint] = (w, step)
            decision, _ = runner.report(
                arm_id, step, score(w, lr), {"score": score(w, lr)}, checkpoint=checkpoint
            )
            results += 1
            label = "EXPLOIT" if isinstance(decision, Exploit) else getattr(decision, "value", "")
            log.append((arm_id, step, label))
            if isinstance(decision, Exploit) or runner.arms[arm_id].state.value != "running":
                running.remove(arm_id)
            if stop_after is not None and results >= stop_after:
                return {"runner": runner, "weights": weights, "log": log, "interrupted": True}
        fill()
    return {"runner": runner, "weights": weights, "log": log, "interrupted": False}


run.store = {}  # checkpoints by path, shared by runs (a resumed run reads the first run's)
