"""PASHA: the top rung grows only when rankings at the two top rungs disagree."""

import math

import numpy as np
import pytest

import bandit_tune
from bandit_tune.policies import ASHA, PASHA, Decision


def _linear(finals, max_t=9):
    """Arm i rises linearly to finals[i]: rankings never change between epochs."""
    return np.array([[f * (e + 1) / max_t for e in range(max_t)] for f in finals])


def test_stable_rankings_never_train_past_the_second_rung():
    rng = np.random.default_rng(0)
    curves = _linear(rng.uniform(0.2, 1.0, 27))
    policy = PASHA(9, 3)
    result = bandit_tune.simulate(policy, curves, 2)
    assert max(result.epochs.values()) == 3 and policy.top_rung == 3
    asha = bandit_tune.simulate(ASHA(9, 3), curves, 2)
    assert result.epochs_used < asha.epochs_used
    assert math.isclose(result.best_score, curves[:, 2].max())  # the best arm at rung 3


def test_hooks_a_reversed_pair_grows_the_top_rung_and_frees_the_waiting_arms():
    policy = PASHA(9, 3)
    for arm in "abcdef":
        policy.on_arm_added(arm, {})
    # rung 1 (epoch 1): a and b are promoted once enough arms are behind them
    assert policy.on_result("a", 1, 0.9) == Decision.PAUSE
    assert policy.on_result("b", 1, 0.8) == Decision.PAUSE
    assert policy.on_result("c", 1, 0.1) == Decision.PAUSE
    assert policy.choose_arm_to_resume(["a", "b", "c"]) == "a"
    assert policy.on_result("a", 2, 0.5) == Decision.CONTINUE
    assert policy.on_result("a", 3, 0.5) == Decision.PAUSE  # at the top rung: waits
    assert policy.on_result("d", 1, 0.2) == Decision.PAUSE
    assert policy.on_result("e", 1, 0.3) == Decision.PAUSE
    assert policy.on_result("f", 1, 0.05) == Decision.PAUSE
    assert policy.choose_arm_to_resume(["b", "c", "d", "e", "f"]) == "b"
    policy.on_result("b", 2, 0.6)
    # b ranked below a at epoch 1 and above it at epoch 3: the ranking is unstable
    assert policy.top_rung == 3
    decision = policy.on_result("b", 3, 0.7)
    assert policy.top_rung == 9
    assert decision == Decision.PAUSE  # one of two at rung 3: not in the top third yet
    # a waits at rung 3 and is not promotable either (2 // 3 == 0); once settling:
    policy.on_no_new_arms()
    assert policy.choose_arm_to_resume(["a", "b"]) == "b"  # the best at rung 3 goes on


def test_epsilon_treats_close_scores_as_tied():
    policy = PASHA(9, 3, epsilon=0.2)
    for arm in "abc":
        policy.on_arm_added(arm, {})
    for arm, score in (("a", 0.9), ("b", 0.85), ("c", 0.1)):
        policy.on_result(arm, 1, score)
    for arm in ("a", "b"):
        policy._arms[arm].level = 1  # as if both were promoted
        policy._arms[arm].state = policy._arms["c"].state.RUNNING
    policy.on_result("a", 3, 0.5)
    policy.on_result("b", 3, 0.6)  # reversed, but by 0.1 < epsilon at both rungs
    assert policy.top_rung == 3


# crash equivalence (a replay snapshot and resumed at any result decides as the
# uninterrupted one) is checked for PASHA with the other policies in test_driver.py


def test_bad_epsilon_and_a_foreign_state_are_refused():
    with pytest.raises(ValueError, match="epsilon must be a number >= 0, got -1"):
        PASHA(9, 3, epsilon=-1)
    with pytest.raises(ValueError, match="no 'pasha' entry"):
        PASHA(9, 3).load_state_dict(ASHA(9, 3).state_dict())
    with pytest.raises(ValueError, match="saved epsilon=0.1 differs"):
        PASHA(9, 3).load_state_dict(PASHA(9, 3, epsilon=0.1).state_dict())


def test_pasha_is_a_named_policy_for_the_command_line():
    from bandit_tune.policies.registry import POLICY_NAMES, policy_by_name

    assert "pasha" in POLICY_NAMES
    policy = policy_by_name("PASHA", 27, 3)
    assert isinstance(policy, PASHA) and policy.rungs == [1, 3, 9, 27]
