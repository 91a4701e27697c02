"""Run any :class:`~bandit_tune.policies.ArmPolicy` as a Ray Tune ``TrialScheduler``.

The adapter is thin and knows no algorithm: it turns Ray's trial events into the
policy's hooks (arm id = Ray trial id, step = ``result[time_attr]``, score =
``result[metric]`` negated for ``mode="min"``) and the policy's answers into
Ray's ``CONTINUE``/``PAUSE``/``STOP`` and trial choices.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Callable
from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from bandit_tune.policies.base import ArmPolicy, Decision, check_policy
from bandit_tune.project import write_json
from bandit_tune.simulate import PolicyError, call_policy, choose, decide


class BanditScheduler(TrialScheduler):
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
    """

    _supports_buffered_results = False  # the policy decides after every single result

    def __init__(
        self,
        policy: ArmPolicy,
        metric: str | None = None,
        mode: str | None = None,
        time_attr: str = "training_iteration",
    ) -> None:
        super().__init__()
        check_policy(policy)
        if mode not in (None, "min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.policy = policy
        self._metric = metric
        self._mode = mode
        self.time_attr = time_attr
        #: Maximum arms running at once (set by the tuner); gates new arms.
        self.slots: int | None = None
        self._trials: dict[str, Trial] = {}
        self._last_step: dict[str, int] = {}
        self._chosen: Trial | None = None
        self._declined = True  # the policy had nothing to resume at the last choice
        #: Per arm: list of ``(step, score, decision)`` in the order they happened.
        self.history: dict[str, list[tuple[int, float, str]]] = {}
        #: Per arm: every reported result's scalar values, one dict per step, kept in
        #: the driver (Ray's per-trial result files can lag behind a resumed trial).
        self.results: dict[str, list[dict[str, Any]]] = {}
        #: The error that ended the search, if the policy or a result was at fault.
        self.policy_error: Exception | None = None
        #: The search's limits (wall clock, epochs, target score), enforced here.
        self.budget: Any = None
        self._replanned = 0.0
        #: Ray trial id -> arm id, for arms re-created when a search resumes.
        self.arm_of: dict[str, str] = {}
        #: Per arm: the path of its last checkpoint.
        self.checkpoints: dict[str, str] = {}
        #: Arms paused in a resumed search that have no Ray trial yet (arm -> config).
        self.dormant: dict[str, dict[str, Any]] = {}
        #: Arms to re-create as Ray trials now (running when the search was interrupted,
        #: or dormant arms the policy chose to resume).
        self.wake: collections.deque[str] = collections.deque()
        #: Where :meth:`snapshot` writes the search's state (``None``: nowhere).
        self.state_path: str | None = None
        #: Extra JSON-able state to snapshot (the tuner's searcher position).
        self.extra_state: Callable[[], dict[str, Any]] | None = None
        self._snapshot_at = 0.0
        self._snapshot_cost = 0.0
        #: Per arm: how many times its trial failed (each retry and the final failure).
        self.failures: collections.Counter[str] = collections.Counter()
        #: Per arm: its hyperparameters (the trial's config).
        self.configs: dict[str, dict[str, Any]] = {}
        #: Called with ``(arm_id, step, score, decision)`` after each decision.
        self.listeners: list[Callable[[str, int, float, str], None]] = []
        #: Whether the searcher re-creates arms from :attr:`wake` (set by the arm
        #: sources below, which do; a plain Ray Tune searcher does not).
        self.recreates_arms = False
        # worker processes (pids) that paused or ended an arm, latest last: the next
        # arm Ray starts goes to such a worker, which may still hold paused models
        self._freed: collections.deque[Any] = collections.deque(maxlen=4)

    # -- Ray's configuration -----------------------------------------------------
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Take ``metric`` and ``mode`` from ``TuneConfig`` unless given here."""
        if (self._metric and metric and metric != self._metric) or (
            self._mode and mode and mode != self._mode
        ):
            return False
        if mode not in (None, "min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    @property
    def metric(self) -> str | None:
        """The metric the policy scores."""
        return self._metric

    # -- trial events -------------------------------------------------------------
    def _on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        """A new arm: register it with the policy."""
        if self._metric is None:
            raise ValueError(
                "BanditScheduler needs a metric: pass metric= to BanditScheduler or TuneConfig"
            )
        if self._arm(trial) in self._trials:
            # Ray adds a trial again when it recovers it after a failure (a lost node)
            self._trials[self._arm(trial)] = trial
            return
        known = trial.config.get("__arm_id")
        if known is not None:  # an arm of an interrupted search, re-created to resume
            self.arm_of[trial.trial_id] = known
            self._trials[known] = trial
            self.snapshot()
            return
        self._trials[trial.trial_id] = trial
        self.history.setdefault(trial.trial_id, [])
        self.configs[trial.trial_id] = {
            k: v for k, v in trial.config.items() if not str(k).startswith("_")
        }
        call_policy(self.policy, "on_arm_added", trial.trial_id, trial.trial_id, dict(trial.config))
        self._drain(tune_controller)
        self.snapshot()

    def _on_trial_result(self, tune_controller: Any, trial: Trial, result: dict[str, Any]) -> str:
        """Score the result and return the policy's decision."""
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
        if step <= self._last_step.get(arm_id, 0):
            return TrialScheduler.CONTINUE  # a repeated step (e.g. the final checkpoint)
        self._last_step[arm_id] = step
        try:
            score = float(result[self._metric])
        except (TypeError, ValueError):
            raise ValueError(
                f"metric {self._metric!r} of trial {arm_id} is {result[self._metric]!r}, "
                "not a number"
            ) from None
        if self._mode == "min":
            score = -score
        if result.get("checkpoint_dir_name") and getattr(trial, "path", None):
            self.checkpoints[arm_id] = os.path.join(trial.path, result["checkpoint_dir_name"])
        kept = {k: v for k, v in result.items() if isinstance(v, (int, float, bool, str))}
        kept["driver_time"] = time.time()  # when the driver saw it (overhead analysis)
        # kept before the policy runs: a result that breaks the policy is not lost
        self.results.setdefault(arm_id, []).append(kept)
        budget = self.budget
        if budget is not None:
            seconds = result.get("time_this_iter_s")
            budget.record(
                float(result[self._metric]),
                float(seconds) if isinstance(seconds, (int, float)) else None,
            )
        decision = decide(self.policy, arm_id, step, score)
        if budget is not None:
            in_flight = sum(
                t.status == Trial.RUNNING and t is not trial for t in self._trials.values()
            )
            if budget.exhausted(in_flight):
                decision = Decision.STOP
                for other in self._trials.values():
                    if other.status == Trial.PAUSED:
                        tune_controller.stop_trial(other)
            else:
                self._replan()
        if decision is not Decision.CONTINUE:
            self._note_freed(arm_id)
        self.history.setdefault(arm_id, []).append((step, score, decision.value))
        for listener in self.listeners:
            listener(arm_id, step, score, decision.value)
        self._drain(tune_controller)
        self.snapshot()
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
        """
        arm_id = self._arm(trial)
        self.failures[arm_id] += 1
        recovers = getattr(trial, "should_recover", None)
        if callable(recovers) and recovers():
            if self._chosen is trial:
                self._chosen = None
            if trial.status not in (Trial.RUNNING, Trial.PENDING):
                # Ray stopped the trial and requeues it (then adds it again): the
                # policy keeps counting on it
                return
            limit = int(getattr(trial, "max_failures", 0) or 0)
            if self.recreates_arms and (limit < 0 or self.failures[arm_id] <= limit):
                self.wake.append(arm_id)
                self.snapshot(force=True)
                return
        self._finish(tune_controller, trial)

    def _on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        """A paused or pending arm was removed."""
        self._finish(tune_controller, trial)

    # -- choosing what runs --------------------------------------------------------
    def _choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        """Resume the arm the policy picks; else start a new arm; else let the policy settle."""
        if self._chosen is not None and self._chosen.status == Trial.PAUSED:
            return self._chosen  # Ray may ask again before it starts the last choice
        trials = tune_controller.get_trials()
        pending = [t for t in trials if t.status == Trial.PENDING]
        n_running = sum(t.status == Trial.RUNNING for t in trials)
        running = n_running > 0
        if self.slots is not None and n_running >= self.slots:
            return None  # no free slot: decide when one frees, with the results known then
        paused = self._paused(trials)
        if self.budget is not None and self.budget.exhausted(n_running):
            self._end_paused(tune_controller, paused)
            return None
        if pending and any(t.config.get("__arm_id") for t in pending):
            return pending[0]  # an arm re-created to resume: it was chosen already
        if paused:
            local = self._paused_here(paused)
            arm_id = choose(self.policy, local, paused) if local else None
            if arm_id is None:
                arm_id = choose(self.policy, list(paused), paused)
            self._drain(tune_controller)
            if arm_id is not None:
                self._declined = False
                if self._freed:
                    self._freed.pop()
                return self._resume(arm_id, paused[arm_id])
        self._declined = True
        if pending:
            if self._freed:
                self._freed.pop()
            return pending[0]
        paused = self._paused(trials)
        if paused and not running and not self.wake and self._no_new_arms(tune_controller):
            call_policy(self.policy, "on_no_new_arms", None)
            self._drain(tune_controller)
            paused = self._paused(trials)
            arm_id = choose(self.policy, list(paused), paused) if paused else None
            if arm_id is not None:
                return self._resume(arm_id, paused[arm_id])
            self._end_paused(tune_controller, paused)  # nobody will ever resume them
        return None

    def _paused(self, trials: list[Trial]) -> dict[str, Trial | None]:
        """Paused arms: Ray's paused trials, and dormant arms of a resumed search (None)."""
        paused: dict[str, Trial | None] = {
            self._arm(t): t for t in trials if t.status == Trial.PAUSED
        }
        for arm_id in self.dormant:
            paused[arm_id] = None
        return paused

    def _note_freed(self, arm_id: str) -> None:
        rows = self.results.get(arm_id)
        pid = rows[-1].get("worker_pid") if rows else None
        if pid is not None:
            self._freed.append(pid)

    def _paused_here(self, paused: dict[str, Trial | None]) -> list[str]:
        """Paused arms last trained by the worker that just freed (their model may be there).

        Offered to the policy first, so that a resume can continue in memory instead
        of rebuilding the model from its checkpoint; empty when that makes no difference.
        """
        if not self._freed:
            return []
        pid = self._freed[-1]
        local = [
            arm_id
            for arm_id, trial in paused.items()
            if trial is not None and (self.results.get(arm_id) or [{}])[-1].get("worker_pid") == pid
        ]
        return local if 0 < len(local) < len(paused) else []

    def _resume(self, arm_id: str, trial: Trial | None) -> Trial | None:
        if trial is None:  # dormant: the arm source re-creates it as a new Ray trial
            self.dormant.pop(arm_id, None)
            self.wake.append(arm_id)
            self.snapshot(force=True)
            return None
        self._chosen = trial
        return trial

    def _end_paused(self, tune_controller: Any, paused: dict[str, Trial | None]) -> None:
        for arm_id, trial in paused.items():
            if trial is None:
                self.dormant.pop(arm_id, None)
                call_policy(self.policy, "on_arm_finished", arm_id, arm_id)
            else:
                tune_controller.stop_trial(trial)
        self.snapshot(force=True)

    def _arm(self, trial: Trial) -> str:
        return self.arm_of.get(trial.trial_id, trial.trial_id)

    def accepts_new_arm(self, running: int = 0) -> bool:
        """Whether the budget and the policy's plan leave room for another arm."""
        if self.budget is not None and self.budget.exhausted(running):
            return False
        accepts = getattr(self.policy, "accepts_new_arm", None)
        return bool(accepts()) if callable(accepts) else True

    def finished(self) -> bool:
        """Whether no arm will ever be added again (budget spent, or plan used up and idle)."""
        if self.budget is not None and self.budget.reason is not None:
            return True
        if self.wake or self.dormant:
            return False
        statuses = [t.status for t in self._trials.values()]
        if self.accepts_new_arm(statuses.count(Trial.RUNNING)):
            return False
        # a re-plan on a later result may still add brackets while arms are live
        live = (Trial.RUNNING, Trial.PENDING, Trial.PAUSED)
        return not any(status in live for status in statuses)

    def _replan(self) -> None:
        """Fit the unopened brackets to the epochs the measured rate says are left."""
        budget, replan = self.budget, getattr(self.policy, "replan_epochs", None)
        if budget is None or budget.seconds is None or not callable(replan):
            return
        if getattr(self.policy, "cycle", True):
            return
        now = time.monotonic()
        if now - self._replanned < 1.0:
            return
        left = budget.epochs_left()
        if left is not None:
            self._replanned = now
            call_policy(self.policy, "replan_epochs", None, left)

    def arm_states(self) -> dict[str, str]:
        """Each known arm's state: ``"running"``, ``"paused"`` or ``"stopped"``."""
        names = {Trial.RUNNING: "running", Trial.PENDING: "running", Trial.PAUSED: "paused"}
        return {a: names.get(t.status, "stopped") for a, t in self._trials.items()}

    def wants_new_arm(self) -> bool:
        """Whether a new arm should be created now (used by the tuner's arm source)."""
        statuses = [t.status for t in self._trials.values()]
        pending = statuses.count(Trial.PENDING)
        # Ray starts an actor for every pending trial: never more than the free slots
        # (one at a time when the slots are unknown)
        busy = pending + statuses.count(Trial.RUNNING)
        if pending and (self.slots is None or busy >= self.slots):
            return False
        if self.wake:
            return True
        if not self.accepts_new_arm(busy):
            return False
        if not self._declined and Trial.PAUSED in statuses:
            return False
        if self.slots is not None and busy >= self.slots:
            return False
        return True

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
        try:
            return hook(*args)
        except (PolicyError, ValueError) as exc:
            self.policy_error = exc
            raise

    # -- the search's own snapshot (resume after the driver died) -------------------
    def snapshot(self, force: bool = False) -> None:
        """Write the search's state to :attr:`state_path` (atomically; throttled).

        Holds the policy's state, every arm's config, state, last step and last
        checkpoint, every result and decision, and :attr:`extra_state`. Writes are
        spaced so that they cost at most ~5% of the driver's time, unless ``force``.
        """
        if self.state_path is None:
            return
        now = time.monotonic()
        if not force and now - self._snapshot_at < max(0.5, 20 * self._snapshot_cost):
            return
        states = self.arm_states()
        arms = {}
        for arm_id, config in self.configs.items():
            state = states.get(arm_id, "stopped")
            if arm_id in self.dormant:
                state = "paused"
            elif arm_id in self.wake:
                state = "running"
            arms[arm_id] = {
                "config": config,
                "state": state,
                "last_step": self._last_step.get(arm_id, 0),
                "checkpoint": self.checkpoints.get(arm_id),
            }
        payload = {
            "version": 1,
            "metric": [self._metric, self._mode],
            "policy": self.policy.state_dict(),
            "arms": arms,
            "results": self.results,
            "history": {a: [list(h) for h in hs] for a, hs in self.history.items()},
            "extra": self.extra_state() if self.extra_state is not None else {},
            "epochs": None if self.budget is None else self.budget.epochs,
        }
        write_json(self.state_path, payload)
        self._snapshot_at = time.monotonic()
        self._snapshot_cost = self._snapshot_at - now

    def restore_snapshot(self, payload: dict[str, Any]) -> None:
        """Take up a :meth:`snapshot`: the policy's state, the results, and the unfinished arms.

        Arms that were running are re-created at once and continue from their last
        checkpoint; paused arms stay dormant until the policy resumes them.
        """
        if payload.get("version") != 1:
            raise ValueError(f"unsupported search state version {payload.get('version')!r}")
        self.policy.load_state_dict(payload["policy"])
        self.results = {a: list(r) for a, r in payload["results"].items()}
        self.history = {a: [tuple(h) for h in hs] for a, hs in payload["history"].items()}
        for arm_id, arm in payload["arms"].items():
            self.configs[arm_id] = dict(arm["config"])
            self._last_step[arm_id] = int(arm["last_step"])
            if arm.get("checkpoint"):
                self.checkpoints[arm_id] = arm["checkpoint"]
            if arm["state"] == "paused":
                self.dormant[arm_id] = dict(arm["config"])
            elif arm["state"] == "running":
                self.wake.append(arm_id)
        if self.budget is not None and payload.get("epochs"):
            self.budget.epochs = int(payload["epochs"])

    def resume_config(self, arm_id: str) -> dict[str, Any]:
        """The config that re-creates ``arm_id`` as a Ray trial, pointing at its checkpoint."""
        config = dict(self.configs[arm_id])
        config["__arm_id"] = arm_id
        if arm_id in self.checkpoints:
            config["__checkpoint"] = self.checkpoints[arm_id]
        return config

    # -- Ray's save / restore ------------------------------------------------------
    def save(self, checkpoint_path: str) -> None:
        """Write the policy's JSON state (plus the adapter's) to ``checkpoint_path``."""
        with open(checkpoint_path, "w") as f:
            json.dump(self.get_state(), f)

    def restore(self, checkpoint_path: str) -> None:
        """Load a state written by :meth:`save`."""
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))

    def get_state(self) -> dict[str, Any]:
        """The policy's state and the adapter's bookkeeping, as plain data."""
        return {
            "version": 1,
            "policy": self.policy.state_dict(),
            "last_step": dict(self._last_step),
            "history": {a: [list(h) for h in hs] for a, hs in self.history.items()},
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output."""
        self.policy.load_state_dict(state["policy"])
        self._last_step = dict(state["last_step"])
        self.history = {a: [tuple(h) for h in hs] for a, hs in state["history"].items()}

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the scheduler with the experiment state: keep trials and
        # listeners (which hold live objects) out of it.
        state = self.__dict__.copy()
        state["_trials"], state["_chosen"], state["listeners"] = {}, None, []
        state["results"] = {}
        return state

    def debug_string(self) -> str:
        """One line for Ray's status output."""
        return f"Using BanditScheduler({type(self.policy).__name__}): {len(self._trials)} arms"

    # -- internals -------------------------------------------------------------------
    def _finish(self, tune_controller: Any, trial: Trial) -> None:
        arm_id = self._arm(trial)
        self._note_freed(arm_id)
        call_policy(self.policy, "on_arm_finished", arm_id, arm_id)
        if self._chosen is trial:
            self._chosen = None
        self._drain(tune_controller)
        # throttled like every snapshot (each one is O(arms)): an arm that ended after
        # the last one is taken up again on resume, consistently with the policy's state
        self.snapshot()

    def _drain(self, tune_controller: Any) -> None:
        for arm_id in call_policy(self.policy, "arms_to_stop", None) or ():
            if arm_id in self.dormant:
                del self.dormant[arm_id]
                call_policy(self.policy, "on_arm_finished", arm_id, arm_id)
                continue
            trial = self._trials.get(arm_id)
            if trial is None:
                raise PolicyError(
                    f"{type(self.policy).__name__}.arms_to_stop returned {arm_id!r}, "
                    "which is not an arm of this search"
                )
            if trial.status == Trial.PAUSED:
                tune_controller.stop_trial(trial)

    def in_flight(self) -> bool:
        """Whether an arm is running or starting, or waits to be re-created (it may still fail)."""
        if self.wake:
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


class ArmSource(Searcher):
    """Hands Ray a fixed list of configurations, one new arm at a time.

    A new arm is created only when the scheduler wants one — no arm waits for
    promotion and a slot is free — so new arms never take a worker that a
    promoted arm should get (the trap measured in Ray's own HyperBandScheduler).
    """

    def __init__(
        self,
        configs: list[dict[str, Any]],
        scheduler: BanditScheduler,
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        super().__init__(metric=metric, mode=mode)
        self.configs = list(configs)
        self.scheduler = scheduler
        scheduler.recreates_arms = True  # this source serves scheduler.wake
        self.next_index = 0

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The next configuration, ``None`` to wait, or ``FINISHED``."""
        if self.scheduler.wake and self.scheduler.wants_new_arm():
            return self.scheduler.resume_config(self.scheduler.wake.popleft())
        if self.exhausted():
            return _finished_unless_in_flight(self.scheduler)
        if not self.scheduler.wants_new_arm():
            return None
        config = self.configs[self.next_index]
        self.next_index += 1
        return dict(config)

    def exhausted(self) -> bool:
        """Every configuration handed out, or the search is over: no new arm will come."""
        return self.next_index >= len(self.configs) or self.scheduler.finished()

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Nothing to learn: the configurations are fixed."""

    def get_state(self) -> dict[str, Any]:
        """Position in the configuration list."""
        return {"configs": self.configs, "next_index": self.next_index}

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state` output."""
        self.configs, self.next_index = state["configs"], state["next_index"]


class GatedSearcher(Searcher):
    """Wraps any Ray Tune ``Searcher`` so that new arms start only when the scheduler wants one.

    Used for model-based search (Optuna's TPE through Ray's ``OptunaSearch``): the
    wrapped searcher still sees every result, and at most ``max_arms`` arms are made.
    """

    def __init__(self, inner: Searcher, scheduler: BanditScheduler, max_arms: int) -> None:
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner = inner
        self.scheduler = scheduler
        scheduler.recreates_arms = True  # this source serves scheduler.wake
        self.max_arms = max_arms
        self.made = 0
        self._mine: set[str] = set()  # trials the wrapped searcher made (not resumed arms)
        self._inner_finished = False

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        """Forward metric and mode to the wrapped searcher."""
        super().set_search_properties(metric, mode, config, **spec)
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        """The wrapped searcher's next configuration, when a new arm is wanted."""
        if self.scheduler.wake and self.scheduler.wants_new_arm():
            return self.scheduler.resume_config(self.scheduler.wake.popleft())
        if self.exhausted():
            return _finished_unless_in_flight(self.scheduler)
        if not self.scheduler.wants_new_arm():
            return None
        config = self.inner.suggest(trial_id)
        if isinstance(config, dict):
            self.made += 1
            self._mine.add(trial_id)
        elif config == Searcher.FINISHED:
            self._inner_finished = True
            return _finished_unless_in_flight(self.scheduler)
        return config

    def exhausted(self) -> bool:
        """``max_arms`` made, the wrapped searcher finished, or the search is over."""
        return self.made >= self.max_arms or self._inner_finished or self.scheduler.finished()

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Pass intermediate results on."""
        if trial_id in self._mine:
            self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        """Pass final results on: the model learns from them."""
        if trial_id in self._mine:
            self.inner.on_trial_complete(trial_id, result=result, error=error)


def _finished_unless_in_flight(scheduler: BanditScheduler) -> str | None:
    """``FINISHED`` once no arm can fail any more; ``None`` (ask again) while one may."""
    if scheduler.recreates_arms and scheduler.in_flight():
        return None
    return Searcher.FINISHED


__all__ = ["ArmSource", "BanditScheduler", "Decision", "GatedSearcher"]
