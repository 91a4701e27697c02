"""The same policy object decides identically in replay and on Ray (one worker)."""

import os
import runpy

import numpy as np
import pytest

from bandit_tune import simulate
from bandit_tune.policies import ASHA, PASHA, CurveEnsemble, Hyperband, TopKAfterWarmup
from bandit_tune.replay import replay_on_ray

pytestmark = pytest.mark.ray
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _median_after_two():
    return runpy.run_path(os.path.join(EXAMPLES, "custom_policy.py"))["MedianAfterTwo"]()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Hyperband(9, 3),
        lambda: ASHA(9, 3),
        _median_after_two,
        lambda: TopKAfterWarmup(9, arms=17, keep=3, warmup=2),
        lambda: PASHA(9, 3),
        lambda: CurveEnsemble(9, 3),
    ],
    ids=["hyperband", "asha", "median_after_two", "top_k_after_warmup", "pasha", "curve_ensemble"],
)
def test_simulate_and_ray_make_the_same_decisions(make, ray_local, tmp_path):
    rng = np.random.default_rng(7)
    curves = rng.uniform(0.1, 1.0, (17, 1)) * (1 - np.exp(-np.arange(1, 10) / 3))
    curves += rng.normal(0, 0.01, curves.shape)
    expected = simulate(make(), curves, n_workers=1).decisions
    on_ray = replay_on_ray(make(), curves, str(tmp_path))
    assert [(a, s, d) for a, s, _, d in on_ray] == [(a, s, d) for a, s, _, d in expected]
    assert np.allclose([x[2] for x in on_ray], [x[2] for x in expected])
