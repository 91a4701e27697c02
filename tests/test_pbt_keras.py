"""Population-based training of Keras arms on Ray: exact exploits, lineage, schedules, bad input."""

from __future__ import annotations

import glob
import os
import re

import numpy as np
import pytest
from pbt_parts import StartDump, build_model

import bandit_tune as bt

pytestmark = pytest.mark.usefixtures("ray_local")


def _pbt(**kwargs):
    args = dict(
        max_t=4,
        population_size=4,
        perturbation_interval=2,
        hyperparam_mutations={"learning_rate": None, "dropout": None},
        resample_probability=0.0,
        synch=True,
        seed=0,
    )
    args.update(kwargs)
    return bt.PopulationBasedTraining(**args)


def _tuner(tmp_path, backend, policy=None, **kwargs):
    return bt.RandomSearch(
        build_model,
        objective="val_accuracy",
        max_epochs=4,
        policy=policy or _pbt(),
        directory=str(tmp_path),
        project_name=f"pbt_{backend}",
        backend=backend,
        hyperparameters=_fixed_units(),
        seed=1,
        verbose=False,
        **kwargs,
    )


def _fixed_units():
    hp = bt.HyperParameters()
    hp.Fixed("units", 32)
    return hp


def _dumps(folder):
    out = []
    for path in glob.glob(os.path.join(folder, "*.npz")):
        with np.load(path) as data:
            out.append({k: data[k] for k in data.files})
    return out


@pytest.mark.parametrize(
    ("backend", "workers"),
    # one pool worker: the arm restarts where its own model at that epoch is kept in
    # memory (a paused arm's), which must not be taken for the donor's
    [("pool", None), ("pool", 1), ("tune", None)],
)
def test_an_exploited_arm_starts_from_exactly_the_donors_state_with_its_new_values(
    tmp_path, digits_small, backend, workers
):
    import keras

    from bandit_tune.arm.checkpoints import restore_arm
    from bandit_tune.space import HyperParameters

    (x, y), (xv, yv), _ = digits_small
    dumps = str(tmp_path / "dumps")
    tuner = _tuner(tmp_path, backend, max_concurrent=workers)
    tuner.search(x, y, validation_data=(xv, yv), callbacks=[StartDump(dumps)])
    runner = tuner.scheduler_.runner
    exploited = [a for a in runner.arms if a.lineage]
    assert len(exploited) == 1  # synchronous, 4 arms, bottom quarter: one exploit at epoch 2
    arm = exploited[0]
    entry = arm.lineage[0]
    donor = runner.arms[entry["donor"]]
    assert entry["donor_step"] == 2 and arm.step == 4
    assert arm.config["units"] == donor.config["units"] == 32
    assert arm.config["learning_rate"] != donor.config["learning_rate"]
    # the copy of the donor's checkpoint the arm continued from
    copy = os.path.join(tuner.project_dir, "arms", arm.arm_id, "checkpoint_000002")
    assert os.path.isfile(os.path.join(copy, "exploited_from.json"))
    model = build_model(HyperParameters(donor.config))
    assert restore_arm(model, copy) == 2
    donor_weights = model.get_weights()
    donor_optimizer = [np.asarray(v.numpy()) for v in model.optimizer.variables]
    names = [v.name for v in model.optimizer.variables]
    # the arm's first epoch after the exploit, seen from inside its fit
    lr = np.float32(arm.config["learning_rate"])
    starts = [
        d
        for d in _dumps(dumps)
        if int(d["epoch"]) == 2 and np.isclose(d["opt1"], lr, rtol=0, atol=0)
    ]
    assert len(starts) == 1, [float(d["opt1"]) for d in _dumps(dumps)]
    # from the donor's model in the worker's memory (it paused there at that step) or
    # from the copy of its checkpoint: the same state either way
    in_memory = [r["exploit_in_memory"] for r in arm.results if "exploit_in_memory" in r]
    print("exploit in memory:", any(in_memory))
    start = starts[0]
    weights = [start[f"w{i}"] for i in range(len(donor_weights))]
    for got, want in zip(weights, donor_weights):
        np.testing.assert_array_equal(got, want)  # weight by weight, bit for bit
    # the same slots in the same order (Keras numbers layer names per process: a worker
    # that built other models before calls a layer dense_2 where this process says dense)
    def unnumbered(name):
        return re.sub(r"_\d+", "", str(name))

    assert [unnumbered(n) for n in start["opt_names"]] == [unnumbered(n) for n in names]
    for i, name in enumerate(names):
        if name == "learning_rate":
            assert start[f"opt{i}"] == lr != donor_optimizer[i]  # the new value is in effect
        else:  # iteration count and every momentum slot: the donor's
            np.testing.assert_array_equal(start[f"opt{i}"], donor_optimizer[i])
    assert int(start["opt0"]) > 0  # SGD's iteration: the donor trained
    np.testing.assert_allclose(start["dropout"], [arm.config["dropout"]])
    keras.backend.clear_session()
    # results_: lineage, the schedule of each arm, the plot
    assert len(tuner.lineage_) == 1 and tuner.lineage_.loc[0, "donor"] == donor.arm_id
    row = tuner.results_.set_index("arm_id").loc[arm.arm_id]
    assert row["exploits"] == 1
    assert row["schedule"][-1]["learning_rate"] == arm.config["learning_rate"]
    assert row["schedule"][0]["to_epoch"] == 2 and row["schedule"][-1]["to_epoch"] == 4
    assert tuner.best_schedule_ == list(tuner.results_.loc[0, "schedule"])
    tuner.plot(str(tmp_path / "curves.png"))
    assert os.path.getsize(tmp_path / "curves_schedule.png") > 1000


