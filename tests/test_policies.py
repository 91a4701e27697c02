import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandit_tune import simulate
from bandit_tune.policies import (
    ASHA,
    UCB,
    AdaptiveASHA,
    ArmPolicy,
    Decision,
    EpsilonGreedy,
    Hyperband,
    MedianStopping,
    SuccessiveHalving,
    ThompsonSampling,
)
from bandit_tune.policies._rungs import check_ladder

C, P, S = Decision.CONTINUE, Decision.PAUSE, Decision.STOP


def test_policies_import_neither_ray_nor_tensorflow():
    code = (
        "import bandit_tune.policies, bandit_tune.replay.simulate, bandit_tune.space, sys; "
        "bad = [m for m in ('ray', 'tensorflow', 'keras') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_hyperband_plan_r81_eta3_matches_algorithm_1():
    assert Hyperband(max_t=81, eta=3).plan() == [
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)],
        [(34, 3), (11, 9), (3, 27), (1, 81)],
        [(15, 9), (5, 27), (1, 81)],
        [(8, 27), (2, 81)],
        [(5, 81)],
    ]


@pytest.mark.parametrize(
    "max_t,eta,min_t", [(52, 3, 1), (100, 3, 1), (100, 3, 4), (10, 2, 1), (7, 3, 3)]
)
def test_hyperband_plans_end_exactly_at_max_t(max_t, eta, min_t):
    plan = Hyperband(max_t, eta, min_t).plan()
    assert plan, "at least one bracket"
    for bracket in plan:
        steps = [t for _, t in bracket]
        counts = [n for n, _ in bracket]
        assert steps[-1] == max_t
        assert steps[0] >= min_t
        assert steps == sorted(set(steps))
        assert counts == sorted(counts, reverse=True) and counts[-1] >= 1


