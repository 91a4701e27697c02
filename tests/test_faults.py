"""Faults on real Ray: a killed worker, a killed driver, a lost node of a 2-node cluster."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "fault_scripts.py")
ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}


def _summary(output, code):
    """The driver's ``SUMMARY`` line, parsed; else fail with its exit code and output's end."""
    line = next((x for x in output.splitlines() if x.startswith("SUMMARY ")), None)
    assert line is not None, f"exit code {code}: {output[-4000:]}"
    return json.loads(line.removeprefix("SUMMARY "))


def _kill_tree(pid):
    import psutil

    try:
        parent = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    family = parent.children(recursive=True) + [parent]
    for process in family:
        try:
            process.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=30)


def _driver(directory, mode):
    return subprocess.Popen(
        [sys.executable, SCRIPT, mode, str(directory)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_ctrl_c_then_two_kills_and_a_moved_folder_resume_where_it_stopped(tmp_path):
    """Ctrl-C the driver, SIGKILL two resumed drivers, move the folder: the plan is met.

    While the first driver runs, a second one on the same project fails at once,
    naming the first one's pid and host. Ctrl-C stops the search at once with a
    KeyboardInterrupt, saves its state and releases the lock. Any number of kills
    ends with exactly the plan's epochs recorded; an arm retrains at most the epochs
    since its last checkpoint; checkpoint paths are kept relative to the project
    folder, so a moved folder resumes and its best model restores; each re-run after
    a kill takes over the dead driver's lock with a message.

    (One search through every fault: each driver start costs Ray's and TensorFlow's
    start-up, so the faults share a project. The pool's Ctrl-C and kill, and the
    resume of a multi-objective search, are in test_pool_keras.py.)
    """
    first = tmp_path / "first"
    state_path = first / "p" / "state.json"
    driver = _driver(first, "search-slow")
    second = None
    try:
        deadline = time.monotonic() + 240
        snapshot = None
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                snapshot = json.loads(state_path.read_text())
            except (OSError, ValueError):
                continue
            if second is None:
                second = _driver(first, "search-slow")
            if second.poll() is None:
                continue  # interrupt only once the second driver has had its answer
            # an arm between rungs (1, 3, 9) that has a checkpoint: it must train on
            # from that checkpoint after the resume (paused arms may all lose)
            if _between_rungs(snapshot):
                break
            assert driver.poll() is None, driver.stdout.read()
        else:
            pytest.fail("the search never reached the point to interrupt it")
        # the second driver on the same project was refused before it trained anything
        second_out, _ = second.communicate(timeout=120)
        assert second.returncode != 0, second_out[-3000:]
        assert "ProjectLockedError" in second_out, second_out[-3000:]
        assert f"pid {driver.pid} on host" in second_out, second_out[-3000:]
        assert "SUMMARY" not in second_out
        # Ctrl-C: the search stops at once, not after the search
        driver.send_signal(signal.SIGINT)
        output, _ = driver.communicate(timeout=90)
    finally:
        if second is not None and second.poll() is None:
            _kill_tree(second.pid)
        _kill_tree(driver.pid)
    assert driver.returncode != 0, output[-3000:]
    assert "KeyboardInterrupt" in output and "run the same search again" in output, output[-3000:]
    assert "SUMMARY" not in output
    before = json.loads(state_path.read_text())
    done_before = {
        a: arm["last_step"] for a, arm in before["arms"].items() if arm["state"] == "stopped"
    }
    checkpointed = {
        a: arm["last_step"]
        for a, arm in before["arms"].items()
        if arm["state"] != "stopped" and arm["checkpoint"]
    }
    assert _interrupted(before), before["arms"]  # not recorded as stopped

    # two kills (SIGKILL: no cleanup, no final write), each as soon as the resumed run
    # has recorded new results
    killed = None
    for _ in range(2):
        more = _more_results_than(json.loads(state_path.read_text()))
        killed, _ = _run_until(first, more, mode="search-slow")
        _kill_tree(killed.pid)
    moved = tmp_path / "elsewhere"
    shutil.move(str(first), str(moved))
    out, stderr = _finish(moved, mode="search-slow")
    assert f"taking over the lock of project {moved / 'p'}" in stderr, stderr[-3000:]
    assert f"pid {killed.pid} on host" in stderr
    # the plan is finished exactly: every planned epoch, the planned arms at max_epochs
    _assert_plan_met(out)
    _retrained_within_checkpoints(out)
    # Keras is imported in this driver, so the space is recorded in a thread here, begun
    # only once Ray is up: ray.init adds environment variables, and setenv racing
    # TensorFlow's getenv in that thread crashed a driver (a segfault in getenv)
    assert out["ray_up_at_recording"] == [True], out["ray_up_at_recording"]
    saved = json.loads((moved / "p" / "state.json").read_text())
    assert all(
        a["checkpoint"] is None or a["checkpoint"].startswith("./") for a in saved["arms"].values()
    ), saved["arms"]
    # no finished arm lost, none retrained
    for arm, steps in done_before.items():
        assert out["epochs"][arm] == steps
    # unfinished arms that trained on after the interruption continued from their checkpoint
    went_on = [a for a, step in checkpointed.items() if out["epochs"][a] > step]
    assert went_on, (
        "no interrupted arm trained on after the resume",
        {
            a: (before["arms"][a]["state"], step, out["epochs"][a])
            for a, step in checkpointed.items()
        },
        out["segments"],
    )
    for arm in went_on:
        segments = out["segments"][arm]
        assert any(s[1] and s[1] > 0 for s in segments), (arm, segments)
        assert [s for s in segments if s[0] == 1] == [segments[0]], (arm, segments)


def _interrupted(snapshot):
    """Arms the snapshot records as running short of the last rung: arm -> its last step."""
    return {
        a: arm["last_step"]
        for a, arm in snapshot["arms"].items()
        if arm["state"] == "running" and arm["last_step"] < 9
    }


def _more_results_than(snapshot, more=2):
    """A :func:`_run_until` condition: ``more`` results recorded beyond ``snapshot``'s."""
    seen = sum(len(r) for r in snapshot["results"].values())
    return lambda snap: sum(len(r) for r in snap["results"].values()) >= seen + more


