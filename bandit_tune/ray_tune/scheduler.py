"""Run any :class:`~bandit_tune.policies.ArmPolicy` as a Ray Tune ``TrialScheduler``.

The adapter only translates: Ray trials to arm ids (arm id = Ray trial id, or
the arm a re-created trial continues), Ray's events to the
:class:`~bandit_tune.driver.Runner`'s (which owns the arm table, the policy's
hooks, budgets and the snapshot), and the runner's answers to Ray's
``CONTINUE``/``PAUSE``/``STOP`` and trial choices. The one Ray-specific choice
it makes itself: a paused arm whose model the freed worker still holds is
offered to the policy first.
"""

from __future__ import annotations

import collections
import os
import re
import time
from collections.abc import Callable
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from bandit_tune.driver.arms import RESERVED_PREFIX
from bandit_tune.driver.host import RunnerHost
from bandit_tune.driver.idle import release_idle_workers
from bandit_tune.driver.runner import NEW, RESUME, WAIT, TooManyFailures, retry_limit
from bandit_tune.policies.base import ArmPolicy, Decision, Exploit, PolicyError


def _trial_error(trial: Trial) -> str:
    """The traceback Ray wrote for a failed trial ("" when there is none)."""
    try:
        path = trial.error_file
        if path and os.path.exists(path):
            with open(path) as f:
                return f.read()
        error = trial.get_error()
    except Exception:  # noqa: BLE001 — only an error message is lost
        return ""
    return str(error) if error else ""


_ACTOR = re.compile(r"actor(?:_id:| ID:)? ([0-9a-f]{16,})", re.IGNORECASE)


def _failed_actor(text: str) -> str | None:
    """The Ray actor the latest failure in a trial's error text names (``None``: none named)."""
    found = _ACTOR.search(text.rsplit("Failure #", 1)[-1])
    return found.group(1) if found else None


#: Ray Tune's per-trial result files, which its loggers copy back from storage on a resume.
_RESULT_FILES = ("result.json", "progress.csv")


def _upload_results(trial: Trial) -> None:
    """Copy a paused trial's result files to its storage before it resumes.

    When a trial with a checkpoint starts, Ray Tune's loggers first copy their files
    back from the storage path; lines written since the last upload (periodic) were
    lost, so ``Result.metrics_dataframe`` missed the epochs a trial trained between two
    pauses. Uploading them as the trial resumes makes that copy a no-op. The runner
    keeps every result itself; only Ray's own files are at stake here.
    """
    try:
        import pyarrow.fs

        storage = trial.storage
        filesystem = storage.storage_filesystem
        for name in _RESULT_FILES:
            local = os.path.join(trial.local_path, name)
            remote = f"{storage.trial_fs_path}/{name}"
            same = isinstance(filesystem, pyarrow.fs.LocalFileSystem) and (
                os.path.realpath(local) == os.path.realpath(remote)
            )
            if os.path.isfile(local) and not same:
                pyarrow.fs.copy_files(local, remote, destination_filesystem=filesystem)
    except Exception:  # noqa: BLE001 — another Ray layout: its loggers keep their behaviour
        return


