"""The driver layer in pure Python: the arm table, the runner, crash equivalence."""

import copy
import json
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bandit_tune import simulate
from bandit_tune.driver import ArmState, ArmTable, Runner
from bandit_tune.policies import (
    ASHA,
    PASHA,
    UCB,
    AdaptiveASHA,
    ArmPolicy,
    CurveEnsemble,
    Decision,
    EpsilonGreedy,
    FreezeThaw,
    Hyperband,
    MedianStopping,
    PolicyError,
    SuccessiveHalving,
    ThompsonSampling,
    TopKAfterWarmup,
)
from bandit_tune.replay.simulate import Simulation

MAX_T = 9

BUILT_IN = {
    "hyperband": lambda: Hyperband(MAX_T, 3),
    "successive_halving": lambda: SuccessiveHalving(MAX_T, 3),
    "asha": lambda: ASHA(MAX_T, 3),
    "asha_stopping": lambda: ASHA(MAX_T, 3, mode="stopping"),
    "adaptive_asha": lambda: AdaptiveASHA(MAX_T, 3),
    "median_stopping": lambda: MedianStopping(MAX_T),
    "ucb": lambda: UCB(MAX_T, n_arms=6),
    "thompson": lambda: ThompsonSampling(MAX_T, n_arms=6, seed=1),
    "epsilon_greedy": lambda: EpsilonGreedy(MAX_T, n_arms=6, seed=1),
    "pasha": lambda: PASHA(MAX_T, 3),
    "top_k_after_warmup": lambda: TopKAfterWarmup(MAX_T, arms=6, keep=2, warmup=2),
    "curve_ensemble": lambda: CurveEnsemble(MAX_T, 3, kappa=0.5),
    "freeze_thaw": lambda: FreezeThaw(MAX_T, 3, n_startup=4, refit_share=0.5),
}


def _curves(arms, seed):
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.uniform(0, 0.1, size=(arms, MAX_T)), axis=1) + rng.uniform(
        0, 0.3, size=(arms, 1)
    )


# -- the arm table --------------------------------------------------------------------
def test_the_arm_table_keeps_states_counts_and_the_paused_order():
    table = ArmTable()
    for arm in "abcd":
        table.add(arm, {"units": 8, "__arm_id": "x"})
    assert table["a"].config == {"units": 8}  # the runner's own keys never reach the record
    assert table.n_running == 4
    table.set_state("c", ArmState.PAUSED)
    table.set_state("a", ArmState.PAUSED)
    table.set_state("d", ArmState.STOPPED)
    assert list(table.paused) == ["c", "a"]  # in the order paused
    assert table.n_running == 1
    table.set_state("c", ArmState.RUNNING)
    assert list(table.paused) == ["a"] and table.n_running == 2
    with pytest.raises(ValueError, match="added twice"):
        table.add("a", {})
    table["b"].results.append({"epoch": 1, "val_loss": 0.5})
    table["b"].decisions.append((1, -0.5, "CONTINUE"))
    payload = json.loads(json.dumps(table.to_json()))
    again = ArmTable.from_json(payload, paused_order=["a"])
    assert [a.to_json() for a in again] == [a.to_json() for a in table]
    assert again["b"].decisions == [(1, -0.5, "CONTINUE")] and list(again.paused) == ["a"]
    light = table.without_results()
    assert light["b"].results == [] and light["b"].state is table["b"].state


# -- the runner's rules ---------------------------------------------------------------
class _PauseAll(ArmPolicy):
    """Pauses every arm after its first step; gives up on arm 'b' once asked."""

    def __init__(self):
        self.finished = []
        self.give_up = []

    def on_result(self, arm_id, step, score):
        return Decision.PAUSE

    def on_arm_finished(self, arm_id):
        self.finished.append(arm_id)

    def arms_to_stop(self):
        out, self.give_up = self.give_up, []
        return out


