"""End-to-end: every example runs (small settings), sharing the session's Ray."""

import os
import runpy
import sys

import pytest

pytestmark = pytest.mark.ray
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _run(name, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name, *argv])
    module = runpy.run_path(os.path.join(EXAMPLES, name), run_name="example")
    return module["main"]()


def test_keras_tuner_mnist_example(ray_local, tmp_path, monkeypatch, capsys):
    tuner = _run(
        "keras_tuner_mnist.py",
        ["--data", "digits", "--max-epochs", "3", "--directory", str(tmp_path), "--limit", "500"],
        monkeypatch,
    )
    out = capsys.readouterr().out
    assert "test accuracy of the best model" in out
    assert int(tuner.results_["epochs"].sum()) == tuner.policy.budget


@pytest.mark.slow
def test_seed_grid_search_cv_example(ray_local, tmp_path, monkeypatch, capsys):
    import numpy as np

    grid = _run(
        "grid_search_cv.py",
        ["--epochs", "2", "3", "--steps", "5", "10", "--directory", str(tmp_path)],
        monkeypatch,
    )
    out = capsys.readouterr().out
    assert "Best: " in out and " using {" in out and out.count(") with: {") == 4
    cv = grid.cv_results_
    assert len(cv["params"]) == 4 and grid.n_splits_ == 5
    splits = np.array([cv[f"split{k}_test_score"] for k in range(5)])
    assert np.all(np.isfinite(splits))
    np.testing.assert_allclose(cv["mean_test_score"], splits.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(cv["std_test_score"], splits.std(axis=0), rtol=1e-5)
    best = int(np.flatnonzero(cv["rank_test_score"] == 1)[0])
    assert grid.best_params_ == cv["params"][best]
    assert grid.best_score_ == cv["mean_test_score"][best]
    assert sorted(map(tuple, (sorted(p.items()) for p in cv["params"]))) == sorted(
        (("epochs", e), ("steps_per_epoch", s)) for e in (2, 3) for s in (5, 10)
    )
    # each arm trained the epochs its own grid point asked for
    assert sorted(grid.results_["epochs"]) == [2, 2, 3, 3]
    assert set(grid.results_["status"]) == {"completed"}


def test_custom_policy_example_in_replay_and_on_ray(ray_local, tmp_path, monkeypatch, capsys):
    replay, tuner = _run(
        "custom_policy.py",
        ["--max-epochs", "3", "--trials", "5", "--directory", str(tmp_path)],
        monkeypatch,
    )
    assert replay.epochs_used < 200 * 10  # the policy stopped some arms early
    assert set(replay.epochs.values()) == {2, 10}
    assert len(tuner.results_) == 5
    assert set(tuner.results_["epochs"]) <= {2, 3} and (tuner.results_["epochs"] == 3).any()
    assert "replay:" in capsys.readouterr().out


def test_the_demo_runs_end_to_end(ray_local, tmp_path, capsys):
    from bandit_tune.cli import main

    assert main(["demo", "--max-epochs", "3", "--directory", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "epochs trained: 11 (plan: 11)" in out and "test accuracy=" in out
    assert (tmp_path / "digits_demo" / "curves.png").exists()
    assert main(["report", str(tmp_path / "digits_demo")]) == 0
    assert "5 arms, 11 epochs" in capsys.readouterr().out


def test_bandit_tune_run_tunes_a_model_file_on_an_npz(ray_local, tmp_path, capsys):
    """`bandit-tune run model.py:build_model --data data.npz ...` in this process's Ray."""
    import numpy as np

    from bandit_tune.cli import main
    from bandit_tune.demo import load_digits_split

    (x, y), (xv, yv), (xt, yt) = load_digits_split(0)
    data = tmp_path / "digits.npz"
    np.savez(data, x=x[:400], y=y[:400], x_val=xv[:150], y_val=yv[:150], x_test=xt, y_test=yt)
    model = tmp_path / "my_model.py"
    model.write_text(
        "import keras\n\n\n"
        "def build_model(hp):\n"
        "    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(),\n"
        "        keras.layers.Dense(hp.Int('units', 16, 64, step=16), activation='relu'),\n"
        "        keras.layers.Dense(10, activation='softmax')])\n"
        "    model.compile(optimizer='adam', loss='sparse_categorical_crossentropy',\n"
        "                  metrics=['accuracy'])\n"
        "    return model\n"
    )
    code = main(
        [
            "run",
            f"{model}:build_model",
            "--data",
            str(data),
            "--objective",
            "val_accuracy",
            "--policy",
            "asha",
            "--max-epochs",
            "3",
            "--max-trials",
            "4",
            "--directory",
            str(tmp_path / "out"),
            "--project-name",
            "cli",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Results summary" in out and "test set:" in out and "learning curves:" in out
    assert os.path.exists(tmp_path / "out" / "cli" / "curves.png")
    assert os.path.exists(tmp_path / "out" / "cli" / "state.json")
    # a bad loader spec is an error with exit status 2, before Ray is used
    assert main(["run", f"{model}:nope", "--data", str(data)]) == 2
    assert "has no 'nope'" in capsys.readouterr().err


def test_compare_policies_example(tmp_path, monkeypatch, capsys):
    result = _run(
        "compare_policies.py", ["--seeds", "2", "--plot", str(tmp_path / "c.png")], monkeypatch
    )
    out = capsys.readouterr().out
    assert "256 recorded arms x 27 epochs" in out and "anytime regret plot" in out
    assert len(result.table) == 13 and (tmp_path / "c.png").exists()
    assert {"pasha", "curve_ensemble", "freeze_thaw", "hyperband+tpe"} <= set(result.table.index)


def test_multi_objective_example(ray_local, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tuner, chosen = _run(
        "multi_objective.py", ["--max-epochs", "3", "--directory", str(tmp_path)], monkeypatch
    )
    out = capsys.readouterr().out
    assert "the Pareto front of (val_accuracy, params)" in out and "front plot:" in out
    front = tuner.pareto_front()
    assert chosen.count_params() in set(front["params"])
    assert (tmp_path / "front.png").exists()


def test_population_based_training_example(ray_local, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tuner = _run(
        "population_based_training.py",
        ["--max-epochs", "6", "--interval", "2", "--population", "4",
         "--directory", str(tmp_path)],
        monkeypatch,
    )
    out = capsys.readouterr().out
    assert "exploits; who copied whom" in out and "the best model's schedule" in out
    assert "test accuracy of the best model" in out
    assert set(tuner.results_["epochs"]) == {6}
    assert tuner.best_schedule_[-1]["to_epoch"] == 6
    assert (tmp_path / "pbt_curves.png").exists()
