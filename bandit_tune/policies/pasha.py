"""PASHA: ASHA that raises its maximum epochs only while the top ranks are unstable."""

from __future__ import annotations

import math
from typing import Any

from bandit_tune.policies._rungs import sort_key
from bandit_tune.policies.asha import ASHA
from bandit_tune.policies.base import ArmState, Decision

_DONE = ArmState.STOPPED


class PASHA(ASHA):
    """Progressive ASHA (Bohdal et al., ICLR 2023): grow the top rung only while needed.

    Paper: https://arxiv.org/abs/2207.06940

    ASHA trains its best arms to ``max_t`` whatever the curves look like. PASHA
    starts with two rungs (``rungs[0]`` and ``rungs[1]``): arms that reach the
    current top rung wait there instead of being promoted. Each arm that arrives
    at the top rung is compared with the arms already there: if two of them are
    ordered differently by their scores at the top rung and at the rung below it
    (by more than ``epsilon`` at both), the ranking is not yet stable and the top
    rung moves up one (until ``max_t``), so the waiting arms can be promoted as in
    ASHA. When the ranking stays stable, the search spends no epochs beyond the
    current top rung: the best arm found is the best at that rung.

    Simplification of the paper: ``epsilon`` is a fixed tolerance (the paper
    estimates it from the noise between the curves); comparisons are made as arms
    arrive (O(arms at the top rung) per arrival, each pair once). Otherwise as
    :class:`ASHA` in promotion mode: O(log n) per result below the top rung, NaN
    stops an arm, ties go to the arm that reached the rung first.

    Args:
        max_t: epochs of the highest rung PASHA may grow to.
        eta: reduction factor (>= 2).
        min_t: the least epochs before the first rung.
        epsilon: scores closer than this count as tied when rankings are compared.

    Example::

        >>> from bandit_tune.policies import PASHA
        >>> policy = PASHA(max_t=27, eta=3)
        >>> policy.rungs, policy.top_rung
        ([1, 3, 9, 27], 3)
    """

    def __init__(self, max_t: int, eta: float = 3, min_t: int = 1, epsilon: float = 0.0) -> None:
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, (int, float))
            or not math.isfinite(epsilon)
            or epsilon < 0
        ):
            raise ValueError(f"PASHA: epsilon must be a number >= 0, got {epsilon!r}")
        self.epsilon = float(epsilon)
        super().__init__(max_t, eta, min_t, mode="promotion")

    def _reset(self) -> None:
        super()._reset()
        self._top = min(1, len(self.rungs) - 1)  # index of the current top rung
        self._scores: dict[str, dict[int, float]] = {}  # arm -> {rung level: score}
        self._at_top: list[str] = []  # arms recorded at the current top rung

    @property
    def top_rung(self) -> int:
        """Epochs of the current top rung (grows towards ``max_t``)."""
        return self.rungs[self._top]

    def on_result(self, arm_id: str, step: int, score: float) -> Decision:
        """As ASHA below the top rung; at the top rung, wait there or grow the top rung."""
        record = self._arms.get(arm_id)
        if record is None or record.state is _DONE or not math.isfinite(score):
            return super().on_result(arm_id, step, score)
        level = record.level
        if step < self.rungs[level] or level == len(self.rungs) - 1:
            return super().on_result(arm_id, step, score)
        self._scores.setdefault(arm_id, {})[level] = float(score)
        if level < self._top:
            return super().on_result(arm_id, step, score)
        # level == self._top: compare this arm with those already at the top rung
        unstable = self._top > 0 and any(self._reversed(arm_id, other) for other in self._at_top)
        self._at_top.append(arm_id)
        if unstable:
            self._top += 1
            self._at_top = []  # the new top rung starts empty
            return super().on_result(arm_id, step, score)
        key = sort_key(score, self._seq)
        self._seq += 1
        self._recorded[level].add(key)
        return self._wait(level, arm_id, key)

    def state_dict(self) -> dict[str, Any]:
        """ASHA's state plus the current top rung, the arms there and their rung scores."""
        state = super().state_dict()
        state["pasha"] = {
            "epsilon": self.epsilon,
            "top": self._top,
            "at_top": list(self._at_top),
            "scores": {a: {str(k): v for k, v in s.items()} for a, s in self._scores.items()},
        }
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output of a PASHA with the same parameters."""
        saved = state.get("pasha")
        if not isinstance(saved, dict):
            raise ValueError("PASHA: the saved state has no 'pasha' entry (not saved by PASHA)")
        if float(saved["epsilon"]) != self.epsilon:
            raise ValueError(
                f"PASHA: saved epsilon={saved['epsilon']} differs from this policy's {self.epsilon}"
            )
        super().load_state_dict(state)
        self._top = int(saved["top"])
        self._at_top = list(saved["at_top"])
        self._scores = {
            a: {int(k): float(v) for k, v in s.items()} for a, s in saved["scores"].items()
        }

    def _promotion_levels(self) -> range:
        """Only rungs below the current top rung promote (ASHA's promotion and settling)."""
        return range(self._top - 1, -1, -1)

    def _reversed(self, a: str, b: str) -> bool:
        """Arms ``a`` and ``b`` rank in opposite orders at the top rung and the one below."""
        top, below = self._top, self._top - 1
        sa, sb = self._scores.get(a, {}), self._scores.get(b, {})
        if top not in sa or top not in sb or below not in sa or below not in sb:
            return False
        now = sa[top] - sb[top]
        before = sa[below] - sb[below]
        eps = self.epsilon
        return (now > eps and before < -eps) or (now < -eps and before > eps)
