"""run_arms: arms multiplexed over long-lived Ray workers (real Ray, no TensorFlow)."""

import json
import os
import subprocess
import sys
import time

import pytest
from pool_arms import (
    ARMS,
    EPOCHS,
    AlwaysRaises,
    CurveArm,
    DiesOnce,
    NoScore,
    Raises,
    curve_function,
    curves,
)

from bandit_tune import run_arms, simulate
from bandit_tune.policies import ASHA, MOASHA, Hyperband

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = [{"arm": i} for i in range(ARMS)]


def _replayed(policy):
    """Per arm (step, score, decision) of the same policy replayed on one worker."""
    result = simulate(policy, curves(), n_workers=1)
    out = {}
    for arm_id, step, score, decision in result.decisions:
        out.setdefault(arm_id, []).append((step, score, decision))
    return out


def _consecutive(found):
    for arm_id, rows in found.results.items():
        assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1)), arm_id


@pytest.mark.parametrize("policy", [lambda: Hyperband(EPOCHS, 3), lambda: ASHA(EPOCHS, 3)])
def test_one_worker_makes_the_same_decisions_as_the_replay(ray_local, tmp_path, policy):
    found = run_arms(
        CurveArm,
        CONFIGS,
        policy(),
        metric="score",
        max_concurrent=1,
        cpus_per_arm=0.5,
        directory=str(tmp_path),
    )
    replayed = _replayed(policy())
    assert set(found.decisions) == set(replayed)
    for arm_id, history in replayed.items():
        got = found.decisions[arm_id]
        assert [(s, d) for s, _, d in got] == [(s, d) for s, _, d in history], arm_id
        assert [x for _, x, _ in got] == pytest.approx([x for _, x, _ in history])
    _consecutive(found)
    best = max(found.arms, key=lambda r: r["best"])
    assert found.best_arm == best["arm"] and found.best_config == {"arm": int(best["arm"][4:])}


def test_a_function_arm_trains_ahead_only_as_far_as_it_was_granted(tmp_path):
    """No Ray: the arm's thread runs ahead while the driver decides, then waits."""
    from bandit_tune.pool.worker import FunctionArm, report

    started = []

    def fn(config):
        for epoch in range(1, 11):
            started.append(epoch)
            report({"epoch": epoch, "score": epoch / 10})

    def settled(count):
        # once it has reported all it may, it waits for the driver: nothing more starts
        deadline = time.monotonic() + 10
        while not (len(started) >= count and arm.waiting()) and time.monotonic() < deadline:
            time.sleep(0.005)
        return list(started)

    arm = FunctionArm(fn, {}, None, {}, str(tmp_path))
    metrics, path, step, seconds = arm.step(ahead=3)
    assert (metrics["epoch"], path, step) == (1, None, 1) and seconds >= 0
    assert settled(4) == [1, 2, 3, 4]  # the epoch asked for and 3 more, then it waits
    assert [arm.step()[2] for _ in range(3)] == [2, 3, 4]  # waiting already
    assert settled(4) == [1, 2, 3, 4]
    assert arm.step()[2] == 5  # no run-ahead granted: one epoch per step
    assert settled(5) == [1, 2, 3, 4, 5]
    arm.step(ahead=4)  # the epoch 6 it reported, and on to 10
    assert settled(10) == list(range(1, 11))
    arm.cleanup()  # dropped with results it ran ahead to: the thread ends
    arm._thread.join(timeout=5)
    assert not arm._thread.is_alive()


@pytest.mark.parametrize("keep_paused", [30, 0])
def test_a_function_arm_makes_the_same_decisions_and_resumes_from_its_checkpoints(
    ray_local, tmp_path, keep_paused
):
    """A paused function arm waits inside report (keep_paused=30) or is rebuilt from its
    reported checkpoint (keep_paused=0); either way the replay's decisions."""
    found = run_arms(curve_function, CONFIGS, Hyperband(EPOCHS, 3), metric="score",
                     max_concurrent=1, cpus_per_arm=0.5, keep_paused=keep_paused,
                     directory=str(tmp_path))
    replayed = _replayed(Hyperband(EPOCHS, 3))
    for arm_id, history in replayed.items():
        assert [(s, d) for s, _, d in found.decisions[arm_id]] == [
            (s, d) for s, _, d in history
        ], arm_id
    _consecutive(found)
    loads = [r["loaded"] for rows in found.results.values() for r in rows if r.get("loaded")]
    assert bool(loads) == (keep_paused == 0)
    # the reported checkpoints were copied into the project: the last two per arm
    for row in found.arms:
        folder = tmp_path / "arms" / "arms" / row["arm"]
        names = sorted(p.name for p in folder.iterdir())
        assert names[-1] == f"checkpoint_{row['epochs']:06d}" and len(names) <= 2, names


