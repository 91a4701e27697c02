"""One gated Ray Tune searcher: new arms only when the runner wants one.

:class:`GatedSearcher` takes a proposer — a fixed list of configurations (grid,
seeded random sample) or any Ray Tune ``Searcher`` (Optuna's TPE through Ray's
``OptunaSearch``) — and hands Ray its next configuration only when the
scheduler's runner wants a new arm: no arm waits for promotion and a slot is
free, so new arms never take a worker a promoted arm should get (the trap
measured in Ray's own HyperBandScheduler). Arms the runner wants placed again
(re-created after a lost node, running or resumed after a killed driver) come
first, as new Ray trials pointing at their checkpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ray.tune.search import Searcher

if TYPE_CHECKING:  # pragma: no cover
    from bandit_tune.ray_tune.scheduler import BanditScheduler


class _FixedList(Searcher):
    """A proposer over a fixed list of configurations (a grid, a seeded sample)."""

    def __init__(self, configs: Sequence[dict[str, Any]]) -> None:
        super().__init__()
        self.configs = list(configs)
        self.next_index = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self.next_index >= len(self.configs):
            return Searcher.FINISHED
        config = self.configs[self.next_index]
        self.next_index += 1
        return dict(config)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Nothing to learn: the configurations are fixed."""


class GatedSearcher(Searcher):
    """Hands Ray a proposer's configurations, one new arm at a time, when the runner wants one.

    Args:
        proposer: a list of configurations, or a Ray Tune ``Searcher`` (it still
            sees every result of the arms it proposed).
        scheduler: the :class:`~bandit_tune.BanditScheduler` of the search.
        max_arms: new arms to make at most (default: the list's length, else unbounded).
    """

    def __init__(
        self,
        proposer: Searcher | Sequence[dict[str, Any]],
        scheduler: BanditScheduler,
        max_arms: int | None = None,
    ) -> None:
        if not isinstance(proposer, Searcher):
            proposer = _FixedList(proposer)
            if max_arms is None:
                max_arms = len(proposer.configs)
        super().__init__(metric=proposer.metric, mode=proposer.mode)
        self.inner = proposer
        self.scheduler = scheduler
        scheduler.recreates_arms = True  # this searcher serves the runner's wake list
        self.max_arms = max_arms
        #: New configurations handed to Ray so far.
        self.made = 0
        self._mine: set[str] = set()  # trials the proposer made (not re-created arms)
        self._inner_finished = False
        # The position a resumed search starts from counts only the configurations the
        # runner recorded as arms: one handed to Ray but not yet added (a Ctrl-C or a
        # kill between the two) is drawn again on resume, not skipped.
        self._recorded = 0
        self._unrecorded: dict[str, None] = {}

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Forward metric and mode to the proposer."""
        super().set_search_properties(metric, mode, config, **spec)
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """An arm to place again, a new configuration, ``None`` to wait, or ``FINISHED``."""
        scheduler = self.scheduler
        exhausted = self.exhausted()
        if scheduler.wants_new_arm(new_arms_left=not exhausted):
            if scheduler.runner.wake:
                return scheduler.resume_config(scheduler.runner.wake.popleft())
            if not exhausted:
                config = self.inner.suggest(trial_id)
                if isinstance(config, dict):
                    self._unrecorded[trial_id] = None
                    self._mine.add(trial_id)
                    self.made += 1
                    return config
                if config != Searcher.FINISHED:
                    return config
                self._inner_finished = exhausted = True
        if exhausted:
            return _finished_unless_in_flight(scheduler)
        return None

    def exhausted(self) -> bool:
        """``max_arms`` made, the proposer finished, or the search is over: no new arm will come."""
        return (
            (self.max_arms is not None and self.made >= self.max_arms)
            or self._inner_finished
            or self.scheduler.finished()
        )

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Pass intermediate results on to the proposer."""
        if trial_id in self._mine:
            self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Pass final results on: a model-based proposer learns from them."""
        if trial_id in self._mine:
            self.inner.on_trial_complete(trial_id, result=result, error=error)

    def position(self) -> dict[str, Any]:
        """Where the searcher stands, for the search's snapshot.

        Counts the configurations the runner has recorded as arms, so the snapshot's
        arms and its position always agree, whenever it is written.
        """
        arms = self.scheduler.runner.arms
        for trial_id in [t for t in self._unrecorded if t in arms]:
            del self._unrecorded[trial_id]
            self._recorded += 1
        fixed = isinstance(self.inner, _FixedList)
        return {"made": self._recorded, "next_index": self._recorded if fixed else None}

    def set_position(self, position: dict[str, Any]) -> None:
        """Take up :meth:`position` output (a resumed search)."""
        made = position.get("made")
        if made is None:  # a snapshot of an older version: the list's index only
            made = position.get("next_index")
        if made is not None:
            self.made = self._recorded = int(made)
            self._unrecorded.clear()
        if isinstance(self.inner, _FixedList):
            self.inner.next_index = self.made

    def get_state(self) -> dict[str, Any]:
        """The position (Ray's searcher state)."""
        return self.position()

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output."""
        self.set_position(state)


class ArmSource(GatedSearcher):
    """A :class:`GatedSearcher` over a fixed list of configurations."""

    def __init__(self, configs: Sequence[dict[str, Any]], scheduler: BanditScheduler) -> None:
        super().__init__(list(configs), scheduler)

    @property
    def next_index(self) -> int:
        """Configurations handed out so far."""
        return self.inner.next_index  # type: ignore[attr-defined,no-any-return]

    @next_index.setter
    def next_index(self, value: int) -> None:
        self.inner.next_index = value  # type: ignore[attr-defined]
        self.made = self._recorded = value
        self._unrecorded.clear()


def _finished_unless_in_flight(scheduler: BanditScheduler) -> str | None:
    """``FINISHED`` once no arm can fail any more; ``None`` (ask again) while one may."""
    if scheduler.recreates_arms and scheduler.in_flight():
        return None
    return Searcher.FINISHED


__all__ = ["ArmSource", "GatedSearcher"]
