"""Proposers in replay: which recorded arm starts next, from configurations and results."""

import numpy as np
import pytest

import bandit_tune
from bandit_tune.policies import ASHA, Hyperband, PolicyError
from bandit_tune.replay.curves import Curves
from bandit_tune.replay.proposers import GPProposer, Proposer, TPEProposer, encode
from bandit_tune.replay.simulate import Simulation


def _bowl(arms=120, max_t=9, seed=0):
    """Scores peak narrowly where x is near 0.7 (lr and act are irrelevant); curves saturate."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, arms)
    lr = 10 ** rng.uniform(-4, -1, arms)
    final = 0.6 + 0.35 * np.exp(-(((x - 0.7) / 0.15) ** 2))  # a narrow peak
    t = np.arange(1, max_t + 1)
    scores = final[:, None] - 0.3 / t[None, :] + rng.normal(0, 0.003, (arms, max_t))
    configs = [
        {"x": float(a), "lr": float(b), "act": "relu" if a > 0.5 else "tanh"} for a, b in zip(x, lr)
    ]
    return Curves(scores, np.full(arms, max_t), None, configs)


class Highest(Proposer):
    """Starts the highest-numbered available arm (a known order to check the plumbing)."""

    def __init__(self):
        self.seen = []

    def propose(self, available):
        return max(available)

    def observe(self, row, step, score):
        self.seen.append((row, step))


def test_the_proposer_picks_the_arm_and_sees_every_result():
    curves = _bowl(20)
    proposer = Highest()
    result = bandit_tune.simulate(ASHA(9, 3), curves, 1, proposer=proposer)
    started = list(dict.fromkeys(a for a, *_ in result.decisions))
    assert started[:3] == ["arm_00019", "arm_00018", "arm_00017"]
    assert len(proposer.seen) == result.epochs_used


def test_a_proposal_that_is_not_an_available_arm_is_named():
    class Bad(Proposer):
        def propose(self, available):
            return 10_000

    with pytest.raises(PolicyError, match="Bad.propose returned 10000"):
        bandit_tune.simulate(ASHA(9, 3), _bowl(20), 1, proposer=Bad())


def test_a_proposer_needs_configurations():
    with pytest.raises(ValueError, match="configurations"):
        bandit_tune.simulate(ASHA(9, 3), np.ones((5, 9)), 1, proposer=GPProposer())
    with pytest.raises(ValueError, match="n_startup must be an integer >= 1"):
        TPEProposer(n_startup=0)
    with pytest.raises(ValueError, match="random_fraction must lie in"):
        GPProposer(random_fraction=2)


def test_encode_scales_numbers_logs_wide_ranges_and_one_hots_strings():
    x = encode([{"lr": 1e-4, "u": 8, "a": "relu"}, {"lr": 1e-1, "u": 16, "a": "tanh"}])
    # columns by sorted key: a (2 one-hot columns), lr (log scale), u
    assert x.tolist() == [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]]


@pytest.mark.parametrize("make", [GPProposer, TPEProposer], ids=["gp", "tpe"])
def test_a_model_finds_the_best_region_sooner_than_the_recorded_order(make):
    curves = _bowl(120)
    best = curves.scores.max()
    model_regret, random_regret = [], []
    for seed in range(8):
        for proposer, out in ((make(n_startup=8), model_regret), (None, random_regret)):
            result = bandit_tune.simulate(
                Hyperband(9, 3), curves, 2, budget=90, seed=seed, proposer=proposer
            )
            out.append(best - result.best_score)
    assert np.mean(model_regret) < 0.5 * np.mean(random_regret), (model_regret, random_regret)


@pytest.mark.parametrize("make", [GPProposer, TPEProposer], ids=["gp", "tpe"])
def test_a_replay_with_a_proposer_resumes_to_the_same_decisions(make):
    curves = _bowl(60)
    whole = bandit_tune.simulate(ASHA(9, 3), curves, 2, seed=1, proposer=make(n_startup=5))
    first = Simulation(ASHA(9, 3), curves, 2, seed=1, proposer=make(n_startup=5))
    part = first.run(max_results=70)
    second = Simulation(ASHA(9, 3), curves, 2, seed=1, proposer=make(n_startup=5))
    second.restore(first.runner.state(), part)
    assert second.run().decisions == whole.decisions


def test_compare_takes_policy_and_proposer_pairs():
    table = bandit_tune.compare(
        {"asha": lambda: ASHA(9, 3), "asha+gp": (lambda: ASHA(9, 3), GPProposer)},
        _bowl(60),
        seeds=(0,),
        budgets=(2, 5),
    ).table
    assert list(table.index) == ["asha", "asha+gp"]
    with pytest.raises(TypeError, match="the proposer must be a Proposer"):
        bandit_tune.compare({"x": (lambda: ASHA(9, 3), lambda: 3)}, _bowl(20), seeds=(0,))
