"""The benchmarks run as `make bench` runs them, on a smoke-sized workload.

They print figures; nothing here asserts a timing (docs/benchmarks.md has the
measured ones). Each runs in its own process with its own Ray, as in `make bench`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}

pytestmark = pytest.mark.ray


def _run(*args, timeout=400):
    done = subprocess.run(
        [sys.executable, *map(str, args)], env=ENV, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_budget_check_reports_the_search_it_ran():
    out = _run(BENCH / "budget_check.py", "--budget", "30s", "--max-epochs", "3")
    line = next(line for line in out.splitlines() if line.startswith("budget=30s"))
    assert "search returned after" in line and "arms" in line and "val_accuracy" in line


@pytest.mark.slow
def test_peers_benchmark_prints_the_table_and_keeps_every_run(tmp_path):
    jsonl = tmp_path / "runs.jsonl"
    out = _run(
        BENCH / "peers.py",
        "--systems",
        "bandit_tune_hyperband",
        "--seeds",
        "0",
        "--max-epochs",
        "3",
        "--jsonl",
        jsonl,
    )
    # one system keeps CI short; the table and the per-run file are what is checked
    assert "| bandit_tune_hyperband |" in out
    runs = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {r["system"] for r in runs} == {"bandit_tune_hyperband"}
    hyperband = next(r for r in runs if r["system"] == "bandit_tune_hyperband")
    # Hyperband(R=3, eta=3) trains exactly the epochs of its plan
    import bandit_tune

    assert hyperband["epochs"] == bandit_tune.policies.Hyperband(3, 3).budget
    assert 0.0 <= hyperband["test_accuracy"] <= 1.0


@pytest.mark.slow
def test_controller_benchmark_runs_ray_and_bandit_tune_schedulers_side_by_side(tmp_path):
    out = tmp_path / "runs.jsonl"
    text = _run(
        BENCH / "controller.py", "--arms", 4, "--max-t", 3, "--cpus-per-arm", 0.5,
        "--schedulers", "ray_asha", "bandit_asha", "--out", out,
    )
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["scheduler"] for r in runs] == ["ray_asha", "bandit_asha"]
    for run in runs:  # every arm reported at least its first epoch
        assert run["results"] >= 4 and run["worker_processes"] >= 1
        assert 0.0 < run["best"] < 1.0
    assert "| 4 | bandit_asha |" in text and "Ray ASHA wall / this wall" in text


def test_cluster_scale_benchmark_prints_idle_share_and_regret(tmp_path):
    plot = tmp_path / "scale.png"
    text = _run(
        BENCH / "cluster_scale.py", "--workers", 4, 8, "--seeds", 1, "--arms-per-worker", 8,
        "--policies", "hyperband", "asha", "--time-budget", 300, "--plot", plot,
    )
    assert "| 8 | asha |" in text and "idle share" in text
    assert plot.stat().st_size > 1000


def test_curve_policies_benchmark_prints_ratios_to_asha(tmp_path):
    jsonl = tmp_path / "curves.jsonl"
    out = _run(
        BENCH / "curve_policies.py",
        "--sets",
        "diabetes_mlp",
        "--seeds",
        "1",
        "--only",
        "curve_ensemble",
        "asha+tpe",
        "--out",
        jsonl,
    )
    assert "ratio to ASHA" in out and "mean ratio to ASHA over 1 sets" in out
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert {r["entry"] for r in rows} == {"asha", "curve_ensemble", "asha+tpe"}


def test_multi_objective_benchmark_prints_hypervolume_shares(tmp_path):
    out = _run(
        BENCH / "multi_objective.py",
        "--seeds",
        "0",
        "--plot",
        tmp_path / "front.png",
        "--cap-accuracy",
        "0.9834",
    )
    assert "random search, 3x the epochs" in out and "mean hypervolume share" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("random search, 3x")]
    share, capped = float(rows[0][-2]), float(rows[0][-1])
    assert 0 < capped < share <= 1  # random search reaches a validation score above the cap
    assert "capped at 0.9834" in out
    assert (tmp_path / "front.png").stat().st_size > 0
