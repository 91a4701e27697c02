"""A multi-objective Keras search on Ray: accuracy against model size on digits."""

import os

import pytest

import bandit_tune
from bandit_tune import Objective

pytestmark = pytest.mark.ray


def test_hyperband_on_accuracy_and_size_returns_the_front(
    ray_local, digits_small, build_model, tmp_path, capsys
):
    (x, y), (xv, yv), _ = digits_small
    tuner = bandit_tune.Hyperband(
        build_model,
        objective=["val_accuracy", Objective("params", "min"), Objective("latency_ms", "min")],
        max_epochs=3,
        factor=3,
        seed=0,
        directory=str(tmp_path),
        project_name="mo",
        verbose=1,  # the live display follows the first objective
    )
    assert isinstance(tuner.policy, bandit_tune.policies.MOHyperband)
    tuner.search(x, y, validation_data=(xv, yv))
    assert "best val_accuracy" in capsys.readouterr().out
    rows = tuner.results_
    assert {"val_accuracy", "params", "latency_ms", "pareto_rank"} <= set(rows.columns)
    assert len(rows) == tuner.policy.n_arms and (rows["latency_ms"] > 0).all()
    # params is the model's size: 64 inputs -> units -> 10 classes
    assert (rows["params"] == 64 * rows["units"] + rows["units"] + rows["units"] * 10 + 10).all()
    front = tuner.pareto_front()
    assert len(front) >= 1 and (front["pareto_rank"] == 1).all()
    points = rows[["val_accuracy", "params", "latency_ms"]].to_numpy() * [1, -1, -1]
    for i in front.index:  # nobody dominates a front arm
        better = (points >= points[i]).all(axis=1) & (points > points[i]).any(axis=1)
        assert not better.any()
    assert rows["pareto_rank"].is_monotonic_increasing  # the front first
    assert tuner.hypervolume() >= 0
    assert tuner.hypervolume([0.0, 10**6, 10**4]) > tuner.hypervolume([0.5, 10**5, 10**3]) > 0
    with pytest.raises(ValueError, match="one value per objective"):
        tuner.hypervolume([0.9])
    curves = tuner.plot(str(tmp_path / "curves.png"))
    assert os.path.getsize(curves) > 0 and os.path.getsize(tmp_path / "curves_front.png") > 0
    models = tuner.get_best_models(len(front))
    assert [m.count_params() for m in models] == list(front["params"])
    smallest = tuner.get_best_models(1, preference=lambda row: -row["params"])[0]
    assert smallest.count_params() == rows["params"].min()
    # reloaded from the project folder: the same front
    again = bandit_tune.Hyperband(
        build_model,
        objective=["val_accuracy", Objective("params", "min"), Objective("latency_ms", "min")],
        max_epochs=3,
        factor=3,
        seed=0,
        directory=str(tmp_path),
        project_name="mo",
        verbose=0,
    ).reload()
    assert list(again.pareto_front()["arm_id"]) == list(front["arm_id"])


def test_bayesian_optimization_proposes_with_multi_objective_tpe(
    ray_local, digits_small, build_model, tmp_path
):
    (x, y), (xv, yv), _ = digits_small
    policy = bandit_tune.policies.MOHyperband(3, 3)
    tuner = bandit_tune.BayesianOptimization(
        build_model,
        objective=["val_accuracy", Objective("params", "min")],
        max_trials=policy.n_arms,
        num_initial_points=2,
        policy=policy,
        max_epochs=3,
        seed=0,
        directory=str(tmp_path),
        project_name="motpe",
        verbose=0,
    )
    tuner.search(x, y, validation_data=(xv, yv))
    assert len(tuner.results_) == policy.n_arms
    assert int(tuner.results_["epochs"].sum()) == policy.budget
    assert len(tuner.pareto_front()) >= 1


def test_bad_multi_objective_inputs_fail_before_training(
    ray_local, digits_small, build_model, tmp_path
):
    (x, y), (xv, yv), _ = digits_small
    with pytest.raises(ValueError, match="ASHA is a single-objective policy"):
        bandit_tune.RandomSearch(
            build_model,
            objective=["val_accuracy", Objective("params", "min")],
            policy=bandit_tune.policies.ASHA(3),
            directory=str(tmp_path),
        )
    with pytest.raises(ValueError, match="named twice, with conflicting directions"):
        bandit_tune.Hyperband(
            build_model,
            objective=["val_accuracy", Objective("val_accuracy", "min")],
            max_epochs=3,
            directory=str(tmp_path),
        )
    with pytest.raises(ValueError, match="with cv every objective is a validation metric"):
        bandit_tune.Hyperband(
            build_model,
            objective=["val_accuracy", Objective("accuracy", "max")],
            max_epochs=3,
            directory=str(tmp_path),
            project_name="cvbad",
            verbose=0,
        ).search(x, y, cv=3)
    tuner = bandit_tune.Hyperband(
        build_model,
        objective=["val_accuracy", Objective("val_f1", "max")],
        max_epochs=3,
        directory=str(tmp_path),
        project_name="nof1",
        verbose=0,
    )
    with pytest.raises(ValueError, match="no objective 'val_f1'.*val_accuracy"):
        tuner.search(x, y, validation_data=(xv, yv))


def test_an_epoch_budget_keeps_the_multi_objective_policy_and_its_settings(build_model, tmp_path):
    tuner = bandit_tune.RandomSearch(
        build_model,
        objective=["val_accuracy", Objective("params", "min")],
        policy=bandit_tune.policies.MOHyperband(9, scalarization="epsnet", seed=3),
        max_total_epochs=30,
        directory=str(tmp_path),
    )
    policy = tuner.policy
    assert isinstance(policy, bandit_tune.policies.MOHyperband)
    assert (policy.scalarization, policy.seed, policy.max_total_epochs) == ("epsnet", 3, 30)
    assert policy.budget <= 30


def test_a_cross_validated_multi_objective_search(ray_local, digits_small, build_model, tmp_path):
    (x, y), _, _ = digits_small
    tuner = bandit_tune.Hyperband(
        build_model,
        objective=["val_accuracy", Objective("params", "min")],
        max_epochs=3,
        factor=3,
        seed=0,
        directory=str(tmp_path),
        project_name="mocv",
        verbose=0,
    )
    tuner.search(x[:300], y[:300], cv=3)
    rows = tuner.results_
    assert tuner.n_splits_ == 3 and len(rows) == tuner.policy.n_arms
    assert (rows["params"] == 64 * rows["units"] + rows["units"] + rows["units"] * 10 + 10).all()
    assert rows["pareto_rank"].is_monotonic_increasing and len(tuner.pareto_front()) >= 1
    assert "split2_test_score" in tuner.cv_results_
