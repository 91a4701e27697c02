"""The same policy object decides identically in replay and on Ray (one worker)."""

import os
import runpy

import numpy as np
import pytest

from bandit_tune import simulate
from bandit_tune.policies import ASHA, PASHA, CurveEnsemble, FreezeThaw, Hyperband, TopKAfterWarmup
from bandit_tune.ray_tune.replay_on_ray import replay_on_ray
from bandit_tune.replay.curves import Curves

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


def test_a_configuration_model_decides_the_same_on_ray(ray_local, tmp_path):
    rng = np.random.default_rng(3)
    lr = 10 ** rng.uniform(-4, -1, 17)
    # the final score depends on the configuration; the first epochs do not show it
    final = 0.9 - 0.3 * np.abs(np.log10(lr) + 2.5)
    curves = final[:, None] * (1 - np.exp(-np.arange(1, 10) / (1 + 3 * (lr[:, None] < 1e-3))))
    units = rng.choice([8, 16], 17)
    configs = [{"learning_rate": float(v), "units": int(u)} for v, u in zip(lr, units)]
    recorded = Curves(scores=curves, lengths=np.full(17, 9), configs=configs)
    expected = simulate(FreezeThaw(9, 3, n_startup=4), recorded, n_workers=1).decisions
    on_ray = replay_on_ray(FreezeThaw(9, 3, n_startup=4), curves, str(tmp_path), configs=configs)
    assert [(a, s, d) for a, s, _, d in on_ray] == [(a, s, d) for a, s, _, d in expected]
    with pytest.raises(ValueError, match="configs has 2 items; curves has 17 arms"):
        replay_on_ray(FreezeThaw(9, 3), curves, str(tmp_path), configs=configs[:2])
