"""Population-based training: the policy's decisions, the runner's exploit, bad input."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pbt_toy import run, score, train

from bandit_tune import simulate
from bandit_tune.driver.exploit import adopt_checkpoint, exploited_from
from bandit_tune.driver.runner import Runner
from bandit_tune.policies import ArmPolicy, Decision, Exploit, PolicyError, PopulationBasedTraining
from bandit_tune.space import Choice, Float, Int

LRS = [0.9, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01]


def pbt(**kwargs):
    args = dict(
        max_t=24,
        hyperparam_mutations={"lr": LRS},
        population_size=8,
        perturbation_interval=4,
        seed=0,
    )
    args.update(kwargs)
    return PopulationBasedTraining(**args)


def configs(n=8, lrs=LRS):
    return [{"lr": lrs[i % len(lrs)], "units": 32} for i in range(n)]


def best_fixed(epochs):
    """The best final score a fixed learning rate of LRS reaches in ``epochs``."""
    best = -1.0
    for lr in LRS:
        w = 0.0
        for _ in range(epochs):
            w = train(w, lr)
        best = max(best, score(w, lr))
    return best


@pytest.mark.parametrize("synch", [False, True])
def test_pbt_finds_a_schedule_no_fixed_value_has(synch):
    out = run(pbt(synch=synch), configs(), workers=3)
    runner = out["runner"]
    finals = [a.decisions[-1][1] for a in runner.arms]
    assert all(a.step == 24 for a in runner.arms)
    assert max(finals) > best_fixed(24) + 0.01
    exploited = [a for a in runner.arms if a.lineage]
    assert exploited
    for arm in exploited:
        for entry in arm.lineage:
            assert entry["donor"] != arm.arm_id
            assert entry["donor_step"] % 4 == 0
            assert entry["new"]["lr"] in LRS
    # the best arm ends with a smaller learning rate than the best fixed value's
    best = max(runner.arms, key=lambda a: a.decisions[-1][1])
    assert best.lineage and best.config["lr"] < 0.2


def test_an_exploited_arm_continues_from_the_donors_checkpoint_with_new_values():
    out = run(pbt(), configs(), workers=8)
    runner = out["runner"]
    arm = next(a for a in runner.arms if a.lineage)
    entry = arm.lineage[0]
    donor = runner.arms[entry["donor"]]
    # the donor's config, with only the mutable value explored
    assert {k: v for k, v in arm.config.items() if k != "lr"} == {
        k: v for k, v in donor.config.items() if k != "lr"
    } or len(arm.lineage) > 1
    # the arm's history goes back to the donor's step after the exploit
    steps = [s for s, _, _ in arm.decisions]
    at = steps.index(entry["step"])
    assert arm.decisions[at][2] == "EXPLOIT"
    assert steps[at + 1] == entry["donor_step"] + 1


def test_the_bottom_quantile_exploits_the_top_exactly():
    policy = pbt(population_size=4, quantile_fraction=0.25, seed=3, resample_probability=0)
    for i in range(4):
        policy.on_arm_added(f"a{i}", {"lr": LRS[i]})
    # three arms report at the interval; the fourth then is worst and exploits the best
    for arm_id, value in [("a0", 0.5), ("a1", 0.9), ("a2", 0.7)]:
        assert policy.on_result(arm_id, 4, value) in (Decision.CONTINUE, Decision.PAUSE)
    decision = policy.on_result("a3", 4, 0.1)
    assert isinstance(decision, Exploit)
    assert decision.donor == "a1"  # the top quantile of 4 at 0.25 is one arm
    assert decision.config["lr"] in (LRS[0], LRS[2])  # a neighbour of a1's 0.5
    # the best arm itself never exploits
    assert policy.on_result("a1", 8, 0.95) in (Decision.CONTINUE, Decision.PAUSE)


def test_ties_and_nan_rank_last():
    policy = pbt(population_size=4, seed=1)
    for i in range(4):
        policy.on_arm_added(f"a{i}", {"lr": LRS[i]})
    policy.on_result("a0", 4, 0.5)
    policy.on_result("a1", 4, 0.5)
    policy.on_result("a2", 4, 0.6)
    decision = policy.on_result("a3", 4, float("nan"))  # diverged: the worst
    assert isinstance(decision, Exploit) and decision.donor == "a2"


def test_the_same_seed_gives_the_same_lineage_and_a_saved_state_resumes_it():
    first = run(pbt(seed=7), configs(), workers=2)["runner"]
    second = run(pbt(seed=7), configs(), workers=2)["runner"]
    assert [a.lineage for a in first.arms] == [a.lineage for a in second.arms]
    assert [a.decisions for a in first.arms] == [a.decisions for a in second.arms]
    # a driver killed after 60 results resumes from its snapshot to the same end
    runner = Runner(pbt(seed=7), mode="max")
    out = run(runner.policy, configs(), workers=2, runner=runner, stop_after=60)
    assert out["interrupted"]
    state = json.loads(json.dumps(runner.state()))
    resumed = Runner(pbt(seed=7), mode="max")
    resumed.restore(state)
    done = run(resumed.policy, configs(), workers=2, runner=resumed)["runner"]
    assert all(a.step == 24 for a in done.arms)
    assert sum(len(a.lineage) for a in done.arms) > 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 1000),
    workers=st.integers(1, 8),
    synch=st.booleans(),
    quantile=st.sampled_from([0.125, 0.25, 0.5]),
)
def test_every_arm_trains_max_t_and_every_exploit_is_valid(seed, workers, synch, quantile):
    out = run(pbt(seed=seed, synch=synch, quantile_fraction=quantile), configs(), workers)
    runner = out["runner"]
    assert len(runner.arms) == 8
    for arm in runner.arms:
        assert arm.step == 24
        assert arm.config["lr"] in LRS and arm.config["units"] == 32
        for entry in arm.lineage:
            assert entry["donor"] in runner.arms and entry["donor"] != arm.arm_id


def test_perturbations_stay_in_the_space():
    policy = pbt(
        hyperparam_mutations={
            "lr": Float("lr", 1e-4, 1e-1, sampling="log"),
            "batch": Int("batch", 16, 256),
            "opt": Choice("opt", ["sgd", "adam"]),
        },
        resample_probability=0.3,
    )
    rng = np.random.default_rng(0)
    config = {"lr": 0.1, "batch": 256, "opt": "sgd", "units": 8}
    for _ in range(200):
        config = policy.explore(config, rng)
        assert 1e-4 <= config["lr"] <= 1e-1
        assert 16 <= config["batch"] <= 256 and isinstance(config["batch"], int)
        assert config["opt"] in ("sgd", "adam") and config["units"] == 8


def test_a_custom_explore_function_is_applied_and_checked():
    policy = pbt(custom_explore_fn=lambda c: {**c, "lr": 0.01})
    assert policy.explore({"lr": 0.5, "units": 32}, np.random.default_rng(0))["lr"] == 0.01
    outside = pbt(custom_explore_fn=lambda c: {**c, "lr": 7.0})
    with pytest.raises(ValueError, match="outside its range"):
        outside.explore({"lr": 0.5, "units": 32}, np.random.default_rng(0))
    architecture = pbt(custom_explore_fn=lambda c: {**c, "units": 64})
    with pytest.raises(ValueError, match="'units'.*not in hyperparam_mutations"):
        architecture.explore({"lr": 0.5, "units": 32}, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"perturbation_interval": 24}, "not shorter than max_t=24"),
        ({"perturbation_interval": 0}, "positive integer"),
        ({"population_size": 1}, "population_size"),
        ({"quantile_fraction": 0.7}, "quantile_fraction"),
        ({"resample_probability": 2}, "resample_probability"),
        ({"perturbation_factors": (1.2, -1)}, "perturbation_factors"),
        ({"hyperparam_mutations": {}}, "at least one"),
        ({"hyperparam_mutations": {"lr": []}}, "empty list"),
        ({"hyperparam_mutations": {"lr": 3}}, "must be a list"),
        ({"custom_explore_fn": 3}, "custom_explore_fn"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pbt(**kwargs)


def test_a_mutation_the_space_lacks_is_refused():
    with pytest.raises(ValueError, match="does not declare"):
        pbt(hyperparam_mutations={"momentum": None}).with_space({"lr": Float("lr", 0.01, 1)})


def test_replay_refuses_pbt_with_a_reason():
    with pytest.raises(ValueError, match="recorded learning curves cannot"):
        simulate(pbt(), np.zeros((8, 24)))


class _Bad(ArmPolicy):
    """Exploits whatever it is told to, to check the runner's refusals."""

    mutable_keys = frozenset({"lr"})

    def __init__(self, exploit):
        self.exploit = exploit

    def on_result(self, arm_id, step, score):
        if arm_id == "b":
            return self.exploit
        return Decision.CONTINUE


