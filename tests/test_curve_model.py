"""CurveEnsemble: ASHA whose rungs rank arms by their curve ensemble's predicted final score."""

import math

import numpy as np
import pytest

import bandit_tune
from bandit_tune.policies import ASHA, CurveEnsemble, CurveFit, Decision


def _fit(points):
    fit = CurveFit()
    for step, score in points:
        fit.add(step, score)
    return fit


def test_a_curve_of_one_member_is_extrapolated_exactly():
    steps = range(1, 10)
    power = _fit((t, 0.9 - 0.5 / t) for t in steps)
    mean, spread = power.predict(27)
    assert mean == pytest.approx(0.9 - 0.5 / 27, abs=1e-6) and spread < 1e-3
    exponential = _fit((t, 0.8 - 0.4 * math.exp(-0.3 * t)) for t in steps)
    assert exponential.predict(27)[0] == pytest.approx(0.8 - 0.4 * math.exp(-8.1), abs=1e-6)


def test_too_few_points_predict_the_last_score_and_nan_is_ignored():
    fit = _fit([(1, 0.3), (2, math.nan), (3, 0.5)])
    assert fit.n == 2
    assert fit.predict(27) == (0.5, math.inf)
    assert fit.predict(27, min_points=2)[0] >= 0.5


def test_a_falling_curve_is_predicted_by_the_best_score_it_reached():
    fit = _fit([(1, 0.9), (2, 0.8), (3, 0.7), (4, 0.6)])
    assert fit.predict(27)[0] == pytest.approx(0.9)


def _crossing_curves(max_t=9):
    t = np.arange(1, max_t + 1)
    riser = 1.0 - 0.4 / t  # 0.60, 0.80, 0.87 ... 0.96 at epoch 9
    fast = [0.89 - 0.3 * np.exp(-2 * (t - 1)), 0.88 - 0.3 * np.exp(-2 * (t - 1))]
    weak = [np.full(max_t, 0.3 + 0.01 * i) for i in range(6)]
    return np.array([riser, *fast, *weak])


def test_the_rising_arm_is_promoted_over_arms_that_have_flattened_higher():
    curves = _crossing_curves()
    asha = bandit_tune.simulate(ASHA(9, 3), curves, 1)
    curve = bandit_tune.simulate(CurveEnsemble(9, 3), curves, 1)
    # at rung 3 the riser (0.87) is below the fast arms (0.88, 0.87); ASHA trains a fast
    # arm to the end, the curve model the riser, which ends best
    assert asha.best_arm == "arm_00001" and asha.epochs["arm_00000"] == 3
    assert curve.best_arm == "arm_00000" and curve.epochs["arm_00000"] == 9
    assert curve.epochs_used == asha.epochs_used  # the same halving, another ranking


def test_state_round_trip_keeps_curves_and_decisions():
    policy = CurveEnsemble(9, 3, kappa=0.5)
    for arm in "abc":
        policy.on_arm_added(arm, {})
    for step, score in [(1, 0.2), (2, 0.4)]:
        policy.on_result("a", step, score)
    saved = policy.state_dict()
    again = CurveEnsemble(9, 3, kappa=0.5)
    again.load_state_dict(saved)
    assert again.state_dict() == saved
    assert again.prediction("a") == policy.prediction("a")
    assert again.on_result("a", 3, 0.5) == policy.on_result("a", 3, 0.5)
    with pytest.raises(ValueError, match="kappa, min_points"):
        CurveEnsemble(9, 3, kappa=1.0).load_state_dict(saved)


def test_nan_stops_the_arm():
    policy = CurveEnsemble(9, 3)
    policy.on_arm_added("a", {})
    assert policy.on_result("a", 1, math.nan) == Decision.STOP


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kappa": math.nan}, "kappa must be a finite number"),
        ({"kappa": "1"}, "kappa must be a finite number"),
        ({"min_points": 1}, "min_points must be an integer >= 2"),
        ({"eta": 1}, "eta must be a number >= 2"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CurveEnsemble(9, **kwargs)


def test_by_name():
    from bandit_tune.policies.registry import policy_by_name

    assert isinstance(policy_by_name("curve-ensemble", 27), CurveEnsemble)
