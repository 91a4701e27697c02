"""Keep the top k after a short warm-up, train them fully (Egele et al., arXiv 2307.15422)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bandit_tune.policies.base import ArmPolicy, Decision, check_state


class TopKAfterWarmup(ArmPolicy):
    """Train ``arms`` arms for ``warmup`` epochs each, then only the best ``keep`` to ``max_t``.

    Paper: Egele et al., "Is One Epoch All You Need For Multi-Fidelity
    Hyperparameter Optimization?", 2023, https://arxiv.org/abs/2307.15422

    The baseline of Egele et al. ("Is one epoch all you need for multi-fidelity
    hyperparameter optimization?", arXiv 2307.15422): rank every arm after one
    epoch, keep the top k, and train them fully. On classic benchmarks it matched
    many multi-fidelity methods, so a policy that does not beat it has not earned
    its complexity.

    Each of the first ``arms`` arms trains ``warmup`` epochs and pauses there.
    Once all of them have reported (or no more can start: the runner settles),
    the ``keep`` best by their score at ``warmup`` are resumed one per free
    worker, best first, and trained to ``max_t``; the others are stopped. The
    arm whose result completes the ranking continues at once if it is kept.
    NaN or infinite scores rank last; ties go to the arm added first. An arm that
    ends before its warm-up (an error, EarlyStopping) is ranked with what it
    reported, or last. Epochs spent: ``arms * warmup + keep * (max_t - warmup)``.

    Args:
        max_t: epochs a kept arm trains.
        arms: arms trained for the warm-up (the policy accepts no more).
        keep: arms trained on to ``max_t`` (at most ``arms``).
        warmup: epochs every arm trains before the ranking (``< max_t``).

    Example::

        >>> from bandit_tune.policies import TopKAfterWarmup
        >>> policy = TopKAfterWarmup(max_t=27, arms=40, keep=4)
        >>> policy.budget
        144
    """

    def __init__(self, max_t: int, arms: int, keep: int, warmup: int = 1) -> None:
        for name, value in (("max_t", max_t), ("arms", arms), ("keep", keep), ("warmup", warmup)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TopKAfterWarmup: {name} must be an integer >= 1, got {value!r}")
        if keep > arms:
            raise ValueError(f"TopKAfterWarmup: keep={keep} is more than arms={arms}")
        if warmup >= max_t:
            raise ValueError(
                f"TopKAfterWarmup: warmup={warmup} must be less than max_t={max_t} "
                "(with warmup == max_t every arm trains fully: use no policy)"
            )
        self.max_t, self.arms, self.keep, self.warmup = max_t, arms, keep, warmup
        self._order: dict[str, int] = {}  # arm -> the order it was added in
        self._scores: dict[str, float] = {}  # arm -> score at warmup (or last, if it ended)
        self._ended: set[str] = set()  # arms that ended on their own
        self._heard: set[str] = set()  # arms with a warm-up score or ended: O(1) count
        self._kept: list[str] | None = None  # ranked, once decided
        self._to_resume: list[str] = []  # kept arms still to resume, best last (a stack)
        self._to_stop: list[str] = []  # not kept, paused: for arms_to_stop

    @property
    def budget(self) -> int:
        """Epochs the policy plans: every arm's warm-up plus the kept arms' remainder."""
        return self.arms * self.warmup + self.keep * (self.max_t - self.warmup)

    def on_arm_added(self, arm_id: str, config: dict[str, Any]) -> None:
        """Register the arm in the order arms arrive (the tie-break)."""
        self._order.setdefault(arm_id, len(self._order))

    def accepts_new_arm(self) -> bool:
        """New arms until ``arms`` have been added."""
        return len(self._order) < self.arms

    def on_result(self, arm_id: str, step: int, score: float) -> Decision:
        """Train to the warm-up, pause there; kept arms train on, the others stop."""
        self._order.setdefault(arm_id, len(self._order))
        if step >= self.max_t:
            return Decision.STOP
        if self._kept is not None:
            return Decision.CONTINUE if arm_id in self._kept else Decision.STOP
        if step < self.warmup:
            return Decision.CONTINUE
        self._scores[arm_id] = float(score)
        self._heard.add(arm_id)
        if len(self._heard) >= self.arms:
            self._decide()
            assert self._kept is not None
            if arm_id in self._kept:
                self._to_resume.remove(arm_id)
                return Decision.CONTINUE
            self._to_stop.remove(arm_id)
            return Decision.STOP
        return Decision.PAUSE

    def on_arm_finished(self, arm_id: str) -> None:
        """An arm that ended before the ranking is ranked with what it reported, or last."""
        self._ended.add(arm_id)
        self._heard.add(arm_id)
        if arm_id in self._to_resume:
            self._to_resume.remove(arm_id)
        if arm_id in self._to_stop:
            self._to_stop.remove(arm_id)
        if self._kept is None and len(self._heard) >= self.arms:
            self._decide()

    def on_no_new_arms(self) -> None:
        """Nothing runs and no arm can start: rank the arms that reported."""
        if self._kept is None:
            self._decide()

    def choose_arm_to_resume(self, paused: Sequence[str]) -> str | None:
        """Before the ranking, start new arms; after it, the best kept arm still paused."""
        while self._to_resume:
            arm = self._to_resume.pop()
            if arm in paused:
                return arm
        return None

    def arms_to_stop(self) -> list[str]:
        """Paused arms that were not kept, once the ranking is made."""
        out, self._to_stop = self._to_stop, []
        return out

    def decision_steps(self) -> list[int]:
        """A checkpoint at the warm-up, where arms pause."""
        return [self.warmup]

    def _decide(self) -> None:
        def rank(arm: str) -> tuple[int, float, int]:
            score = self._scores.get(arm, math.nan)
            finite = math.isfinite(score)
            return (0 if finite else 1, -score if finite else 0.0, self._order.get(arm, 0))

        candidates = sorted(self._heard, key=rank)
        kept = [a for a in candidates if a not in self._ended][: self.keep]
        chosen = set(kept)
        self._kept = kept
        self._to_resume = list(reversed(kept))
        self._to_stop = [a for a in candidates if a not in chosen and a not in self._ended]

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: arrival order, warm-up scores, the ranking once made."""
        state = super().state_dict()
        state.update(
            params=[self.max_t, self.arms, self.keep, self.warmup],
            order=dict(self._order),
            scores={a: (s if math.isfinite(s) else str(s)) for a, s in self._scores.items()},
            ended=sorted(self._ended),
            kept=self._kept,
            to_resume=list(self._to_resume),
            to_stop=list(self._to_stop),
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output of a TopKAfterWarmup with the same parameters."""
        check_state(self, state)
        params = [self.max_t, self.arms, self.keep, self.warmup]
        if list(state["params"]) != params:
            raise ValueError(
                f"TopKAfterWarmup: saved (max_t, arms, keep, warmup)={state['params']} "
                f"differ from {params}"
            )
        self._order = {a: int(i) for a, i in state["order"].items()}
        self._scores = {a: float(s) for a, s in state["scores"].items()}
        self._ended = set(state["ended"])
        self._heard = self._scores.keys() | self._ended
        self._kept = None if state["kept"] is None else list(state["kept"])
        self._to_resume = list(state["to_resume"])
        self._to_stop = list(state["to_stop"])