def test_the_policy_hears_on_arm_finished_once_and_not_for_its_own_stop():
    policy = _PauseAll()
    runner = Runner(policy)
    runner.add_arm("a", {})
    runner.add_arm("b", {})
    assert runner.report("a", 1, 0.5) == (Decision.PAUSE, [])
    assert runner.report("a", 1, 0.5) == (None, [])  # a repeated step decides nothing
    runner.report("b", 1, 0.4)
    policy.give_up = ["b"]
    assert runner.drain() == ["b"]
    assert runner.arms["b"].state is ArmState.STOPPED and runner.arms["b"].decided
    runner.arm_ended("b")  # Ray's completion of the stopped trial comes later
    assert policy.finished == ["b"]
    policy.give_up = ["nobody"]
    with pytest.raises(PolicyError, match="arms_to_stop returned 'nobody'"):
        runner.drain()


def test_next_arm_resumes_the_policys_pick_then_starts_new_arms_then_settles():
    policy = SuccessiveHalving(3, 3)  # 3 arms x 1 epoch, 1 arm x 3 epochs
    runner = Runner(policy, slots=1)
    assert runner.next_arm(running=1, new_arms_left=True) == ("wait", None)  # no free slot
    outcomes = []
    for arm in "abc":
        assert runner.next_arm(running=0, new_arms_left=True) == ("new", None)
        runner.add_arm(arm, {})
        outcomes.append(runner.report(arm, 1, {"a": 0.1, "b": 0.9, "c": 0.5}[arm]))
    # the rung fills with c: b is promoted, c loses at once and the paused a is ended
    assert outcomes[-1] == (Decision.STOP, ["a"])
    assert list(runner.arms.paused) == ["b"]
    assert runner.next_arm(running=0, new_arms_left=True) == ("resume", "b")
    assert runner.arms["b"].state is ArmState.RUNNING and not runner.arms.paused
    assert runner.next_arm(running=1, new_arms_left=True) == ("wait", None)


def test_an_epoch_budget_is_exact_and_ends_the_paused_arms():
    from bandit_tune.driver.budget import Budget

    policy = _PauseAll()
    runner = Runner(policy, budget=Budget(max_total_epochs=2))
    runner.add_arm("a", {})
    runner.add_arm("b", {})
    runner.report("a", 1, 0.5)
    decision, ended = runner.report("b", 1, 0.4)
    assert decision is Decision.STOP and ended == ["a"]
    assert runner.next_arm(running=0, new_arms_left=True) == ("wait", None)
    assert runner.finished(live=False)


def test_an_arm_runs_ahead_up_to_the_next_decision_step_and_never_past_a_budget():
    from bandit_tune.driver.budget import Budget

    runner = Runner(ASHA(27, 3))  # rungs at 1, 3, 9, 27
    runner.add_arm("a", {})
    arm = runner.arms["a"]
    ahead = {}
    for step in (0, 1, 2, 3, 9, 26):
        arm.step = step
        ahead[step] = runner.run_ahead("a")
    # the next epoch is step + 1; it may go on to the next rung without waiting
    assert ahead == {0: 0, 1: 1, 2: 0, 3: 5, 9: 17, 26: 0}
    # a policy that may decide at any step: never
    free = Runner(_PauseAll())
    free.add_arm("a", {})
    free.arms["a"].step = 3
    assert free.run_ahead("a") == 0
    arm.step = 9
    # max_total_epochs: what is left after this epoch and those granted elsewhere
    runner.budget = Budget(max_total_epochs=20, epochs=10)
    assert runner.run_ahead("a") == 9 and runner.run_ahead("a", in_flight=4) == 5
    assert runner.run_ahead("a", in_flight=12) == 0
    # a wall-clock budget: what the measured epoch time fits; nothing before a measure
    runner.budget = Budget(seconds=100.0, started=time.monotonic() - 90.0)
    assert runner.run_ahead("a") == 0
    runner.budget.epoch_seconds = 2.0
    assert 2 <= runner.run_ahead("a") <= 4
    # a target score: the next result may end the search
    runner.budget = Budget(target_score=0.99)
    assert runner.run_ahead("a") == 0
    runner.budget = None
    runner.interrupt()
    assert runner.run_ahead("a") == 0  # a frozen runner grants nothing


