"""Asynchronous successive halving (ASHA), Li et al., MLSys 2020."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Any

from sortedcontainers import SortedList

from bandit_tune.policies._rungs import RungArm, arm_state, check_ladder, ladder, s_max, sort_key
from bandit_tune.policies.base import ArmPolicy, ArmState, Decision, check_state

_RUNNING, _PAUSED, _DONE = ArmState.RUNNING, ArmState.PAUSED, ArmState.STOPPED


class ASHA(ArmPolicy):
    """Asynchronous successive halving with promotions (Li et al., 2020, Algorithm 2).

    This is the arm policy; :class:`bandit_tune.ASHA` is the tuner that runs it on a
    hypermodel. Paper: Li et al., "A System for Massively Parallel Hyperparameter
    Tuning", MLSys 2020, https://arxiv.org/abs/1810.05934

    Rungs sit at the epochs of Hyperband's most aggressive bracket
    (``s_max + 1`` rungs, the top one exactly ``max_t``). When an arm reaches a
    rung it is promoted at once if it ranks in the top ``floor(n / eta)`` of the
    ``n`` arms recorded there; otherwise it pauses, its worker starts a new arm,
    and it is resumed later if enough better-ranked arms arrive behind it — the
    paper's "promote whenever possible, else grow the bottom rung".

    Why promotions and not Ray's stopping variant: Ray's ``ASHAScheduler``
    stops an arm that is below the rung's percentile *at the moment it
    arrives*, so the first arms at a rung always go on and a good arm that
    arrives early among better ones is lost for good. Promotion only pauses it,
    and it needs checkpoints, which bandit_tune's trainables write at rungs
    anyway. The stopping variant is available as ``mode="stopping"``
    (continue iff in the top ``ceil(n / eta)``, else stop).

    Every decision costs O(log n) in the arms at a rung: a sorted list per rung
    answers "how many arms rank above this one" without rescanning the rung.
    NaN or infinite scores stop the arm and are never recorded at a rung; ties
    go to the arm that reached the rung first.

    When no arm runs and no new arm can start (:meth:`on_no_new_arms`), the best
    waiting arm of the highest rung that has promoted nobody yet is promoted, so a
    finite search always trains at least one arm to ``max_t``.

    Args:
        max_t: epochs of the top rung; arms stop there.
        eta: reduction factor (>= 2): the top ``1/eta`` of a rung is promoted.
        min_t: the least epochs an arm trains before its first decision.
        mode: ``"promotion"`` (default, the paper) or ``"stopping"`` (Ray's variant).

    Example::

        >>> from bandit_tune.policies import ASHA
        >>> ASHA(max_t=27, eta=3).rungs
        [1, 3, 9, 27]
    """

    def __init__(self, max_t: int, eta: float = 3, min_t: int = 1, mode: str = "promotion") -> None:
        check_ladder(max_t, eta, min_t)
        if mode not in ("promotion", "stopping"):
            raise ValueError(f"mode must be 'promotion' or 'stopping', got {mode!r}")
        self.max_t, self.eta, self.min_t, self.mode = max_t, eta, min_t, mode
        self.rungs: list[int] = ladder(max_t, eta, min_t, s_max(max_t, eta, min_t) + 1)
        self._reset()

    def _reset(self) -> None:
        levels = len(self.rungs) - 1  # the top rung records nothing: arms stop there
        self._recorded: list[SortedList] = [SortedList() for _ in range(levels)]
        self._promoted = [0] * levels
        self._waiting: list[list[tuple[tuple[float, int], str]]] = [[] for _ in range(levels)]
        self._arms: dict[str, RungArm] = {}
        self._seq = 0
        self._to_stop: list[str] = []
        self._forced: list[str] = []  # promoted by on_no_new_arms, resumed next

    def decision_steps(self) -> list[int]:
        """The rung epochs."""
        return list(self.rungs)

    def on_arm_added(self, arm_id: str, config: dict[str, Any]) -> None:
        """Start the arm at the bottom rung."""
        if arm_id in self._arms:
            raise ValueError(f"ASHA: arm {arm_id!r} was added twice")
        self._arms[arm_id] = RungArm()

    def on_result(self, arm_id: str, step: int, score: float) -> Decision:
        """Promote at once when in the top ``1/eta`` of the rung, else pause (or stop)."""
        record = self._arms.get(arm_id)
        if record is None:
            raise KeyError(
                f"{type(self).__name__}: arm {arm_id!r} reported a result but was never added"
            )
        level = record.level
        if record.state is _DONE:
            return Decision.STOP
        record.state = _RUNNING
        if not self._finite(score):
            record.state = _DONE
            return Decision.STOP
        if step < self.rungs[level]:
            return Decision.CONTINUE
        if level == len(self.rungs) - 1:
            record.state = _DONE
            return Decision.STOP
        return self._arrive(level, arm_id, score)

    @staticmethod
    def _finite(score: Any) -> bool:
        """Whether ``score`` can be ranked (a diverged arm's cannot: it stops)."""
        return math.isfinite(score)

    def _arrive(self, level: int, arm_id: str, score: Any) -> Decision:
        """The arm reached rung ``level`` with ``score``: promote it, pause it or stop it."""
        record = self._arms[arm_id]
        key = sort_key(score, self._seq)
        self._seq += 1
        rung = self._recorded[level]
        rung.add(key)
        rank = rung.bisect_left(key)
        if self.mode == "stopping":
            if rank < math.ceil(len(rung) / self.eta):
                record.level = level + 1
                return Decision.CONTINUE
            record.state = _DONE
            return Decision.STOP
        if rank < int(len(rung) // self.eta):
            self._promoted[level] += 1
            record.level = level + 1
            return Decision.CONTINUE
        return self._wait(level, arm_id, key)

    def on_arm_finished(self, arm_id: str) -> None:
        """Mark the arm done; its recorded scores still count at its rungs."""
        record = self._arms.get(arm_id)
        if record is not None:
            record.state = _DONE

    def choose_arm_to_resume(self, paused: Sequence[str]) -> str | None:
        """Promote the best promotable waiting arm, highest rung first."""
        if self._forced:
            return self._forced.pop()
        for level in self._promotion_levels():
            arm_id = self._promotable(level, int(len(self._recorded[level]) // self.eta))
            if arm_id is not None:
                return arm_id
        return None

    def on_no_new_arms(self) -> None:
        """Promote the best waiting arm of the highest rung that promoted nobody; else stop all."""
        for level in self._promotion_levels():
            if self._promoted[level] == 0 and self._best_waiting(level) is not None:
                arm_id = self._promotable(level, len(self._recorded[level]))
                if arm_id is not None:
                    self._forced.append(arm_id)
                return
        for heap in self._waiting:
            for _, arm_id in heap:
                if self._arms[arm_id].state is _PAUSED:
                    self._arms[arm_id].state = _DONE
                    self._to_stop.append(arm_id)
            heap.clear()

    def arms_to_stop(self) -> list[str]:
        """Paused arms given up when the search ran out of new arms."""
        stopped, self._to_stop = self._to_stop, []
        return stopped

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: each arm's level, state and rung key."""
        state = super().state_dict()
        state.update(
            params=[self.max_t, self.eta, self.min_t, self.mode],
            rungs=[[list(k) for k in rung] for rung in self._recorded],
            promoted=list(self._promoted),
            waiting=[[[list(k), a] for k, a in heap] for heap in self._waiting],
            arms={
                a: [r.level, r.state.value, list(r.key) if r.key else None]
                for a, r in self._arms.items()
            },
            seq=self._seq,
            to_stop=list(self._to_stop),
            forced=list(self._forced),
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output of an ASHA with the same parameters."""
        check_state(self, state)
        if list(state["params"]) != [self.max_t, self.eta, self.min_t, self.mode]:
            raise ValueError(
                f"ASHA: saved parameters (max_t, eta, min_t, mode)={state['params']} differ "
                f"from this policy's {[self.max_t, self.eta, self.min_t, self.mode]}"
            )
        self._reset()
        self._recorded = [SortedList(tuple(k) for k in rung) for rung in state["rungs"]]
        self._promoted = list(state["promoted"])
        self._waiting = [[(tuple(k), a) for k, a in heap] for heap in state["waiting"]]
        for heap in self._waiting:
            heapq.heapify(heap)
        self._arms = {
            a: RungArm(0, int(r[0]), arm_state(r[1]), tuple(r[2]) if r[2] else None)
            for a, r in state["arms"].items()
        }
        self._seq = state["seq"]
        self._to_stop = list(state["to_stop"])
        self._forced = list(state["forced"])

    # -- internals ---------------------------------------------------------------
    def _promotion_levels(self) -> range:
        """Rungs whose waiting arms may be promoted, highest first."""
        return range(len(self._waiting) - 1, -1, -1)

    def _wait(self, level: int, arm_id: str, key: tuple[float, int]) -> Decision:
        """Pause the arm at rung ``level`` (its ``key`` is recorded there already)."""
        record = self._arms[arm_id]
        record.state, record.key = _PAUSED, key
        heapq.heappush(self._waiting[level], (key, arm_id))
        return Decision.PAUSE

    def _best_waiting(self, level: int) -> tuple[tuple[float, int], str] | None:
        heap = self._waiting[level]
        while heap and self._arms[heap[0][1]].state is not _PAUSED:
            heapq.heappop(heap)  # finished or removed while paused
        return heap[0] if heap else None

    def _promotable(self, level: int, quota: int) -> str | None:
        best = self._best_waiting(level)
        if best is None:
            return None
        key, arm_id = best
        # Every arm ranked above the best waiting one was promoted or has left,
        # so its rank is the number of recorded keys before it.
        if self._recorded[level].bisect_left(key) >= quota:
            return None
        heapq.heappop(self._waiting[level])
        self._promoted[level] += 1
        record = self._arms[arm_id]
        record.level, record.state, record.key = level + 1, _RUNNING, None
        return arm_id
