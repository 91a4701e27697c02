"""ASHA that moves its first rung later while early rankings do not predict later ones."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from bandit_tune.policies.asha import ASHA
from bandit_tune.policies.base import ArmState, Decision


def kendall_tau(pairs: Any) -> float:
    """Kendall's tau-a of ``(x, y)`` pairs: +1 when both orders agree, -1 when reversed."""
    pairs = list(pairs)
    n = len(pairs)
    if n < 2:
        return 1.0
    score = 0
    for i in range(n):
        xi, yi = pairs[i]
        for j in range(i + 1, n):
            xj, yj = pairs[j]
            sign = (xi - xj) * (yi - yj)
            score += (sign > 0) - (sign < 0)
    return score / (n * (n - 1) / 2)


class AdaptiveASHA(ASHA):
    """ASHA (promotions) whose first decision rung moves up while it ranks arms poorly.

    Paper: Bohdal et al., "PASHA: Efficient HPO and NAS with Progressive Resource
    Allocation", ICLR 2023, https://arxiv.org/abs/2207.06940

    In the spirit of PASHA (Bohdal et al., ICLR 2023): cheap early epochs are
    only worth using for decisions when the ranking of arms they give agrees
    with the ranking a later rung gives. For every arm that reaches rung
    ``i + 1`` the pair (score at rung ``i``, score at rung ``i + 1``) enters a
    window of the last ``window`` pairs. While the first decision rung is ``i``
    and Kendall's tau over its window, once it holds ``min_pairs`` pairs, is
    below ``threshold``, the first decision rung moves to ``i + 1``: from then on
    arms pass rung ``i`` without a decision (they are still measured there). It
    never moves above the rung below the top. Pairs come from promoted arms
    only — the agreement among the better arms, which is the one that matters
    for promotions. A decision costs O(log n + window²) — constant in the arms.

    Args:
        max_t: epochs of the top rung, as for :class:`ASHA`.
        eta: reduction factor, as for :class:`ASHA`.
        min_t: the least epochs before the first rung, as for :class:`ASHA`.
        threshold: the least Kendall tau in (-1, 1] at which a rung is trusted.
        min_pairs: pairs a rung needs before its agreement is judged (>= 2).
        window: how many of the latest pairs are judged.

    Example::

        >>> from bandit_tune.policies import AdaptiveASHA
        >>> policy = AdaptiveASHA(max_t=27, eta=3, threshold=0.3)
        >>> policy.first_rung
        1
    """

    def __init__(
        self,
        max_t: int,
        eta: float = 3,
        min_t: int = 1,
        threshold: float = 0.3,
        min_pairs: int = 6,
        window: int = 30,
    ) -> None:
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, (int, float))
            or not (-1 < threshold <= 1)
        ):
            raise ValueError(f"threshold must be a Kendall tau in (-1, 1], got {threshold!r}")
        for name, value, least in (("min_pairs", min_pairs, 2), ("window", window, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if window < min_pairs:
            raise ValueError(f"window={window} must be >= min_pairs={min_pairs}")
        self.threshold, self.min_pairs, self.window = float(threshold), min_pairs, window
        super().__init__(max_t, eta, min_t, mode="promotion")

    def _reset(self) -> None:
        super()._reset()
        self._first = 0
        self._last: dict[str, tuple[int, float]] = {}  # arm -> (level, score) at its last rung
        self._pairs: list[deque] = [deque(maxlen=self.window) for _ in self.rungs]
        self.moves: list[tuple[int, float]] = []  # (new first rung epochs, tau that moved it)

    @property
    def first_rung(self) -> int:
        """Epochs of the lowest rung that currently decides."""
        return self.rungs[self._first]

    def on_result(self, arm_id: str, step: int, score: float) -> Decision:
        """Measure rank agreement at rungs; below the first decision rung, just continue."""
        record = self._arms.get(arm_id)
        if record is None or record.state is ArmState.STOPPED or not math.isfinite(score):
            return super().on_result(arm_id, step, score)
        level = record.level
        if step < self.rungs[level]:
            return super().on_result(arm_id, step, score)
        previous = self._last.get(arm_id)
        self._last[arm_id] = (level, score)
        if previous is not None and previous[0] == level - 1:
            self._pairs[level - 1].append((previous[1], score))
            self._judge(level - 1)
        if level < self._first:
            record.level = level + 1
            record.state = ArmState.RUNNING
            return Decision.CONTINUE
        return super().on_result(arm_id, step, score)

    def _judge(self, level: int) -> None:
        pairs = self._pairs[level]
        if level != self._first or len(pairs) < self.min_pairs:
            return
        if self._first >= len(self.rungs) - 2:
            return
        tau = kendall_tau(pairs)
        if tau < self.threshold:
            self._first += 1
            self.moves.append((self.rungs[self._first], tau))

    def state_dict(self) -> dict[str, Any]:
        """ASHA's state plus the first rung, the last rung score per arm and the windows."""
        state = super().state_dict()
        state.update(
            adaptive=[self.threshold, self.min_pairs, self.window],
            first=self._first,
            last={a: list(v) for a, v in self._last.items()},
            pairs=[[list(p) for p in w] for w in self._pairs],
            moves=[list(m) for m in self.moves],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output of an AdaptiveASHA with the same parameters."""
        if list(state.get("adaptive", [])) != [self.threshold, self.min_pairs, self.window]:
            raise ValueError(
                f"AdaptiveASHA: saved (threshold, min_pairs, window)={state.get('adaptive')} "
                f"differ from {[self.threshold, self.min_pairs, self.window]}"
            )
        super().load_state_dict(state)
        self._first = state["first"]
        self._last = {a: (v[0], v[1]) for a, v in state["last"].items()}
        self._pairs = [deque((tuple(p) for p in w), maxlen=self.window) for w in state["pairs"]]
        self.moves = [(m[0], m[1]) for m in state["moves"]]
