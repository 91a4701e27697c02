"""The median stopping rule (Golovin et al., KDD 2017: "Google Vizier")."""

from __future__ import annotations

import math
from typing import Any

from sortedcontainers import SortedList

from bandit_tune.policies.base import ArmPolicy, Decision, check_state


class MedianStopping(ArmPolicy):
    """Stop an arm whose best score by step ``t`` is below the median of the others' running means.

    Paper: Golovin et al., "Google Vizier: A Service for Black-Box Optimization",
    KDD 2017, https://doi.org/10.1145/3097983.3098043

    Vizier's rule (Golovin et al., 2017, section 3.2.2): at step ``t`` an arm is
    stopped when its best score so far is strictly worse than the median, over
    the other arms that reached ``t``, of their running averages of the scores
    up to ``t``. Arms are never paused, so the rule needs no checkpoints and no
    resumes; it only ends bad arms early, like Ray Tune's ``MedianStoppingRule``.

    The rule waits until ``grace_period`` epochs and until at least
    ``min_samples`` other arms reached the step. Each step keeps a sorted list
    of running averages, so a decision costs O(log n) in the arms at that step.
    NaN or infinite scores stop the arm at once and are not recorded.

    Args:
        max_t: epochs an arm trains at most; it stops there.
        grace_period: epochs every arm trains before the rule applies.
        min_samples: other arms that must have reached a step before it is used.

    Example::

        >>> from bandit_tune.policies import MedianStopping
        >>> policy = MedianStopping(max_t=27, grace_period=3)
    """

    def __init__(self, max_t: int, grace_period: int = 1, min_samples: int = 3) -> None:
        for name, value in (
            ("max_t", max_t),
            ("grace_period", grace_period),
            ("min_samples", min_samples),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if grace_period > max_t:
            raise ValueError(f"grace_period={grace_period} is larger than max_t={max_t}")
        self.max_t, self.grace_period, self.min_samples = max_t, grace_period, min_samples
        self._means: dict[int, SortedList] = {}
        self._arms: dict[str, _Curve] = {}

    def on_arm_added(self, arm_id: str, config: dict[str, Any]) -> None:
        """Register the arm."""
        self._arms[arm_id] = _Curve()

    def on_result(self, arm_id: str, step: int, score: float) -> Decision:
        """Record the arm's running mean at ``step`` and stop it if it is below the median."""
        record = self._arms.get(arm_id)
        if record is None:
            record = self._arms[arm_id] = _Curve()
        if not math.isfinite(score):
            return Decision.STOP
        record.total += score
        record.best = max(record.best, score)
        record.steps += 1
        means = self._means.setdefault(step, SortedList())
        decision = Decision.CONTINUE
        if step >= self.max_t:
            decision = Decision.STOP
        elif step >= self.grace_period and len(means) >= self.min_samples:
            n = len(means)
            median = (means[(n - 1) // 2] + means[n // 2]) / 2
            if record.best < median:
                decision = Decision.STOP
        means.add(record.total / record.steps)
        return decision

    def decision_steps(self) -> list[int]:
        """No pauses, so no checkpoints are needed before the last epoch."""
        return [self.max_t]

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: running means per step and each arm's sum, best and steps."""
        state = super().state_dict()
        state.update(
            params=[self.max_t, self.grace_period, self.min_samples],
            means={str(step): list(values) for step, values in self._means.items()},
            arms={arm: [r.total, r.best, r.steps] for arm, r in self._arms.items()},
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output of a MedianStopping with the same parameters."""
        check_state(self, state)
        if list(state["params"]) != [self.max_t, self.grace_period, self.min_samples]:
            raise ValueError(
                f"MedianStopping: saved (max_t, grace_period, min_samples)={state['params']} "
                f"differ from {[self.max_t, self.grace_period, self.min_samples]}"
            )
        self._means = {int(s): SortedList(v) for s, v in state["means"].items()}
        self._arms = {arm: _Curve(*record) for arm, record in state["arms"].items()}


class _Curve:
    """One arm's running curve: the sum of its scores, its best score, its steps."""

    __slots__ = ("total", "best", "steps")

    def __init__(self, total: float = 0.0, best: float = -math.inf, steps: int = 0) -> None:
        self.total, self.best, self.steps = float(total), float(best), int(steps)
