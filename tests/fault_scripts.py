"""Drivers that the fault tests run in their own processes (a driver to kill, a cluster)."""

import json
import os
import sys

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


RAY_UP_AT_RECORDING: list = []  # ray.is_initialized() as each recording thread started


def _watch_recording_threads():
    """Note whether Ray had started when a thread began recording the space."""
    import ray

    from bandit_tune.arm import recording as _recorder

    class Watched(_recorder._Background):
        def __init__(self, *args):
            RAY_UP_AT_RECORDING.append(ray.is_initialized())
            super().__init__(*args)

    _recorder._Background = Watched


def _data():
    from bandit_tune.demo import load_digits_split

    (x, y), (xv, yv), _ = load_digits_split(0)
    return (x[:500], y[:500]), (xv[:200], yv[:200])


def _segments(rows):
    """[first epoch, initial_epoch, node] of each stretch an arm trained in one go.

    A stretch is told by its start time, which every report carries: its first
    report may be missing from the results, since a resumed arm retrains the
    epochs after its last checkpoint and the scheduler keeps no repeated step.
    """
    seen, segments = set(), []
    for r in rows:
        key = (r.get("segment_started"), r.get("worker_pid"))
        if key not in seen:
            seen.add(key)
            segments.append([r["epoch"], r.get("initial_epoch"), r.get("node_id")])
    return segments


def summary(tuner):
    """What the tests assert on, as JSON."""
    rows = tuner.results_
    results = tuner.scheduler_.results
    return {
        "arms": len(rows),
        "epochs": {r["arm_id"]: int(r["epochs"]) for _, r in rows.iterrows()},
        "status": {r["arm_id"]: r["status"] for _, r in rows.iterrows()},
        "errors": {
            r["arm_id"]: str(r["error"])[-1500:]
            for _, r in rows.iterrows()
            if r["status"] == "error"
        },
        "segments": {arm: _segments(rs) for arm, rs in results.items()},
        "iterations": {
            arm: [rs[-1]["epoch"], rs[-1].get("optimizer_iterations")]
            for arm, rs in results.items()
            if rs
        },
        "plan_budget": getattr(tuner.policy, "budget", None),
        "plan_top": sum(b[-1][0] for b in tuner.policy.plan())
        if hasattr(tuner.policy, "plan")
        else None,
        "best_model_outputs": list(
            tuner.get_best_models(1)[0].predict(_data()[1][0][:2], verbose=0).shape
        ),
        # a pool search's driver never needs Ray Tune (its import is start-up time)
        "imported_ray_tune": "ray.tune" in sys.modules,
        "ray_up_at_recording": RAY_UP_AT_RECORDING,
    }


def hyperband(directory, address=None, retries=0, max_epochs=9, slow=0.0, **kwargs):
    """Hyperband(9, 3) on digits; ``slow`` seconds added to each epoch (0.3 on the pool)."""
    from conftest import small_build_model

    import bandit_tune

    (x, y), (xv, yv) = _data()
    kwargs.setdefault("objective", "val_accuracy")
    tuner = bandit_tune.Hyperband(
        small_build_model,
        max_epochs=max_epochs,
        factor=3,
        seed=0,
        directory=directory,
        project_name="p",
        verbose=0,
        address=address,
        max_retries_per_trial=retries,
        **kwargs,
    )
    callbacks = []
    if "gpus_per_arm" in kwargs:
        from fault_callbacks import RecordPlacement

        callbacks.append(RecordPlacement(os.path.join(directory, "placement.jsonl")))
    if kwargs.get("backend") == "pool":
        slow = slow or 0.3  # the pool is fast: leave a fault time to land
    if slow:
        from fault_callbacks import SlowEpochs

        callbacks.append(SlowEpochs(slow))
    tuner.search(x, y, validation_data=(xv, yv), batch_size=50, callbacks=callbacks)
    return tuner


def pbt(directory, address=None, retries=0, backend="tune", **kwargs):
    """Population-based training of 4 arms for 8 epochs (synchronous: an exploit at 2, 4, 6)."""
    from fault_callbacks import SlowEpochs
    from pbt_parts import build_model

    import bandit_tune

    (x, y), (xv, yv) = _data()
    hp = bandit_tune.HyperParameters()
    hp.Fixed("units", 32)
    policy = bandit_tune.PopulationBasedTraining(
        max_t=8,
        population_size=4,
        perturbation_interval=2,
        hyperparam_mutations={"learning_rate": None, "dropout": None},
        synch=True,
        seed=0,
    )
    tuner = bandit_tune.RandomSearch(
        build_model,
        objective="val_accuracy",
        max_epochs=8,
        policy=policy,
        hyperparameters=hp,
        seed=0,
        directory=directory,
        project_name="p",
        verbose=0,
        address=address,
        max_retries_per_trial=retries,
        backend=backend,
        **kwargs,
    )
    callbacks = [SlowEpochs(0.3)]  # leave a fault time to land
    if "gpus_per_arm" in kwargs:
        from fault_callbacks import RecordPlacement

        callbacks.append(RecordPlacement(os.path.join(directory, "placement.jsonl")))
    tuner.search(x, y, validation_data=(xv, yv), batch_size=50, callbacks=callbacks)
    return tuner