def test_an_architecture_hyperparameter_cannot_be_mutated(tmp_path, digits_small):
    (x, y), (xv, yv), _ = digits_small
    tuner = bt.RandomSearch(
        build_model,
        objective="val_accuracy",
        max_epochs=4,
        policy=_pbt(hyperparam_mutations={"units": None, "learning_rate": None}),
        directory=str(tmp_path),
        project_name="arch",
        verbose=False,
    )
    with pytest.raises(ValueError, match="'units' changes the model's variables"):
        tuner.search(x, y, validation_data=(xv, yv))
    assert not glob.glob(os.path.join(tuner.project_dir, "arms", "*"))  # nothing trained


def test_an_explore_function_that_leaves_the_space_fails_before_training(tmp_path, digits_small):
    (x, y), (xv, yv), _ = digits_small
    policy = _pbt(custom_explore_fn=lambda c: {**c, "learning_rate": 5.0})
    tuner = _tuner(tmp_path, "pool", policy=policy)
    with pytest.raises(ValueError, match="outside its range.*before any training"):
        tuner.search(x, y, validation_data=(xv, yv))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_trials": 3}, r"population_size=4\) is larger than max_trials=3"),
        ({"max_epochs": 6}, r"max_t=4\) trains each arm 4 epochs but the tuner's max_epochs=6"),
    ],
)
def test_a_population_the_search_cannot_run_is_refused_at_once(tmp_path, kwargs, message):
    args = dict(objective="val_accuracy", max_epochs=4, policy=_pbt(), directory=str(tmp_path))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        bt.RandomSearch(build_model, **args)


def _lineage_done(snapshot):
    """An exploit happened and most of the 32 epochs are still to train."""
    exploits = sum(len(a.get("lineage") or []) for a in snapshot.get("arms", {}).values())
    done = sum(len(rows) for rows in snapshot.get("results", {}).values())
    return exploits >= 1 and done <= 20


def _assert_population_complete(out):
    assert out["arms"] == 4, out
    assert set(out["epochs"].values()) == {8}, out["epochs"]
    assert set(out["status"].values()) == {"completed"}, out["status"]
    # synchronous, 4 arms, a quarter exploits at epochs 2, 4 and 6 (when scores differ)
    exploits = [e for entries in out["lineage"].values() for e in entries]
    assert 1 <= len(exploits) <= 3
    assert sorted(e["order"] for e in exploits) == list(range(len(exploits)))
    for arm_id, plan in out["schedules"].items():
        assert plan[0]["from_epoch"] == 0 and plan[-1]["to_epoch"] == 8, (arm_id, plan)
    assert out["best_model_outputs"] == [2, 10]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["search-pbt", "search-pbt-pool"])
def test_a_killed_pbt_driver_resumes_with_its_population_and_lineage(tmp_path, mode):
    from test_faults import _finish, _kill_tree, _run_until

    driver, snapshot = _run_until(tmp_path, _lineage_done, mode=mode)
    _kill_tree(driver.pid)
    before = {a: d.get("lineage") or [] for a, d in snapshot["arms"].items()}
    out, _ = _finish(tmp_path, mode=mode)
    _assert_population_complete(out)
    assert out["ray_up_at_recording"] == [True]  # see the Ctrl-C test in test_faults.py
    for arm_id, entries in before.items():  # no arm and no exploit lost
        assert out["lineage"][arm_id][: len(entries)] == entries


@pytest.mark.slow
def test_pbt_runs_unchanged_on_a_two_node_cluster_that_loses_a_node(tmp_path):
    import subprocess
    import sys

    from test_faults import ENV, SCRIPT, _summary

    done = subprocess.run(
        [sys.executable, SCRIPT, "cluster-pbt", str(tmp_path)],
        env=ENV, capture_output=True, text=True, timeout=500,
    )
    out = _summary(done.stdout + done.stderr, done.returncode)
    assert out["killed"], "the worker node was never removed"
    used = {seg[2] for segs in out["segments"].values() for seg in segs}
    assert used == {out["nodes"]["head"], out["nodes"]["worker"]}
    _assert_population_complete(out)


def test_pb2_searches_keras_arms_on_the_pool(tmp_path, digits_small):
    (x, y), (xv, yv), _ = digits_small
    policy = bt.PB2(
        max_t=6,
        population_size=4,
        perturbation_interval=2,
        hyperparam_mutations={"learning_rate": None, "dropout": None},
        synch=True,
        seed=0,
    )
    tuner = bt.RandomSearch(
        build_model, objective="val_accuracy", max_epochs=6, policy=policy,
        hyperparameters=_fixed_units(), directory=str(tmp_path), project_name="pb2",
        backend="pool", seed=3, verbose=False,
    )
    tuner.search(x, y, validation_data=(xv, yv))
    assert set(tuner.results_["epochs"]) == {6}
    assert len(tuner.lineage_) >= 1 and len(policy._gains) >= 4
    for plan in tuner.results_["schedule"]:
        assert all(1e-3 <= seg["learning_rate"] <= 0.5 for seg in plan)


def test_a_population_whose_arms_share_no_fixed_values_fails_before_training(
    tmp_path, digits_small
):
    (x, y), (xv, yv), _ = digits_small
    tuner = bt.RandomSearch(
        build_model, objective="val_accuracy", max_epochs=4,
        policy=_pbt(hyperparam_mutations={"learning_rate": None}),  # dropout varies per arm
        hyperparameters=_fixed_units(), directory=str(tmp_path), project_name="lone",
        backend="pool", verbose=False,
    )
    with pytest.raises(ValueError, match=r"share their values of \['dropout'\]"):
        tuner.search(x, y, validation_data=(xv, yv))
    assert not glob.glob(os.path.join(tuner.project_dir, "arms", "*"))