@pytest.mark.parametrize(
    ("exploit", "message"),
    [
        (Exploit("nobody", {"lr": 0.1, "units": 32}), "not an arm of this search"),
        (Exploit("b", {"lr": 0.1, "units": 32}), "the arm itself"),
        (Exploit("a", {"lr": 0.1, "units": 64}), "differs from .* in .units..*not mutable"),
        (Exploit("c", {"lr": 0.1, "units": 32}), "no checkpoint"),
        (Exploit("a", [("lr", 0.1)]), "not a dict"),
    ],
)
def test_a_bad_exploit_names_the_policy_the_hook_and_the_arm(exploit, message):
    runner = Runner(_Bad(exploit))
    runner.add_arm("a", {"lr": 0.5, "units": 32})
    runner.add_arm("c", {"lr": 0.5, "units": 32})
    runner.add_arm("b", {"lr": 0.3, "units": 32})
    runner.report("a", 1, 0.5, checkpoint="mem://a/1")
    with pytest.raises(PolicyError, match=rf"_Bad\.on_result .*arm 'b'.*|{message}") as info:
        runner.report("b", 1, 0.1)
    assert "_Bad.on_result" in str(info.value) and "'b'" in str(info.value)
    assert __import__("re").search(message, str(info.value))


def test_a_policy_without_mutable_keys_cannot_exploit():
    bad = _Bad(Exploit("a", {"lr": 0.1}))
    bad.mutable_keys = None
    runner = Runner(bad)
    runner.add_arm("a", {"lr": 0.5})
    runner.add_arm("b", {"lr": 0.3})
    runner.report("a", 1, 0.5, checkpoint="mem://a/1")
    with pytest.raises(PolicyError, match="declares no mutable_keys"):
        runner.report("b", 1, 0.1)