def pbt_summary(tuner):
    """What the PBT fault tests assert on."""
    runner = tuner.scheduler_.runner
    return {
        "arms": len(tuner.results_),
        "epochs": {a.arm_id: a.step for a in runner.arms},
        "status": {r["arm_id"]: r["status"] for _, r in tuner.results_.iterrows()},
        "lineage": {a.arm_id: a.lineage for a in runner.arms},
        "schedules": {r["arm_id"]: r["schedule"] for _, r in tuner.results_.iterrows()},
        "segments": {arm: _segments(rs) for arm, rs in tuner.scheduler_.results.items()},
        "best_schedule": tuner.best_schedule_,
        "best_model_outputs": list(
            tuner.get_best_models(1)[0].predict(_data()[1][0][:2], verbose=0).shape
        ),
        # a pool search's driver never needs Ray Tune (its import is start-up time)
        "imported_ray_tune": "ray.tune" in sys.modules,
        "ray_up_at_recording": RAY_UP_AT_RECORDING,
    }


def main():
    mode, directory = sys.argv[1], sys.argv[2]
    _watch_recording_threads()
    if mode.startswith("search-pbt"):
        backend = "pool" if mode.endswith("pool") else "tune"
        print("SUMMARY " + json.dumps(pbt_summary(pbt(directory, backend=backend))), flush=True)
        return
    if mode.startswith("cluster-pbt"):
        backend = "pool" if mode.endswith("pool") else "tune"
        cluster_run(directory, lose_after=4, search=pbt, summarize=pbt_summary, backend=backend)
        return
    if mode == "search-slow":
        # a Ctrl-C must land while an arm trains between rungs, also when the machine
        # is loaded and the signal comes a second after the snapshot was read
        tuner = hyperband(directory, slow=0.2)
        print("SUMMARY " + json.dumps(summary(tuner)), flush=True)
    elif mode == "search-pool-mo":
        tuner = hyperband(directory, objective=_two_objectives(), backend="pool")
        print("SUMMARY " + json.dumps(_with_front(tuner)), flush=True)
    elif mode == "cluster":
        # the default retries (a lost worker is retried anyway), two objectives
        cluster_run(directory, retries=0, summarize=_with_front, objective=_two_objectives())
    elif mode == "cluster-pool":
        cluster_run(directory, backend="pool")


def _two_objectives():
    """Accuracy up, size down: the multi-objective searches of the fault tests."""
    from bandit_tune import Objective

    return ["val_accuracy", Objective("params", "min")]


def _with_front(tuner):
    """:func:`summary`, and a multi-objective search's front (arm ids), ranks and policy."""
    out = summary(tuner)
    out["front"] = list(tuner.pareto_front()["arm_id"])
    out["ranks"] = [int(r) for r in tuner.results_["pareto_rank"]]
    out["policy"] = type(tuner.policy).__name__
    return out


def cluster_run(directory, lose_after=6, search=None, summarize=None, retries=3, **kwargs):
    """A real 2-node Ray cluster on 127.0.0.1 (GCS + a raylet per node), a search on it.

    Each node advertises one GPU and the search packs arms: half a CPU and a quarter
    GPU each (scheduling only: no GPU is needed). The worker node is removed, without
    warning, once arms on it have reported ``lose_after`` epochs.
    """
    import threading
    import time

    import ray
    from ray.cluster_utils import Cluster

    gpus = {"num_gpus": 1}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, **gpus})
    worker = cluster.add_node(num_cpus=1, **gpus)
    try:
        cluster.wait_for_nodes()
        nodes = {"head": cluster.head_node.node_id, "worker": worker.node_id}
        killed = {}

        def watch():
            # remove the worker node once arms on it have reported lose_after epochs
            state = os.path.join(directory, "p", "state.json")
            while not killed:
                time.sleep(0.2)
                try:
                    with open(state) as f:
                        results = json.load(f)["results"]
                except (OSError, ValueError, KeyError):
                    continue
                on_worker = [
                    r
                    for rs in results.values()
                    for r in rs
                    if r.get("node_id") == nodes["worker"]
                ]
                if len(on_worker) >= lose_after:
                    cluster.remove_node(worker, allow_graceful=False)
                    killed["at"] = len(on_worker)

        threading.Thread(target=watch, daemon=True).start()
        tuner = (search or hyperband)(
            directory,
            address=cluster.address,
            retries=retries,
            cpus_per_arm=0.5,
            gpus_per_arm=0.25,
            **kwargs,
        )
        out = (summarize or summary)(tuner)
        placement = os.path.join(directory, "placement.jsonl")
        if os.path.exists(placement):
            with open(placement) as f:
                out["placement"] = [json.loads(line) for line in f]
        out["nodes"] = nodes
        out["killed"] = killed.get("at")
        out["gcs"] = cluster.address
        print("SUMMARY " + json.dumps(out), flush=True)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main()