def test_hyperband_52_keeps_its_smallest_bracket():
    plan = Hyperband(52, 3).plan()
    assert len(plan) == 4  # Ray drops one: its first budget rounds to 0
    assert plan[0] == [(27, 2), (9, 6), (3, 17), (1, 52)]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"max_t": 0}, "max_t"),
        ({"max_t": 27, "eta": 1.5}, "eta"),
        ({"max_t": 27, "min_t": 0}, "min_t"),
        ({"max_t": 9, "min_t": 10}, "min_t=10"),
        ({"max_t": 9.5}, "max_t"),
    ],
)
def test_bad_ladder_parameters_are_named(kwargs, match):
    args = {"max_t": 27, "eta": 3, "min_t": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        check_ladder(args["max_t"], args["eta"], args["min_t"])
    with pytest.raises(ValueError, match=match):
        Hyperband(**args)


def _add(policy, n):
    ids = [f"a{i}" for i in range(n)]
    for a in ids:
        policy.on_arm_added(a, {})
    return ids


def test_successive_halving_exact_promotions():
    sh = SuccessiveHalving(max_t=9, eta=3, n_arms=9)
    assert sh.plan() == [[(9, 1), (3, 3), (1, 9)]]
    ids = _add(sh, 9)
    scores = [0.1, 0.9, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4]
    for a, s in zip(ids[:-1], scores[:-1]):
        assert sh.on_result(a, 1, s) is P
    # the last arrival completes the rung; it is not in the top 3 -> stop
    assert sh.on_result("a8", 1, 0.4) is S
    assert sorted(sh.arms_to_stop()) == ["a0", "a2", "a4", "a6", "a7"]
    resumed = [sh.choose_arm_to_resume(["a1", "a3", "a5", "a7"]) for _ in range(3)]
    assert resumed == ["a1", "a5", "a3"]  # best first
    assert sh.choose_arm_to_resume([]) is None
    assert sh.on_result("a1", 2, 0.9) is C
    assert sh.on_result("a1", 3, 0.2) is P
    assert sh.on_result("a5", 3, 0.6) is P
    assert sh.on_result("a3", 3, 0.7) is C  # last at rung 3 and best -> continues
    assert sorted(sh.arms_to_stop()) == ["a1", "a5"]
    assert sh.on_result("a3", 9, 0.99) is S  # top rung: done


def test_last_arrival_promoted_continues_without_pausing():
    sh = SuccessiveHalving(max_t=3, eta=3, n_arms=3)
    ids = _add(sh, 3)
    assert sh.on_result(ids[0], 1, 0.1) is P
    assert sh.on_result(ids[1], 1, 0.2) is P
    assert sh.on_result(ids[2], 1, 0.9) is C
    assert sorted(sh.arms_to_stop()) == ["a0", "a1"]


def test_ties_go_to_the_earlier_arrival():
    sh = SuccessiveHalving(max_t=3, eta=3, n_arms=3)
    _add(sh, 3)
    assert sh.on_result("a2", 1, 0.5) is P
    assert sh.on_result("a0", 1, 0.5) is P
    assert sh.on_result("a1", 1, 0.5) is S
    assert sh.choose_arm_to_resume(["a2", "a0"]) == "a2"


def test_nan_and_inf_stop_and_are_never_promoted():
    sh = SuccessiveHalving(max_t=3, eta=3, n_arms=3)
    _add(sh, 3)
    assert sh.on_result("a0", 1, float("nan")) is S
    assert sh.on_result("a1", 1, float("inf")) is S
    # the rung completes with one real arrival and two lost arms: it is promoted
    assert sh.on_result("a2", 1, -5.0) is C
    asha = ASHA(max_t=9, eta=3)
    asha.on_arm_added("x", {})
    assert asha.on_result("x", 1, float("nan")) is S


def test_arm_that_leaves_early_does_not_block_the_rung():
    sh = SuccessiveHalving(max_t=3, eta=3, n_arms=3)
    _add(sh, 3)
    assert sh.on_result("a0", 1, 0.3) is P
    assert sh.on_result("a1", 1, 0.1) is P
    sh.on_arm_finished("a2")  # e.g. EarlyStopping ended it before rung 1
    assert sh.arms_to_stop() == ["a1"]
    assert sh.choose_arm_to_resume(["a0", "a1"]) == "a0"


def test_incomplete_bracket_settles_when_no_new_arms():
    sh = SuccessiveHalving(max_t=9, eta=3)  # plans 9 arms
    _add(sh, 4)
    for a, s in zip(["a0", "a1", "a2", "a3"], [0.1, 0.4, 0.3, 0.2]):
        assert sh.on_result(a, 1, s) is P
    assert sh.choose_arm_to_resume(["a0", "a1", "a2", "a3"]) is None
    sh.on_no_new_arms()
    assert sh.choose_arm_to_resume(["a0", "a1", "a2", "a3"]) == "a1"
    assert sorted(sh.arms_to_stop()) == ["a0", "a2", "a3"]


def test_asha_promotes_top_third_and_resumes_paused_arms():
    asha = ASHA(max_t=9, eta=3)
    assert asha.rungs == [1, 3, 9]
    ids = _add(asha, 6)
    assert asha.on_result("a0", 1, 0.5) is P  # 1 // 3 = 0 promotions
    assert asha.on_result("a1", 1, 0.4) is P
    assert asha.choose_arm_to_resume(["a0", "a1"]) is None
    assert asha.on_result("a2", 1, 0.9) is C  # rank 0 < 3 // 3
    assert asha.on_result("a3", 1, 0.1) is P
    assert asha.on_result("a4", 1, 0.2) is P
    assert asha.choose_arm_to_resume(["a0", "a1", "a3", "a4"]) is None  # 5 // 3 = 1, used
    assert asha.on_result("a5", 1, 0.3) is P
    # 6 // 3 = 2: a0 (0.5) is the best waiting arm and ranks 1 < 2
    assert asha.choose_arm_to_resume(["a0", "a1", "a3", "a4", "a5"]) == "a0"
    assert asha.choose_arm_to_resume(["a1", "a3", "a4", "a5"]) is None
    assert ids


def test_asha_stopping_mode_matches_ray_variant():
    asha = ASHA(max_t=9, eta=3, mode="stopping")
    _add(asha, 4)
    assert asha.on_result("a0", 1, 0.1) is C  # first always continues
    assert asha.on_result("a1", 1, 0.0) is S  # rank 1 >= ceil(2/3)
    assert asha.on_result("a2", 1, 0.5) is C
    assert asha.on_result("a3", 1, 0.05) is S


def test_asha_settles_so_one_arm_reaches_max_t():
    asha = ASHA(max_t=9, eta=3)
    _add(asha, 2)
    assert asha.on_result("a0", 1, 0.2) is P
    assert asha.on_result("a1", 1, 0.3) is P
    asha.on_no_new_arms()
    assert asha.choose_arm_to_resume(["a0", "a1"]) == "a1"
    asha.on_no_new_arms()  # rung 0 promoted someone, rung 1 has nobody waiting
    assert asha.arms_to_stop() == ["a0"]


def test_decision_steps_are_the_rungs():
    assert Hyperband(27, 3).decision_steps() == [1, 3, 9, 27]
    assert ASHA(27, 3).decision_steps() == [1, 3, 9, 27]
    assert ArmPolicy().decision_steps() is None


def _curves(n_arms, n_epochs, seed):
    rng = np.random.default_rng(seed)
    quality = rng.uniform(0.3, 1.0, size=(n_arms, 1))
    epochs = np.arange(1, n_epochs + 1)
    noise = rng.normal(0, 0.02, size=(n_arms, n_epochs))
    return quality * (1 - np.exp(-epochs / rng.uniform(2, 8, size=(n_arms, 1)))) + noise


@pytest.mark.parametrize("max_t", [9, 27, 52])
@pytest.mark.parametrize("workers", [1, 2, 5])
def test_hyperband_replay_trains_exactly_the_planned_budget(max_t, workers):
    hb = Hyperband(max_t, 3)
    result = simulate(hb, _curves(hb.n_arms, max_t, 0), n_workers=workers)
    assert result.epochs_used == hb.budget
    assert max(result.epochs.values()) == max_t
    assert len(result.epochs) == hb.n_arms


def test_asha_replay_of_10000_arms_is_fast():
    import time

    start = time.process_time()
    result = simulate(ASHA(52, 3), _curves(10_000, 52, 1), n_workers=8)
    assert result.epochs_used > 10_000
    assert max(result.epochs.values()) == 52
    print("replay seconds", time.process_time() - start)


policies = st.sampled_from(
    ["sh", "hb", "asha", "asha_stop", "adaptive", "median", "ucb", "thompson", "egreedy"]
)


def _make(kind):
    return {
        "sh": lambda: SuccessiveHalving(9, 3),
        "hb": lambda: Hyperband(9, 3),
        "asha": lambda: ASHA(9, 3),
        "asha_stop": lambda: ASHA(9, 3, mode="stopping"),
        "adaptive": lambda: AdaptiveASHA(9, 3, min_pairs=2, threshold=0.9),
        "median": lambda: MedianStopping(9, min_samples=2),
        "ucb": lambda: UCB(9, n_arms=5, pull=2, budget=40),
        "thompson": lambda: ThompsonSampling(9, n_arms=5, pull=2, seed=3),
        "egreedy": lambda: EpsilonGreedy(9, n_arms=5, pull=2, epsilon=0.3),
    }[kind]()


@settings(max_examples=60, deadline=None)
@given(
    kind=policies,
    seed=st.integers(0, 10_000),
    n_arms=st.integers(1, 30),
    workers=st.integers(1, 4),
    cut=st.integers(0, 200),
    nan_rate=st.sampled_from([0.0, 0.1]),
)
def test_state_round_trip_mid_run_gives_identical_decisions(
    kind, seed, n_arms, workers, cut, nan_rate
):
    curves = _curves(n_arms, 9, seed)
    rng = np.random.default_rng(seed)
    curves[rng.uniform(size=curves.shape) < nan_rate] = np.nan
    reference = simulate(_make(kind), curves, n_workers=workers)

    class Snapshotting(ArmPolicy):
        """Delegates to a policy and swaps in a JSON copy of it after `cut` results."""

        def __init__(self):
            self.inner, self.count = _make(kind), 0

        def on_result(self, arm_id, step, score):
            self.count += 1
            if self.count == cut:
                state = json.loads(json.dumps(self.inner.state_dict()))
                self.inner = _make(kind)
                self.inner.load_state_dict(state)
            return self.inner.on_result(arm_id, step, score)

        def __getattribute__(self, name):
            if name in (
                "on_arm_added",
                "on_arm_finished",
                "choose_arm_to_resume",
                "arms_to_stop",
                "on_no_new_arms",
                "accepts_new_arm",
            ):
                return getattr(self.inner, name)
            return object.__getattribute__(self, name)

    replayed = simulate(Snapshotting(), curves, n_workers=workers)
    assert replayed.decisions == reference.decisions or _same_with_nan(
        replayed.decisions, reference.decisions
    )


def _same_with_nan(a, b):
    return len(a) == len(b) and all(
        x[0] == y[0]
        and x[1] == y[1]
        and x[3] == y[3]
        and (x[2] == y[2] or (math.isnan(x[2]) and math.isnan(y[2])))
        for x, y in zip(a, b)
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_arms=st.integers(1, 60), workers=st.integers(1, 6))
def test_invariants_under_replay(seed, n_arms, workers):
    for policy in (Hyperband(27, 3), ASHA(27, 3), SuccessiveHalving(27, 3)):
        curves = _curves(n_arms, 27, seed)
        result = simulate(policy, curves, n_workers=workers)
        # every arm was tried, no arm trained past max_t, someone reached the top
        assert len(result.epochs) == n_arms
        assert max(result.epochs.values()) == 27
        # a paused or stopped arm is never promoted past a rung it lost at: every
        # arm's epochs are a rung (or max_t)
        rungs = set(policy.decision_steps())
        assert set(result.epochs.values()) <= rungs


def test_state_of_another_policy_is_refused():
    state = ASHA(9).state_dict()
    with pytest.raises(ValueError, match="ASHA"):
        Hyperband(9).load_state_dict(state)
    with pytest.raises(ValueError, match="plan"):
        Hyperband(27).load_state_dict(Hyperband(9).state_dict())