def test_the_donors_checkpoint_is_copied_into_the_arms_folder(tmp_path):
    donor = tmp_path / "trial" / "checkpoint_000001"
    donor.mkdir(parents=True)
    (donor / "weights.h5").write_bytes(b"donor")
    own = tmp_path / "arms" / "b"
    for step in (4, 8):
        (own / f"checkpoint_{step:06d}").mkdir(parents=True)
    copy = adopt_checkpoint(str(donor), str(own), 4, "a")
    assert sorted(os.listdir(own)) == ["checkpoint_000004"]  # its own 4 and 8 are gone
    assert (own / "checkpoint_000004" / "weights.h5").read_bytes() == b"donor"
    assert exploited_from(copy) == {"donor": "a", "step": 4}
    assert exploited_from(str(donor)) is None

    runner = Runner(_Bad(Exploit("a", {"lr": 0.1})))
    runner.root = str(tmp_path)
    runner.add_arm("a", {"lr": 0.5})
    runner.add_arm("b", {"lr": 0.3})
    runner.report("a", 4, 0.5, checkpoint=str(donor))
    decision, _ = runner.report("b", 6, 0.1)
    assert isinstance(decision, Exploit)
    arm = runner.arms["b"]
    assert arm.checkpoint == str(own / "checkpoint_000004") and arm.step == 4
    assert list(runner.wake) == ["b"] and runner.take_exploited() == ["b"]
    assert arm.lineage == [
        {
            "order": 0,
            "step": 6,
            "results": 0,  # none passed with the reports here
            "donor": "a",
            "donor_step": 4,
            "old": {"lr": 0.3},
            "new": {"lr": 0.1},
        }
    ]
    saved = runner.state()["arms"]["b"]
    assert saved["checkpoint"] == "./arms/b/checkpoint_000004" and saved["lineage"]


