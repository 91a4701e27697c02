"""Replay recorded learning curves through any arm policy: virtual workers over the runner.

The simulator owns ``n_workers`` virtual workers and nothing else: which arm a
free worker takes (a paused arm the policy resumes, a new arm, or — when nothing
runs and no arm is left — the policy settling), the budgets and the snapshot are
the :class:`~bandit_tune.driver.Runner`'s, the same runner the Ray scheduler
drives. Each epoch of an arm takes its recorded seconds on a virtual clock. No
Ray, no TensorFlow: thousands of arms replay in a second.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandit_tune.driver.checks import integer, number
from bandit_tune.driver.runner import Runner
from bandit_tune.policies.base import (
    ArmPolicy,
    ArmState,
    Decision,
    PolicyError,
    call_policy,
    choose,
    decide,
)

__all__ = [
    "PolicyError",
    "Simulation",
    "SimulationResult",
    "call_policy",
    "choose",
    "decide",
    "simulate",
]


@dataclass
class SimulationResult:
    """What a replay produced.

    Attributes:
        trace: ``(epochs_used, seconds, best_score_so_far)`` after every epoch.
        decisions: ``(arm_id, step, score, decision)`` for every result.
        epochs: epochs trained per arm id.
        best_arm: the arm with the best score at any step it reached.
        best_score: that score.
        epochs_used: total epochs trained.
        seconds: simulated wall-clock seconds.
        best_found_at: simulated seconds when :attr:`best_score` was first reached.
        busy_seconds: worker-seconds spent training (lost epochs included).
        worker_seconds: worker-seconds the workers were there (a lost worker is
            not there until its replacement comes).
        workers_lost: workers lost during the replay (``worker_loss``).
    """

    trace: list[tuple[int, float, float]] = field(default_factory=list)
    decisions: list[tuple[str, int, float, str]] = field(default_factory=list)
    epochs: dict[str, int] = field(default_factory=dict)
    best_arm: str | None = None
    best_score: float = -math.inf
    epochs_used: int = 0
    seconds: float = 0.0
    best_found_at: float = 0.0
    busy_seconds: float = 0.0
    worker_seconds: float = 0.0
    workers_lost: int = 0

    @property
    def idle_share(self) -> float:
        """The share of the workers' time they had no arm to train (0 to 1)."""
        if self.worker_seconds <= 0:
            return 0.0
        return max(0.0, 1.0 - self.busy_seconds / self.worker_seconds)


def simulate(
    policy: ArmPolicy,
    curves: Any,
    n_workers: int = 1,
    budget: int | None = None,
    seconds: Any = None,
    seed: int | None = None,
    max_arms: int | None = None,
    time_budget: float | None = None,
    worker_speed: Any = None,
    worker_loss: float = 0.0,
    worker_restart: float = 60.0,
    proposer: Any = None,
) -> SimulationResult:
    """Replay recorded learning curves through ``policy``, as the Ray scheduler drives it.

    Args:
        policy: any :class:`~bandit_tune.policies.ArmPolicy`; it is driven in place.
        curves: recorded scores per arm and epoch, higher is better (NaN: the arm
            diverged) — an array ``[arms, epochs]``, a list of curves of any
            lengths, :func:`~bandit_tune.load_curves`'s :class:`~bandit_tune.Curves`,
            or a tuner after ``search``, its ``results_`` or its project directory
            (see :func:`~bandit_tune.replay.curves.as_curves`). An arm whose curve ends
            stops there.
        n_workers: arms trained at the same time.
        budget: epochs in all (the tuner's ``max_total_epochs``; ``None``: until the
            policy is done).
        seconds: seconds per epoch, a scalar, one value per arm (an arm's speed) or
            an array shaped like ``curves`` (default: the recorded seconds, else 1.0).
        seed: shuffle the order in which arms are drawn (``None``: recorded order).
        max_arms: draw at most this many arms.
        time_budget: a wall-clock budget in (virtual) seconds, enforced and
            re-planned as the tuner's ``budget=`` is on Ray.
        worker_speed: per worker, a factor on its epochs' seconds (``2.0``: a
            worker half as fast); ``n_workers`` values. ``None``: all alike.
        worker_loss: the chance that the worker training an epoch is lost during
            it: the epoch is not reported, the arm is placed again from its last
            epoch on another worker (as Ray retries it from its checkpoint), and
            the worker's replacement joins ``worker_restart`` seconds later. Drawn
            with ``seed`` (0 when ``None``), so a replay stays reproducible.
        worker_restart: seconds until a lost worker's replacement joins.
        proposer: a :class:`~bandit_tune.replay.proposers.Proposer` that picks which
            recorded arm starts next from the arms' configurations and every
            result so far (the searcher's role on Ray); ``None``: the seeded order.

    Returns:
        A :class:`SimulationResult` with the anytime trace and every decision.
    """
    if getattr(policy, "mutable_keys", None) is not None:
        raise ValueError(
            f"{type(policy).__name__} moves weights between arms and changes their "
            "hyperparameters during training; recorded learning curves cannot show what "
            "an arm would have scored after that. Run it in a live search (a tuner's "
            "policy=, or run_arms)"
        )
    return Simulation(
        policy, curves, n_workers, budget, seconds, seed, max_arms, time_budget,
        worker_speed=worker_speed, worker_loss=worker_loss, worker_restart=worker_restart,
        proposer=proposer,
    ).run()


