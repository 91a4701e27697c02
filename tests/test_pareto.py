"""Multi-objective halving on recorded vectors: Pareto order, hypervolume, promotions."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bandit_tune
from bandit_tune.driver import Runner
from bandit_tune.policies import (
    ASHA,
    MOASHA,
    Decision,
    MOHyperband,
    MOSuccessiveHalving,
    hypervolume,
    non_dominated_fronts,
    pareto_order,
)
from bandit_tune.policies.pareto import (
    crowding_distances,
    epsnet_order,
    pareto_front,
    tchebycheff_order,
)
from bandit_tune.replay.simulate import Simulation

NAN = math.nan
# (accuracy, -size): higher is better in both
POINTS = [(0.9, -5.0), (0.8, -2.0), (0.9, -5.0), (0.7, -1.0), (0.8, -3.0), (NAN, -1.0), (0.6, -4.0)]


def test_fronts_by_hand_with_ties_and_nan():
    # front 1: 0, 2 (equal: neither dominates), 1, 3; 4 is dominated by 1; 6 by 1, 3 and 4
    assert non_dominated_fronts(POINTS) == [[0, 1, 2, 3], [4], [6], [5]]


def test_crowding_and_order_by_hand():
    front = [0, 1, 2, 3]
    crowd = crowding_distances(POINTS, front)
    # ends by accuracy: 3 (0.7) and 2 (0.9, the later of the tie); by size: 0 and 3
    assert crowd[0] == crowd[2] == crowd[3] == math.inf
    assert crowd[1] == pytest.approx((0.9 - 0.7) / 0.2 + (-1.0 - -5.0) / 4.0)
    assert pareto_order(POINTS) == [0, 2, 3, 1, 4, 6, 5]
    # arrival order breaks ties of front and crowding
    assert pareto_order(POINTS, seqs=[6, 5, 4, 3, 2, 1, 0])[:3] == [3, 2, 0]


def test_hypervolume_by_hand():
    assert hypervolume([(1, 5), (2, 4), (3, 3)], (0, 0)) == pytest.approx(12.0)
    assert hypervolume([(1, 1, 1), (2, 0.5, 0.5)], (0, 0, 0)) == pytest.approx(1 + 2 * 0.25 - 0.25)
    assert hypervolume([(NAN, 9), (-1, 3)], (0, 0)) == 0.0  # NaN and non-dominating add nothing
    with pytest.raises(ValueError, match="reference point has 3 objectives"):
        hypervolume([(1, 2)], (0, 0, 0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=30))
def test_the_sweep_front_is_the_first_front(points):
    first = {tuple(points[i]) for i in non_dominated_fronts(points)[0]}
    assert {tuple(p) for p in pareto_front(points).tolist()} == {
        tuple(map(float, p)) for p in first
    }
    order = pareto_order(points)
    assert sorted(order) == list(range(len(points)))
    # nobody is ordered after an arm it dominates
    for a, b in zip(order, order[1:]):
        pa, pb = points[a], points[b]
        assert not (all(x <= y for x, y in zip(pa, pb)) and pa != pb)


def _vectors(finals, sizes, max_t=9):
    t = np.arange(1, max_t + 1)
    acc = np.asarray(finals)[:, None] * (1 - np.exp(-t / 3))[None, :]
    size = np.repeat(-np.asarray(sizes, dtype=float)[:, None], max_t, axis=1)
    return np.stack([acc, size], axis=2)


def test_successive_halving_keeps_the_pareto_best_third_at_each_rung():
    finals = [0.9, 0.8, 0.95, 0.7, 0.85, 0.6, 0.5, 0.4, 0.3]
    sizes = [5, 2, 9, 1, 3, 8, 7, 6, 4]
    curves = _vectors(finals, sizes)
    result = bandit_tune.simulate(MOSuccessiveHalving(9, 3, n_arms=9), curves, 1)
    # rung 1: front = {2 (most accurate), 0, 4, 1, 3 (smallest)}; crowding keeps the two
    # ends (2 and 3) and then the one with the widest gap around it
    points = [tuple(curves[i, 0]) for i in range(9)]
    expected = pareto_order(points)[:3]
    kept = [int(a[-5:]) for a, e in result.epochs.items() if e >= 3]
    assert sorted(kept) == sorted(expected)
    assert {2, 3} <= set(kept)


def test_asha_promotes_by_pareto_order_and_waits_otherwise():
    # fronts: {a, c} (both ends: a first by arrival), {b}, {e}, {d}, {f}
    policy = MOASHA(9, 3)
    for arm in "abcdef":
        policy.on_arm_added(arm, {})
    assert policy.on_result("a", 1, (0.5, -5.0)) == Decision.PAUSE  # 1 arm: quota 0
    assert policy.on_result("b", 1, (0.4, -6.0)) == Decision.PAUSE  # dominated by a
    assert policy.on_result("c", 1, (0.3, -1.0)) == Decision.PAUSE  # quota 1: a is first
    assert policy.choose_arm_to_resume(["a", "b", "c"]) == "a"
    assert policy.choose_arm_to_resume(["b", "c"]) is None  # quota used up
    assert policy.on_result("d", 1, (0.1, -9.0)) == Decision.PAUSE
    assert policy.on_result("e", 1, (0.2, -8.0)) == Decision.PAUSE
    assert policy.on_result("f", 1, (0.05, -9.5)) == Decision.PAUSE  # 6 arms: quota 2
    assert policy.choose_arm_to_resume(["b", "c", "d", "e", "f"]) == "c"
    assert policy.on_result("a", 2, (NAN, -5.0)) == Decision.STOP  # a NaN objective: diverged


def test_state_round_trip_and_a_resumed_replay_decide_the_same():
    rng = np.random.default_rng(3)
    curves = _vectors(rng.uniform(0.3, 1, 40), rng.uniform(1, 9, 40))
    for make in (
        lambda: MOASHA(9, 3),
        lambda: MOHyperband(9, 3),
        lambda: MOHyperband(9, 3, scalarization="random_weights", seed=2),
        lambda: MOASHA(9, 3, scalarization="epsnet"),
    ):
        whole = bandit_tune.simulate(make(), curves, 1, seed=1)
        first = Simulation(make(), curves, 1, seed=1)
        part = first.run(max_results=60)
        second = Simulation(make(), curves, 1, seed=1)
        second.restore(json.loads(json.dumps(first.runner.state())), part)  # as on disk
        assert second.run().decisions == whole.decisions


def test_epsnet_orders_a_front_by_spread_by_hand():
    #          A          B          C          D          E          F (dominated by E)
    points = [(1.0, 0.0), (0.9, 0.5), (0.5, 0.9), (0.0, 1.0), (0.6, 0.6), (0.4, 0.4)]
    # A: best first objective; D: farthest from A; E: farthest from both; then B and C tie
    # at 0.3 from E (B arrived first); F, of the second front, last
    assert epsnet_order(points) == [0, 3, 4, 1, 2, 5]
    curves = _vectors([0.9, 0.8, 0.95, 0.7, 0.85, 0.6, 0.5, 0.4, 0.3], [5, 2, 9, 1, 3, 8, 7, 6, 4])
    result = bandit_tune.simulate(
        MOSuccessiveHalving(9, 3, n_arms=9, scalarization="epsnet"), curves, 1
    )
    kept = sorted(int(a[-5:]) for a, e in result.epochs.items() if e >= 3)
    assert kept == sorted(epsnet_order([tuple(curves[i, 0]) for i in range(9)])[:3])


def test_random_weights_rank_by_tchebycheff():
    points = [(1.0, 0.0), (0.0, 1.0), (0.6, 0.6)]
    assert tchebycheff_order(points, [0.5, 0.5])[0] == 2
    assert tchebycheff_order(points, [0.99, 0.01])[0] == 0
    with pytest.raises(ValueError, match="scalarization must be one of"):
        MOHyperband(9, scalarization="sum")


def test_a_single_objective_policy_given_several_objectives_is_refused():
    curves = _vectors([0.5, 0.6], [1, 2])
    with pytest.raises(ValueError, match="ASHA is a single-objective policy .* 2 objectives"):
        bandit_tune.simulate(ASHA(9), curves, 1)
    with pytest.raises(ValueError, match="one per objective"):
        Runner(MOASHA(9), mode=["max", "up"])
    runner = Runner(MOASHA(9), mode=["max", "min"])
    runner.add_arm("a", {})
    runner.report("a", 1, [0.5, 3.0])
    assert runner.arms["a"].decisions[0][1] == (0.5, -3.0)  # the policy sees higher-is-better


def test_compare_on_vectors_reads_regret_off_the_hypervolume():
    rng = np.random.default_rng(0)
    curves = _vectors(rng.uniform(0.3, 1, 60), rng.uniform(1, 9, 60))
    result = bandit_tune.compare(
        {"moasha": lambda: MOASHA(9), "mohyperband": lambda: MOHyperband(9)},
        curves,
        seeds=(0, 1),
        budgets=(2, 20),
    )
    oracle = bandit_tune.as_curves(curves).best()
    assert result.oracle == pytest.approx(oracle) and oracle > 0
    regret = result.table["regret@20R"]
    assert (regret >= -1e-12).all() and (regret <= result.table["regret@2R"] + 1e-12).all()