def test_an_exploit_from_another_architecture_is_refused():
    runner = Runner(_Bad(Exploit("a", {"lr": 0.1, "units": 64})))
    runner.add_arm("a", {"lr": 0.5, "units": 64})
    runner.add_arm("b", {"lr": 0.3, "units": 32})
    runner.report("a", 1, 0.5, checkpoint="mem://a/1")
    with pytest.raises(PolicyError, match=r"differs from the arm in 'units' \(32 -> 64\)"):
        runner.report("b", 1, 0.1)


def test_pbt_exploits_only_arms_of_the_same_architecture():
    mixed = [{"lr": LRS[i], "units": 32 if i % 2 else 64} for i in range(8)]
    runner = run(pbt(seed=2), mixed, workers=4)["runner"]
    exploited = [a for a in runner.arms if a.lineage]
    assert exploited
    for arm in runner.arms:
        assert arm.config["units"] == (32 if int(arm.arm_id[-1]) % 2 else 64)
        for entry in arm.lineage:
            assert runner.arms[entry["donor"]].config["units"] == arm.config["units"]


@pytest.mark.parametrize("synch", [False, True])
@pytest.mark.parametrize("seed", [0, 5])
def test_retraining_with_an_arms_schedule_gives_its_model(synch, seed):
    from bandit_tune.driver.lineage import lineage_rows, schedule

    out = run(pbt(seed=seed, synch=synch), configs(), workers=3)
    runner, weights = out["runner"], out["weights"]
    arms = runner.arms.to_json()["arms"]
    assert len(lineage_rows(arms)) == sum(len(a.lineage) for a in runner.arms) > 0
    for arm in runner.arms:
        plan = schedule(arms, arm.arm_id)
        assert plan[0]["from_epoch"] == 0 and plan[-1]["to_epoch"] == 24
        w = 0.0
        for segment in plan:
            for _ in range(segment["from_epoch"], segment["to_epoch"]):
                w = train(w, segment["lr"])
        assert w == weights[arm.arm_id]  # exactly the arm's model
        if arm.lineage:
            assert len(plan) >= 1


def _pb2(**kwargs):
    from bandit_tune.policies import PB2

    args = dict(
        max_t=24,
        hyperparam_mutations={"lr": Float("lr", 0.01, 0.9, sampling="log")},
        population_size=8,
        perturbation_interval=4,
        seed=0,
    )
    args.update(kwargs)
    return PB2(**args)


def test_pb2_picks_the_values_its_gp_says_gain_most_now():
    policy = _pb2(kappa=0.0)
    for i in range(8):
        policy.on_arm_added(f"a{i}", {"lr": 0.1, "units": 32})
        policy._step[f"a{i}"] = 20
    # gains peak at u = 0.2 late in training, at u = 0.9 early
    for u in np.linspace(0, 1, 11):
        policy._gains.append([20.0, float(u), -((u - 0.2) ** 2)])
        policy._gains.append([4.0, float(u), -((u - 0.9) ** 2)])
    new = policy.explore({"lr": 0.5, "units": 32}, np.random.default_rng(0))
    u = (np.log(new["lr"]) - np.log(0.01)) / (np.log(0.9) - np.log(0.01))
    assert abs(u - 0.2) < 0.1 and new["units"] == 32