class Simulation:
    """A replay that can stop after some results, be snapshot and resumed.

    :func:`simulate` runs one to the end. ``Simulation(...).run(max_results=k)``
    stops after ``k`` results; :attr:`runner`'s :meth:`~bandit_tune.driver.Runner.state`
    is then what a killed driver leaves in ``state.json``, and
    :meth:`restore` takes it up in a fresh simulation (with a fresh policy).
    Arguments are :func:`simulate`'s.
    """

    def __init__(
        self,
        policy: ArmPolicy,
        curves: Any,
        n_workers: int = 1,
        budget: int | None = None,
        seconds: Any = None,
        seed: int | None = None,
        max_arms: int | None = None,
        time_budget: float | None = None,
        worker_speed: Any = None,
        worker_loss: float = 0.0,
        worker_restart: float = 60.0,
        proposer: Any = None,
    ) -> None:
        from bandit_tune.driver.budget import Budget
        from bandit_tune.replay.curves import as_curves

        recorded = as_curves(curves)
        self.scores, self.lengths = recorded.scores, recorded.lengths
        self.configs = recorded.configs
        self.objectives = recorded.n_objectives
        shape = self.scores.shape[:2]  # [arms, epochs]
        _check_limits(n_workers, budget, time_budget)
        if seconds is None:
            seconds = recorded.seconds
        given = np.asarray(1.0 if seconds is None else seconds, dtype=float)
        self.times = _epoch_times(given, shape)
        self._uneven = given.ndim > 0  # else every epoch takes the same time
        self._epoch = float(given) if given.ndim == 0 else 0.0
        order = list(range(self.scores.shape[0]))
        if seed is not None:
            order = [int(i) for i in np.random.default_rng(seed).permutation(len(order))]
        self.order = order[:max_arms] if max_arms is not None else order
        self.n_workers = n_workers
        self.speed = _speeds(worker_speed, n_workers)
        if isinstance(worker_loss, bool) or not 0.0 <= float(worker_loss) < 1.0:
            raise ValueError(f"worker_loss must be a chance in [0, 1), got {worker_loss!r}")
        if not float(worker_restart) >= 0:
            raise ValueError(f"worker_restart must be seconds >= 0, got {worker_restart!r}")
        self.worker_loss, self.worker_restart = float(worker_loss), float(worker_restart)
        self._loss_rng = np.random.default_rng(0 if seed is None else seed)
        self.free: list[int] = list(range(n_workers))  # a heap of free worker indices
        self.returning: list[tuple[float, int]] = []  # (when, worker) replacing a lost one
        self._away = 0.0  # worker-seconds lost workers were gone
        self.now = 0.0
        limits = None
        if budget is not None or time_budget is not None:
            limits = Budget(
                seconds=time_budget,
                max_total_epochs=budget,
                started=0.0,
                clock=self._clock,
            )
        mode: Any = "max" if self.objectives == 1 else ["max"] * self.objectives
        self.runner = Runner(policy, mode=mode, budget=limits, slots=n_workers, clock=self._clock)
        if self.objectives > 1:
            self._reference = recorded.reference()
            self._front: list[tuple[float, ...]] = []
        self.runner.extra_state = self._extra
        self.proposer = proposer
        if proposer is not None:
            _check_proposer(proposer, self.objectives)
            proposer.setup(self.configs, self.scores.shape[1], seed)
        self.next_new = 0
        self.running: list[tuple[float, int, str, int]] = []  # (finish, tie, arm, worker)
        self._rows: dict[str, int] = {}
        self._tie = 0
        self.result = SimulationResult()

    def _clock(self) -> float:
        return self.now

    def _front_add(self, point: tuple[float, ...], arm_id: str) -> None:
        """Several objectives: grow the observed front; best_score is its hypervolume."""
        from bandit_tune.policies.pareto import hypervolume

        if not all(math.isfinite(v) for v in point):
            return
        front = self._front
        if any(all(f >= p for f, p in zip(kept, point)) for kept in front):
            return  # dominated by (or equal to) a point already seen
        front[:] = [k for k in front if not all(p >= f for f, p in zip(k, point))] + [point]
        volume = hypervolume(front, self._reference)
        if volume > self.result.best_score:
            self.result.best_score, self.result.best_arm = volume, arm_id
            self.result.best_found_at = self.now

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"next_new": self.next_new, "now": self.now}
        if self.proposer is not None:
            extra["order"] = list(self.order)  # the proposer's picks come first
        return extra

    def _next_row(self) -> int:
        """The recorded arm to start next: the proposer's pick, else the seeded order."""
        if self.proposer is not None:
            available = self.order[self.next_new :]
            row = self.proposer.propose(available)
            try:
                at = available.index(row)
            except ValueError:
                raise PolicyError(
                    f"{type(self.proposer).__name__}.propose returned {row!r}, which is not one "
                    f"of the {len(available)} recorded arms not started yet"
                ) from None
            i = self.next_new + at
            self.order[self.next_new], self.order[i] = self.order[i], self.order[self.next_new]
        row = self.order[self.next_new]
        self.next_new += 1
        return row

    def _row(self, arm_id: str) -> int:
        row = self._rows.get(arm_id)
        if row is None:
            row = self._rows[arm_id] = int(self.runner.arms[arm_id].config["_arm"])
        return row

    def _launch(self, arm_id: str, worker: int | None = None) -> None:
        self._tie += 1
        step = self.runner.arms[arm_id].step
        duration = float(self.times[self._row(arm_id), step]) if self._uneven else self._epoch
        if worker is None:
            worker = heapq.heappop(self.free)
        duration *= self.speed[worker]
        self.result.busy_seconds += duration
        heapq.heappush(self.running, (self.now + duration, self._tie, arm_id, worker))

    def _rejoin(self) -> None:
        while self.returning and self.returning[0][0] <= self.now:
            _, worker = heapq.heappop(self.returning)
            heapq.heappush(self.free, worker)

    def _fill(self) -> None:
        self._rejoin()
        self.runner.fill(self)

    # -- the backend the runner fills (driver.runner.Backend) ---------------------------
    def has_free_worker(self) -> bool:
        """Whether a virtual worker waits for an arm."""
        return bool(self.free)

    def n_running(self) -> int:
        """Arms training now."""
        return len(self.running)

    def has_new_config(self) -> bool:
        """Whether a recorded curve is left to start."""
        return self.next_new < len(self.order)

    def preferred(self) -> list[str]:
        """No worker holds a model in the replay: no arm comes first."""
        return []

    def new_arm(self) -> tuple[str, dict[str, Any]]:
        """The next recorded curve as an arm."""
        row = self._next_row()
        config = self.configs[row] if row < len(self.configs) else {}
        return f"arm_{row:05d}", {"_arm": row, **config}

    def launch(self, arm_id: str) -> None:
        """Train ``arm_id`` on the free worker."""
        self._launch(arm_id)

    def end(self, arm_ids: list[str]) -> None:
        """No worker holds a paused arm in the replay: nothing to stop."""

    def run(self, max_results: int | None = None) -> SimulationResult:
        """Replay until the policy is done (or ``max_results`` more results); return the result."""
        runner, result, arms = self.runner, self.result, self.runner.arms
        scores, times, lengths = self.scores, self.times, self.lengths
        timed = runner.budget is not None  # the epoch's seconds only matter to a budget
        stopped, running, go_on = ArmState.STOPPED, ArmState.RUNNING, Decision.CONTINUE
        done = 0
        self._fill()
        while (self.running or self.returning) and (max_results is None or done < max_results):
            if not self.running:  # every worker lost: wait for a replacement
                before = self.now
                self.now = self.returning[0][0]
                self._fill()
                if not self.running:
                    self.now = before  # nothing was left to train
                    break
                continue
            self.now, _, arm_id, worker = heapq.heappop(self.running)
            if self.worker_loss and self._loss_rng.random() < self.worker_loss:
                result.workers_lost += 1
                heapq.heappush(self.returning, (self.now + self.worker_restart, worker))
                self._away += self.worker_restart
                runner.arm_failed(arm_id, retry=True)  # placed again from its last epoch
                self._fill()
                continue
            row = self._row(arm_id)
            arm = arms[arm_id]
            step = arm.step + 1
            if self.objectives == 1:
                score = float(scores[row, step - 1])
            else:
                score = tuple(float(v) for v in scores[row, step - 1])
            decision, _ = runner.report(
                arm_id,
                step,
                score,
                seconds=float(times[row, step - 1]) if timed else None,
                in_flight=len(self.running),
            )
            if self.proposer is not None:
                self.proposer.observe(row, step, score)
            done += 1
            result.epochs_used += 1
            result.epochs[arm_id] = step
            if self.objectives > 1:
                self._front_add(score, arm_id)
            elif score > result.best_score and math.isfinite(score):
                result.best_score, result.best_arm = score, arm_id
                result.best_found_at = self.now
            result.trace.append((result.epochs_used, self.now, result.best_score))
            assert decision is not None  # a virtual worker never repeats a step
            result.decisions.append((arm_id, step, score, decision.value))
            if step >= lengths[row] and arm.state is not stopped:
                runner.arm_ended(arm_id)  # ran out of curve
                heapq.heappush(self.free, worker)
            elif decision is go_on and arm.state is running:
                self._launch(arm_id, worker)  # it goes on where it is
            else:
                heapq.heappush(self.free, worker)
            self._fill()
        result.seconds = self.now
        away = sum(max(0.0, when - self.now) for when, _ in self.returning)
        result.worker_seconds = self.n_workers * self.now - (self._away - away)
        return result

    def restore(self, state: dict[str, Any], result: SimulationResult | None = None) -> None:
        """Take up a snapshot of another simulation of the same curves (see the class)."""
        self.runner.restore(state)
        extra = state.get("extra", {})
        self.next_new = int(extra.get("next_new", 0))
        self.now = float(extra.get("now", 0.0))
        if self.proposer is not None and "order" in extra:
            self.order = [int(r) for r in extra["order"]]
            if callable(getattr(self.proposer, "on_resume", None)):
                self.proposer.on_resume(self.order[: self.next_new])
            for arm in self.runner.arms:  # the proposer sees again what it saw
                row = self._row(arm.arm_id)
                for step in range(1, arm.step + 1):
                    self.proposer.observe(row, step, float(self.scores[row, step - 1]))
        if result is not None:
            self.result = result