def test_paused_arms_resume_from_their_checkpoint_on_any_worker(ray_local, tmp_path):
    """keep_paused=0: no worker keeps a paused arm, so every resume loads its checkpoint."""
    found = run_arms(
        CurveArm,
        CONFIGS,
        Hyperband(EPOCHS, 3),
        metric="score",
        cpus_per_arm=0.5,
        keep_paused=0,
        directory=str(tmp_path),
    )
    _consecutive(found)
    resumed = [rows for rows in found.results.values() if len(rows) > 1]
    assert resumed
    loads = [r.get("loaded") for rows in resumed for r in rows if r.get("loaded")]
    assert loads, "no resumed arm loaded a checkpoint"
    # the checkpoints are on disk, the last two per paused arm, none half-written
    arms_dir = tmp_path / "arms" / "arms"
    for arm_dir in arms_dir.iterdir():
        names = [n for n in os.listdir(arm_dir) if n.startswith("checkpoint_")]
        assert 1 <= len(names) <= 2 and not any(n.endswith(".partial") for n in names), names
    # a second search of this process reuses the same worker actors
    from bandit_tune.pool.lifecycle import _POOL

    before = [w._actor_id for shelf in _POOL["workers"].values() for w in shelf]
    again = run_arms(
        CurveArm,
        CONFIGS,
        ASHA(EPOCHS, 3),
        metric="score",
        cpus_per_arm=0.5,
        directory=str(tmp_path),
        project_name="second",
    )
    after = [w._actor_id for shelf in _POOL["workers"].values() for w in shelf]
    assert before == after and again.best_score > 0.5
    # a finished project is reloaded, not run again
    reloaded = run_arms(
        CurveArm,
        CONFIGS,
        ASHA(EPOCHS, 3),
        metric="score",
        cpus_per_arm=0.5,
        directory=str(tmp_path),
        project_name="second",
    )
    assert reloaded.epochs == 0 and reloaded.best_arm == again.best_arm


def test_a_ray_trainable_class_runs_as_an_arm(ray_local, tmp_path):
    from ray import tune

    class Quadratic(tune.Trainable):
        def setup(self, config):
            self.x = config["x"]

        def step(self):
            return {"loss": (self.x - 0.3) ** 2 + 1.0 / (self.iteration + 1)}

        def save_checkpoint(self, checkpoint_dir):
            return None

        def load_checkpoint(self, checkpoint):
            pass

    configs = [{"x": x / 10} for x in range(10)]
    found = run_arms(
        Quadratic,
        configs,
        ASHA(9, 3),
        metric="loss",
        mode="min",
        cpus_per_arm=0.5,
        directory=str(tmp_path),
    )
    assert found.best_config == {"x": 0.3}
    # as under Ray Tune, iteration counts the steps done before this one: 8 at the 9th
    assert found.best_score == pytest.approx(1 / 9)


def test_a_dead_worker_is_replaced_and_its_arm_placed_again(ray_local, tmp_path):
    configs = [{"arm": i, "marker": str(tmp_path / "died")} for i in range(8)]
    found = run_arms(
        DiesOnce,
        configs,
        ASHA(EPOCHS, 3),
        metric="score",
        cpus_per_arm=0.5,
        directory=str(tmp_path),
    )
    assert (tmp_path / "died").exists()
    assert all(r["error"] is None for r in found.arms)
    assert "arm_00003" in found.results and found.results["arm_00003"][0]["epoch"] == 1


def test_an_arm_that_raises_ends_with_its_error_and_the_others_go_on(ray_local, tmp_path):
    found = run_arms(
        Raises,
        [{"arm": i} for i in range(8)],
        ASHA(EPOCHS, 3),
        metric="score",
        cpus_per_arm=0.5,
        max_failures=1,
        directory=str(tmp_path),
    )
    errors = {r["arm"]: r["error"] for r in found.arms if r["error"]}
    assert list(errors) == ["arm_00002"] and "arm 2 cannot train" in errors["arm_00002"]
    assert found.best_arm != "arm_00002"


def test_a_step_that_always_fails_stops_the_search_with_its_error(ray_local, tmp_path):
    with pytest.raises(RuntimeError, match="a bug in step"):
        run_arms(
            AlwaysRaises,
            CONFIGS,
            ASHA(EPOCHS, 3),
            metric="score",
            cpus_per_arm=0.5,
            max_failures=0,
            directory=str(tmp_path),
        )


def test_a_missing_metric_is_named_with_what_step_returned(ray_local, tmp_path):
    with pytest.raises(ValueError, match=r"returned no 'score'.*\['accuracy'\]"):
        run_arms(
            NoScore,
            CONFIGS,
            ASHA(EPOCHS, 3),
            metric="score",
            cpus_per_arm=0.5,
            directory=str(tmp_path),
        )


