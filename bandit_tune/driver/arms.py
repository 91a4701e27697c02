"""The arm table: one record per arm, the only place an arm's state is kept.

An :class:`Arm` holds what the search knows of one configuration: its config,
its state, the last step it reported, its last checkpoint, every result it
reported, every decision taken on it and how often it failed. The
:class:`ArmTable` keeps them in the order they were added, and the paused arms
in the order they were paused (the order they are offered to the policy).
Both backends (the simulator and the Ray scheduler) and the snapshot read and
write arms only here.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bandit_tune.policies.base import ArmState

RESERVED_PREFIX = "__"
"""Config keys with this prefix belong to the runner (``__arm_id``, ``__checkpoint``)."""


def _score(value: Any) -> Any:
    """A saved score: a float, or a tuple of floats (one per objective)."""
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return float(value)


def plain_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the runner's own keys (those starting with ``__``)."""
    return {k: v for k, v in config.items() if not str(k).startswith(RESERVED_PREFIX)}


class PausedView(Sequence[str]):
    """The paused arms as the policy sees them: a read-only, live sequence, O(1) to make.

    ``arm in view`` and ``len(view)`` cost O(1) and iteration is in pause order, so
    offering every paused arm to the policy after every result stays cheap with
    100,000 of them (a list copy did not). Indexing walks the arms (O(i)). The
    view follows the table: a policy that keeps it past the call keeps ``list(view)``.
    """

    __slots__ = ("_arms",)

    def __init__(self, arms: dict[str, None]) -> None:
        self._arms = arms

    def __len__(self) -> int:
        return len(self._arms)

    def __iter__(self) -> Iterator[str]:
        return iter(self._arms)

    def __contains__(self, arm_id: object) -> bool:
        return arm_id in self._arms

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return list(self._arms)[index]
        n = len(self._arms)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError("paused arm index out of range")
        if i == n - 1:
            return next(reversed(self._arms))
        return next(itertools.islice(self._arms, i, None))

    def __repr__(self) -> str:
        return f"PausedView({list(self._arms)!r})"


RELATIVE = "./"
"""Prefix of a checkpoint path saved relative to the project folder."""


def relative_to(path: str | None, root: str | None) -> str | None:
    """``path`` relative to ``root`` (as ``./...``) when it lies inside it; else unchanged."""
    if not path or root is None or "://" in path:
        return path
    try:
        rel = os.path.relpath(path, root)
    except ValueError:  # another drive
        return path
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return path
    return RELATIVE + rel.replace(os.sep, "/")


def absolute_in(path: str | None, root: str | None) -> str | None:
    """The inverse of :func:`relative_to`: a ``./`` path joined to ``root``."""
    if not path or not path.startswith(RELATIVE) or root is None:
        return path
    return os.path.join(root, *path[len(RELATIVE) :].split("/"))


@dataclass(slots=True)
class Arm:
    """One configuration of the search and everything that happened to it.

    Attributes:
        arm_id: the arm's name.
        config: its hyperparameters (without the runner's ``__`` keys).
        state: :class:`ArmState`.
        step: the last step (epoch) it reported.
        checkpoint: where its last checkpoint is (a path or URI), if any.
        results: every reported result's scalar values, one dict per step.
        decisions: ``(step, score, decision)`` per result, score higher-is-better.
        failures: how many times its training failed (each retry counts).
        decided: whether the policy itself ended it (a STOP decision, or
            ``arms_to_stop``): then it is not told ``on_arm_finished``.
        checkpoint_step: the step its last checkpoint was taken at, if known.
        lineage: its exploits, oldest first: ``{"order", "step", "results", "donor",
            "donor_step", "old", "new"}`` (the exploit's rank in the search, the step
            it left, how many results it had reported, the arm and step it continued
            from, the mutable values before and after).
    """

    arm_id: str
    config: dict[str, Any]
    state: ArmState = ArmState.RUNNING
    step: int = 0
    checkpoint: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[tuple[int, float, str]] = field(default_factory=list)
    failures: int = 0
    decided: bool = False
    checkpoint_step: int | None = None
    lineage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def worker(self) -> Any:
        """The worker (process id) that reported the arm's last result, if known."""
        return self.results[-1].get("worker_pid") if self.results else None

    def to_json(self, root: str | None = None) -> dict[str, Any]:
        """The arm as plain data (the snapshot's layout); a checkpoint under ``root`` relative."""
        return {
            "config": self.config,
            "state": self.state.value,
            "last_step": self.step,
            "checkpoint": relative_to(self.checkpoint, root),
            "failures": self.failures,
            "decided": self.decided,
            "checkpoint_step": self.checkpoint_step,
            "lineage": self.lineage,
        }


