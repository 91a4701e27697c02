"""TopKAfterWarmup: exact rankings, ties, NaN, early-ended arms, resume from state."""

import json
import math

import numpy as np
import pytest

import bandit_tune
from bandit_tune.policies import Decision, TopKAfterWarmup


def _curves(finals, max_t=5):
    """Arm i rises linearly to finals[i]: its rank at every epoch is its final's rank."""
    return np.array([[f * (e + 1) / max_t for e in range(max_t)] for f in finals])


def test_the_best_k_after_the_warmup_train_to_max_t_and_the_rest_stop():
    finals = [0.3, 0.9, 0.5, 0.8, 0.1, 0.7]
    result = bandit_tune.simulate(TopKAfterWarmup(5, arms=6, keep=2), _curves(finals), 2)
    epochs = [result.epochs[a] for a in sorted(result.epochs, key=lambda a: int(a.split("_")[-1]))]
    assert epochs == [1, 5, 1, 5, 1, 1]  # arms 1 (0.9) and 3 (0.8) kept
    assert result.epochs_used == TopKAfterWarmup(5, 6, 2).budget == 6 + 2 * 4
    assert math.isclose(result.best_score, 0.9)


def test_with_a_longer_warmup_arms_pause_there_and_the_budget_counts_it():
    finals = [0.3, 0.9, 0.5, 0.8]
    policy = TopKAfterWarmup(6, arms=4, keep=1, warmup=2)
    result = bandit_tune.simulate(policy, _curves(finals, 6), 1)
    assert sorted(result.epochs.values()) == [2, 2, 2, 6]
    assert result.epochs_used == policy.budget == 4 * 2 + 1 * 4
    # every arm paused at the warm-up except the one that completed the ranking
    paused = [d for d in result.decisions if d[3] == "PAUSE"]
    assert [d[1] for d in paused] == [2, 2, 2]


def test_hooks_directly_ties_nan_and_the_arm_that_completes_the_ranking():
    policy = TopKAfterWarmup(3, arms=4, keep=2)
    for arm in "abcd":
        policy.on_arm_added(arm, {})
    assert not policy.accepts_new_arm()
    assert policy.on_result("a", 1, 0.5) == Decision.PAUSE
    assert policy.on_result("b", 1, math.nan) == Decision.PAUSE
    assert policy.on_result("c", 1, 0.5) == Decision.PAUSE  # tie with a: a was added first
    assert policy.choose_arm_to_resume(["a", "b", "c"]) is None  # not ranked yet
    # d completes the ranking; 0.7 is best, so d trains on at once
    assert policy.on_result("d", 1, 0.7) == Decision.CONTINUE
    assert policy.arms_to_stop() == ["c", "b"]  # c lost the tie, NaN ranks last
    assert policy.arms_to_stop() == []
    assert policy.choose_arm_to_resume(["a", "b", "c"]) == "a"
    assert policy.choose_arm_to_resume(["b", "c"]) is None
    assert policy.on_result("a", 2, 0.6) == Decision.CONTINUE
    assert policy.on_result("a", 3, 0.6) == Decision.STOP


def test_an_arm_that_ends_before_its_warmup_is_ranked_last_and_never_blocks_the_ranking():
    policy = TopKAfterWarmup(3, arms=3, keep=2, warmup=2)
    for arm in "abc":
        policy.on_arm_added(arm, {})
    assert policy.on_result("a", 1, 0.9) == Decision.CONTINUE
    policy.on_arm_finished("a")  # errored at epoch 2
    assert policy.on_result("b", 2, 0.4) == Decision.PAUSE
    assert policy.on_result("c", 2, 0.3) == Decision.CONTINUE  # b and c are the two left
    assert policy.choose_arm_to_resume(["b"]) == "b"


def test_settling_ranks_the_arms_that_reported():
    policy = TopKAfterWarmup(3, arms=5, keep=1)
    for arm in "ab":
        policy.on_arm_added(arm, {})
        policy.on_result(arm, 1, {"a": 0.2, "b": 0.6}[arm])
    policy.on_no_new_arms()  # only two of five arms ever came
    assert policy.choose_arm_to_resume(["a", "b"]) == "b"
    assert policy.arms_to_stop() == ["a"]


def test_a_policy_restored_mid_search_decides_as_the_original():
    finals = [0.3, 0.9, 0.5, 0.8, math.nan, 0.7, 0.2, 0.6]
    curves = _curves(finals, 4)
    whole = bandit_tune.simulate(TopKAfterWarmup(4, arms=8, keep=3), curves, 2)
    policy = TopKAfterWarmup(4, arms=8, keep=3)
    for i in range(5):
        policy.on_arm_added(f"arm_{i:05d}", {})
        policy.on_result(f"arm_{i:05d}", 1, curves[i, 0])
    restored = TopKAfterWarmup(4, arms=8, keep=3)
    restored.load_state_dict(json.loads(json.dumps(policy.state_dict())))
    assert restored.state_dict() == policy.state_dict()
    for i in range(5, 8):
        for p in (policy, restored):
            p.on_arm_added(f"arm_{i:05d}", {})
        assert restored.on_result(f"arm_{i:05d}", 1, curves[i, 0]) == policy.on_result(
            f"arm_{i:05d}", 1, curves[i, 0]
        )
    assert restored.arms_to_stop() == policy.arms_to_stop()
    assert restored.state_dict() == policy.state_dict()
    kept = sorted(a for a, e in whole.epochs.items() if e == 4)
    assert len(kept) == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_t=5, arms=3, keep=4), "keep=4 is more than arms=3"),
        (dict(max_t=5, arms=3, keep=1, warmup=5), "warmup=5 must be less than max_t=5"),
        (dict(max_t=5, arms=0, keep=1), "arms must be an integer >= 1, got 0"),
        (dict(max_t=5, arms=3, keep=1.5), "keep must be an integer >= 1, got 1.5"),
        (dict(max_t=True, arms=3, keep=1), "max_t must be an integer >= 1, got True"),
    ],
)
def test_bad_parameters_are_refused_in_words(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TopKAfterWarmup(**kwargs)


def test_a_state_of_other_parameters_is_refused():
    state = TopKAfterWarmup(5, arms=4, keep=2).state_dict()
    with pytest.raises(ValueError, match="differ from"):
        TopKAfterWarmup(5, arms=4, keep=3).load_state_dict(state)
