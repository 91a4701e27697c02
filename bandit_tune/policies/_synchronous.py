"""Synchronous successive halving over a cycle of bracket shapes.

Both :class:`~bandit_tune.policies.SuccessiveHalving` (one shape) and
:class:`~bandit_tune.policies.Hyperband` (one shape per bracket) are this engine.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from bandit_tune.policies._rungs import Rung, RungArm, arm_state, bracket_epochs, sort_key
from bandit_tune.policies.base import ArmPolicy, ArmState, Decision, check_state

_SCAN = 64  # promoted arms looked at when the runner offers only some paused arms

_RUNNING, _PAUSED, _DONE = ArmState.RUNNING, ArmState.PAUSED, ArmState.STOPPED


class _Bracket:
    """Runtime state of one bracket: who reached which rung, and what was decided."""

    __slots__ = (
        "shape",
        "counts",
        "steps",
        "members",
        "closed",
        "arrived",
        "lost",
        "expected",
        "decided",
    )

    def __init__(self, shape: int, rungs: list[Rung]) -> None:
        self.shape = shape
        self.counts = [n for n, _ in rungs]
        self.steps = [t for _, t in rungs]
        levels = len(rungs)
        self.members = 0
        self.closed = False  # settled before it filled: takes no more arms
        # arrived[i]: arm -> (score, arrival sequence) at rung i
        self.arrived: list[dict[str, tuple[float, int]]] = [{} for _ in range(levels)]
        self.lost = [0] * levels  # arms that left while heading for rung i
        self.expected: list[int | None] = [None] * levels
        self.decided = [False] * levels

    def full(self) -> bool:
        return self.closed or self.members >= self.counts[0]

    def complete(self, level: int) -> bool:
        """Whether every arm expected at a (non-top) rung has arrived or left."""
        expected = self.expected[level]
        return (
            level < len(self.steps) - 1
            and not self.decided[level]
            and expected is not None
            and len(self.arrived[level]) + self.lost[level] >= expected
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "members": self.members,
            "closed": self.closed,
            "arrived": [[[a, s, q] for a, (s, q) in rung.items()] for rung in self.arrived],
            "lost": self.lost,
            "expected": self.expected,
            "decided": self.decided,
        }


class SynchronousHalving(ArmPolicy):
    """Successive halving in synchronous brackets; arms fill the shapes in turn.

    Arms are assigned to brackets in the order they are added. At each rung an
    arm pauses until every arm of its bracket has reached the rung (or left),
    then exactly the planned number of best arms is promoted and the rest stop.
    The last arm to complete a rung does not pause when it is promoted.
    """

    def __init__(self, shapes: list[list[Rung]], cycle: bool = True) -> None:
        self._shapes = shapes
        #: Start the shapes over when all are used (``False``: a budget plan, run once).
        self.cycle = cycle
        self._brackets: list[_Bracket] = []
        self._steps: dict[str, int] = {}
        self._arms: dict[str, RungArm] = {}
        self._seq = 0
        self._resume: deque[str] = deque()
        self._to_stop: list[str] = []

    # -- the plan ----------------------------------------------------------------
    def plan(self) -> list[list[Rung]]:
        """Return the brackets of one pass as lists of ``(n_arms, epochs)`` rungs."""
        return [list(shape) for shape in self._shapes]

    @property
    def n_arms(self) -> int:
        """Number of arms one pass over all brackets starts."""
        return sum(shape[0][0] for shape in self._shapes)

    @property
    def budget(self) -> int:
        """Epochs one full pass trains in all (promoted arms resume, never retrain)."""
        return sum(bracket_epochs(shape) for shape in self._shapes)

    def decision_steps(self) -> list[int]:
        """Every rung epoch of every bracket: where arms may pause or stop."""
        return sorted({t for shape in self._shapes for _, t in shape})

    def accepts_new_arm(self) -> bool:
        """Whether the plan has room for another arm (always, when the shapes cycle)."""
        if self.cycle:
            return bool(self._shapes)
        if self._brackets and not self._brackets[-1].full():
            return True
        return len(self._brackets) < len(self._shapes)

    def epochs_owed(self) -> int:
        """Epochs the opened brackets will still train if they run as planned."""
        trained = [0] * len(self._brackets)
        live = [False] * len(self._brackets)
        for arm_id, record in self._arms.items():
            trained[record.bracket] += self._steps.get(arm_id, 0)
            live[record.bracket] = live[record.bracket] or record.state is not _DONE
        owed = 0
        for index, bracket in enumerate(self._brackets):
            if live[index] or not bracket.full():
                owed += max(0, bracket_epochs(self._shapes[bracket.shape]) - trained[index])
        return owed

    def replan(self, shapes: list[list[Rung]]) -> None:
        """Replace the brackets that have not opened yet by ``shapes`` (a budget re-plan)."""
        if self.cycle:
            raise ValueError("replan needs a policy built from a budget plan (cycle=False)")
        opened = len(self._brackets)
        self._shapes = self._shapes[:opened] + [list(shape) for shape in shapes]

    # -- hooks -------------------------------------------------------------------
    def on_arm_added(self, arm_id: str, config: dict[str, Any]) -> None:
        """Assign the arm to the open bracket, opening the next shape when it is full."""
        if arm_id in self._arms:
            raise ValueError(f"{type(self).__name__}: arm {arm_id!r} was added twice")
        if not self.accepts_new_arm():
            raise ValueError(
                f"{type(self).__name__}: arm {arm_id!r} was added after the planned "
                f"{len(self._shapes)} brackets were all opened"
            )
        if not self._brackets or self._brackets[-1].full():
            shape = len(self._brackets) % len(self._shapes)
            self._brackets.append(_Bracket(shape, self._shapes[shape]))
        bracket = self._brackets[-1]
        bracket.members += 1
        if bracket.full():
            bracket.expected[0] = bracket.members
        self._arms[arm_id] = RungArm(len(self._brackets) - 1)

    def on_result(self, arm_id: str, step: int, score: float) -> Decision:
        """Continue below the next rung; at a rung, pause until it is complete."""
        record = self._record(arm_id)
        index, level = record.bracket, record.level
        if record.state is _DONE:
            return Decision.STOP
        record.state = _RUNNING
        self._steps[arm_id] = step
        bracket = self._brackets[index]
        if not self._finite(score):
            self._leave(arm_id)
            return Decision.STOP
        if step < bracket.steps[level]:
            return Decision.CONTINUE
        if level == len(bracket.steps) - 1:
            record.state = _DONE
            return Decision.STOP
        bracket.arrived[level][arm_id] = (score, self._seq)
        self._seq += 1
        if bracket.decided[level]:  # a straggler after the rung was settled
            record.state = _DONE
            return Decision.STOP
        if bracket.complete(level):
            self._decide(index, level, None)
            return Decision.CONTINUE if record.state is _RUNNING else Decision.STOP
        record.state = _PAUSED
        return Decision.PAUSE

    def on_arm_finished(self, arm_id: str) -> None:
        """An arm left on its own: count it as lost for the rung it was heading to."""
        record = self._arms.get(arm_id)
        if record is not None and record.state is not _DONE:
            self._leave(arm_id)

    def choose_arm_to_resume(self, paused: Sequence[str]) -> str | None:
        """Resume promoted arms first (oldest bracket, lowest rung, best first).

        Only arms in ``paused`` are candidates: a runner that offers a few of the
        paused arms (those whose model is still in the free worker's memory) gets
        the first of them in that order, if one is among the next promoted arms.
        """
        queue = self._resume
        while queue and self._arms[queue[0]].state is not _PAUSED:
            queue.popleft()  # resumed or stopped since it was promoted
        if not queue:
            return None
        if queue[0] in paused:
            chosen = 0
        else:
            offered = set(paused)
            depth = min(len(queue), _SCAN)
            chosen = next(
                (
                    i
                    for i in range(depth)
                    if queue[i] in offered and self._arms[queue[i]].state is _PAUSED
                ),
                -1,
            )
            if chosen < 0:
                return None
        arm_id = queue[chosen]
        del queue[chosen]
        self._arms[arm_id].state = _RUNNING
        return arm_id

    def arms_to_stop(self) -> list[str]:
        """Paused arms that lost at their rung."""
        stopped, self._to_stop = self._to_stop, []
        return stopped

    def on_no_new_arms(self) -> None:
        """Settle every waiting rung with the arms that reached it."""
        for index, bracket in enumerate(self._brackets):
            for level in range(len(bracket.steps) - 1):
                if bracket.decided[level] or not bracket.arrived[level]:
                    continue
                waiting = any(self._arms[a].state is _PAUSED for a in bracket.arrived[level])
                if not waiting:
                    continue
                arrived = len(bracket.arrived[level])
                planned = bracket.expected[level] or bracket.counts[level]
                keep = max(1, arrived * bracket.counts[level + 1] // max(planned, 1))
                if level == 0:
                    bracket.closed = True
                self._decide(index, level, min(keep, bracket.counts[level + 1], arrived))

    # -- state -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain JSON-able state: brackets, arms, queues."""
        state = super().state_dict()
        state.update(
            shapes=[[list(r) for r in shape] for shape in self._shapes],
            cycle=self.cycle,
            steps=dict(self._steps),
            brackets=[b.to_json() for b in self._brackets],
            arms={a: [r.bracket, r.level, r.state.value] for a, r in self._arms.items()},
            seq=self._seq,
            resume=list(self._resume),
            to_stop=list(self._to_stop),
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output; the plan must match this policy's."""
        check_state(self, state)
        shapes = [[tuple(r) for r in shape] for shape in state["shapes"]]
        if not self.cycle and not state.get("cycle", True):
            self._shapes = [list(shape) for shape in shapes]  # a re-planned budget plan
        if shapes != [list(s) for s in self._shapes]:
            raise ValueError(
                f"{type(self).__name__}: saved plan {shapes} differs from this policy's "
                f"plan {self._shapes}; construct the policy with the same max_t, eta, min_t"
            )
        self._brackets = []
        for saved in state["brackets"]:
            bracket = _Bracket(saved["shape"], self._shapes[saved["shape"]])
            bracket.members = saved["members"]
            bracket.closed = saved["closed"]
            bracket.arrived = [
                {a: (tuple(s) if isinstance(s, list) else s, q) for a, s, q in rung}
                for rung in saved["arrived"]
            ]
            bracket.lost = list(saved["lost"])
            bracket.expected = list(saved["expected"])
            bracket.decided = list(saved["decided"])
            self._brackets.append(bracket)
        self._arms = {
            a: RungArm(int(b), int(level), arm_state(st))
            for a, (b, level, st) in state["arms"].items()
        }
        self._seq = state["seq"]
        self._steps = dict(state.get("steps", {}))
        self._resume = deque(state["resume"])
        self._to_stop = list(state["to_stop"])

    # -- internals ---------------------------------------------------------------
    @staticmethod
    def _finite(score: Any) -> bool:
        """Whether ``score`` can be ranked (a diverged arm's cannot: it stops)."""
        return math.isfinite(score)

    def _rank(
        self, arrived: list[tuple[str, tuple[Any, int]]], bracket: int
    ) -> list[tuple[str, tuple[Any, int]]]:
        """``(arm, (score, seq))`` of one rung of ``bracket``, best first."""
        return sorted(arrived, key=lambda kv: sort_key(*kv[1]))

    def _record(self, arm_id: str) -> RungArm:
        try:
            return self._arms[arm_id]
        except KeyError:
            raise KeyError(
                f"{type(self).__name__}: arm {arm_id!r} reported a result but was never "
                "added; call on_arm_added first"
            ) from None

    def _leave(self, arm_id: str) -> None:
        record = self._arms[arm_id]
        index, level = record.bracket, record.level
        record.state = _DONE
        bracket = self._brackets[index]
        bracket.arrived[level].pop(arm_id, None)
        bracket.lost[level] += 1
        if bracket.complete(level):
            self._decide(index, level, None)

    def _decide(self, index: int, level: int, keep: int | None) -> None:
        bracket = self._brackets[index]
        ranked = self._rank(list(bracket.arrived[level].items()), index)
        if keep is None:
            keep = min(bracket.counts[level + 1], len(ranked))
        bracket.decided[level] = True
        bracket.expected[level + 1] = keep
        for rank, (arm_id, _) in enumerate(ranked):
            record = self._arms[arm_id]
            if rank < keep:
                record.level = level + 1
                if record.state is _PAUSED:
                    self._resume.append(arm_id)
            else:
                if record.state is _PAUSED:
                    self._to_stop.append(arm_id)
                record.state = _DONE
        if bracket.complete(level + 1):
            self._decide(index, level + 1, None)