def _check_limits(n_workers: Any, budget: Any, time_budget: Any) -> None:
    integer("n_workers", n_workers)
    integer("budget (epochs)", budget, optional=True)
    number("time_budget (seconds)", time_budget, positive=True, optional=True)


def _epoch_times(given: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Seconds per epoch shaped ``[arms, epochs]``: one number, one per arm, or one per epoch."""
    if given.ndim == 1 and len(given) == shape[0]:
        given = given[:, None]  # one value per arm: its seconds per epoch
    try:
        return np.broadcast_to(given, shape)
    except ValueError:
        raise ValueError(
            f"seconds must be a number, one value per arm ({shape[0]}) or an "
            f"array shaped like the curves {shape}, got shape {given.shape}"
        ) from None


def _speeds(worker_speed: Any, n_workers: int) -> list[float]:
    """Each worker's speed factor (1.0 each when not given)."""
    if worker_speed is None:
        return [1.0] * n_workers
    speed = [float(v) for v in np.asarray(worker_speed, dtype=float).ravel()]
    if len(speed) != n_workers or not all(math.isfinite(v) and v > 0 for v in speed):
        raise ValueError(
            f"worker_speed must be {n_workers} positive factors (one per worker), "
            f"got {worker_speed!r}"
        )
    return speed


def _check_proposer(proposer: Any, objectives: int) -> None:
    if objectives > 1:
        raise ValueError(
            "proposers model one objective; these curves hold "
            f"{objectives}: replay them without a proposer"
        )
    if not callable(getattr(proposer, "propose", None)):
        raise TypeError(
            "proposer must be a bandit_tune.replay.proposers.Proposer, got "
            f"{type(proposer).__name__}"
        )
