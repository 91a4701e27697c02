"""How the scheduler treats a failed arm, on real Ray Tune ``Trial`` objects (no Ray started).

Ray Tune retries a trial that fails while it runs (it stops it, calls
``on_trial_error`` on the stopped trial, then requeues and adds it again); a
trial that fails while it starts or restores it ends for good, retries left or
not. The tuner's scheduler re-creates such an arm from its last checkpoint.
"""

import pytest

pytest.importorskip("ray.tune")

from ray.tune.experiment import Trial  # noqa: E402

from bandit_tune import BanditScheduler  # noqa: E402
from bandit_tune.policies import Hyperband  # noqa: E402
from bandit_tune.ray_tune.searchers import ArmSource  # noqa: E402


def _scheduler(recreates=True):
    scheduler = BanditScheduler(Hyperband(9), metric="val_loss", mode="min")
    scheduler.recreates_arms = recreates
    return scheduler


def _trial(max_failures=2):
    return Trial("train_arm", config={"units": 8}, stub=True, max_failures=max_failures)


def test_an_arm_that_fails_while_starting_is_recreated_from_wake():
    scheduler = _scheduler()
    trial = _trial()
    scheduler.on_trial_add(None, trial)
    trial.run_metadata.num_failures = 1  # Ray counted the failure, retries are left
    assert trial.status == Trial.PENDING and trial.should_recover()
    scheduler.on_trial_error(None, trial)
    assert list(scheduler.wake) == [trial.trial_id]
    assert scheduler.in_flight()
    trial.set_status(Trial.ERROR)  # then Ray ends the trial
    source = ArmSource([{"units": 8}], scheduler)
    source.next_index = 1  # every configuration handed out: only the re-created arm is left
    assert source.exhausted()
    config = source.suggest("next")
    assert config is not None and config["__arm_id"] == trial.trial_id
    assert not scheduler.wake


def test_an_arm_that_ray_requeues_itself_is_not_recreated():
    scheduler = _scheduler()
    trial = _trial()
    scheduler.on_trial_add(None, trial)
    trial.run_metadata.num_failures = 1
    trial.set_status(Trial.ERROR)  # Ray stops the trial before it requeues it
    scheduler.on_trial_error(None, trial)
    assert not scheduler.wake
    assert scheduler.failures[trial.trial_id] == 1


def test_retries_are_capped_by_max_failures():
    scheduler = _scheduler()
    trial = _trial(max_failures=1)
    scheduler.on_trial_add(None, trial)
    scheduler.runner.arms[trial.trial_id].failures = 1  # it failed once already
    scheduler.on_trial_error(None, trial)  # second failure: Ray would still say recover
    assert not scheduler.wake


def test_a_plain_ray_searcher_ends_while_our_source_waits_for_arms_in_flight():
    scheduler = _scheduler(recreates=False)
    trial = _trial()
    scheduler.on_trial_add(None, trial)
    source = ArmSource([], scheduler)
    assert scheduler.recreates_arms  # the arm source serves wake, and says so
    scheduler.recreates_arms = False  # as for a plain Ray Tune searcher
    assert source.suggest("x") == ArmSource.FINISHED
    scheduler.recreates_arms = True
    assert source.suggest("x") is None  # the pending arm may still fail and come back


class _Controller:
    """Just what the scheduler calls on Tune's controller: the trials, and stop_trial."""

    def __init__(self, trials):
        self.trials, self.stopped = trials, []

    def get_trials(self):
        return list(self.trials)

    def stop_trial(self, trial):
        self.stopped.append(trial)
        trial.set_status(Trial.TERMINATED)


