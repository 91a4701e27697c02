"""The simulator's cluster model: slow workers, lost workers, idle share."""

import collections

import numpy as np
import pytest

from bandit_tune import load_curves, simulate
from bandit_tune.policies import ASHA, Hyperband


@pytest.fixture(scope="module")
def digits():
    return load_curves("digits_mlp")


def test_alike_workers_change_nothing(digits):
    plain = simulate(ASHA(27, 3), digits, n_workers=4, seed=0)
    alike = simulate(ASHA(27, 3), digits, n_workers=4, seed=0, worker_speed=[1.0] * 4)
    assert plain.decisions == alike.decisions
    assert plain.seconds == alike.seconds


def test_a_slow_worker_takes_longer_and_every_worker_is_counted(digits):
    fast = simulate(ASHA(27, 3), digits, n_workers=2, seconds=1.0, seed=0)
    slow = simulate(ASHA(27, 3), digits, n_workers=2, seconds=1.0, seed=0, worker_speed=[1, 3])
    assert slow.seconds > fast.seconds
    # with one-second epochs, two alike workers that never wait are busy all the time
    assert fast.busy_seconds == fast.epochs_used
    assert fast.worker_seconds == pytest.approx(2 * fast.seconds)
    assert 0.0 <= fast.idle_share < 0.05


def test_synchronous_hyperband_idles_more_than_asha(digits):
    seconds = np.random.default_rng(0).lognormal(0, 0.5, size=digits.scores.shape[0])
    hyperband = simulate(Hyperband(27, 3), digits, n_workers=8, seconds=seconds, seed=0)
    asha = simulate(ASHA(27, 3), digits, n_workers=8, seconds=seconds, seed=0)
    assert hyperband.idle_share > asha.idle_share
    assert 0.0 < hyperband.best_found_at <= hyperband.seconds


def test_lost_workers_retrain_nothing_twice_and_are_reproducible(digits):
    kwargs = dict(n_workers=8, seconds=1.0, seed=3, worker_loss=0.05, worker_restart=5.0)
    first = simulate(ASHA(27, 3), digits, **kwargs)
    second = simulate(ASHA(27, 3), digits, **kwargs)
    assert first.workers_lost > 0
    assert first.decisions == second.decisions
    steps = collections.Counter((arm, step) for arm, step, _, _ in first.decisions)
    assert max(steps.values()) == 1  # every epoch of an arm is reported once
    for arm, epochs in first.epochs.items():  # and an arm's epochs follow one another
        assert sorted(s for a, s, _, _ in first.decisions if a == arm) == list(range(1, epochs + 1))
    # a lost epoch costs worker time without a result
    assert first.busy_seconds > first.epochs_used


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(worker_speed=[1.0]), "worker_speed must be 2 positive"),
        (dict(worker_speed=[1.0, 0.0]), "worker_speed must be 2 positive"),
        (dict(worker_loss=1.0), "worker_loss must be a chance"),
        (dict(worker_restart=-1), "worker_restart must be seconds"),
        (dict(seconds=[1.0, 2.0, 3.0]), "seconds must be a number, one value per arm"),
    ],
)
def test_bad_cluster_models_are_refused(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate(ASHA(27, 3), digits, n_workers=2, **kwargs)
