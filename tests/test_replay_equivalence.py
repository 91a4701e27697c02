"""The same runner in replay and on Ray: the same decisions, budgets included.

Every built-in policy replays the same recorded curves through
:func:`bandit_tune.simulate` (virtual workers) and through
:func:`bandit_tune.replay.replay_on_ray` (real Ray Tune trials that report the
curves and checkpoint every epoch), with one worker: without a budget, with an
epoch budget and with a wall-clock budget on the recorded epoch seconds. The
decision sequences must be equal, step for step.
"""

import numpy as np
import pytest

from bandit_tune import simulate
from bandit_tune.policies import (
    ASHA,
    UCB,
    AdaptiveASHA,
    EpsilonGreedy,
    Hyperband,
    MedianStopping,
    SuccessiveHalving,
    ThompsonSampling,
)
from bandit_tune.replay import replay_on_ray

pytestmark = pytest.mark.ray

MAX_T = 9

POLICIES = {
    "hyperband": lambda budget: Hyperband(MAX_T, 3, max_total_epochs=budget),
    "successive_halving": lambda budget: SuccessiveHalving(MAX_T, 3),
    "asha": lambda budget: ASHA(MAX_T, 3),
    "asha_stopping": lambda budget: ASHA(MAX_T, 3, mode="stopping"),
    "adaptive_asha": lambda budget: AdaptiveASHA(MAX_T, 3),
    "median_stopping": lambda budget: MedianStopping(MAX_T),
    "ucb": lambda budget: UCB(MAX_T, n_arms=5),
    "thompson": lambda budget: ThompsonSampling(MAX_T, n_arms=5, seed=3),
    "epsilon_greedy": lambda budget: EpsilonGreedy(MAX_T, n_arms=5, seed=3),
}

# (name, epoch budget, wall-clock budget in recorded seconds)
BUDGETS = [("none", None, None), ("epochs", 30, None), ("seconds", None, 24.0)]


def _curves():
    rng = np.random.default_rng(7)
    arms = 9
    curves = np.cumsum(rng.uniform(0, 0.1, size=(arms, MAX_T)), axis=1)
    curves += rng.uniform(0, 0.3, size=(arms, 1))
    seconds = rng.uniform(0.5, 1.5, size=(arms, MAX_T)).round(3)
    return curves, seconds


# every policy without a budget; the budgets (the runner's own code, the same for every
# policy) with a synchronous, an asynchronous, a stopping and a randomised policy
BUDGETED = ("hyperband", "asha", "median_stopping", "thompson")
CASES = [(name, BUDGETS[0]) for name in sorted(POLICIES)] + [
    (name, budget) for budget in BUDGETS[1:] for name in BUDGETED
]


@pytest.mark.parametrize(
    "name, budget", CASES, ids=[f"{name}-{budget[0]}" for name, budget in CASES]
)
def test_replay_and_ray_make_the_same_decisions(ray_local, tmp_path, name, budget):
    _, epochs, seconds_budget = budget
    curves, seconds = _curves()
    plan = epochs or 200
    if name == "hyperband" and seconds_budget is None and epochs is None:
        plan = None
    simulated = simulate(
        POLICIES[name](plan),
        curves,
        n_workers=1,
        budget=epochs,
        seconds=seconds,
        time_budget=seconds_budget,
    )
    on_ray = replay_on_ray(
        POLICIES[name](plan),
        curves,
        str(tmp_path),
        max_total_epochs=epochs,
        time_budget=seconds_budget,
        seconds=seconds,
    )
    expected = [(a, s, pytest.approx(v), d) for a, s, v, d in simulated.decisions]
    assert on_ray == expected
    if epochs is not None:
        assert simulated.epochs_used <= epochs
    if seconds_budget is not None:
        # the budget stops when less than a mean epoch is left: one long epoch may overrun
        assert simulated.seconds <= seconds_budget + float(seconds.max())
