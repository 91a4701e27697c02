"""Replay recorded learning curves through any arm policy, as the Ray scheduler drives it.

The simulator owns ``n_workers`` virtual workers. Whenever one is free it asks
the policy for a paused arm to resume, else starts the next recorded arm, else —
when nothing runs and no arm is left — lets the policy settle
(:meth:`~bandit_tune.policies.ArmPolicy.on_no_new_arms`). Each epoch of an arm
takes its recorded seconds; after each epoch the policy decides. No Ray, no
TensorFlow: thousands of arms replay in a second.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandit_tune.policies.base import ArmPolicy, Decision


class PolicyError(RuntimeError):
    """A policy broke the protocol: bad return value, exception, or an invalid choice."""


def call_policy(policy: ArmPolicy, hook: str, arm_id: str | None, *args: Any) -> Any:
    """Call ``policy.<hook>(*args)``, turning any exception into a :class:`PolicyError`.

    The message names the policy class, the hook and the arm, so a user-written
    policy that fails is easy to find.
    """
    try:
        return getattr(policy, hook)(*args)
    except Exception as exc:  # noqa: BLE001 — re-raised with context
        where = f" for arm {arm_id!r}" if arm_id is not None else ""
        raise PolicyError(
            f"{type(policy).__name__}.{hook} raised {type(exc).__name__}{where}: {exc}"
        ) from exc


def decide(policy: ArmPolicy, arm_id: str, step: int, score: float) -> Decision:
    """Ask ``policy.on_result`` and check that it answered with a :class:`Decision`."""
    decision = call_policy(policy, "on_result", arm_id, arm_id, step, score)
    if isinstance(decision, Decision):
        return decision
    if isinstance(decision, str) and decision in Decision.__members__:
        return Decision(decision)
    raise PolicyError(
        f"{type(policy).__name__}.on_result returned {decision!r} for arm {arm_id!r}; "
        "expected bandit_tune.Decision.CONTINUE, PAUSE or STOP"
    )


def choose(policy: ArmPolicy, paused: Sequence[str], paused_set: Any) -> str | None:
    """Ask ``policy.choose_arm_to_resume`` and check the answer is a paused arm or None."""
    arm_id = call_policy(policy, "choose_arm_to_resume", None, paused)
    if arm_id is not None and arm_id not in paused_set:
        raise PolicyError(
            f"{type(policy).__name__}.choose_arm_to_resume returned {arm_id!r}, which is "
            f"not a paused arm; return one of the {len(paused)} paused arms or None"
        )
    return arm_id


@dataclass
class SimulationResult:
    """What a replay produced.

    Attributes:
        trace: ``(epochs_used, seconds, best_score_so_far)`` after every epoch.
        decisions: ``(arm_id, step, score, decision)`` for every result.
        epochs: epochs trained per arm id.
        best_arm: the arm with the best score at any step it reached.
        best_score: that score.
        epochs_used: total epochs trained.
        seconds: simulated wall-clock seconds.
    """

    trace: list[tuple[int, float, float]] = field(default_factory=list)
    decisions: list[tuple[str, int, float, str]] = field(default_factory=list)
    epochs: dict[str, int] = field(default_factory=dict)
    best_arm: str | None = None
    best_score: float = -math.inf
    epochs_used: int = 0
    seconds: float = 0.0


def simulate(
    policy: ArmPolicy,
    curves: Any,
    n_workers: int = 1,
    budget: int | None = None,
    seconds: Any = None,
    seed: int | None = None,
    max_arms: int | None = None,
) -> SimulationResult:
    """Replay recorded learning curves through ``policy``, as the Ray scheduler drives it.

    Args:
        policy: any :class:`~bandit_tune.policies.ArmPolicy`; it is driven in place.
        curves: recorded scores per arm and epoch, higher is better (NaN: the arm
            diverged) — an array ``[arms, epochs]``, a list of curves of any
            lengths, :func:`~bandit_tune.load_curves`'s :class:`~bandit_tune.Curves`,
            or a tuner after ``search``, its ``results_`` or its project directory
            (see :func:`~bandit_tune.curves.as_curves`). An arm whose curve ends
            stops there.
        n_workers: arms trained at the same time.
        budget: stop after this many epochs in all (``None``: until the policy is done).
        seconds: seconds per epoch, a scalar or an array shaped like ``curves``
            (default: the recorded seconds, else 1.0).
        seed: shuffle the order in which arms are drawn (``None``: recorded order).
        max_arms: draw at most this many arms.

    Returns:
        A :class:`SimulationResult` with the anytime trace and every decision.
    """
    from bandit_tune.curves import as_curves

    recorded = as_curves(curves)
    scores, lengths = recorded.scores, recorded.lengths
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be an integer >= 1, got {n_workers!r}")
    if budget is not None and (not isinstance(budget, int) or budget < 1):
        raise ValueError(f"budget must be a positive number of epochs or None, got {budget!r}")
    if seconds is None:
        seconds = recorded.seconds
    times = np.broadcast_to(
        np.asarray(1.0 if seconds is None else seconds, dtype=float), scores.shape
    )
    order = list(range(scores.shape[0]))
    if seed is not None:
        order = list(np.random.default_rng(seed).permutation(scores.shape[0]))
    if max_arms is not None:
        order = order[:max_arms]

    result = SimulationResult()
    next_new = 0
    step_of: dict[str, int] = {}
    row_of: dict[str, int] = {}
    paused: dict[str, None] = {}
    running: list[tuple[float, int, str]] = []  # (finish time, tie, arm)
    now, tie = 0.0, 0

    def drain() -> None:
        for arm_id in call_policy(policy, "arms_to_stop", None) or ():
            if arm_id in paused:
                del paused[arm_id]
                call_policy(policy, "on_arm_finished", arm_id, arm_id)

    def launch(arm_id: str) -> None:
        nonlocal tie
        tie += 1
        duration = float(times[row_of[arm_id], step_of[arm_id]])
        heapq.heappush(running, (now + duration, tie, arm_id))

    def fill() -> None:
        nonlocal next_new
        while len(running) < n_workers:
            if budget is not None and result.epochs_used + len(running) >= budget:
                return
            arm_id = choose(policy, list(paused), paused)
            if arm_id is not None:
                del paused[arm_id]
            elif next_new < len(order) and call_policy(policy, "accepts_new_arm", None):
                row = int(order[next_new])
                arm_id = f"arm_{row:05d}"
                next_new += 1
                row_of[arm_id], step_of[arm_id] = row, 0
                config = recorded.configs[row] if row < len(recorded.configs) else {}
                call_policy(policy, "on_arm_added", arm_id, arm_id, {"arm": row, **config})
            elif not running and paused:
                call_policy(policy, "on_no_new_arms", None)
                drain()
                arm_id = choose(policy, list(paused), paused)
                if arm_id is None:
                    for left in list(paused):
                        del paused[left]
                        call_policy(policy, "on_arm_finished", left, left)
                    return
                del paused[arm_id]
            else:
                return
            drain()
            launch(arm_id)

    fill()
    while running:
        now, _, arm_id = heapq.heappop(running)
        row = row_of[arm_id]
        step = step_of[arm_id] + 1
        step_of[arm_id] = step
        score = float(scores[row, step - 1])
        result.epochs_used += 1
        result.epochs[arm_id] = step
        if math.isfinite(score) and score > result.best_score:
            result.best_score, result.best_arm = score, arm_id
        result.trace.append((result.epochs_used, now, result.best_score))
        decision = decide(policy, arm_id, step, score)
        result.decisions.append((arm_id, step, score, decision.value))
        out_of_budget = budget is not None and result.epochs_used >= budget
        more = step < lengths[row]
        if decision is Decision.CONTINUE and more and not out_of_budget:
            launch(arm_id)
        elif decision is Decision.PAUSE and more:
            paused[arm_id] = None
        elif decision is Decision.CONTINUE or decision is Decision.PAUSE:
            call_policy(policy, "on_arm_finished", arm_id, arm_id)  # ran out of curve
        drain()
        if out_of_budget:
            break
        fill()
    result.seconds = now
    return result
