"""Budgets: parse "10m", plan Hyperband brackets that fit, and re-plan from measured epoch times.

A search can be bounded by wall-clock time (``budget="10m"``), by epochs
(``max_total_epochs=N``) or both. Before it starts, :func:`plan_brackets` sizes
Hyperband's brackets so that only whole brackets run: brackets are taken in
Algorithm 1's order (most aggressive first, then again from the top) while
they fit; one that does not fit is shrunk to fewer arms, or skipped. During a
wall-clock search the scheduler measures how many epochs per second the
workers really deliver (start-up, checkpoints and all) and re-plans the
brackets that have not opened yet (:meth:`Budget.replan`). When either limit is
reached every arm stops and the search ends with the best arm so far.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from bandit_tune.objective import orient
from bandit_tune.policies._rungs import plan_brackets

__all__ = ["Budget", "parse_budget", "plan_brackets"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")


def parse_budget(value: Any) -> float:
    """Seconds in a wall-clock budget: ``"90s"``, ``"10m"``, ``"2h"``, ``"1h30m"`` or a number.

    Raises:
        ValueError: naming the value and the accepted forms.
    """
    if isinstance(value, bool):
        raise ValueError(
            f"budget must be a duration like '90s', '10m', '2h' or seconds, got {value!r}"
        )
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"budget {value!r} is not a duration; use e.g. '90s', '10m', '2h', '1h30m' "
                    "or a number of seconds"
                )
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"budget must be a duration like '10m' or seconds, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"budget must be a positive duration, got {value!r}")
    return seconds


@dataclass
class Budget:
    """The limits of one search and the driver-side clock that enforces them.

    Attributes:
        seconds: wall-clock budget, counted from ``started`` (``None``: none).
        max_total_epochs: epochs in all (``None``: none).
        target_score: end as soon as an arm reaches this metric value (``None``: never).
        mode: ``"max"`` or ``"min"`` for ``target_score``.
        started: ``time.monotonic()`` when the search began (Ray start included).
        reserve: seconds kept back at the end for stopping arms and writing results.
        clock: the clock the wall-clock budget reads (``time.monotonic``; a replay
            passes its virtual clock, with ``started`` on that clock).
    """

    seconds: float | None = None
    max_total_epochs: int | None = None
    target_score: float | None = None
    mode: str = "max"
    started: float = field(default_factory=time.monotonic)
    reserve: float = 0.0
    epochs: int = 0
    first_result: float | None = None
    reason: str | None = None
    epoch_seconds: float = 0.0  # running mean of one epoch's seconds
    clock: Any = field(default=time.monotonic, repr=False, compare=False)

    @property
    def deadline(self) -> float | None:
        """When arms must stop (monotonic clock)."""
        if self.seconds is None:
            return None
        return self.started + self.seconds - self.reserve

    def seconds_left(self) -> float | None:
        """Seconds until the deadline (``None`` without a wall-clock budget)."""
        deadline = self.deadline
        return None if deadline is None else deadline - self.clock()

    def record(self, value: float, seconds: float | None = None) -> None:
        """Count one trained epoch that reported ``value`` (and took ``seconds``)."""
        now = self.clock()
        if self.first_result is None:
            self.first_result = now
        self.epochs += 1
        if seconds is not None and seconds == seconds and seconds >= 0:
            self.epoch_seconds += (seconds - self.epoch_seconds) / self.epochs
        if self.target_score is not None and value == value:
            reached = orient(value, self.mode) >= orient(self.target_score, self.mode)
            if reached and self.reason is None:
                self.reason = f"target_score {self.target_score} reached"

    def exhausted(self, in_flight: int = 0) -> bool:
        """Whether no further epoch may start (``in_flight`` epochs are already running)."""
        if self.reason is not None:
            return True
        if self.max_total_epochs is not None and self.epochs + in_flight >= self.max_total_epochs:
            self.reason = f"max_total_epochs={self.max_total_epochs} used"
            return True
        left = self.seconds_left()
        if left is not None and left <= self.epoch_seconds:  # the next epoch would overrun
            self.reason = f"budget of {self.seconds:g} s used"
            return True
        return False

    def epochs_per_second(self) -> float | None:
        """Epochs the workers delivered per wall-clock second since the first result."""
        if self.first_result is None or self.epochs < 2:
            return None
        spent = self.clock() - self.first_result
        return self.epochs / spent if spent > 0 else None

    def epochs_left(self) -> int | None:
        """Epochs that still fit: the tighter of the epoch cap and the measured rate x time left."""
        left: list[int] = []
        if self.max_total_epochs is not None:
            left.append(self.max_total_epochs - self.epochs)
        seconds = self.seconds_left()
        rate = self.epochs_per_second()
        if seconds is not None and rate is not None:
            left.append(int(rate * max(0.0, seconds)))
        return min(left) if left else None
