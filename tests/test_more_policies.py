"""Median stopping, the curve bandits, AdaptiveASHA, compare() and the recorded curves."""

import json
import math
import os

import numpy as np
import pytest

import bandit_tune
from bandit_tune import compare, load_curves, simulate
from bandit_tune.policies import (
    ASHA,
    UCB,
    AdaptiveASHA,
    Decision,
    EpsilonGreedy,
    Hyperband,
    MedianStopping,
    ThompsonSampling,
    kendall_tau,
)

C, P, S = Decision.CONTINUE, Decision.PAUSE, Decision.STOP


def _added(policy, *arms):
    for arm in arms:
        policy.on_arm_added(arm, {})
    return policy


# -- median stopping --------------------------------------------------------------
def test_median_stopping_stops_below_the_median_of_running_means():
    policy = _added(MedianStopping(max_t=5, grace_period=2, min_samples=3), *"abcde")
    for arm, scores in (("a", [0.5, 0.7]), ("b", [0.6, 0.8]), ("c", [0.1, 0.3])):
        assert [policy.on_result(arm, t + 1, s) for t, s in enumerate(scores)] == [C, C]
    # running means at step 2: a 0.6, b 0.7, c 0.2 -> median 0.6
    assert policy.on_result("d", 1, 0.0) == C  # within the grace period
    assert policy.on_result("d", 2, 0.59) == S  # best 0.59 < 0.6
    assert policy.on_result("e", 1, 0.9) == C
    assert policy.on_result("e", 2, 0.2) == C  # its best (0.9) counts, not its last


def test_median_stopping_waits_for_min_samples_and_stops_at_max_t_and_on_nan():
    policy = _added(MedianStopping(max_t=3, min_samples=3), "a", "b", "c")
    assert policy.on_result("a", 1, 0.9) == C
    assert policy.on_result("b", 1, 0.1) == C  # only one other arm so far
    assert policy.on_result("c", 1, float("nan")) == S
    assert [policy.on_result("a", t, 0.9) for t in (2, 3)] == [C, S]
    assert policy.decision_steps() == [3]


def test_median_stopping_bad_parameters_are_named():
    with pytest.raises(ValueError, match="grace_period=5 is larger than max_t=3"):
        MedianStopping(3, grace_period=5)
    with pytest.raises(ValueError, match="min_samples"):
        MedianStopping(3, min_samples=0)


# -- curve bandits ------------------------------------------------------------------
def test_bandit_explores_each_arm_once_then_pulls_the_best_prediction():
    policy = EpsilonGreedy(max_t=9, n_arms=3, pull=3, epsilon=0.0)
    for arm, base in (("a", 0.2), ("b", 0.6), ("c", 0.4)):
        assert policy.choose_arm_to_resume(["a", "b"][: "abc".index(arm)]) is None  # exploring
        policy.on_arm_added(arm, {})
        # c is the third arm: exploring ends, and b (paused) predicts better than c
        assert [policy.on_result(arm, t, base) for t in (1, 2, 3)] == [C, C, P]
    assert policy.choose_arm_to_resume(["a", "b", "c"]) == "b"
    # b keeps its worker at its next pull boundary while it stays the best
    assert [policy.on_result("b", t, 0.7) for t in (4, 5, 6)] == [C, C, C]
    assert [policy.on_result("b", t, 0.7) for t in (7, 8, 9)] == [C, C, S]  # max_t
    assert policy.choose_arm_to_resume(["a", "c"]) == "c"


def test_bandit_rising_curve_beats_a_flat_one_with_the_same_score():
    policy = _added(EpsilonGreedy(max_t=27, n_arms=2, pull=3, epsilon=0.0), "flat", "rising")
    for t, s in enumerate([0.5, 0.5, 0.5], 1):
        policy.on_result("flat", t, s)
    for t, s in enumerate([0.3, 0.4, 0.5], 1):
        policy.on_result("rising", t, s)
    assert policy.prediction("rising") > policy.prediction("flat")
    assert policy.index("rising", 0.1) > policy.index("flat", 0.1)


def test_ucb_prefers_the_uncertain_arm_when_c_is_large():
    def run(c):
        policy = UCB(max_t=27, n_arms=2, pull=1, c=c)
        for arm, scores in (("early", [0.50]), ("late", [0.51] * 24 + [0.52])):
            policy.on_arm_added(arm, {})
            policy._arms[arm].update(scores=scores, state="paused")  # as if paused there
        # late: better today but 2 epochs left (little uncertainty); early: 26 epochs left
        return policy.choose_arm_to_resume(["early", "late"])

    assert run(0.0) == "late"
    assert run(5.0) == "early"


