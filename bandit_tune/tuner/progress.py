"""One live view of a running search: arms per rung, the best arm, budget and time left.

On a terminal it is a ``rich`` live table redrawn in place; when output is not a
terminal (CI, a log file) it prints one plain line at most every
``interval`` seconds and a last one at the end. Ray Tune's own trial table is
off (``verbose=0``).
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, TextIO

from bandit_tune.objective import orient


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Listens to a :class:`~bandit_tune.BanditScheduler` and shows the search's state.

    Args:
        scheduler: the scheduler whose decisions are shown.
        objective: ``(name, direction)`` of the metric.
        max_epochs: the tuner's ``max_epochs`` (the top of the rung table).
        epoch_budget: planned total epochs, if known.
        seconds_budget: wall-clock budget in seconds, if any.
        stream: where to write (default ``sys.stdout``).
        live: force the rich live display on or off (default: when ``stream`` is a TTY).
        interval: seconds between plain lines.
    """

    def __init__(
        self,
        scheduler: Any,
        objective: tuple[str, str],
        max_epochs: int,
        epoch_budget: int | None = None,
        seconds_budget: float | None = None,
        stream: TextIO | None = None,
        live: bool | None = None,
        interval: float = 10.0,
        started: float | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.name, self.direction = objective
        self.max_epochs = max_epochs
        self.epoch_budget = epoch_budget
        self.seconds_budget = seconds_budget
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty() if live is None else live
        self.interval = interval
        self.start = started if started is not None else time.monotonic()
        self._fixed_start = started is not None
        self.epochs = 0
        self.best: tuple[float, str, int] | None = None  # (score, arm, step), oriented
        from bandit_tune.tuner.results import companion_metric

        self._companion = companion_metric(self.name)
        self._arm_best: dict[str, tuple[float, float, int]] = {}  # arm -> score, loss, epoch
        self._best_key: tuple[Any, ...] | None = None
        self._seen: dict[str, int] = {}
        self._last_line = -float("inf")
        self._view: Any = None

    # -- the listener ---------------------------------------------------------------
    def __call__(self, arm_id: str, step: int, score: float, decision: str) -> None:
        """Take one decision of the scheduler (several objectives: it shows the first)."""
        self.epochs += 1
        if isinstance(score, tuple):
            score = score[0]  # oriented like a single objective's score
        if score == score:
            self._consider(arm_id, step, score)
        if self._view is None and time.monotonic() - self._last_line >= self.interval:
            self._line()

    def _take_up(self) -> None:
        """Count what a resumed search recorded before (its epochs, its best arm so far)."""
        if self.epochs:
            return
        for arm in self.scheduler.runner.arms:
            for step, score, _ in arm.decisions:
                self.epochs += 1
                if isinstance(score, (tuple, list)):
                    score = score[0]
                if score == score:
                    self._consider(arm.arm_id, int(step), float(score))

    def _consider(self, arm_id: str, step: int, score: float) -> None:
        # the arm's best so far (the first epoch that reached it, as results_ takes it),
        # ranked as results_ ranks arms: score, then the companion loss at that epoch,
        # then more epochs trained, then the arm that came first
        from bandit_tune.tuner.results import tie_break

        index = self._seen.setdefault(arm_id, len(self._seen))
        best = self._arm_best.get(arm_id)
        if best is None or score > best[0]:
            loss = math.nan
            if self._companion is not None:
                arm = self.scheduler.runner.arms.get(arm_id)
                if arm is not None and arm.results:
                    value = arm.results[-1].get(self._companion, math.nan)
                    loss = float(value) if isinstance(value, (int, float)) else math.nan
            best = self._arm_best[arm_id] = (score, loss, step)
        key = (-best[0], *tie_break(best[1], step), index)
        # the best arm's own key only improves: it stays the best
        if self.best is None or self.best[1] == arm_id or key < self._best_key:  # type: ignore[operator]
            self._best_key = key
            self.best = (best[0], arm_id, best[2])

    def __enter__(self) -> Progress:
        if not self._fixed_start:
            self.start = time.monotonic()
        self._take_up()
        if self.live:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream)
            # rendered on Live's own refresh (4 a second), not on every result
            self._view = Live(
                console=console,
                get_renderable=self.render,
                refresh_per_second=4,
                transient=False,
            )
            self._view.__enter__()
        else:
            self._line()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._view is not None:
            self._view.refresh()
            self._view.__exit__(*exc)
            self._view = None
        else:
            self._line()

    # -- what is shown --------------------------------------------------------------
    def counts(self) -> dict[int, dict[str, int]]:
        """Arms per rung (the last decision step an arm reached) and state."""
        steps = sorted(set(self.scheduler.policy.decision_steps() or [])) or [self.max_epochs]
        table = {s: {"running": 0, "paused": 0, "stopped": 0} for s in steps}
        states = self.scheduler.arm_states()
        for arm_id, events in self.scheduler.history.items():
            if not events:
                continue
            reached = events[-1][0]
            rung = max((s for s in steps if s <= reached), default=steps[0])
            table[rung][states.get(arm_id, "stopped")] += 1
        return table

    def best_text(self) -> str:
        """The best score so far with its arm's hyperparameters."""
        if self.best is None:
            return "best: -"
        score, arm_id, step = self.best
        value = orient(score, self.direction)
        config = self.scheduler.configs.get(arm_id, {})
        params = " ".join(f"{k}={_short(v)}" for k, v in config.items())
        return f"best {self.name} = {value:.4f} (arm {arm_id[-5:]}, epoch {step}): {params}"

    def budget_text(self) -> str:
        """Epochs used, elapsed time and time left."""
        elapsed = time.monotonic() - self.start
        epochs = f"{self.epochs}" + (f"/{self.epoch_budget}" if self.epoch_budget else "")
        text = f"epochs {epochs} | elapsed {_clock(elapsed)}"
        if self.seconds_budget:
            text += f" | left {_clock(self.seconds_budget - elapsed)}"
        return text

    def render(self) -> Any:
        """A rich renderable of the current state."""
        from rich.console import Group
        from rich.table import Table

        table = Table(title="bandit_tune", title_justify="left", expand=False)
        for column in ("rung (epochs)", "running", "paused", "stopped"):
            table.add_column(column, justify="right")
        for rung, row in self.counts().items():
            table.add_row(str(rung), str(row["running"]), str(row["paused"]), str(row["stopped"]))
        return Group(table, self.budget_text(), self.best_text())

    def _line(self) -> None:
        self._last_line = time.monotonic()
        counts = self.counts()
        running = sum(r["running"] for r in counts.values())
        paused = sum(r["paused"] for r in counts.values())
        stopped = sum(r["stopped"] for r in counts.values())
        print(
            f"[bandit_tune] {self.budget_text()} | arms running {running}, paused {paused}, "
            f"stopped {stopped} | {self.best_text()}",
            file=self.stream,
            flush=True,
        )


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
