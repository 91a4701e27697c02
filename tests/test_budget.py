"""Budgets: parsing, whole-bracket plans, re-plans and the driver's clock (no Ray)."""


import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_tune import simulate
from bandit_tune.driver.budget import Budget, parse_budget, plan_brackets
from bandit_tune.policies import Hyperband, bracket_epochs, hyperband_brackets


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("10m", 600),
        ("2h", 7200),
        ("1h30m", 5400),
        ("45", 45),
        (12.5, 12.5),
        ("1.5m", 90),
        (" 2 m ", 120),
    ],
)
def test_parse_budget(text, seconds):
    assert parse_budget(text) == seconds


@pytest.mark.parametrize("bad", ["ten minutes", "10x", "", "-5", 0, -1, True, "m10", None])
def test_bad_budgets_are_named(bad):
    with pytest.raises(ValueError, match="budget"):
        parse_budget(bad)


def test_plan_with_the_full_budget_is_one_hyperband_pass():
    assert plan_brackets(27, 3, 1, Hyperband(27).budget) == hyperband_brackets(27, 3, 1)


def test_plan_shrinks_or_skips_brackets_that_do_not_fit():
    plan = plan_brackets(27, 3, 1, 200)
    assert sum(bracket_epochs(b) for b in plan) <= 200
    assert all(b[-1] == (b[-1][0], 27) and b[-1][0] >= 1 for b in plan)  # someone reaches R
    assert plan[:2] == hyperband_brackets(27, 3, 1)[:2]


def test_budget_too_small_for_one_arm_is_refused():
    with pytest.raises(ValueError, match="too small for one arm.*at least 27"):
        plan_brackets(27, 3, 1, 20)


@settings(max_examples=60, deadline=None)
@given(
    max_t=st.sampled_from([9, 27, 52, 81]),
    eta=st.sampled_from([2, 3, 4]),
    extra=st.integers(0, 3000),
    workers=st.integers(1, 4),
    seed=st.integers(0, 100),
)
def test_planned_hyperband_trains_whole_brackets_within_the_budget(
    max_t, eta, extra, workers, seed
):
    import numpy as np

    total = max_t + extra
    policy = Hyperband(max_t, eta, max_total_epochs=total)
    curves = np.random.default_rng(seed).uniform(size=(policy.n_arms, max_t)).cumsum(axis=1)
    result = simulate(policy, curves, n_workers=workers)
    assert result.epochs_used == policy.budget <= total
    # every bracket ran to its top: as many arms reached max_t as the plan says
    assert sum(1 for e in result.epochs.values() if e == max_t) == sum(
        b[-1][0] for b in policy.plan()
    )
    assert not policy.accepts_new_arm()


def test_replan_replaces_only_unopened_brackets():
    policy = Hyperband(9, 3, max_total_epochs=Hyperband(9).budget)
    first = policy.plan()[0]
    for i in range(first[0][0]):
        policy.on_arm_added(f"a{i}", {})
    policy.replan_epochs(10_000)
    assert policy.plan()[0] == first and len(policy.plan()) > 3
    policy.replan_epochs(0)
    assert policy.plan() == [first]
    with pytest.raises(ValueError, match="cycle=False"):
        Hyperband(9).replan([])


def test_budget_clock_counts_epochs_in_flight_and_target():
    budget = Budget(max_total_epochs=5)
    for _ in range(3):
        budget.record(0.5)
    assert not budget.exhausted(in_flight=1)
    assert budget.exhausted(in_flight=2) and "max_total_epochs=5" in budget.reason
    target = Budget(target_score=0.9, mode="max")
    target.record(0.95)
    assert target.exhausted() and "target_score" in target.reason
    low = Budget(target_score=0.1, mode="min")
    low.record(0.2)
    assert not low.exhausted()
    now = [100.0]
    clock = Budget(seconds=0.05, started=100.0, clock=lambda: now[0])
    assert not clock.exhausted()
    now[0] += 0.06  # the injected clock: no sleeping
    assert clock.exhausted() and "budget of 0.05 s" in clock.reason