def test_an_arm_chosen_to_resume_is_stopped_when_the_budget_runs_out_first():
    """The searcher's question can pick a paused arm; if the budget ends before Ray asks
    for a trial, that paused trial must be stopped, or Tune waits on it forever."""
    from bandit_tune.driver.budget import Budget
    from bandit_tune.policies import SuccessiveHalving

    scheduler = BanditScheduler(SuccessiveHalving(3, 3), metric="val_loss", mode="min")
    scheduler.recreates_arms = True
    scheduler.slots = 1
    scheduler.budget = Budget(max_total_epochs=4)
    trials = [_trial() for _ in range(3)]
    controller = _Controller(trials)
    for trial, loss in zip(trials, (0.3, 0.1, 0.2)):
        scheduler.on_trial_add(controller, trial)
        trial.set_status(Trial.RUNNING)
        decision = scheduler.on_trial_result(
            controller, trial, {"val_loss": loss, "training_iteration": 1}
        )
        trial.set_status(Trial.PAUSED if decision == "PAUSE" else Trial.TERMINATED)
    best = trials[1]
    assert best.status == Trial.PAUSED  # promoted: waits to be resumed
    assert not scheduler.wants_new_arm()  # the runner chose to resume it instead
    scheduler.runner.budget.epochs = 4  # the budget runs out before Ray asks for a trial
    assert scheduler.choose_trial_to_run(controller) is None
    assert best in controller.stopped and best.status == Trial.TERMINATED


def test_arms_ended_while_ray_pauses_them_are_stopped_not_left_paused():
    """A rung that closes ends arms whose trials Ray is still pausing (or the very trial
    that reported): left PAUSED, Tune would wait on them forever (a search hung)."""
    from bandit_tune.policies import SuccessiveHalving

    scheduler = BanditScheduler(SuccessiveHalving(3, 3), metric="val_loss", mode="min")
    trials = [_trial() for _ in range(3)]
    controller = _Controller(trials)
    for trial in trials:
        scheduler.on_trial_add(controller, trial)
        trial.set_status(Trial.RUNNING)
    first, best, worst = trials
    result = {"training_iteration": 1}
    assert scheduler.on_trial_result(controller, first, {**result, "val_loss": 0.3}) == "PAUSE"
    # Ray saves `first` before it pauses it: still RUNNING when the rung closes
    assert scheduler.on_trial_result(controller, best, {**result, "val_loss": 0.1}) == "PAUSE"
    best.set_status(Trial.PAUSED)
    # the last arm at the rung closes it: it is ended by its own result
    assert scheduler.on_trial_result(controller, worst, {**result, "val_loss": 0.5}) == "STOP"
    assert scheduler.arm_states() == {
        first.trial_id: "stopped", best.trial_id: "paused", worst.trial_id: "stopped"
    }
    assert first not in controller.stopped  # Ray has not paused it yet
    first.set_status(Trial.PAUSED)  # now it has
    assert scheduler.choose_trial_to_run(controller) is best  # the promoted arm resumes
    assert first in controller.stopped and first.status == Trial.TERMINATED


def test_a_configuration_handed_to_ray_but_not_yet_an_arm_is_drawn_again_on_resume():
    """A Ctrl-C (or kill) between the searcher's suggest and Ray adding the trial loses no arm.

    The snapshot's searcher position counts only configurations the runner recorded
    as arms; a resumed search draws the unrecorded one again (it was lost before).
    """
    configs = [{"units": u} for u in (8, 16, 32)]
    scheduler = _scheduler()
    scheduler.slots = 2
    source = ArmSource(configs, scheduler)
    first = source.suggest("a")
    assert first == configs[0]
    scheduler.on_trial_add(None, Trial("train_arm", config=first, trial_id="a", stub=True))
    assert source.suggest("b") == configs[1]
    # interrupted here: Ray never adds trial "b"
    assert source.position() == {"made": 1, "next_index": 1}
    state = scheduler.get_state()

    resumed = _scheduler()
    resumed.slots = 2
    resumed.set_state(state)
    again = ArmSource(configs, resumed)
    again.set_position(source.position())
    assert again.suggest("c")["__arm_id"] == "a"  # the running arm is re-created first
    assert again.suggest("d") == configs[1]  # then the configuration that never became an arm
    resumed.on_trial_add(None, Trial("train_arm", config=configs[1], trial_id="d", stub=True))
    assert again.position() == {"made": 2, "next_index": 2}
    assert sorted(resumed.configs) == ["a", "d"]


LOST = "c964b20f4da07588a88dd2b901000000"


def _lost_actor_text(actor, failures):
    """Ray's error file for a trial whose actor was lost ``failures`` times (one per call)."""
    from ray.exceptions import ActorUnavailableError

    error = str(ActorUnavailableError("RpcError: Socket closed", bytes.fromhex(actor)))
    return "".join(f"Failure # {n} (occurred at now)\n{error}\n" for n in range(1, failures + 1))