def _between_rungs(snapshot):
    """An arm trains between rungs (1, 3, 9) from a checkpoint, and some arm has ended."""
    arms = snapshot["arms"].values()
    between = any(
        a["state"] == "running" and a["checkpoint"] and a["last_step"] in (2, 4, 5, 6, 7, 8)
        for a in arms
    )
    return between and any(a["state"] == "stopped" for a in arms)


def _run_until(directory, ready, mode, deadline_s=240):
    """Start the driver; return it (still running) with the snapshot once ``ready(snapshot)``."""
    state_path = directory / "p" / "state.json"
    driver = _driver(directory, mode)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        time.sleep(0.1)
        try:
            snapshot = json.loads(state_path.read_text())
        except (OSError, ValueError):
            continue
        if ready(snapshot):
            return driver, snapshot
        if driver.poll() is not None:
            break
    code = driver.poll()
    out = driver.stdout.read() if code is not None else ""
    _kill_tree(driver.pid)
    # the exit code tells a signal (negative) from an error; the output the rest
    pytest.fail(
        f"the search never reached the point to interrupt it (exit code {code}): {out[-3000:]}"
    )


def _finish(directory, mode):
    done = subprocess.run(
        [sys.executable, SCRIPT, mode, str(directory)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=400,
    )
    return _summary(done.stdout + done.stderr, done.returncode), done.stderr


def _assert_plan_met(out):
    assert out["arms"] == 17, out
    assert sum(out["epochs"].values()) == out["plan_budget"] == 69, out["epochs"]
    assert sum(1 for e in out["epochs"].values() if e == 9) == out["plan_top"]
    assert not out["errors"], out["errors"]
    assert out["best_model_outputs"] == [2, 10]  # the best arm's model restores
    for arm, (epoch, iterations) in out["iterations"].items():
        assert iterations == 10 * epoch, (arm, epoch, iterations)  # optimizer state kept


def _retrained_within_checkpoints(out):
    """Every later stretch of an arm starts at its latest rung checkpoint (1, 3, 9).

    A stretch's first recorded epoch follows the last epoch recorded before it, so
    the epochs trained twice are at most those since that checkpoint.
    """
    for arm, segments in out["segments"].items():
        for first_epoch, initial_epoch, _ in segments[1:]:
            latest = max(r for r in (0, 1, 3, 9) if r <= first_epoch - 1)
            assert initial_epoch == latest, (arm, segments)


def test_worker_killed_mid_epoch_resumes_from_its_checkpoint(ray_local, digits_small, tmp_path):
    from conftest import small_build_model
    from fault_callbacks import KillOnce

    import bandit_tune
    from bandit_tune.policies import ArmPolicy, Decision

    class CheckpointAtThree(ArmPolicy):
        def on_result(self, arm_id, step, score):
            return Decision.CONTINUE

        def decision_steps(self):
            return [3]

    (x, y), (xv, yv), _ = digits_small
    marker = tmp_path / "killed"
    tuner = bandit_tune.BanditTuner(
        small_build_model,
        policy=CheckpointAtThree(),
        objective="val_accuracy",
        max_epochs=6,
        max_trials=2,
        seed=0,
        directory=str(tmp_path),
        project_name="w",
        verbose=0,
        max_retries_per_trial=2,
        max_concurrent=1,
    )
    tuner.search(
        x, y, validation_data=(xv, yv), batch_size=50, callbacks=[KillOnce(str(marker), epoch=5)]
    )
    killed = marker.read_text()
    assert killed in set(tuner.results_["arm_id"])
    rows = tuner.scheduler_.results[killed]
    # epochs 1-4 ran in the first worker; SIGKILL in epoch 5; the retry started from the
    # epoch-3 checkpoint (its repeat of epoch 4 is not counted twice)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["initial_epoch"] for r in rows] == [0, 0, 0, 0, 3, 3]
    assert len({r["worker_pid"] for r in rows}) == 2
    assert rows[-1]["optimizer_iterations"] == 12 * 6  # 600 / 50 steps an epoch
    assert set(tuner.results_["status"]) == {"completed"}
    assert int(tuner.results_["epochs"].sum()) == 12


@pytest.mark.slow
def test_a_two_node_cluster_packs_arms_and_survives_losing_its_worker_node(tmp_path):
    """One CPU and one (advertised) GPU per node, cpus_per_arm=0.5, gpus_per_arm=0.25.

    Arms pack two to a node and share its CPU and GPU; the worker node is then removed
    without warning mid-search, and its arms are placed again on the head node: the
    plan is still met, every arm ends completed or stopped, with the default
    max_retries_per_trial=0 (a lost worker is not the arm's fault). The search has two
    objectives, so the multi-objective path is the one that runs on the cluster.
    """
    done = subprocess.run(
        [sys.executable, SCRIPT, "cluster", str(tmp_path)],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=500,
    )
    out = _summary(done.stdout + done.stderr, done.returncode)
    assert out["gcs"].startswith("127.0.0.1:")
    used = {seg[2] for segs in out["segments"].values() for seg in segs}
    assert used == {out["nodes"]["head"], out["nodes"]["worker"]}
    assert out["killed"], "the worker node was never removed"
    assert set(out["status"].values()) <= {"completed", "stopped"}, out["errors"]
    assert out["arms"] == 17 and sum(out["epochs"].values()) == 69
    # multi-objective (accuracy, size) on the cluster: still Pareto-ranked halving
    assert out["policy"] == "MOHyperband"
    assert len(out["front"]) >= 1 and out["ranks"] == sorted(out["ranks"])
    assert all(out["epochs"][a] > 0 for a in out["epochs"])  # every arm has its results
    # after the loss, segments only start on the head node
    last = [segs[-1][2] for segs in out["segments"].values() if segs]
    assert out["nodes"]["head"] in last
    epochs = out["placement"]  # one row per epoch trained
    assert len(epochs) >= 69
    for row in epochs:  # each arm held a quarter of its node's one GPU and half a CPU
        assert row["gpu_ids"] == ["0"], row
        assert {k: v for k, v in row["resources"].items() if k in ("CPU", "GPU")} == {
            "CPU": 0.5,
            "GPU": 0.25,
        }, row
    fits = {}  # (process, fit began) -> [node, began, last epoch ended]
    for row in epochs:
        fit = fits.setdefault((row["pid"], row["begin"]), [row["node"], row["begin"], 0.0])
        fit[2] = max(fit[2], row["end"])
    # two arms in two processes at once on one node: they shared its CPU and its GPU
    spans = list(fits.items())
    shared = [
        (a, b)
        for i, (a, (node_a, begin_a, end_a)) in enumerate(spans)
        for b, (node_b, begin_b, end_b) in spans[i + 1 :]
        if node_a == node_b and a[0] != b[0] and begin_a < end_b and begin_b < end_a
    ]
    assert shared, spans


LOOPBACK_SCRIPT = """
import json, psutil, ray
from ray import tune  # ray imported before bandit_tune sets its environment, as in scripts
from bandit_tune.ray_tune.cluster import ensure_ray
ensure_ray(num_cpus=1)
ray.get(ray.remote(lambda: 1).remote())  # a worker process is up too
family = psutil.Process().children(recursive=True)
listening = sorted({
    (p.name(), c.laddr.ip)
    for p in family
    for c in p.net_connections(kind="tcp")
    if c.status == psutil.CONN_LISTEN
})
print("LISTENING " + json.dumps(listening))
ray.shutdown()
"""


@pytest.mark.ray
def test_a_local_ray_listens_on_loopback_only_even_when_ray_was_imported_first():
    env = {k: v for k, v in ENV.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    done = subprocess.run(
        [sys.executable, "-c", LOOPBACK_SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("LISTENING ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-3000:]
    listening = json.loads(line.removeprefix("LISTENING "))
    names = {name for name, _ in listening}
    assert {"gcs_server", "raylet"} <= names, listening
    assert all(ip in ("127.0.0.1", "::ffff:127.0.0.1") for _, ip in listening), listening


def _repro_model(hp):
    import keras

    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(
                hp.Int("units", min_value=16, max_value=64, step=16), activation="relu"
            ),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    lr = hp.Choice("learning_rate", values=[1e-2, 1e-3])
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@pytest.mark.timeout(240)
def test_a_kill_that_leaves_only_paused_arms_and_a_pending_resume_resumes(ray_local, tmp_path):
    """The folder of a Hyperband search killed with ``kill -9`` (tests/data/resume_after_kill:
    4 paused arms, none running, the policy's next step a resume of a paused arm).

    Ray asks the scheduler for a trial to run only while it has trials; with none it
    waits on the searcher, which waited on the scheduler: the resume never started a
    trial. The arm must be re-created from its checkpoint and the plan finish.
    """
    from sklearn.datasets import load_digits

    import bandit_tune as kt

    project = tmp_path / "project"
    shutil.copytree(os.path.join(HERE, "data", "resume_after_kill"), project)
    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype("float32")[:400], y[:400]
    tuner = kt.Hyperband(
        _repro_model,
        objective="val_accuracy",
        max_epochs=9,
        factor=3,
        seed=1,
        directory=str(tmp_path),
        project_name="project",
        verbose=0,
    )
    with pytest.warns(UserWarning, match="taking over the lock"):
        tuner.search(x, y, validation_split=0.2)
    results = tuner.results_
    assert len(results) == 17 and int(results["epochs"].sum()) == 69
    rows = tuner.scheduler_.results["6511a2fe"]  # the arm the policy waited to resume
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[1]["initial_epoch"] == 1  # from its epoch-1 checkpoint, not retrained
    assert set(results["status"]) <= {"completed", "stopped"}
