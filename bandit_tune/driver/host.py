"""The runner with what a search sets on it: the part of a scheduler that needs no Ray Tune.

:class:`~bandit_tune.ray_tune.scheduler.BanditScheduler` (a Ray Tune ``TrialScheduler``)
is this plus Ray's trial events. The pool's search (``backend="pool"``) holds
its runner in a plain :class:`RunnerHost`, so its driver never imports Ray
Tune (~1.4 s of CPU at start-up).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from typing import Any

from bandit_tune.driver.arms import RESERVED_PREFIX
from bandit_tune.driver.runner import Runner
from bandit_tune.policies.base import ArmPolicy


class RunnerHost:
    """A :class:`~bandit_tune.driver.Runner` with the settings and views a search uses.

    Args:
        policy: the arm policy.
        metric: the result key the policy scores.
        mode: ``"max"`` or ``"min"``.
        time_attr: the result key that counts steps (epochs).
        objectives: several objectives, ``[(metric, "max" | "min"), ...]``, for a
            multi-objective policy (``metric`` and ``mode`` then name the first).
    """

    def __init__(
        self,
        policy: ArmPolicy,
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        objectives: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__()
        if mode not in (None, "min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        #: Several objectives' ``(metric, direction)``; ``None``: one metric.
        self.objectives = [tuple(o) for o in objectives] if objectives else None
        if self.objectives is not None:
            metric, mode = self.objectives[0]
        directions: Any = [d for _, d in self.objectives] if self.objectives else mode or "max"
        #: The runner: the arm table, the loop, budgets and the snapshot.
        self.runner = Runner(policy, mode=directions, metric=metric)
        self._metric = metric
        self._mode = mode
        self.time_attr = time_attr
        #: Ray trial id -> arm id, for arms re-created as new trials (empty on the pool).
        self.arm_of: dict[str, str] = {}
        #: The error that ended the search, if the policy or a result was at fault.
        self.policy_error: Exception | None = None

    # -- what the tuner sets and reads (the runner's) --------------------------------
    @property
    def max_consecutive_failures(self) -> int | None:
        """Arms that may fail for good one after another (the runner enforces it)."""
        return self.runner.max_consecutive_failures

    @max_consecutive_failures.setter
    def max_consecutive_failures(self, value: int | None) -> None:
        self.runner.max_consecutive_failures = value

    @property
    def policy(self) -> ArmPolicy:
        """The arm policy."""
        return self.runner.policy

    @property
    def slots(self) -> int | None:
        """Maximum arms running at once (set by the tuner); gates new arms."""
        return self.runner.slots

    @slots.setter
    def slots(self, value: int | None) -> None:
        self.runner.slots = value

    @property
    def budget(self) -> Any:
        """The search's limits (:class:`~bandit_tune.driver.budget.Budget`), enforced here."""
        return self.runner.budget

    @budget.setter
    def budget(self, value: Any) -> None:
        self.runner.budget = value

    @property
    def state_path(self) -> str | None:
        """Where the runner's snapshot goes (``None``: nowhere)."""
        return self.runner.state_path

    @state_path.setter
    def state_path(self, value: str | None) -> None:
        self.runner.state_path = value

    @property
    def extra_state(self) -> Callable[[], dict[str, Any]] | None:
        """Extra JSON-able state for the snapshot (the searcher's position)."""
        return self.runner.extra_state

    @extra_state.setter
    def extra_state(self, value: Callable[[], dict[str, Any]] | None) -> None:
        self.runner.extra_state = value

    @property
    def listeners(self) -> list[Callable[[str, int, float, str], None]]:
        """Called with ``(arm_id, step, score, decision)`` after each decision."""
        return self.runner.listeners

    @property
    def results(self) -> dict[str, list[dict[str, Any]]]:
        """Per arm: every reported result's scalar values (kept by the driver)."""
        return self.runner.arms.results()

    @property
    def history(self) -> dict[str, list[tuple[int, float, str]]]:
        """Per arm: ``(step, score, decision)`` in the order they happened."""
        return self.runner.arms.decisions()

    @property
    def configs(self) -> dict[str, dict[str, Any]]:
        """Per arm: its hyperparameters."""
        return {arm.arm_id: arm.config for arm in self.runner.arms}

    @property
    def checkpoints(self) -> dict[str, str]:
        """Per arm: the path of its last checkpoint."""
        return {arm.arm_id: arm.checkpoint for arm in self.runner.arms if arm.checkpoint}

    @property
    def failures(self) -> collections.Counter[str]:
        """Per arm: how many times its trial failed (each retry and the final failure)."""
        return collections.Counter({arm.arm_id: arm.failures for arm in self.runner.arms})

    @property
    def wake(self) -> collections.deque[str]:
        """Arms to re-create as Ray trials now (the runner's)."""
        return self.runner.wake

    @property
    def metric(self) -> str | None:
        """The metric the policy scores."""
        return self._metric

    def accepts_new_arm(self, running: int = 0) -> bool:
        """Whether the budget and the policy's plan leave room for another arm."""
        return self.runner.accepts_new_arm(running)

    def arm_states(self) -> dict[str, str]:
        """Each known arm's state: ``"running"``, ``"paused"`` or ``"stopped"``."""
        return {arm.arm_id: arm.state.value for arm in self.runner.arms}

    def trials(self) -> list[Any]:
        """Ray Tune trials of the arms: none here (see the scheduler's)."""
        return []

    # -- the snapshot (the runner's) and Ray's own save / restore -------------------
    def snapshot(self, force: bool = False) -> None:
        """Write the runner's snapshot to :attr:`state_path` (atomically; throttled)."""
        self.runner.snapshot(force)

    def restore_snapshot(self, payload: dict[str, Any]) -> None:
        """Take up a snapshot: arms that were running are re-created at once, paused ones wait."""
        self.runner.restore(payload)

    def resume_config(self, arm_id: str) -> dict[str, Any]:
        """The config that re-creates ``arm_id`` as a Ray trial, pointing at its checkpoint."""
        arm = self.runner.arms[arm_id]
        config = dict(arm.config)
        config[RESERVED_PREFIX + "arm_id"] = arm_id
        if arm.checkpoint:
            config[RESERVED_PREFIX + "checkpoint"] = arm.checkpoint
        return config

    def save(self, checkpoint_path: str) -> None:
        """Write the runner's state (the snapshot's layout) to ``checkpoint_path``."""
        with open(checkpoint_path, "w") as f:
            json.dump(self.get_state(), f, default=str)

    def restore(self, checkpoint_path: str) -> None:
        """Load a state written by :meth:`save`."""
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))

    def get_state(self) -> dict[str, Any]:
        """The runner's state, as plain data."""
        return self.runner.state()

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output."""
        self.runner.restore(state)