def test_bandit_budget_stops_everyone_and_nan_stops_the_arm():
    policy = _added(UCB(max_t=9, n_arms=3, pull=1, budget=4), "a", "b")
    assert policy.on_result("a", 1, float("nan")) == S
    assert policy.on_result("b", 1, 0.5) == P  # exploring: a third arm is still to come
    policy.on_no_new_arms()  # ... but none comes
    assert policy.choose_arm_to_resume(["b"]) == "b"
    assert policy.on_result("b", 2, 0.6) == C  # the only arm left keeps its worker
    assert policy.on_result("b", 3, 0.6) == S  # fourth epoch in all: budget spent
    assert policy.arms_to_stop() == []


def test_thompson_is_reproducible_by_seed():
    curves = load_curves().scores[:60]
    runs = [
        simulate(ThompsonSampling(27, n_arms=20, seed=s), curves, budget=200) for s in (1, 1, 2)
    ]
    assert runs[0].decisions == runs[1].decisions
    assert runs[0].decisions != runs[2].decisions


def test_bandits_replay_with_finite_pools_and_keep_to_max_t():
    curves = load_curves().scores
    for policy in (
        UCB(27, n_arms=30),
        ThompsonSampling(27, n_arms=30),
        EpsilonGreedy(27, n_arms=30),
    ):
        result = simulate(policy, curves, n_workers=2)
        assert len(result.epochs) == 30
        assert max(result.epochs.values()) == 27
        assert all(e <= 27 for e in result.epochs.values())


def test_bad_bandit_parameters_are_named():
    with pytest.raises(ValueError, match="epsilon must be a probability"):
        EpsilonGreedy(9, epsilon=1.5)
    with pytest.raises(ValueError, match="c must be a number >= 0"):
        UCB(9, c=-1)
    with pytest.raises(ValueError, match="n_arms"):
        ThompsonSampling(9, n_arms=0)


# -- adaptive first rung ------------------------------------------------------------------
def test_kendall_tau():
    assert kendall_tau([(1, 1), (2, 2), (3, 3)]) == 1.0
    assert kendall_tau([(1, 3), (2, 2), (3, 1)]) == -1.0
    assert kendall_tau([(1, 1), (2, 3), (3, 2)]) == pytest.approx(1 / 3)


def _crossing_curves(n, max_t, seed, noise):
    """Arms whose epoch-1 score is noise and whose later scores follow their quality."""
    rng = np.random.default_rng(seed)
    quality = rng.uniform(size=(n, 1))
    t = np.arange(1, max_t + 1)[None]
    curves = quality * (1 - np.exp(-t / 4)) + rng.normal(0, 0.01, (n, max_t))
    curves[:, 0] = rng.uniform(size=n) * noise + curves[:, 0] * (1 - noise)
    return curves


def test_adaptive_asha_moves_its_first_rung_when_rung_one_ranks_at_random():
    policy = AdaptiveASHA(27, 3, threshold=0.3)
    simulate(policy, _crossing_curves(300, 27, 0, noise=1.0), n_workers=2)
    assert policy.first_rung > 1
    assert policy.moves and policy.moves[0][1] < 0.3


def test_adaptive_asha_keeps_its_first_rung_when_rankings_agree():
    policy = AdaptiveASHA(27, 3, threshold=0.3)
    simulate(policy, _crossing_curves(300, 27, 0, noise=0.0), n_workers=2)
    assert policy.first_rung == 1
    assert policy.moves == []


def test_adaptive_asha_state_refuses_other_parameters():
    state = json.loads(json.dumps(AdaptiveASHA(9, threshold=0.5).state_dict()))
    with pytest.raises(ValueError, match="threshold"):
        AdaptiveASHA(9, threshold=0.2).load_state_dict(state)
    with pytest.raises(ValueError, match="Kendall"):
        AdaptiveASHA(9, threshold=1.5)


# -- recorded curves, ragged curves, compare ------------------------------------------------
def test_shipped_curves_load_with_configs_and_seconds():
    curves = load_curves()
    assert curves.scores.shape == (256, 27)
    assert np.isfinite(curves.scores).all()
    assert len(curves.configs) == 256 and {"units", "learning_rate"} <= set(curves.configs[0])
    assert (curves.seconds > 0).all()
    loss = load_curves(metric="val_loss")
    assert loss.mode == "min" and (loss.scores <= 0).all()
    with pytest.raises(ValueError, match="shipped: digits_mlp"):
        load_curves("cifar")