@pytest.mark.parametrize("synch", [False, True])
def test_pb2_runs_a_population_reproducibly_and_resumes(synch):
    lrs = [0.9, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01]
    first = run(_pb2(synch=synch), configs(lrs=lrs), workers=3)["runner"]
    second = run(_pb2(synch=synch), configs(lrs=lrs), workers=3)["runner"]
    assert [a.lineage for a in first.arms] == [a.lineage for a in second.arms]
    assert all(a.step == 24 for a in first.arms)
    for arm in first.arms:
        assert 0.01 <= arm.config["lr"] <= 0.9
    assert len(first.policy._gains) >= 4
    state = json.loads(json.dumps(first.policy.state_dict()))
    again = _pb2(synch=synch)
    again.load_state_dict(state)
    assert again._gains == first.policy._gains and again._previous == first.policy._previous


def test_a_population_that_could_never_exploit_is_refused_and_a_partial_one_warned():
    policy = pbt(population_size=4)
    lone = [{"lr": 0.1, "dropout": d} for d in (0.1, 0.2, 0.3, 0.4)]
    with pytest.raises(ValueError, match=r"no two arms .* share their values of \['dropout'\]"):
        policy.check_population(lone)
    mixed = [{"lr": 0.1, "units": u} for u in (32, 32, 64, 16)]
    (warning,) = policy.check_population(mixed)
    assert "2 of 4 arms" in warning and "['units']" in warning
    assert policy.check_population([{"lr": lr, "units": 32} for lr in LRS[:4]]) == []


def test_a_model_kept_at_a_checkpoint_is_forgotten_once_it_trains_on():
    """The in-memory resume cache: a model kept at epoch 3 that trains on is not epoch 3."""
    pytest.importorskip("keras")
    from bandit_tune.arm.checkpoints import ReportCallback
    from bandit_tune.arm.train import forget_paused_model, keep_paused_model, take_paused_model

    called = []
    reporter = ReportCallback([3, 6], 9, on_train_on=lambda: called.append(True))
    reporter.on_epoch_begin(0)
    assert not called  # no checkpoint yet
    reporter.last_checkpoint = 3
    reporter.on_epoch_begin(3)  # the 4th epoch starts: training goes on past the checkpoint
    assert called == [True]

    model = object()
    keep_paused_model("arm-x", model, 3)
    assert take_paused_model("arm-x", 3) is model  # paused at 3, resumed at 3: in memory
    keep_paused_model("arm-x", model, 3)
    forget_paused_model("arm-x")
    assert take_paused_model("arm-x", 3) is None  # trained on since: rebuilt from disk


def test_an_exploit_in_memory_copies_weights_and_optimizer_state_but_not_the_rate():
    pytest.importorskip("keras")
    import keras
    from pbt_parts import build_model

    from bandit_tune.arm.train import copy_state
    from bandit_tune.space import HyperParameters

    x = np.random.default_rng(0).random((64, 8, 8)).astype("float32")
    y = np.arange(64) % 10
    donor = build_model(HyperParameters({"units": 16, "dropout": 0.1, "learning_rate": 0.2}))
    donor.fit(x, y, epochs=2, verbose=0)
    arm = build_model(HyperParameters({"units": 16, "dropout": 0.4, "learning_rate": 0.01}))
    copy_state(donor, arm)
    for mine, theirs in zip(arm.get_weights(), donor.get_weights()):
        np.testing.assert_array_equal(mine, theirs)
    for mine, theirs in zip(arm.optimizer.variables, donor.optimizer.variables):
        if mine.name == "learning_rate":
            assert float(mine.numpy()) == pytest.approx(0.01) and float(theirs.numpy()) != 0.01
        else:
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert int(arm.optimizer.iterations.numpy()) == 2 * 2  # two epochs of two batches
    assert arm.layers[2].rate == 0.4  # its own dropout
    keras.backend.clear_session()