def test_a_snapshot_restores_running_arms_to_wake_and_paused_arms_in_order():
    runner = Runner(_PauseAll())
    for arm in "abc":
        runner.add_arm(arm, {"x": arm})
    runner.report("c", 1, 0.1)
    runner.report("a", 1, 0.2)
    state = json.loads(json.dumps(runner.state()))
    again = Runner(_PauseAll())
    again.restore(state)
    assert list(again.wake) == ["b"]
    assert list(again.arms.paused) == ["c", "a"]
    assert again.arms["a"].config == {"x": "a"} and again.arms["a"].step == 1


# -- crash equivalence ------------------------------------------------------------------
def _run(name, curves, stop_at=None, **kwargs):
    """(decisions, epochs) of a replay, snapshot and resumed after ``stop_at`` results."""
    first = Simulation(BUILT_IN[name](), curves, n_workers=1, **kwargs)
    if stop_at is None:
        result = first.run()
        return result.decisions, result.epochs
    first.run(max_results=stop_at)
    state = json.loads(json.dumps(first.runner.state(), default=str))  # through JSON
    second = Simulation(BUILT_IN[name](), curves, n_workers=1, **kwargs)
    second.restore(state, result=copy.deepcopy(first.result))
    result = second.run()
    return result.decisions, result.epochs


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(BUILT_IN)),
    arms=st.integers(4, 20),
    seed=st.integers(0, 10_000),
    fraction=st.floats(0.0, 1.0),
    budget=st.sampled_from([None, 25]),
)
def test_a_resumed_replay_makes_the_uninterrupted_decisions(name, arms, seed, fraction, budget):
    curves = _curves(arms, seed)
    reference = _run(name, curves, budget=budget)
    stop_at = max(1, int(fraction * len(reference[0])))
    assert _run(name, curves, stop_at=stop_at, budget=budget) == reference


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_every_stop_point_of_a_replay_resumes_to_the_same_decisions(name):
    curves = _curves(12, 3)
    reference = _run(name, curves)
    for stop_at in range(1, len(reference[0]) + 1, 3):
        assert _run(name, curves, stop_at=stop_at) == reference, stop_at


def test_a_wall_clock_budget_in_replay_stops_on_time_and_replans():
    curves = _curves(40, 0)
    result = simulate(Hyperband(MAX_T, 3, max_total_epochs=200), curves, time_budget=60.0)
    assert result.seconds <= 60.0
    assert 50 <= result.epochs_used <= 60
    assert result.decisions[-1][3] == "STOP"
    with pytest.raises(ValueError, match="time_budget"):
        simulate(Hyperband(MAX_T, 3), curves, time_budget=-1)


def test_checkpoints_inside_the_project_are_saved_relative_so_a_moved_folder_resumes(tmp_path):
    from bandit_tune.driver.arms import absolute_in, relative_to

    old, new = tmp_path / "old" / "p", tmp_path / "new" / "p"
    inside = str(old / "train_arm_1" / "checkpoint_000002")
    assert relative_to(inside, str(old)) == "./train_arm_1/checkpoint_000002"
    assert relative_to(str(tmp_path / "other" / "c"), str(old)) == str(tmp_path / "other" / "c")
    assert relative_to("s3://bucket/exp/c", str(old)) == "s3://bucket/exp/c"
    assert relative_to(None, str(old)) is None
    runner = Runner(_PauseAll())
    runner.root = str(old)
    runner.add_arm("a", {})
    runner.report("a", 1, 0.5, checkpoint=inside)
    state = json.loads(json.dumps(runner.state()))
    assert state["arms"]["a"]["checkpoint"] == "./train_arm_1/checkpoint_000002"
    moved = Runner(_PauseAll())
    moved.root = str(new)
    moved.restore(state)
    assert moved.arms["a"].checkpoint == str(new / "train_arm_1" / "checkpoint_000002")
    assert absolute_in("/abs/c", str(new)) == "/abs/c"