def test_the_actor_named_by_a_failure_is_read_from_rays_error_text():
    from ray.exceptions import ActorDiedError

    from bandit_tune.ray_tune.scheduler import _failed_actor

    assert _failed_actor(_lost_actor_text(LOST, 1)) == LOST
    died = f"{ActorDiedError.BASE_ERROR_MSG}\n\tclass_name: ImplicitFunc\n\tactor_id: {LOST[::-1]}"
    assert _failed_actor(_lost_actor_text(LOST, 1) + "Failure # 2 (at now)\n" + died) == LOST[::-1]
    user = f"ray::ImplicitFunc.train() (pid=1, ip=127.0.0.1, actor_id={LOST})\nValueError: bad"
    assert _failed_actor("Failure # 1 (at now)\n" + user) is None  # the arm's own error


def test_one_lost_actor_takes_one_retry_however_many_calls_it_fails(monkeypatch):
    """A node lost while an arm trains and saves: Ray reports the actor's loss once per call
    in flight. It is one failure: the arm is placed again with its retries left."""
    import bandit_tune.ray_tune.scheduler as module

    scheduler = _scheduler()
    trial = _trial(max_failures=1)
    scheduler.on_trial_add(None, trial)
    errors = {"text": _lost_actor_text(LOST, 1)}
    monkeypatch.setattr(module, "_trial_error", lambda t: errors["text"])
    trial.run_metadata.num_failures = 1
    trial.set_status(Trial.ERROR)  # Ray stops the running trial and requeues it
    scheduler.on_trial_error(None, trial)
    assert scheduler.failures[trial.trial_id] == 1 and not scheduler.wake
    trial.set_status(Trial.PENDING)  # requeued; the same actor's save fails too
    errors["text"] = _lost_actor_text(LOST, 2)
    trial.run_metadata.num_failures = 2  # Ray counted it again: no retry left by its count
    scheduler.on_trial_error(None, trial)
    assert list(scheduler.wake) == [trial.trial_id]  # placed again, from its checkpoint
    assert scheduler.failures[trial.trial_id] == 1
    assert trial.run_metadata.num_failures == 1  # Ray's count is of lost actors too
    # a second lost actor is a second failure (placed again: a lost worker has
    # LOST_WORKER_RETRIES, more than max_failures=1)
    scheduler.wake.clear()
    errors["text"] += "Failure # 3 (at now)\n" + _lost_actor_text(LOST[::-1], 1)
    trial.run_metadata.num_failures = 2
    scheduler.on_trial_error(None, trial)
    assert list(scheduler.wake) == [trial.trial_id]
    assert scheduler.failures[trial.trial_id] == 2


def test_a_lost_worker_is_retried_even_without_retries_and_an_arms_own_error_is_not(
    monkeypatch,
):
    """max_failures=0 (the default): an arm whose worker was lost is placed again, up to
    LOST_WORKER_RETRIES times, as on the pool; an error the arm raised ends it."""
    import bandit_tune.ray_tune.scheduler as module
    from bandit_tune.driver.runner import LOST_WORKER_RETRIES

    scheduler = _scheduler()
    trial = _trial(max_failures=0)
    scheduler.on_trial_add(None, trial)
    errors = {"text": ""}
    monkeypatch.setattr(module, "_trial_error", lambda t: errors["text"])
    for lost in range(LOST_WORKER_RETRIES + 1):
        actor = f"{lost:02d}" + LOST[2:]
        errors["text"] += _lost_actor_text(actor, 1)
        trial.set_status(Trial.RUNNING)  # Ray (no retries of its own) ends the trial
        trial.run_metadata.num_failures = 1
        scheduler.wake.clear()
        scheduler.on_trial_error(None, trial)
        if lost < LOST_WORKER_RETRIES:
            assert list(scheduler.wake) == [trial.trial_id], lost  # placed again
    assert not scheduler.wake  # the fourth lost worker ends it
    assert scheduler.arm_states()[trial.trial_id] == "stopped"

    raised = _trial(max_failures=0)
    scheduler.on_trial_add(None, raised)
    errors["text"] = "Failure # 1 (at now)\nray::ImplicitFunc.train()\nValueError: bad data"
    raised.set_status(Trial.RUNNING)
    raised.run_metadata.num_failures = 1
    scheduler.on_trial_error(None, raised)
    assert not scheduler.wake
    assert scheduler.arm_states()[raised.trial_id] == "stopped"