class ArmTable:
    """Every arm of a search by id, in the order added; paused arms in the order paused."""

    def __init__(self) -> None:
        self._arms: dict[str, Arm] = {}
        self._paused: dict[str, None] = {}
        self._running = 0

    def add(self, arm_id: str, config: dict[str, Any]) -> Arm:
        """Add a new running arm; raise ``ValueError`` if the id is taken."""
        if arm_id in self._arms:
            raise ValueError(f"arm {arm_id!r} was added twice")
        arm = self._arms[arm_id] = Arm(arm_id, plain_config(config))
        self._running += 1
        return arm

    def set_state(self, arm_id: str, state: ArmState) -> None:
        """Move ``arm_id`` to ``state``, keeping the paused order and the running count."""
        arm = self._arms[arm_id]
        if arm.state is state:
            return
        if arm.state is ArmState.PAUSED:
            del self._paused[arm_id]
        elif arm.state is ArmState.RUNNING:
            self._running -= 1
        if state is ArmState.PAUSED:
            self._paused[arm_id] = None
        elif state is ArmState.RUNNING:
            self._running += 1
        arm.state = state

    @property
    def paused(self) -> dict[str, None]:
        """Paused arms, in the order they were paused (read-only use)."""
        return self._paused

    @property
    def paused_view(self) -> PausedView:
        """The paused arms as a read-only live sequence (what the policy is offered)."""
        return PausedView(self._paused)

    @property
    def n_running(self) -> int:
        """Arms training, starting or waiting for a worker."""
        return self._running

    def __getitem__(self, arm_id: str) -> Arm:
        return self._arms[arm_id]

    def get(self, arm_id: str) -> Arm | None:
        """The arm, or ``None``."""
        return self._arms.get(arm_id)

    def __contains__(self, arm_id: object) -> bool:
        return arm_id in self._arms

    def __iter__(self) -> Iterator[Arm]:
        return iter(self._arms.values())

    def __len__(self) -> int:
        return len(self._arms)

    def ids(self) -> list[str]:
        """Arm ids in the order they were added."""
        return list(self._arms)

    # -- views the facade and the progress display read ---------------------------------
    def results(self) -> dict[str, list[dict[str, Any]]]:
        """Per arm: its reported results."""
        return {a.arm_id: a.results for a in self._arms.values()}

    def decisions(self) -> dict[str, list[tuple[int, float, str]]]:
        """Per arm: its ``(step, score, decision)`` history."""
        return {a.arm_id: a.decisions for a in self._arms.values()}

    def to_json(self, root: str | None = None) -> dict[str, Any]:
        """Every arm as plain data with results and decisions; paths under ``root`` relative."""
        return {
            "arms": {a.arm_id: a.to_json(root) for a in self._arms.values()},
            "results": self.results(),
            "history": {a.arm_id: [list(d) for d in a.decisions] for a in self._arms.values()},
        }

    def without_results(self) -> ArmTable:
        """A copy of the table whose arms keep no results and decisions (a light copy)."""
        table = ArmTable()
        for arm in self._arms.values():
            table._arms[arm.arm_id] = Arm(
                arm.arm_id,
                arm.config,
                arm.state,
                arm.step,
                arm.checkpoint,
                failures=arm.failures,
                decided=arm.decided,
                checkpoint_step=arm.checkpoint_step,
                lineage=arm.lineage,
            )
        table._paused = dict(self._paused)
        table._running = self._running
        return table

    @classmethod
    def from_json(
        cls,
        payload: dict[str, Any],
        paused_order: list[str] | None = None,
        root: str | None = None,
    ) -> ArmTable:
        """The table :meth:`to_json` wrote; paused arms in ``paused_order`` when given.

        Relative checkpoint paths are joined to ``root`` (where the project is now).
        """
        table = cls()
        results = payload.get("results", {})
        history = payload.get("history", {})
        for arm_id, data in payload["arms"].items():
            arm = table.add(arm_id, dict(data["config"]))
            arm.step = int(data["last_step"])
            arm.checkpoint = absolute_in(data.get("checkpoint") or None, root)
            arm.failures = int(data.get("failures", 0))
            arm.decided = bool(data.get("decided", False))
            step = data.get("checkpoint_step")
            arm.checkpoint_step = None if step is None else int(step)
            arm.lineage = [dict(e) for e in data.get("lineage") or []]
            arm.results = [dict(r) for r in results.get(arm_id, [])]
            arm.decisions = [(int(s), _score(v), str(d)) for s, v, d in history.get(arm_id, [])]
            state = ArmState(data["state"])
            if state is not ArmState.PAUSED:
                table.set_state(arm_id, state)
        paused = [a for a, d in payload["arms"].items() if d["state"] == ArmState.PAUSED.value]
        if paused_order is not None:
            order = {a: i for i, a in enumerate(paused_order)}
            paused.sort(key=lambda a: order.get(a, len(order)))
        for arm_id in paused:
            table.set_state(arm_id, ArmState.PAUSED)
        return table


def results_before_last_exploit(arm: Any, n: int) -> int:
    """How many of the arm's ``n`` results came before its last exploit (0: none).

    An arm that took another arm's model (population-based training) holds only
    the epochs since then: its best score is read from those. ``0`` also when the
    arm's decisions do not line up with its ``n`` results.
    """
    if arm is None or not getattr(arm, "lineage", None):
        return 0
    before = arm.lineage[-1].get("results")
    if isinstance(before, int):  # recorded at the exploit (a paused arm has no EXPLOIT label)
        return min(before, n)
    labels = [d[2] for d in arm.decisions]  # a snapshot from before the count was kept
    if "EXPLOIT" not in labels or len(labels) != n:
        return 0
    return n - labels[::-1].index("EXPLOIT")


def error_line(text: str) -> str:
    """The failing exception's own line from an arm's error (Ray wraps it in a traceback)."""
    import re

    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", text).splitlines()]
    lines = [line for line in lines if line and not line.startswith(("File ", "^", "~", "[["))]
    named = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt)\b", line)]
    return (named or lines or [text.strip()])[-1]