def test_two_objectives_with_a_multi_objective_policy(ray_local, tmp_path):
    class TwoScores(CurveArm):
        def step(self):
            result = super().step()
            result["size"] = float(self.arm)
            return result

    found = run_arms(
        TwoScores,
        CONFIGS,
        MOASHA(EPOCHS, 3),
        metric=["score", "size"],
        mode=["max", "min"],
        cpus_per_arm=0.5,
        directory=str(tmp_path),
    )
    assert sum(len(r) for r in found.results.values()) == found.epochs
    with pytest.raises(ValueError, match="single-objective policy"):
        run_arms(
            TwoScores,
            CONFIGS,
            ASHA(EPOCHS, 3),
            metric=["score", "size"],
            mode=["max", "min"],
            directory=str(tmp_path),
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"trainable": lambda: None}, TypeError, r"cannot be called as <lambda>\(config\)"),
        ({"trainable": 3}, TypeError, "an arm class .* or a function"),
        ({"trainable": int}, TypeError, "lacks setup, step"),
        ({"configs": {"arm": 1}}, TypeError, "list of configuration dicts"),
        ({"configs": []}, ValueError, "non-empty list"),
        ({"configs": [{"arm": 1}, 3]}, ValueError, "item 1 is a int"),
        ({"metric": ""}, ValueError, "metric must be"),
        ({"mode": "up"}, ValueError, "mode must be 'min' or 'max'"),
        ({"cpus_per_arm": 0}, ValueError, "cpus_per_arm must be > 0"),
        ({"cpus_per_arm": 1.5}, ValueError, "above 1 it must be a whole number"),
        ({"gpus_per_arm": -1}, ValueError, "gpus_per_arm must be >= 0"),
        ({"max_concurrent": 0}, ValueError, "max_concurrent must be an integer >= 1 or None"),
        ({"max_failures": -1}, ValueError, "max_failures"),
        ({"keep_paused": 1.5}, ValueError, "keep_paused"),
        ({"budget": "soon"}, ValueError, "not a duration"),
        ({"project_name": "../out"}, ValueError, "project_name"),
    ],
)
def test_bad_arguments_fail_before_anything_starts(tmp_path, kwargs, error, match):
    args = {
        "trainable": CurveArm,
        "configs": CONFIGS,
        "policy": ASHA(9, 3),
        "metric": "score",
        "directory": str(tmp_path),
        **kwargs,
    }
    with pytest.raises(error, match=match):
        run_arms(args.pop("trainable"), args.pop("configs"), args.pop("policy"), **args)
    assert not (tmp_path / "arms" / "state.json").exists()


def test_resuming_another_search_in_the_project_is_refused(ray_local, tmp_path):
    run_arms(
        CurveArm, CONFIGS[:6], ASHA(3, 3), metric="score", cpus_per_arm=0.5, directory=str(tmp_path)
    )
    with pytest.raises(ValueError, match="holds another search"):
        run_arms(CurveArm, CONFIGS, ASHA(3, 3), metric="score", directory=str(tmp_path))
    fresh = run_arms(
        CurveArm,
        CONFIGS,
        ASHA(3, 3),
        metric="score",
        cpus_per_arm=0.5,
        directory=str(tmp_path),
        overwrite=True,
    )
    assert len(fresh.arms) == ARMS


def test_a_killed_driver_resumes_with_the_same_decisions(tmp_path):
    """SIGKILL the driver mid-search; the same call finishes it as if nothing happened."""
    from test_faults import ENV, _kill_tree

    script = os.path.join(HERE, "pool_arms.py")
    state = tmp_path / "p" / "state.json"
    driver = subprocess.Popen(
        [sys.executable, script, str(tmp_path)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            snapshot = json.loads(state.read_text())
        except (OSError, ValueError):
            continue
        if sum(len(v) for v in snapshot.get("results", {}).values()) >= 25:
            break
        assert driver.poll() is None, driver.stdout.read()[-3000:]
    else:
        pytest.fail("the search never reached 25 results")
    _kill_tree(driver.pid)
    done = subprocess.run(
        [sys.executable, script, str(tmp_path)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("SUMMARY ")), None)
    assert line is not None, (done.stdout + done.stderr)[-3000:]
    out = json.loads(line.removeprefix("SUMMARY "))
    replayed = _replayed(Hyperband(EPOCHS, 3))
    assert set(out["decisions"]) == set(replayed)
    for arm_id, history in replayed.items():
        assert [(s, d) for s, _, d in out["decisions"][arm_id]] == [
            (s, d) for s, _, d in history
        ], arm_id
    # each arm's reported epochs follow on: a resumed arm continued from its checkpoint
    for arm_id, rows in out["results"].items():
        assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1)), arm_id