def test_an_interrupted_runner_is_frozen_at_its_last_snapshot(tmp_path):
    runner = Runner(_PauseAll())
    runner.state_path = str(tmp_path / "state.json")
    runner.add_arm("a", {})
    runner.add_arm("b", {})
    runner.report("a", 1, 0.5)
    runner.interrupt()
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["arms"]["b"]["state"] == "running"
    # Ray's clean-up after the interrupt ends trials: nothing of it is recorded
    assert runner.arm_ended("b") == [] and runner.arms["b"].state is ArmState.RUNNING
    assert runner.report("b", 1, 0.1) == (None, [])
    runner.snapshot(force=True)
    assert json.loads((tmp_path / "state.json").read_text()) == saved


def test_the_policy_is_offered_a_live_view_of_the_paused_arms_in_pause_order():
    from bandit_tune.driver import PausedView

    table = ArmTable()
    for arm in "abcd":
        table.add(arm, {})
    for arm in "dbc":
        table.set_state(arm, ArmState.PAUSED)
    view = table.paused_view
    assert isinstance(view, PausedView)
    assert list(view) == ["d", "b", "c"] and len(view) == 3
    assert view[0] == "d" and view[1] == "b" and view[-1] == "c" and view[1:] == ["b", "c"]
    assert "b" in view and "a" not in view
    with pytest.raises(IndexError):
        view[3]
    table.set_state("b", ArmState.RUNNING)
    table.set_state("b", ArmState.PAUSED)  # paused again: offered last
    assert list(view) == ["d", "c", "b"]


def test_offering_the_paused_arms_does_not_copy_them():
    # 20,000 paused arms: a copy per offer made every free slot cost O(arms)
    seen = []

    class Spy(ASHA):
        def choose_arm_to_resume(self, paused):
            seen.append(paused)
            return None

    runner = Runner(Spy(9, 3), slots=None)
    for i in range(20_000):
        runner.add_arm(f"a{i}", {})
        runner.report(f"a{i}", 1, -float(i))
    runner.next_arm(running=0, new_arms_left=True)
    assert seen and type(seen[-1]).__name__ == "PausedView"
    assert len(seen[-1]) == len(runner.arms.paused) > 10_000


def test_consecutive_failures_stop_the_search_in_the_runner_whatever_the_backend():
    """keras-tuner's max_consecutive_failed_trials is the runner's rule: an arm that ends
    normally resets the count; retries do not count; the limit raises with the error."""
    from bandit_tune.driver.runner import TooManyFailures

    runner = Runner(SuccessiveHalving(max_t=3, eta=3))
    runner.max_consecutive_failures = 2
    for arm_id in "abcd":
        runner.add_arm(arm_id, {"x": 1})
    assert runner.arm_failed("a", retry=True) == []  # retried: not a failure for good
    runner.arm_failed("a", retry=False, error="ValueError: first")
    runner.arm_ended("b")  # ended normally: the count starts again
    runner.arm_failed("c", retry=False)
    assert runner.failed_in_a_row == 1
    with pytest.raises(TooManyFailures, match=r"2 arms failed in a row.*OSError: disk full"):
        runner.arm_failed("d", retry=False, error="Traceback...\nOSError: disk full\n")
    assert runner.arms["d"].state is ArmState.STOPPED


def test_an_arm_that_trains_between_two_failures_breaks_the_run_of_failures():
    """Under Hyperband arms pause at their first rung and rarely end: an epoch trained by
    any arm is what shows the search works, so it resets max_consecutive_failed_trials."""
    from bandit_tune.driver.runner import TooManyFailures

    runner = Runner(Hyperband(max_t=9, eta=3))
    runner.max_consecutive_failures = 2
    for arm_id in "abcde":
        runner.add_arm(arm_id, {"x": 1})
    runner.arm_failed("a", retry=False)
    runner.report("b", 1, 0.5)  # trains an epoch (and pauses at its rung): not a failure
    runner.arm_failed("c", retry=False)
    assert runner.failed_in_a_row == 1
    with pytest.raises(TooManyFailures, match="2 arms failed in a row"):
        runner.arm_failed("d", retry=False)