class BanditScheduler(RunnerHost, TrialScheduler):
    """A Ray Tune scheduler driven by an arm policy.

    Drop it into a plain ``ray.tune.Tuner``::

        from ray import tune
        from bandit_tune import BanditScheduler
        from bandit_tune.policies import Hyperband

        tuner = tune.Tuner(
            my_trainable,  # reports {"val_loss": ...} once per epoch, with a checkpoint
            param_space={"lr": tune.loguniform(1e-4, 1e-1)},
            tune_config=tune.TuneConfig(
                scheduler=BanditScheduler(Hyperband(max_t=27)),
                metric="val_loss", mode="min", num_samples=49, reuse_actors=True,
            ),
        )

    Paused arms resume through Ray from their last reported checkpoint, so a
    trainable that can be paused must report a checkpoint at the steps
    ``policy.decision_steps()`` returns (or at every step) and restore from
    ``ray.tune.get_checkpoint()``.

    Args:
        policy: the arm policy; its hooks are called in Ray's driver process.
        metric: the result key the policy scores (or set by ``TuneConfig``).
        mode: ``"max"`` or ``"min"`` (or set by ``TuneConfig``).
        time_attr: the result key that counts steps (epochs).
        objectives: several objectives, ``[(metric, "max" | "min"), ...]``, for a
            multi-objective policy (it is then scored on a tuple of their values;
            ``metric`` and ``mode`` name the first, which Ray Tune reports).
    """

    _supports_buffered_results = False  # the policy decides after every single result
    #: Arms remembered per worker for :meth:`_here` (a worker keeps up to 64 models).
    WORKER_INDEX = 128

    def __init__(
        self,
        policy: ArmPolicy,
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
        objectives: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(policy, metric, mode, time_attr, objectives)
        self._trials: dict[str, Trial] = {}  # arm id -> its current Ray trial
        self._chosen: Trial | None = None
        #: Whether the searcher re-creates arms from the runner's wake list (set by
        #: :class:`~bandit_tune.ray_tune.searchers.GatedSearcher`; a plain Ray searcher does not).
        self.recreates_arms = False
        # worker processes (pids) that paused or ended an arm, latest last: the next
        # arm Ray starts goes to such a worker, which may still hold paused models
        self._freed: collections.deque[Any] = collections.deque(maxlen=4)
        # trials of arms the runner ended while Ray was still pausing them
        self._stop_when_paused: set[Any] = set()
        # per worker process: the arms it paused or ended last (their models may be there)
        self._by_worker: dict[Any, dict[str, None]] = {}
        # per arm: the Ray actor whose loss its failures counted last
        self._lost_actor: dict[str, str] = {}
        #: Whether a freed worker's own paused arms are offered to the policy first
        #: (their Keras model may still be in its memory; a resume there skips the
        #: rebuild). Off, the policy chooses among all paused arms as in replay.
        self.prefer_local = True
        # the runner's answer for a free slot, until the hook that acts on it comes
        # (Ray asks the searcher for a new arm and the scheduler for a trial to run
        # in either order; the policy is asked once per change, as in replay)
        self._decided: tuple[str, str | None] | None = None
        self._waited_at: tuple[int, int, bool] | None = None
        # the state in which a plain searcher was last expected to make a new arm
        self._new_stalled_at: tuple[int, int] | None = None
        self._controller: Any = None  # the last TuneController seen (to stop trials)
        #: Hooks running now (a Ctrl-C waits for them: the runner stays consistent).
        self.busy = 0
        #: Set by a Ctrl-C that came while a hook ran: raised as the hook returns.
        self.interrupt_requested = False
        # trials ended because their arm took an exploit: the arm goes on as a new trial
        self._retired: set[str] = set()

    # -- Ray's configuration -----------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Take ``metric`` and ``mode`` from ``TuneConfig`` unless given here.

        Ray Tune calls this as its search starts: idle workers that
        :func:`bandit_tune.run_arms` (or ``backend="pool"``) kept for a next search
        are ended here, or they would hold the CPUs the trials need.
        """
        release_idle_workers()
        if (self._metric and metric and metric != self._metric) or (
            self._mode and mode and mode != self._mode
        ):
            return False
        if mode not in (None, "min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        self.runner.metric = self._metric
        if self.objectives is None:
            self.runner.mode = self._mode or "max"
        return True

    # -- trial events -------------------------------------------------------------
    def _on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        """A new arm: register it with the runner (and the policy)."""
        if self._metric is None:
            raise ValueError(
                "BanditScheduler needs a metric: pass metric= to BanditScheduler or TuneConfig"
            )
        exploits = getattr(self.runner.policy, "mutable_keys", None) is not None
        if exploits and not self.recreates_arms:
            raise ValueError(
                f"{type(self.runner.policy).__name__} continues arms from other arms' "
                "checkpoints as new trials, which only bandit_tune's arm source creates; run "
                "it as a tuner's policy= (RandomSearch(..., policy=...)) or with "
                "bandit_tune.run_arms, not in a plain ray.tune.Tuner"
            )
        arm_id = self._arm(trial)
        if arm_id in self._trials:
            # Ray adds a trial again when it recovers it after a failure (a lost node)
            self._trials[arm_id] = trial
            return
        known = trial.config.get(RESERVED_PREFIX + "arm_id")
        if known is not None:  # an arm re-created to continue (a resume, a lost node)
            self.arm_of[trial.trial_id] = known
            self._trials[known] = trial
            self.runner.snapshot()
            return
        self._trials[arm_id] = trial
        self._stop(tune_controller, self.runner.add_arm(arm_id, dict(trial.config)))

    def _on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        """Score the result and return the policy's decision."""
        if trial.trial_id in self._retired:
            return TrialScheduler.STOP  # its arm goes on as a new trial
        arm_id = self._arm(trial)
        if self._chosen is trial:
            self._chosen = None  # it runs again: later choices go back to the policy
        if self._metric not in result:
            raise ValueError(
                f"the result of trial {arm_id} has no metric {self._metric!r}; it reported "
                f"{sorted(k for k in result if not k.startswith('config'))}. Pass one of "
                "those as the metric (objective), or report it from the trainable."
            )
        if self.time_attr not in result:
            raise ValueError(
                f"the result of trial {arm_id} has no time attribute {self.time_attr!r}; "
                f"it reported {sorted(result)}"
            )
        step = int(result[self.time_attr])
        if step <= self.runner.arms[arm_id].step:
            return TrialScheduler.CONTINUE  # a repeated step (e.g. the final checkpoint)
        value: Any
        try:
            if self.objectives is None:
                value = float(result[self._metric])
            else:
                missing = [m for m, _ in self.objectives if m not in result]
                if missing:
                    raise ValueError(
                        f"the result of trial {arm_id} has no objective {missing[0]!r}; it "
                        f"reported {sorted(k for k in result if not k.startswith('config'))}. "
                        "Pass objectives the model logs (or the built-in 'params' and "
                        "'latency_ms')"
                    )
                value = tuple(float(result[m]) for m, _ in self.objectives)
        except (TypeError, ValueError) as exc:
            if "has no objective" in str(exc):
                raise
            raise ValueError(
                f"an objective of trial {arm_id} is not a number: "
                f"{ {m: result.get(m) for m in self._metric_names()} }"
            ) from None
        checkpoint = None
        if result.get("checkpoint_dir_name") and getattr(trial, "path", None):
            checkpoint = os.path.join(trial.path, result["checkpoint_dir_name"])
        kept = {k: v for k, v in result.items() if isinstance(v, (int, float, bool, str))}
        kept["driver_time"] = time.time()  # when the driver saw it (overhead analysis)
        seconds = result.get("time_this_iter_s")
        in_flight = 0
        if self.runner.budget is not None:
            in_flight = sum(
                t.status == Trial.RUNNING and t is not trial for t in self._trials.values()
            )
        decision, ended = self.runner.report(
            arm_id,
            step,
            value,
            kept,
            seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
            checkpoint=checkpoint,
            in_flight=in_flight,
        )
        self._stop(tune_controller, ended)
        if isinstance(decision, Exploit):
            # the arm goes on from the donor's checkpoint as a new trial (re-created
            # from the runner's wake list); this trial ends here
            self._note_freed(arm_id)
            self._retire_exploited(tune_controller)
            return TrialScheduler.STOP
        if decision is None:
            return TrialScheduler.CONTINUE
        if decision is not Decision.CONTINUE:
            self._note_freed(arm_id)
        if arm_id in ended:
            # paused and ended by the same result (its rung closed the bracket): Ray
            # must stop the trial, not pause it, or it would wait paused forever
            return TrialScheduler.STOP
        return decision.value

    def _on_trial_complete(
        self, tune_controller: Any, trial: Trial, result: dict[str, Any]
    ) -> None:
        """The arm ended (completed its epochs, stopped itself, or was stopped)."""
        self._finish(tune_controller, trial)

    def _on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        """The arm failed: for good, or it is retried from its last checkpoint (then it goes on).

        Ray retries a trial that fails while running; one that fails while it
        starts or restores (its node lost at that moment) Ray ends even with
        retries left. With :attr:`recreates_arms` such an arm is re-created from
        its last checkpoint as a new trial, up to the same number of retries.

        A lost worker (its actor died or became unreachable, not an error the
        arm raised) is not the arm's fault: such an arm is placed again up to
        ``LOST_WORKER_RETRIES`` times even when ``max_failures`` is lower, as on
        the pool (one rule for both: ``retry_limit``). And a lost actor counts
        once: Ray reports one failure per call in flight on it (a result and a
        save, say) when its node goes; a failure naming the actor already counted
        is re-placed without taking a retry.
        """
        if trial.trial_id in self._retired:
            return  # its arm took an exploit and goes on as a new trial
        arm_id = self._arm(trial)
        arm = self.runner.arms[arm_id]
        actor = _failed_actor(_trial_error(trial))
        again = actor is not None and self._lost_actor.get(arm_id) == actor
        if actor is not None:
            self._lost_actor[arm_id] = actor
        metadata = getattr(trial, "run_metadata", None)
        if again and metadata is not None and getattr(metadata, "num_failures", 0) > 0:
            metadata.num_failures -= 1  # Ray's own retry count: once per lost actor too
        limit = retry_limit(int(getattr(trial, "max_failures", 0) or 0), actor is not None)
        retries_left = limit < 0 or arm.failures + 1 <= limit
        recovers = getattr(trial, "should_recover", None)
        if again or (actor is not None and retries_left) or (callable(recovers) and recovers()):
            if self._chosen is trial:
                self._chosen = None
            if trial.status not in (Trial.RUNNING, Trial.PENDING):
                # Ray stopped the trial and requeues it (then adds it again): the
                # policy keeps counting on it
                if not again:
                    self.runner.failure_counted(arm_id)
                return
            if self.recreates_arms and (again or retries_left):
                self._trials.pop(arm_id, None)
                failed = self.runner.arm_failed(arm_id, retry=True, counts=not again)
                self._stop(tune_controller, failed)
                return
        self._note_freed(arm_id)
        if self._chosen is trial:
            self._chosen = None
        error = _trial_error(trial) or None
        self._stop(tune_controller, self.runner.arm_failed(arm_id, retry=False, error=error))

    def _on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        """A paused or pending arm was removed."""
        self._finish(tune_controller, trial)

    # -- choosing what runs --------------------------------------------------------
    def _choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """Resume the arm the policy picks; else start a new arm; else let the policy settle."""
        if self._stop_when_paused:
            self._stop_paused_ended(tune_controller)
        if self._chosen is not None and self._chosen.status == Trial.PAUSED:
            return self._chosen  # Ray may ask again before it starts the last choice
        runner = self.runner
        trials = tune_controller.get_trials()
        pending = [t for t in trials if t.status == Trial.PENDING]
        n_running = sum(t.status == Trial.RUNNING for t in trials)
        if runner.slots is not None and n_running >= runner.slots:
            return None  # no free slot: decide when one frees, with the results known then
        if runner.budget is not None and runner.budget.exhausted(n_running):
            # the budget is spent: end the paused arms, and stop every paused trial (also
            # one the runner chose to resume that has not started: it never will)
            self._decided = None
            self._stop(tune_controller, runner.end_paused())
            for trial in trials:
                if trial.status == Trial.PAUSED:
                    tune_controller.stop_trial(trial)
            return None
        recreated = next((t for t in pending if RESERVED_PREFIX + "arm_id" in t.config), None)
        if recreated is not None:
            return recreated  # an arm re-created to continue: it was chosen already
        if pending and self.recreates_arms:
            # a new arm the runner chose (our searcher made it then): it starts
            if self._freed:
                self._freed.pop()
            return pending[0]
        no_new = self._no_new_arms(tune_controller)
        action, arm_id = self._slot(
            tune_controller, n_running, new_arms_left=not no_new, waiting=bool(pending)
        )
        if action == RESUME and arm_id is not None:
            self._decided = None
            if self._freed:
                self._freed.pop()
            return self._resume(arm_id)
        if action == NEW and pending:  # a plain Ray searcher made trials ahead of time
            self._decided = None
            if self._freed:
                self._freed.pop()
            return pending[0]
        idle = not n_running and not pending and not runner.wake
        if action == NEW and idle and runner.arms.paused and not self.recreates_arms:
            # a plain Ray searcher was to make the new arm; asked again with nothing
            # changed, it made none (a concurrency limit that counts the paused trials)
            stalled = (runner.version, len(trials))
            if self._new_stalled_at == stalled:
                self._decided, action = None, WAIT
            self._new_stalled_at = stalled
        if action == WAIT and runner.arms.paused and idle:
            # nothing runs or waits and the runner starts nothing: the policy settles (as
            # Runner.place does in replay), also while a searcher with a concurrency limit
            # holds back new trials because the paused ones count against it
            self._decided = None
            arm_id = runner.settle()
            self._stop(tune_controller, runner.take_ended())
            if arm_id is not None:
                return self._resume(arm_id)
        return None  # a new arm: the searcher makes it

    def _slot(
        self, tune_controller: Any, running: int, new_arms_left: bool, waiting: bool = False
    ) -> tuple[str, str | None]:
        """The runner's answer for a free slot, asked once per change of the arm table."""
        if self._decided is not None:
            return self._decided
        runner = self.runner
        if self._waited_at == (runner.version, running, waiting):
            return WAIT, None  # nothing changed since it said wait
        # the runner's one rule (as the replay and the pool follow it), the wake list
        # left to the searcher, which re-creates those arms as trials
        action, arm_id = runner.place(
            running, new_arms_left, prefer=self._here(), waiting=waiting, wake_first=False
        )
        self._stop(tune_controller, runner.take_ended())
        if action == WAIT:
            self._waited_at = (runner.version, running, waiting)
        else:
            self._decided = (action, arm_id)
        return action, arm_id

    def _here(self) -> list[str]:
        """Paused arms last trained by the worker that just freed (their model may be there).

        Offered to the policy first, so that a resume can continue in memory instead
        of rebuilding the model from its checkpoint; empty when that makes no difference.
        Read from a per-worker index of the arms it freed, not a scan of every paused arm.
        """
        if not self._freed or not self.prefer_local:
            return []
        pid, arms = self._freed[-1], self.runner.arms
        paused = arms.paused
        mine = self._by_worker.get(pid)
        if not mine:
            return []
        local = [a for a in mine if a in paused and a in self._trials and arms[a].worker == pid]
        return local if 0 < len(local) < len(paused) else []

    def _note_freed(self, arm_id: str) -> None:
        pid = self.runner.arms[arm_id].worker
        if pid is not None:
            self._freed.append(pid)
            mine = self._by_worker.setdefault(pid, {})
            mine.pop(arm_id, None)
            mine[arm_id] = None
            while len(mine) > self.WORKER_INDEX:
                del mine[next(iter(mine))]  # the oldest: its model left the worker's cache

    def _resume(self, arm_id: str) -> Trial | None:
        trial = self._trials.get(arm_id)
        if trial is None or trial.status != Trial.PAUSED:
            # paused without a Ray trial (an interrupted search): the searcher re-creates it
            self.runner.wake.append(arm_id)
            self.runner.snapshot(force=True)
            return None
        self._chosen = trial
        _upload_results(trial)
        return trial

    def _stop(self, tune_controller: Any, arm_ids: list[str]) -> None:
        """Stop the Ray trials of arms the runner ended (the paused ones hold a worker's slot).

        A trial Ray is still pausing (told PAUSE, saving) is stopped once it is paused.
        """
        tune_controller = tune_controller or self._controller
        for arm_id in arm_ids:
            trial = self._trials.get(arm_id)
            if trial is None:
                continue
            if trial.status == Trial.PAUSED:
                tune_controller.stop_trial(trial)
            elif trial.status == Trial.RUNNING:
                self._stop_when_paused.add(trial)

    def _stop_paused_ended(self, tune_controller: Any) -> None:
        """Stop the trials of ended arms that Ray has paused since they ended."""
        for trial in list(self._stop_when_paused):
            if trial.status == Trial.PAUSED:
                self._stop_when_paused.discard(trial)
                if self._chosen is trial:
                    self._chosen = None
                tune_controller.stop_trial(trial)
            elif trial.status != Trial.RUNNING:
                self._stop_when_paused.discard(trial)

    def _retire_exploited(self, tune_controller: Any) -> None:
        """End the Ray trials of arms that took an exploit; each goes on as a new trial.

        A running one ends with the STOP its result hook returns; a paused or
        pending one is stopped here, and re-created from its new checkpoint when the
        policy resumes it.
        """
        tune_controller = tune_controller or self._controller
        for arm_id in self.runner.take_exploited():
            trial = self._trials.pop(arm_id, None)
            if trial is None:
                continue
            self._retired.add(trial.trial_id)
            self._stop_when_paused.discard(trial)
            if self._chosen is trial:
                self._chosen = None
            if trial.status in (Trial.PAUSED, Trial.PENDING) and tune_controller is not None:
                tune_controller.stop_trial(trial)

    def _finish(self, tune_controller: Any, trial: Trial) -> None:
        if trial.trial_id in self._retired:
            return  # its arm took an exploit and goes on as a new trial
        arm_id = self._arm(trial)
        self._note_freed(arm_id)
        if self._chosen is trial:
            self._chosen = None
        if self._trials.get(arm_id) is not trial and arm_id in self._trials:
            return  # an older trial of an arm that was re-created since
        self._stop(tune_controller, self.runner.arm_ended(arm_id))

    def _metric_names(self) -> list[str]:
        return [m for m, _ in self.objectives] if self.objectives else [str(self._metric)]

    def _arm(self, trial: Trial) -> str:
        return self.arm_of.get(trial.trial_id, trial.trial_id)

    # -- what the searcher asks ----------------------------------------------------
    def finished(self) -> bool:
        """Whether no arm will ever be added again (budget spent, or plan used up and idle)."""
        live = (Trial.RUNNING, Trial.PENDING, Trial.PAUSED)
        return self.runner.finished(any(t.status in live for t in self._trials.values()))

    def wants_new_arm(self, tune_controller: Any = None, new_arms_left: bool = True) -> bool:
        """Whether the searcher should hand Ray a trial now (asked by the gated searcher).

        Never while an arm waits to start beyond the free slots; an arm to place
        again first; else the runner's answer for the free slot. A resume of an
        arm that a paused Ray trial holds is left for :meth:`choose_trial_to_run`;
        a resume of an arm no Ray trial holds (a resumed search, an exploited arm)
        goes to the runner's wake list and is re-created at once: Ray asks the
        scheduler for a trial to run only while it has trials, so with none it
        would wait on the searcher forever. With ``new_arms_left`` false and no
        trial alive, the policy settles here for the same reason.
        """
        runner = self.runner
        statuses = [t.status for t in self._trials.values()]
        pending = statuses.count(Trial.PENDING)
        busy = pending + statuses.count(Trial.RUNNING)
        if pending and (runner.slots is None or busy >= runner.slots):
            return False
        if runner.wake:
            return True
        if runner.slots is not None and busy >= runner.slots:
            return False
        action, arm_id = self._slot(tune_controller, busy, new_arms_left=new_arms_left)
        if action == RESUME and arm_id is not None and not self._held(arm_id):
            self._decided = None
            self._resume(arm_id)
            return True
        if action == NEW:
            self._decided = None
            return new_arms_left
        alive = busy or Trial.PAUSED in statuses
        if action == WAIT and not alive and not new_arms_left and runner.arms.paused:
            arm_id = runner.settle()
            self._stop(tune_controller, runner.take_ended())
            if arm_id is not None:
                self._resume(arm_id)
                return True
        return False

    def _held(self, arm_id: str) -> bool:
        """Whether a paused Ray trial holds ``arm_id`` (else it is re-created to resume)."""
        trial = self._trials.get(arm_id)
        return trial is not None and trial.status == Trial.PAUSED

    def in_flight(self) -> bool:
        """Whether an arm is running or starting, or waits to be re-created (it may still fail).

        A paused arm that no Ray trial holds counts: only the searcher can place it.
        """
        if self.runner.wake:
            return True
        if any(arm_id not in self._trials for arm_id in self.runner.arms.paused):
            return True
        return any(t.status in (Trial.RUNNING, Trial.PENDING) for t in self._trials.values())

    @staticmethod
    def _no_new_arms(tune_controller: Any) -> bool:
        search_alg = getattr(tune_controller, "search_alg", None)
        if search_alg is None:
            return True
        exhausted = getattr(getattr(search_alg, "searcher", None), "exhausted", None)
        if callable(exhausted):
            return bool(exhausted())  # one of ours: it stays open while arms may be re-created
        return bool(search_alg.is_finished())

    # Ray's hooks: a broken policy is remembered so the tuner can re-raise it as is.
    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        """A new arm: register it with the policy."""
        self._guard(self._on_trial_add, tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        """Score the result and return the policy's decision."""
        return self._guard(self._on_trial_result, tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> None:
        """The arm ended (completed its epochs, stopped itself, or was stopped)."""
        self._guard(self._on_trial_complete, tune_controller, trial, result)

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        """The arm failed for good."""
        self._guard(self._on_trial_error, tune_controller, trial)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        """A paused or pending arm was removed."""
        self._guard(self._on_trial_remove, tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """Resume the arm the policy picks; else start a new arm; else let the policy settle."""
        return self._guard(self._choose_trial_to_run, tune_controller)

    def _guard(self, hook: Callable[..., Any], *args: Any) -> Any:
        if args and args[0] is not None:
            self._controller = args[0]
        self.busy += 1
        try:
            answer = hook(*args)
            if self.runner.exploited:
                self._retire_exploited(self._controller)
            return answer
        except (PolicyError, ValueError, TooManyFailures) as exc:
            self.policy_error = exc
            raise
        finally:
            self.busy -= 1
            if self.interrupt_requested and not self.busy:
                self.interrupt_requested = False
                self.runner.interrupt()
                raise KeyboardInterrupt  # noqa: B012 — a Ctrl-C that came during the hook

    def trials(self) -> list[Trial]:  # type: ignore[override]
        """The current Ray trial of every arm that has one."""
        return list(self._trials.values())

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the scheduler with the experiment state: no live trials
        state = self.__dict__.copy()
        state["_trials"], state["_chosen"], state["_controller"] = {}, None, None
        state["_stop_when_paused"] = set()
        return state

    def debug_string(self) -> str:
        """One line for Ray's status output."""
        return f"Using BanditScheduler({type(self.policy).__name__}): {len(self._trials)} arms"


__all__ = ["BanditScheduler", "Decision"]