def test_checkpoints_keep_the_last_two_and_a_resume_never_starts_past_the_snapshot(tmp_path):
    """A worker may have written checkpoint 3 before the driver's snapshot (at step 2) saw
    it: resuming from it would skip the decision at step 3, so step 1's is taken."""
    from bandit_tune.pool.worker import _persist, latest_checkpoint

    folder = str(tmp_path / "arm_00000")

    def write(step):
        return lambda d: (tmp_path / d / "epoch").write_text(str(step))

    for step in (1, 3, 9):
        _persist(folder, step, write(step))
    assert sorted(os.listdir(folder)) == ["checkpoint_000003", "checkpoint_000009"]
    assert latest_checkpoint(folder).endswith("checkpoint_000009")
    assert latest_checkpoint(folder, at_most=8).endswith("checkpoint_000003")
    assert latest_checkpoint(folder, at_most=2) is None  # from scratch, nothing skipped
    assert latest_checkpoint(str(tmp_path / "none")) is None
    os.makedirs(os.path.join(folder, "checkpoint_000012.partial"))  # a write cut short
    assert latest_checkpoint(folder).endswith("checkpoint_000009")


@pytest.mark.parametrize("synch", [False, True])
def test_population_based_training_with_arm_classes(ray_local, tmp_path, synch):
    """run_arms with PBT: every arm's final weights are what its schedule retrains to."""
    from pbt_toy import train
    from pool_arms import LrArm

    from bandit_tune.driver.lineage import schedule
    from bandit_tune.policies import PopulationBasedTraining

    lrs = [0.9, 0.5, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01]
    policy = PopulationBasedTraining(
        max_t=12, hyperparam_mutations={"lr": lrs}, population_size=8,
        perturbation_interval=3, synch=synch, seed=0,
    )
    found = run_arms(
        LrArm, [{"lr": lr} for lr in lrs], policy, metric="score", mode="max",
        cpus_per_arm=0.5, directory=str(tmp_path), project_name="pbt",
    )
    assert found.lineage and set(r["epochs"] for r in found.arms) == {12}
    with open(os.path.join(found.path, "state.json")) as f:
        arms = json.load(f)["arms"]
    for arm_id, rows in found.results.items():
        w = 0.0
        for segment in schedule(arms, arm_id):
            for _ in range(segment["from_epoch"], segment["to_epoch"]):
                w = train(w, segment["lr"])
        assert w == rows[-1]["w"], arm_id  # the donor's weights, then its own new lr
    # an exploited arm's best is read from its results since its last exploit (its
    # model's), as the tuner's results_ reads it
    best = {r["arm"]: r["best"] for r in found.arms}
    for arm_id, entries in found.lineage.items():
        own = [r["score"] for r in found.results[arm_id][entries[-1]["results"] :]]
        assert best[arm_id] == max(own), (arm_id, best[arm_id], own)


def _one_epoch(config):
    from ray import tune

    tune.report({"score": config["x"]})


@pytest.mark.timeout(180)
def test_idle_pool_workers_end_after_their_timeout_and_free_the_cpus(ray_local, tmp_path):
    """A pool search keeps its workers for the next one, but only for ``idle_timeout``: a
    plain ray.tune.Tuner with Ray's own scheduler started next in the process waited for
    ever while the idle workers held every CPU. Within the timeout a second search reuses
    them (no new worker)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from bandit_tune.pool import lifecycle

    def search(name):
        return run_arms(
            CurveArm, CONFIGS[:4], ASHA(3, 3), metric="score", cpus_per_arm=0.5,
            directory=str(tmp_path), project_name=name, idle_timeout=3.0,
        )

    search("first")
    workers = [w for shelf in lifecycle._POOL["workers"].values() for w in shelf]
    assert len(workers) == 4  # 2 CPUs, half a CPU each: every CPU held
    search("second")  # within the timeout: the same workers
    assert [w for shelf in lifecycle._POOL["workers"].values() for w in shelf] == workers
    tuner = tune.Tuner(
        tune.with_resources(_one_epoch, {"cpu": 1}),
        param_space={"x": tune.grid_search([0.1, 0.2])},
        tune_config=tune.TuneConfig(
            scheduler=ASHAScheduler(max_t=1), metric="score", mode="max"
        ),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="plain", verbose=0),
    )
    started = time.monotonic()
    results = tuner.fit()  # Ray's own scheduler: nothing of ours ends the workers
    assert len(results) == 2 and not results.errors
    assert time.monotonic() - started < 60
    assert not lifecycle._POOL["workers"]