@pytest.mark.parametrize(
    ("name", "metric", "keys"),
    [
        ("digits_cnn", "val_accuracy", {"filters", "conv_layers"}),
        ("diabetes_mlp", "val_loss", {"optimizer", "units"}),
        ("noisy_labels", "val_accuracy", {"units", "dropout"}),
    ],
)
def test_every_shipped_set_loads_with_its_metric_and_configs(name, metric, keys):
    curves = load_curves(name)
    assert curves.scores.shape == (256, 27) and curves.metric == metric
    assert len(curves.configs) == 256 and keys <= set(curves.configs[0])
    assert np.isfinite(curves.scores).any(axis=1).mean() > 0.9
    assert (curves.seconds > 0).all()
    result = simulate(ASHA(27), curves, n_workers=2)  # replays, NaN arms included
    assert np.isfinite(result.best_score)


def test_a_metric_the_set_does_not_record_is_named():
    with pytest.raises(ValueError, match="records no 'val_accuracy' .*val_loss"):
        load_curves("diabetes_mlp", metric="val_accuracy")


def test_simulate_takes_ragged_curves_and_stops_an_arm_where_its_curve_ends():
    curves = [[0.1, 0.2], [0.3, 0.4, 0.5, 0.6], [0.2]]
    result = simulate(Hyperband(4, 2), curves)
    assert result.epochs["arm_00000"] <= 2 and result.epochs["arm_00002"] == 1
    assert result.best_score == 0.6


def test_simulate_from_results_table_and_search_directory(tmp_path):
    import pandas as pd

    frame = pd.DataFrame(
        {
            "arm_id": ["x", "y"],
            "units": [8, 16],
            "curve": [[0.9, 0.5], [0.7, 0.6, 0.4]],
            "curve_seconds": [[1.0, 1.0], None],
        }
    )
    frame.attrs.update(objective=("val_loss", "min"), params=["units"])
    curves = bandit_tune.as_curves(frame)
    assert (
        curves.mode == "min" and curves.scores[0, 1] == -0.5 and curves.configs[1] == {"units": 16}
    )
    result = simulate(MedianStopping(3, min_samples=1), frame)
    assert result.best_score == -0.4
    payload = {
        "objective": ["val_accuracy", "max"],
        "results": {
            "t1": [
                {"epoch": 1, "val_accuracy": 0.5},
                {"epoch": 2, "val_accuracy": 0.6},
                {"epoch": 2, "val_accuracy": 0.65},
            ],
            "t2": [{"epoch": 1, "val_accuracy": 0.7, "time_this_iter_s": 2.0}],
        },
        "decisions": {},
    }
    (tmp_path / "arms.json").write_text(json.dumps(payload))
    curves = bandit_tune.as_curves(str(tmp_path))
    assert curves.lengths.tolist() == [2, 1] and curves.scores[0, 1] == 0.65
    assert simulate(Hyperband(2, 2), str(tmp_path)).best_score == 0.7


def test_compare_tabulates_regret_and_ranks_and_plots(tmp_path):
    result = compare(
        {"hyperband": lambda: Hyperband(27), "median": MedianStopping(27)},
        seeds=[0, 1],
        n_workers=2,
    )
    table = result.table
    assert list(table.index) == ["hyperband", "median"]
    assert {"regret@2R", "regret@5R", "regret@10R", "regret@20R", "mean_rank"} <= set(table)
    assert ((table.filter(like="regret@") >= 0).all()).all()
    assert sorted(table["mean_rank"]) == pytest.approx(sorted(table["mean_rank"]))
    assert table["mean_rank"].sum() == pytest.approx(3.0)  # ranks 1 and 2, averaged
    # regret never grows with budget
    values = table[["regret@2R", "regret@5R", "regret@10R", "regret@20R"]].to_numpy()
    assert (np.diff(values, axis=1) <= 1e-12).all()
    again = compare(
        {"hyperband": lambda: Hyperband(27), "median": MedianStopping(27)},
        seeds=[0, 1],
        n_workers=2,
    )
    assert again.table.equals(table)
    path = result.plot(str(tmp_path / "cmp.png"))
    assert os.path.getsize(path) > 10_000
    with pytest.raises(ValueError, match="at least one policy"):
        compare({})
    assert math.isfinite(result.oracle)


def test_the_writing_a_policy_page_runs_as_written():
    """The page's offline code blocks run as a reader would paste them."""
    import re

    text = open(os.path.join(os.path.dirname(__file__), "..", "docs", "writing-a-policy.md")).read()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    offline = [b for b in blocks if "tuner.search" not in b and "tune.Tuner" not in b]
    namespace: dict = {}
    for block in offline:
        exec(compile(block, "writing-a-policy.md", "exec"), namespace)  # noqa: S102
    policy = namespace["KeepBestThird"]()
    result = simulate(policy, load_curves(), n_workers=2, max_arms=20)
    assert sorted(result.epochs.values()).count(27) == 3 + 3 + 2  # groups of 9, 9 and 2
    assert set(result.epochs.values()) == {3, 27}
