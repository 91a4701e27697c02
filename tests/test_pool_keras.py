"""BanditTuner(backend="pool"): Keras arms on the pool's long-lived workers (real Ray, Keras)."""

import json
import signal

import pytest
from conftest import small_build_model
from test_faults import (
    _assert_plan_met,
    _between_rungs,
    _finish,
    _interrupted,
    _kill_tree,
    _more_results_than,
    _retrained_within_checkpoints,
    _run_until,
)

import bandit_tune


def _tuner(tmp_path, name, **kwargs):
    kwargs.setdefault("backend", "pool")
    return bandit_tune.Hyperband(
        small_build_model, objective="val_accuracy", max_epochs=9, factor=3, seed=0,
        directory=str(tmp_path), project_name=name, verbose=0, **kwargs,
    )


def test_a_pool_search_meets_the_plan_and_a_second_search_reuses_the_workers(
    ray_local, digits_small, tmp_path
):
    import ray

    from bandit_tune.pool import shutdown_pool
    from bandit_tune.pool.lifecycle import _POOL

    shutdown_pool()  # workers of this search alone: what they imported is its own doing
    (x, y), (xv, yv), (xt, yt) = digits_small
    tuner = _tuner(tmp_path, "first")
    tuner.search(x, y, validation_data=(xv, yv), batch_size=50)
    # the pool's Keras arms never import Ray Tune (~1.4 s of CPU per worker at start-up)
    shelves = [w for shelf in _POOL["workers"].values() for w in shelf]
    imported = ray.get([w.call.remote(lambda: "ray.tune" in __import__("sys").modules)
                        for w in shelves])
    assert imported == [False] * len(shelves)
    rows = tuner.results_
    assert len(rows) == 17 and int(rows["epochs"].sum()) == 69  # Hyperband(9, 3)'s plan
    assert set(rows["status"]) <= {"completed", "stopped"} and rows["error"].isna().all()
    assert tuner.best_score_ > 0.5
    model = tuner.get_best_models(1)[0]  # restored from its checkpoint in the project
    assert model.predict(xt[:2], verbose=0).shape == (2, 10)
    # optimizer state went on through pauses: Adam's step counter matches the epochs
    results = tuner.scheduler_.results
    for arm_id, arm_rows in results.items():
        last = arm_rows[-1]
        assert last["optimizer_iterations"] == 12 * last["epoch"], arm_id  # 600 / 50
    workers = [w._actor_id for shelf in _POOL["workers"].values() for w in shelf]
    second = _tuner(tmp_path, "second")
    second.search(x, y, validation_data=(xv, yv), batch_size=50)
    assert [w._actor_id for shelf in _POOL["workers"].values() for w in shelf] == workers
    pids = {r["worker_pid"] for rs in second.scheduler_.results.values() for r in rs}
    first_pids = {r["worker_pid"] for rs in results.values() for r in rs}
    assert pids == first_pids  # the same processes: Keras was imported already
    # models of the first search's arms, traced already, trained arms of the second
    # (4 architectures): each from its own initial state, its optimizer's count from 0
    starts = [rs[0] for rs in second.scheduler_.results.values()]
    assert any(r["model_reused"] for r in starts)
    for arm_id, arm_rows in second.scheduler_.results.items():
        last = arm_rows[-1]
        assert last["optimizer_iterations"] == 12 * last["epoch"], arm_id
    # a finished project reloads without training
    again = _tuner(tmp_path, "first")
    again.search(x, y, validation_data=(xv, yv), batch_size=50)
    assert list(again.results_["arm_id"]) == list(rows["arm_id"])


def test_the_pool_backend_refuses_what_it_cannot_run(tmp_path):
    with pytest.raises(ValueError, match="backend must be 'tune' or 'pool'"):
        _tuner(tmp_path, "p", backend="threads")
    with pytest.raises(ValueError, match="BayesianOptimization proposes each arm"):
        bandit_tune.BayesianOptimization(
            small_build_model, objective="val_accuracy", max_trials=4, backend="pool",
            directory=str(tmp_path),
        )
    with pytest.raises(ValueError, match="storage_path is Ray Tune's"):
        _tuner(tmp_path, "p", storage_path=str(tmp_path / "s"))


def _early_between_rungs(snapshot):
    """Between rungs, with most of the plan's 69 epochs still to train."""
    done = sum(len(rows) for rows in snapshot.get("results", {}).values())
    return _between_rungs(snapshot) and done <= 45


@pytest.mark.slow
def test_ctrl_c_then_a_kill_of_a_multi_objective_pool_search_resume_where_it_stopped(tmp_path):
    """Ctrl-C a pool search between rungs, SIGKILL the resumed driver: the same call finishes it.

    Multi-objective (accuracy, size): the re-run's front and Pareto ranks come from
    the arms recorded before the faults and after them. (One project for the three
    faults: each driver start costs Ray's and TensorFlow's start-up.)
    """
    driver, _ = _run_until(tmp_path, _early_between_rungs, mode="search-pool-mo")
    driver.send_signal(signal.SIGINT)
    try:
        output, _ = driver.communicate(timeout=90)
    finally:
        _kill_tree(driver.pid)
    assert driver.returncode != 0, output[-3000:]
    assert "KeyboardInterrupt" in output and "run the same search again" in output, output[-3000:]
    saved = json.loads((tmp_path / "p" / "state.json").read_text())
    assert saved["extra"]["backend"] == "pool"
    assert _interrupted(saved), saved["arms"]  # not recorded as stopped
    killed, _ = _run_until(tmp_path, _more_results_than(saved), mode="search-pool-mo")
    _kill_tree(killed.pid)  # SIGKILL: no cleanup, no final write
    out, stderr = _finish(tmp_path, mode="search-pool-mo")
    assert f"pid {killed.pid} on host" in stderr  # the dead driver's lock taken over
    _assert_plan_met(out)
    _retrained_within_checkpoints(out)
    assert out["imported_ray_tune"] is False  # resumed, reloaded: still no Ray Tune
    assert out["front"] and out["ranks"][: len(out["front"])] == [1] * len(out["front"])
    assert out["ranks"] == sorted(out["ranks"])


@pytest.mark.slow
def test_a_pool_search_on_a_two_node_cluster_survives_losing_its_worker_node(tmp_path):
    """The loopback 2-node cluster of the cluster tests, arms packed (0.5 CPU, 0.25 GPU):
    the worker node is removed mid-search; its workers are replaced on the head node
    and the plan is met."""
    import subprocess
    import sys

    from test_faults import ENV, SCRIPT, _summary

    done = subprocess.run(
        [sys.executable, SCRIPT, "cluster-pool", str(tmp_path)],
        env=ENV, capture_output=True, text=True, timeout=500,
    )
    out = _summary(done.stdout + done.stderr, done.returncode)
    assert out["killed"], "the worker node was never removed"
    used = {seg[2] for segs in out["segments"].values() for seg in segs}
    assert used == {out["nodes"]["head"], out["nodes"]["worker"]}
    assert set(out["status"].values()) <= {"completed", "stopped"}, out["status"]
    assert out["arms"] == 17 and sum(out["epochs"].values()) == 69
    for row in out["placement"]:  # every epoch held half a CPU and a quarter GPU
        assert {k: v for k, v in row["resources"].items() if k in ("CPU", "GPU")} == {
            "CPU": 0.5,
            "GPU": 0.25,
        }, row
