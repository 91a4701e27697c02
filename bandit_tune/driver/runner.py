"""The runner: the one run loop every backend drives, over the arm table.

A backend — :func:`bandit_tune.replay.simulate`'s virtual workers, or
:class:`bandit_tune.BanditScheduler` on Ray Tune — only moves arms between
workers. It tells the runner what happened (:meth:`Runner.add_arm`,
:meth:`Runner.report`, :meth:`Runner.arm_ended`) and asks it what a free worker
does next (:meth:`Runner.next_arm`, :meth:`Runner.settle`). The runner keeps the
arm table, calls the policy's hooks (checked), applies the epoch and wall-clock
budgets and their re-plans, and writes the snapshot a resumed search starts
from. Each call returns the arms the backend must end (paused arms the policy
gave up on, or that a spent budget ends), so both backends stop the same arms
at the same moment.

No Ray, no TensorFlow: the same runner replays recorded curves in seconds and
drives a cluster.
"""

from __future__ import annotations

import collections
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bandit_tune.driver.arms import Arm, ArmTable
from bandit_tune.objective import orient
from bandit_tune.policies.base import (
    ArmPolicy,
    ArmState,
    Decision,
    Exploit,
    PolicyError,
    call_policy,
    check_policy,
    choose,
    decide,
)

SNAPSHOT_VERSION = 1

#: Times an arm is placed again after its worker died (or its node) when the
#: arm's own retries are fewer: a lost worker is not the arm's fault.
LOST_WORKER_RETRIES = 3


def retry_limit(max_failures: int, lost_worker: bool) -> int:
    """The failures an arm may have and still be placed again (negative: no limit).

    Its own ``max_failures``; after a lost worker at least :data:`LOST_WORKER_RETRIES`.
    """
    if lost_worker and max_failures >= 0:
        return max(max_failures, LOST_WORKER_RETRIES)
    return max_failures

class TooManyFailures(RuntimeError):
    """More arms failed one after another than ``max_consecutive_failed_trials`` allows."""


RESUME = "resume"
""":meth:`Runner.next_arm`: resume the paused arm it names."""
NEW = "new"
""":meth:`Runner.next_arm`: start a new arm."""
WAIT = "wait"
""":meth:`Runner.next_arm`: nothing to start now."""
EXPLOIT = "EXPLOIT"
"""The decision recorded in an arm's history when it continued from another arm."""


def check_directions(policy: Any, mode: Any) -> None:
    """Raise ``ValueError`` unless ``policy`` takes ``mode``: a direction, or one per objective."""
    multi = bool(getattr(policy, "multi_objective", False))
    name = type(policy).__name__
    if isinstance(mode, str):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        return
    directions = list(mode)
    bad = [m for m in directions if m not in ("min", "max")]
    if not directions or bad:
        raise ValueError(f"mode must be 'min' or 'max' (one per objective), got {mode!r}")
    if len(directions) > 1 and not multi:
        raise ValueError(
            f"{name} is a single-objective policy and the search has {len(directions)} "
            "objectives; use a multi-objective policy (MOHyperband, MOASHA, "
            "MOSuccessiveHalving) or one objective"
        )


def _oriented(value: Any, directions: Sequence[str]) -> tuple[float, ...]:
    values = tuple(float(v) for v in value)
    if len(values) != len(directions):
        raise ValueError(
            f"a result has {len(values)} objective values, the search {len(directions)}"
        )
    return tuple(orient(v, d) for v, d in zip(values, directions))


class Backend(Protocol):
    """What :meth:`Runner.fill` needs of a backend that owns workers (the replay, the pool).

    The backend moves arms between its workers; the runner decides which arm a
    free worker takes. Ray Tune, which owns its own loop, asks
    :meth:`Runner.place` one slot at a time instead.
    """

    def has_free_worker(self) -> bool:
        """Whether a worker waits for an arm."""

    def n_running(self) -> int:
        """Arms training now."""

    def has_new_config(self) -> bool:
        """Whether another configuration is left to start as a new arm."""

    def preferred(self) -> Sequence[str]:
        """Paused arms to offer the policy first (those the free worker holds in memory)."""

    def new_arm(self) -> tuple[str, dict[str, Any]]:
        """Take the next configuration: ``(arm id, config)``."""

    def launch(self, arm_id: str) -> None:
        """Start or resume ``arm_id`` on the free worker (the runner has it running)."""

    def end(self, arm_ids: list[str]) -> None:
        """The runner ended these paused arms: workers that hold them forget them."""


