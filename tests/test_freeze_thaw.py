"""FreezeThaw: ASHA's rungs ranked by one Gaussian process over (configuration, epochs)."""

import copy
import json
import math

import numpy as np
import pytest

import bandit_tune
from bandit_tune.policies import ASHA, Decision, FreezeThaw
from bandit_tune.policies.registry import policy_by_name
from bandit_tune.replay.curves import Curves
from bandit_tune.replay.simulate import Simulation


def _families(arms=24, seed=0):
    """Two kinds of configuration: ``slow`` starts low and ends high, ``fast`` flattens.

    ``slow`` arms (lr near 1e-4) score 0.30 after one epoch and 0.95 after nine;
    ``fast`` arms (lr near 1e-1) score 0.50 after one epoch and stay near 0.55.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(1, 10)
    scores, configs = [], []
    for i in range(arms):
        slow = i % 2 == 0
        lr = float(10 ** rng.uniform(-4.2, -3.8) if slow else 10 ** rng.uniform(-1.2, -0.8))
        units = rng.choice([16, 32, 64])  # a numpy integer, as search spaces may give
        if slow:
            curve = 0.30 + 0.65 * (t - 1) / 8
        else:
            curve = 0.50 + 0.05 * (1 - np.exp(-(t - 1)))
        scores.append(curve + rng.normal(0, 0.005, len(t)))
        layers = (units, units) if i % 3 else (units,)  # a tuple reads back as a list
        configs.append({"learning_rate": lr, "units": units, "layers": layers, "optimizer": "adam"})
    scores = np.array(scores)
    return Curves(scores=scores, lengths=np.full(arms, 9), configs=configs)


def _warm(policy, curves, rows):
    policy.warm_start([curves.configs[r] for r in rows], curves.scores[list(rows)])


def test_a_configuration_is_ranked_before_it_trains_from_similar_arms():
    curves = _families()
    policy = FreezeThaw(9, 3, n_startup=6)
    _warm(policy, curves, range(12))
    slow, spread_slow = policy.predict({"learning_rate": 1e-4, "units": 32, "optimizer": "adam"})
    fast, _ = policy.predict({"learning_rate": 1e-1, "units": 32, "optimizer": "adam"})
    assert slow == pytest.approx(0.95, abs=0.05) and fast == pytest.approx(0.55, abs=0.05)
    assert 0 < spread_slow < 0.1
    # its own first epoch moves the prediction, but the family still carries it
    slow_seen, _ = policy.predict({"learning_rate": 1e-4, "units": 32}, [(1, 0.30)])
    assert slow_seen > 0.8


def test_a_slow_starter_whose_configuration_finished_well_is_promoted_over_a_fast_one():
    history, curves = _families(arms=6, seed=1), _families(arms=24, seed=2)
    # ASHA ranks by the first epochs: the flattening arms take the promotions
    asha = bandit_tune.simulate(ASHA(9, 3), curves.scores, n_workers=1)
    assert {int(a[4:]) % 2 for a, s, _, _ in asha.decisions if s == 9} == {1}
    policy = FreezeThaw(9, 3, n_startup=6)
    policy.warm_start(history.configs, history.scores)  # what an earlier search saw
    model = bandit_tune.simulate(policy, curves, n_workers=1)
    nine = {a for a, s, _, d in model.decisions if s == 9}
    assert nine and all(int(a[4:]) % 2 == 0 for a in nine)  # only slow (good) arms finish
    assert model.best_score > asha.best_score + 0.3
    with pytest.raises(ValueError, match="before the search starts"):
        policy.warm_start(history.configs, history.scores)


def test_warm_start_refuses_curves_that_do_not_match_the_configurations():
    with pytest.raises(ValueError, match=r"one row per configuration; got shape \(2, 9\) for 3"):
        FreezeThaw(9, 3).warm_start([{}, {}, {}], np.zeros((2, 9)))


def test_the_frozen_arm_with_the_largest_improvement_per_epoch_is_thawed():
    policy = FreezeThaw(9, 3, n_startup=3)
    for arm in "abcdef":
        policy.on_arm_added(arm, {"x": 0.5})
    # a waits at rung 0 (2 epochs to its next rung), b at rung 1 (6 epochs); each
    # heads a rung of three arms, so each rung may promote it
    for level, arm, score in ((0, "a", 0.80), (1, "b", 0.81)):
        for other in (0.1, 0.2):
            policy._recorded[level].add((-other, policy._seq))
            policy._seq += 1
        key = (-score, policy._seq)
        policy._seq += 1
        policy._recorded[level].add(key)
        policy._wait(level, arm, key)
    policy._predicted = {"a": (0.80, 0.01), "b": (0.81, 0.01)}
    policy._incumbent = 0.79
    # ASHA thaws the higher rung first; per epoch, a is worth more
    assert ASHA.choose_arm_to_resume(copy.deepcopy(policy), ["a", "b"]) == "b"
    assert policy.choose_arm_to_resume(["a", "b"]) == "a"
    assert policy.choose_arm_to_resume(["b"]) == "b"
    assert policy.choose_arm_to_resume([]) is None


def test_nan_stops_the_arm_and_never_reaches_the_model():
    policy = FreezeThaw(9, 3)
    policy.on_arm_added("a", {"x": 1})
    assert policy.on_result("a", 1, math.nan) is Decision.STOP
    assert policy._points == []


def _replay(curves, stop_at=None):
    first = Simulation(FreezeThaw(9, 3, n_startup=5), curves, n_workers=1, seed=1)
    if stop_at is None:
        return first.run().decisions
    first.run(max_results=stop_at)
    state = json.loads(json.dumps(first.runner.state(), default=str))
    second = Simulation(FreezeThaw(9, 3, n_startup=5), curves, n_workers=1, seed=1)
    second.restore(state, result=copy.deepcopy(first.result))
    return second.run().decisions


def test_a_resumed_replay_refits_the_same_model_and_decides_the_same():
    curves = _families(arms=30, seed=3)
    reference = _replay(curves)
    assert reference == _replay(curves)  # reproducible
    for stop_at in (3, 17, 40, len(reference) // 2, len(reference) - 2):
        assert _replay(curves, stop_at) == reference, stop_at


def test_state_round_trip_and_mismatched_parameters():
    curves = _families()
    policy = FreezeThaw(9, 3, n_startup=6)
    _warm(policy, curves, range(10))
    saved = json.loads(json.dumps(policy.state_dict()))
    again = FreezeThaw(9, 3, n_startup=6)
    again.load_state_dict(saved)
    config = {"learning_rate": 3e-4, "units": 16, "optimizer": "adam"}
    assert again.predict(config) == policy.predict(config)
    with pytest.raises(ValueError, match="n_startup, max_points, refit_share"):
        FreezeThaw(9, 3, n_startup=7).load_state_dict(saved)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_startup": 2}, "n_startup must be an integer >= 3"),
        ({"max_points": 5}, "max_points must be an integer >= 10"),
        ({"refit_share": 0}, "refit_share must be a number in"),
        ({"eta": 1}, "eta must be a number >= 2"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FreezeThaw(9, **kwargs)


def test_by_name_and_configurations_it_cannot_model():
    assert isinstance(policy_by_name("freeze-thaw", 27), FreezeThaw)
    policy = FreezeThaw(9, 3, n_startup=3)
    # nested values and a key that never varies are left out; a missing number is mid-range
    for i in range(8):
        config = {"layers": [8, 8] if i % 2 else [16], "lr": 10.0 ** -(i % 4), "fixed": 1}
        if i == 7:
            del config["lr"]
        policy.on_arm_added(f"a{i}", config)
        for step in (1, 2, 3):
            policy.on_result(f"a{i}", step, 0.1 * step + 0.01 * i)
    assert policy._fit is not None
    assert [key for key, _ in policy._fit.encoding.columns] == ["layers", "lr"]
    mean, spread = policy.predict({"lr": 1e-2})
    assert math.isfinite(mean) and math.isfinite(spread)