class RecordedClock:
    """A clock that the reported epoch seconds drive (the workers' time in a replay).

    Each arm runs on its own worker from the time it started (:meth:`start`, when
    the runner adds or resumes it); :meth:`Runner.report` moves that arm on by the
    result's seconds and the clock to the latest such time, before the budget reads
    it. So a replay on Ray keeps the simulator's virtual time, with one worker or
    several (when the results come in the simulator's order).
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._arm_time: dict[str, float] = {}

    def start(self, arm_id: str) -> None:
        """Arm ``arm_id`` starts (or resumes) on a worker now."""
        self._arm_time[arm_id] = self.now

    def epoch(self, arm_id: str, seconds: float) -> None:
        """Arm ``arm_id`` trained an epoch of ``seconds`` since its last result or start."""
        done = self._arm_time.get(arm_id, self.now) + seconds
        self._arm_time[arm_id] = done
        self.now = max(self.now, done)

    def __call__(self) -> float:
        """The seconds recorded so far."""
        return self.now


class Runner:
    """The arm table and the loop over it: which arm runs next, budgets, snapshots.

    Args:
        policy: the arm policy (its hooks are checked on every call).
        mode: ``"max"`` or ``"min"``: the direction of the values :meth:`report` gets;
            the policy always sees higher-is-better scores. Several objectives: a
            list of directions, one per objective; :meth:`report` then gets a
            sequence of values and the policy (a multi-objective one) a tuple.
        metric: the metric's name (kept in the snapshot).
        budget: a :class:`~bandit_tune.driver.budget.Budget` (epochs, wall clock, target
            score) or ``None``.
        slots: arms that may train at once (``None``: as many as the backend runs).
        clock: the clock of the wall-clock budget and of re-plans (``time.monotonic``
            on Ray; the simulator's virtual clock in replay).

    Example::

        >>> from bandit_tune.driver import Runner
        >>> from bandit_tune.policies import SuccessiveHalving
        >>> runner = Runner(SuccessiveHalving(max_t=3, eta=3))
        >>> runner.next_arm(running=0, new_arms_left=True)
        ('new', None)
    """

    def __init__(
        self,
        policy: ArmPolicy,
        mode: str | Sequence[str] = "max",
        metric: str | None = None,
        budget: Any = None,
        slots: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_policy(policy)
        check_directions(policy, mode)
        if not isinstance(mode, str):
            mode = list(mode)
            if len(mode) == 1 and not getattr(policy, "multi_objective", False):
                mode = mode[0]  # one objective, given as a list
        self.policy = policy
        self.mode = mode
        self.metric = metric
        self.budget = budget
        self.slots = slots
        self.clock = clock
        self.arms = ArmTable()
        #: Arms to place on a worker again although no worker holds them: running
        #: when a search was interrupted, chosen while paused without a worker, or
        #: to be re-created after a failure. Backends serve them before new arms.
        self.wake: collections.deque[str] = collections.deque()
        #: Called with ``(arm_id, step, score, decision)`` after each decision.
        self.listeners: list[Callable[[str, int, float, str], None]] = []
        #: Counts the events that change what a free worker should do (arms added,
        #: results, arms ended); a backend that asks :meth:`next_arm` from several
        #: places asks again only when it moved.
        self.version = 0
        #: Where :meth:`snapshot` writes (``None``: nowhere).
        self.state_path: str | None = None
        #: Extra JSON-able state for the snapshot (the backend's searcher position).
        self.extra_state: Callable[[], dict[str, Any]] | None = None
        #: The project folder: checkpoint paths inside it are saved relative to it, so
        #: a moved (or restored) folder resumes.
        self.root: str | None = None
        #: Set when the search was interrupted: later events (Ray's clean-up) change
        #: nothing, so the last snapshot stays the state to resume from.
        self.frozen = False
        #: Hyperparameters an exploit may change (``None``: the policy's ``mutable_keys``).
        self.mutable: frozenset[str] | None = None
        #: Arms that took an exploit since the backend last asked (:meth:`take_exploited`):
        #: a copy of their model a worker holds is stale.
        self.exploited: list[str] = []
        #: Arms that may fail for good one after another before the search stops
        #: (keras-tuner's ``max_consecutive_failed_trials``); ``None``: no limit.
        self.max_consecutive_failures: int | None = None
        #: Arms that failed for good since the last epoch any arm trained.
        self.failed_in_a_row = 0
        self._ended: list[str] = []
        self._decision_count = 0
        self._decision_seconds = 0.0
        self._replanned = -math.inf
        self._snapshot_at = -math.inf
        self._snapshot_cost = 0.0

    # -- events from the backend ----------------------------------------------------
    def add_arm(self, arm_id: str, config: dict[str, Any]) -> list[str]:
        """A new arm starts: record it, tell the policy; returns the arms to end."""
        if self.frozen:
            return []
        self.arms.add(arm_id, config)
        self.version += 1
        self._started(arm_id)
        call_policy(self.policy, "on_arm_added", arm_id, arm_id, dict(config))
        ended = self.drain()
        self.snapshot()
        return ended

    def report(
        self,
        arm_id: str,
        step: int,
        value: float,
        result: dict[str, Any] | None = None,
        seconds: float | None = None,
        checkpoint: str | None = None,
        in_flight: int = 0,
    ) -> tuple[Decision | Exploit | None, list[str]]:
        """Arm ``arm_id`` reached ``step`` with metric ``value``: decide.

        Args:
            arm_id: the arm.
            step: the steps (epochs) it has trained.
            value: the metric as reported (``mode`` orients it for the policy).
            result: the result's scalar values, kept in the arm's record.
            seconds: the epoch's seconds (for the wall-clock budget).
            checkpoint: where the arm's checkpoint at this step is, if it wrote one.
            in_flight: other arms training an epoch right now (the budget counts them).

        Returns:
            ``(decision, ended)``: ``None`` for a step the arm reported already
            (a resumed arm retrains from its checkpoint), and the arms to end. An
            :class:`~bandit_tune.policies.base.Exploit` means: end the arm's current
            run; it waits in :attr:`wake` to start again from its (new) checkpoint.
        """
        arm = self.arms[arm_id]
        if step <= arm.step or self.frozen:
            return None, []
        self.version += 1
        self.failed_in_a_row = 0  # an arm trained: the failures before it were not in a row
        arm.step = step
        if checkpoint:
            arm.checkpoint = checkpoint
            arm.checkpoint_step = step
        if result is not None:
            # kept before the policy runs: a result that breaks the policy is not lost
            arm.results.append(result)
        if isinstance(self.mode, str):
            score = orient(value, self.mode)
        else:
            score = _oriented(value, self.mode)
            value = value[0]  # the budget's target_score and rate read the first objective
        budget, ended = self.budget, []
        if seconds is not None and isinstance(self.clock, RecordedClock):
            self.clock.epoch(arm_id, seconds)
        if budget is not None:
            budget.record(value, seconds)
        if self._decision_count < 5:  # the first decisions are timed: a slow policy is said
            started = time.perf_counter()
            decision = decide(self.policy, arm_id, step, score)
            self._time_decision(time.perf_counter() - started)
        else:
            decision = decide(self.policy, arm_id, step, score)
        if budget is not None:
            if budget.exhausted(in_flight):
                decision = Decision.STOP
                ended = self.end_paused()
            else:
                self._replan()
        if isinstance(decision, Exploit):
            self._exploit(arm, decision, "on_result")
            label = EXPLOIT
        else:
            label = decision.value
            self._apply(arm, decision)
        arm.decisions.append((step, score, label))
        for listener in self.listeners:
            listener(arm_id, step, score, label)
        ended += self.drain()
        if self.state_path is not None:
            self.snapshot()
        return decision, ended

    SLOW_DECISION_S = 0.1
    """A policy slower than this per decision (mean of its first ones) is warned about."""

    def _time_decision(self, seconds: float) -> None:
        self._decision_count += 1
        self._decision_seconds += seconds
        if self._decision_count == 5 and self._decision_seconds / 5 > self.SLOW_DECISION_S:
            import warnings

            warnings.warn(
                f"{type(self.policy).__name__}.on_result takes "
                f"{self._decision_seconds / 5:.2f} s per decision; the search waits for it "
                "after every epoch of every arm. Make it incremental (keep running sums, "
                "sorted containers) instead of recomputing over all arms",
                UserWarning,
                stacklevel=3,
            )

    def arm_ended(self, arm_id: str) -> list[str]:
        """The arm ended on its own (completed, stopped itself, was removed).

        The policy hears ``on_arm_finished`` once, unless it ended the arm itself.
        Returns the arms to end.
        """
        if arm_id in self.arms:
            self.failed_in_a_row = 0
        return self._end_arm(arm_id)

    def _end_arm(self, arm_id: str) -> list[str]:
        arm = self.arms.get(arm_id)
        if arm is None or self.frozen:
            return []
        self.version += 1
        if arm.state is not ArmState.STOPPED:
            self.arms.set_state(arm_id, ArmState.STOPPED)
            if arm_id in self.wake:
                self.wake.remove(arm_id)
            call_policy(self.policy, "on_arm_finished", arm_id, arm_id)
        ended = self.drain()
        self.snapshot()
        return ended

    def arm_failed(
        self, arm_id: str, retry: bool, counts: bool = True, error: str | None = None
    ) -> list[str]:
        """The arm's training failed; with ``retry`` it is placed again from its checkpoint.

        ``counts=False``: a failure already counted (another report of the same loss).
        An arm that fails for good counts towards :attr:`max_consecutive_failures`;
        reaching it raises :class:`TooManyFailures` (naming ``error``'s own line), on
        every backend alike.
        """
        arm = self.arms.get(arm_id)
        if arm is None or self.frozen:
            return []
        if counts:
            arm.failures += 1
        self.version += 1
        if retry:
            self.arms.set_state(arm_id, ArmState.RUNNING)
            self.wake.append(arm_id)
            self.snapshot(force=True)
            return []
        ended = self._end_arm(arm_id)
        self.failed_in_a_row += 1
        limit = self.max_consecutive_failures
        if limit is not None and self.failed_in_a_row >= limit:
            from bandit_tune.driver.arms import error_line

            detail = error_line(error) if error else "see results_"
            raise TooManyFailures(
                f"{self.failed_in_a_row} arms failed in a row (max_consecutive_failed_trials="
                f"{limit}); the last with: {detail}. Fix what fails (build_model, the data, "
                "a callback), or pass a larger max_consecutive_failed_trials (None: no limit)"
            )
        return ended

    def saved(self, arm_id: str, checkpoint: str, step: int) -> None:
        """A checkpoint of ``arm_id`` at ``step`` was written after its result (the pool's save)."""
        arm = self.arms.get(arm_id)
        if arm is not None and not self.frozen:
            arm.checkpoint, arm.checkpoint_step = checkpoint, step

    def failure_counted(self, arm_id: str) -> None:
        """``arm_id`` failed and its backend places it again itself (Ray requeues the trial)."""
        arm = self.arms.get(arm_id)
        if arm is not None and not self.frozen:
            arm.failures += 1

    # -- what a free worker does next -------------------------------------------------
    def next_arm(
        self,
        running: int,
        new_arms_left: bool = False,
        prefer: Sequence[str] = (),
        waiting: bool = False,
    ) -> tuple[str, str | None]:
        """What a free worker does next: ``(RESUME, arm)``, ``(NEW, None)`` or ``(WAIT, None)``.

        Resuming a paused arm the policy picks comes first (``prefer``: paused arms
        to offer the policy first, e.g. those whose model the free worker still
        holds); else a new arm if the budget and the policy take one. A resumed arm
        is running from here on. Call :meth:`take_ended` afterwards for arms the
        choice ended.

        Args:
            running: arms training now (the slots and the budget count them).
            new_arms_left: whether the backend has another configuration to start.
            prefer: see above.
            waiting: an arm already added waits for a worker (a backend that adds
                arms ahead of time, as Ray does): it starts if no paused arm does.
        """
        if self.slots is not None and running >= self.slots:
            return WAIT, None
        if self.budget is not None and self.budget.exhausted(running):
            self._ended.extend(self.end_paused())
            return WAIT, None
        paused = self.arms.paused
        if paused:
            arm_id = choose(self.policy, list(prefer), paused) if prefer else None
            if arm_id is None:
                arm_id = choose(self.policy, self.arms.paused_view, paused)
            self._ended.extend(self.drain())
            if arm_id is not None and arm_id in paused:
                self.arms.set_state(arm_id, ArmState.RUNNING)
                self.version += 1
                self._started(arm_id)
                return RESUME, arm_id
        if waiting or (new_arms_left and self.accepts_new_arm(running)):
            return NEW, None
        return WAIT, None

    def place(
        self,
        running: int,
        new_arms_left: bool,
        prefer: Sequence[str] = (),
        waiting: bool = False,
        wake_first: bool = True,
    ) -> tuple[str, str | None]:
        """What one free worker does next, by the one rule every backend follows.

        An arm waiting to be placed again (:attr:`wake`) first; then
        :meth:`next_arm` (resume the policy's pick, else a new arm); and when that
        says wait while nothing runs, nothing waits to be placed and paused arms
        remain, :meth:`settle` (the policy resumes one, or every paused arm ends).
        Returns ``(RESUME, arm)``, ``(NEW, None)`` or ``(WAIT, None)``; see
        :meth:`take_ended` for the arms it ended. ``wake_first=False``: the backend
        places the :attr:`wake` arms itself (Ray Tune's searcher re-creates them).
        """
        if self.wake and wake_first:
            return RESUME, self.wake.popleft()
        action, arm_id = self.next_arm(running, new_arms_left, prefer, waiting)
        if action != WAIT or running or self.wake or not self.arms.paused:
            return action, arm_id
        arm_id = self.settle()
        return (WAIT, None) if arm_id is None else (RESUME, arm_id)

    def fill(self, backend: Backend) -> None:
        """Give each free worker of ``backend`` its next arm until none is left to give.

        The run loop of a backend that owns its workers (the replay's virtual
        workers, the pool's actors): see :meth:`place` for the rule.
        """
        while backend.has_free_worker():
            action, arm_id = self.place(
                backend.n_running(), backend.has_new_config(), backend.preferred()
            )
            backend.end(self.take_ended())
            if action == NEW:
                arm_id, config = backend.new_arm()
                backend.end(self.add_arm(arm_id, config))
            elif action != RESUME or arm_id is None:
                return
            backend.launch(arm_id)

    def settle(self) -> str | None:
        """Nothing runs and no new arm will come: let the policy settle with the paused arms.

        Returns the arm to resume, or ``None`` after ending every paused arm (no
        one would ever resume them). See :meth:`take_ended`.
        """
        self.version += 1
        call_policy(self.policy, "on_no_new_arms", None)
        self._ended.extend(self.drain())
        paused = self.arms.paused
        arm_id = choose(self.policy, self.arms.paused_view, paused) if paused else None
        if arm_id is not None:
            self.arms.set_state(arm_id, ArmState.RUNNING)
            self._started(arm_id)
            return arm_id
        self._ended.extend(self.end_paused())
        return None

    def _started(self, arm_id: str) -> None:
        if isinstance(self.clock, RecordedClock):
            self.clock.start(arm_id)

    def take_ended(self) -> list[str]:
        """Arms that :meth:`next_arm` or :meth:`settle` ended, for the backend to stop."""
        ended, self._ended = self._ended, []
        return ended

    def accepts_new_arm(self, running: int = 0) -> bool:
        """Whether the budget and the policy's plan leave room for another arm."""
        if self.budget is not None and self.budget.exhausted(running):
            return False
        return bool(call_policy(self.policy, "accepts_new_arm", None))

    RUN_AHEAD = 32
    """The most epochs an arm trains past the one it was given (:meth:`run_ahead`)."""

    def run_ahead(self, arm_id: str, in_flight: int = 0) -> int:
        """Epochs arm ``arm_id`` may train past its next one before the runner sees them.

        A worker that waits for the decision on every epoch idles for the round
        trip to the driver; between the steps where the policy may pause or stop
        the arm (:meth:`~bandit_tune.policies.ArmPolicy.decision_steps`) every
        decision is CONTINUE, so the arm may train on meanwhile. None for a policy
        that may decide at any step, and none that a budget could refuse: under
        ``max_total_epochs`` what is left after the ``in_flight`` epochs already
        granted to other arms, under a wall-clock budget what the measured epoch
        time fits before the deadline, and none under a target score (the next
        result may end the search).
        """
        if self.frozen:
            return 0
        steps = self.policy.decision_steps()
        if steps is None:
            return 0
        after = self.arms[arm_id].step + 1
        later = [s for s in steps if s >= after]
        ahead = min(later) - after if later else self.RUN_AHEAD
        budget = self.budget
        if budget is not None and ahead > 0:
            if budget.target_score is not None:
                return 0
            if budget.max_total_epochs is not None:
                ahead = min(ahead, budget.max_total_epochs - budget.epochs - in_flight - 1)
            left = budget.seconds_left()
            if left is not None:
                if budget.epoch_seconds <= 0:
                    return 0  # no epoch measured yet
                ahead = min(ahead, int(left / budget.epoch_seconds) - 1)
        return max(0, min(ahead, self.RUN_AHEAD))

    def finished(self, live: bool) -> bool:
        """Whether no arm will ever be added again (``live``: an arm still runs or waits)."""
        if self.budget is not None and self.budget.reason is not None:
            return True
        if self.wake or self.arms.paused:
            return False
        if self.accepts_new_arm(self.arms.n_running):
            return False
        return not live

    # -- the policy's side --------------------------------------------------------------
    def drain(self) -> list[str]:
        """End the paused arms the policy gave up on; returns them. Applies its exploits."""
        exploits = getattr(self.policy, "exploits", None)
        if exploits is not None:
            chosen = call_policy(self.policy, "exploits", None) or {}
            if not isinstance(chosen, dict):
                raise PolicyError(
                    f"{type(self.policy).__name__}.exploits returned {type(chosen).__name__}; "
                    "expected a dict {arm_id: Exploit}"
                )
            for arm_id, exploit in chosen.items():
                arm = self.arms.get(arm_id)
                if arm is None or arm.state is not ArmState.PAUSED:
                    raise PolicyError(
                        f"{type(self.policy).__name__}.exploits returned an Exploit for "
                        f"{arm_id!r}, which is not a paused arm of this search"
                    )
                self._exploit(arm, exploit, "exploits")
        ended = []
        for arm_id in call_policy(self.policy, "arms_to_stop", None) or ():
            arm = self.arms.get(arm_id)
            if arm is None:
                raise PolicyError(
                    f"{type(self.policy).__name__}.arms_to_stop returned {arm_id!r}, "
                    "which is not an arm of this search"
                )
            if arm.state is ArmState.PAUSED:
                self.arms.set_state(arm_id, ArmState.STOPPED)
                arm.decided = True
                call_policy(self.policy, "on_arm_finished", arm_id, arm_id)
                ended.append(arm_id)
        return ended

    def end_paused(self) -> list[str]:
        """End every paused arm (the budget is spent, or nobody will resume them)."""
        ended = list(self.arms.paused)
        for arm_id in ended:
            self.arms.set_state(arm_id, ArmState.STOPPED)
            call_policy(self.policy, "on_arm_finished", arm_id, arm_id)
        if ended:
            self.snapshot(force=True)
        return ended

    def _exploit(self, arm: Arm, exploit: Exploit, hook: str) -> None:
        """Carry out an exploit: the arm continues from the donor's checkpoint with its config.

        A running arm's current run ends (the backend sees the :class:`Exploit`) and
        it waits in :attr:`wake`; a paused arm stays paused and resumes from the copy.
        """
        from bandit_tune.driver.exploit import adopt_checkpoint, check_exploit

        mutable = self.mutable
        if mutable is None:
            keys = getattr(self.policy, "mutable_keys", None)
            mutable = None if keys is None else frozenset(keys)
        check_exploit(self.policy, hook, arm.arm_id, exploit, self.arms, mutable)
        donor = self.arms[exploit.donor]
        step = donor.checkpoint_step if donor.checkpoint_step is not None else donor.step
        source = str(donor.checkpoint)
        if self.root is not None and "://" not in source and os.path.isdir(source):
            folder = os.path.join(self.root, "arms", arm.arm_id)
            checkpoint = adopt_checkpoint(source, folder, step, donor.arm_id)
        else:
            checkpoint = source  # replay, or a checkpoint in remote storage: used where it is
        order = sum(len(a.lineage) for a in self.arms)  # exploits before this one
        arm.lineage.append(
            {
                "order": order,
                "step": arm.step,
                "results": len(arm.results),  # reported before: not this model's
                "donor": donor.arm_id,
                "donor_step": step,
                "old": {k: arm.config.get(k) for k in sorted(mutable or ())},
                "new": {k: exploit.config.get(k) for k in sorted(mutable or ())},
            }
        )
        arm.config = dict(exploit.config)
        arm.checkpoint, arm.checkpoint_step, arm.step = checkpoint, step, step
        self.exploited.append(arm.arm_id)
        self.version += 1
        if arm.state is ArmState.RUNNING:
            self.wake.appendleft(arm.arm_id)
        self.snapshot(force=True)

    def take_exploited(self) -> list[str]:
        """Arms that took an exploit since the last call (their workers' copies are stale)."""
        exploited, self.exploited = self.exploited, []
        return exploited

    def _apply(self, arm: Arm, decision: Decision) -> None:
        if decision is Decision.PAUSE:
            self.arms.set_state(arm.arm_id, ArmState.PAUSED)
        elif decision is Decision.STOP:
            self.arms.set_state(arm.arm_id, ArmState.STOPPED)
            arm.decided = True

    def _replan(self) -> None:
        """Fit the unopened brackets to the epochs the measured rate says are left."""
        budget, replan = self.budget, getattr(self.policy, "replan_epochs", None)
        if budget is None or budget.seconds is None or not callable(replan):
            return
        if getattr(self.policy, "cycle", True):
            return
        now = self.clock()
        if now - self._replanned < 1.0:
            return
        left = budget.epochs_left()
        if left is not None:
            self._replanned = now
            call_policy(self.policy, "replan_epochs", None, left)

    # -- the snapshot (state.json) -------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything a resumed search needs, as plain data (the layout of ``state.json``)."""
        payload: dict[str, Any] = {
            "version": SNAPSHOT_VERSION,
            "metric": [self.metric, self.mode],
            "policy": self.policy.state_dict(),
            "rungs": list(self.policy.decision_steps() or []),
            **self.arms.to_json(root=self.root),
            "paused": list(self.arms.paused),
            "wake": list(self.wake),
            "extra": self.extra_state() if self.extra_state is not None else {},
            "epochs": None if self.budget is None else self.budget.epochs,
        }
        return payload

    def snapshot(self, force: bool = False) -> None:
        """Write :meth:`state` to :attr:`state_path` atomically, spaced to cost ~5% of the time.

        Unless ``force``, a write waits until 20 times the last write's cost has
        passed (at least 0.5 s), so its cost stays small as the arms grow.
        """
        if self.state_path is None or self.frozen:
            return
        now = time.monotonic()
        if not force and now - self._snapshot_at < max(0.5, 20 * self._snapshot_cost):
            return
        from bandit_tune.driver.project import write_json

        write_json(self.state_path, self.state())
        self._snapshot_at = time.monotonic()
        self._snapshot_cost = self._snapshot_at - now

    def restore(self, payload: dict[str, Any]) -> None:
        """Take up a :meth:`state`: the policy's state, the arms, and what to place again.

        Arms that were running go to :attr:`wake` (they continue from their last
        checkpoint); paused arms stay paused until the policy resumes them.
        """
        if payload.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"unsupported search state version {payload.get('version')!r}")
        self.policy.load_state_dict(payload["policy"])
        self.arms = ArmTable.from_json(payload, paused_order=payload.get("paused"), root=self.root)
        wake = list(payload.get("wake") or [])
        running = [a.arm_id for a in self.arms if a.state is ArmState.RUNNING]
        self.wake = collections.deque(dict.fromkeys([*wake, *running]))
        if self.budget is not None and payload.get("epochs"):
            self.budget.epochs = int(payload["epochs"])

    def interrupt(self) -> None:
        """Snapshot now and freeze: the search stops here and resumes from this state."""
        if not self.frozen:
            self.snapshot(force=True)
            self.frozen = True

    def __getstate__(self) -> dict[str, Any]:
        # pickled with Ray's experiment state (often): no listeners (live objects), and
        # the arms without their results (the snapshot keeps those)
        state = self.__dict__.copy()
        state["listeners"] = []
        state["extra_state"] = None
        state["arms"] = self.arms.without_results()
        return state
