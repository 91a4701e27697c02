"""Many short arms through real Ray Tune: the driver's cost per result, side by side.

The cluster user's case of the scale issue: a trainable without TensorFlow that
reports ``--max-t`` epochs (27), each with a small checkpoint, ``--cpus-per-arm``
0.1 CPU per arm (20 arms at once on 2 CPUs), the same deterministic learning curve
per arm index for every scheduler. Each scheduler runs in a fresh Python process
(its own local Ray on 127.0.0.1) with ``reuse_actors=True``:

- ``ray_fifo``: every arm trains all epochs (Ray's FIFOScheduler);
- ``ray_asha``: Ray Tune's ``ASHAScheduler(max_t, grace_period=1, reduction_factor=3)``;
- ``bandit_asha``, ``bandit_asha_stopping``, ``bandit_hyperband``:
  ``BanditScheduler`` with bandit_tune's ASHA (promotion or stopping) or Hyperband,
  dropped into the same plain ``ray.tune.Tuner``;
- ``pool_asha``, ``pool_hyperband``: the same policies through
  :func:`bandit_tune.run_arms`, which multiplexes the arms over long-lived Ray
  workers (one per slot) instead of a Ray Tune trial per arm. The arm is the same
  curve as a class (Ray Tune's class API); its checkpoint is written when it
  pauses.

Printed per scheduler and arm count: results reported, wall seconds, results per
second, driver CPU milliseconds per result (user + system time of the driver
process, Ray Tune's controller included), the driver's resident-memory growth per
arm, the worker processes Ray started (each costs seconds of CPU), the best final
score found, and the wall-clock ratio of Ray's ASHAScheduler
to each (``> 1``: faster than Ray's ASHA).

    .venv/bin/python benchmarks/controller.py --arms 300 3000
    .venv/bin/python benchmarks/controller.py --arms 300 --schedulers ray_asha bandit_asha

Timings are figures to read, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

SCHEDULERS = [
    "ray_fifo", "ray_asha", "bandit_asha", "bandit_asha_stopping", "bandit_hyperband",
    "pool_asha", "pool_hyperband",
]
METRIC = "score"


def curve(arm: int, epoch: int) -> float:
    """The arm's score after ``epoch`` epochs: a saturating curve, deterministic per arm."""
    import random

    rng = random.Random(arm)
    final = 0.5 + 0.45 * rng.betavariate(2, 2)
    rate = 0.3 + 1.2 * rng.random()
    noise = random.Random(arm * 1000 + epoch).gauss(0, 0.004)
    return final - (final - 0.1) * epoch ** (-rate) + noise


def trainable(config: dict[str, Any]) -> None:
    """Reports ``max_t`` epochs of the arm's curve, each with a checkpoint (resumes from it)."""
    from ray import tune
    from ray.tune import Checkpoint

    arm, max_t, epoch_s = int(config["arm"]), int(config["max_t"]), float(config["epoch_s"])
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            with open(os.path.join(folder, "state.json")) as f:
                start = json.load(f)["epoch"]
    for epoch in range(start + 1, max_t + 1):
        if epoch_s:
            time.sleep(epoch_s)
        with tempfile.TemporaryDirectory() as folder:
            with open(os.path.join(folder, "state.json"), "w") as f:
                json.dump({"epoch": epoch}, f)
            tune.report(
                {METRIC: curve(arm, epoch), "epoch": epoch},
                checkpoint=Checkpoint.from_directory(folder),
            )


class CurveArm:
    """The same arm for :func:`bandit_tune.run_arms`: one epoch of its curve per step."""

    def setup(self, config: dict[str, Any]) -> None:
        self.arm, self.epoch_s, self.epoch = int(config["arm"]), float(config["epoch_s"]), 0

    def step(self) -> dict[str, Any]:
        if self.epoch_s:
            time.sleep(self.epoch_s)
        self.epoch += 1
        return {METRIC: curve(self.arm, self.epoch), "epoch": self.epoch}

    def save_checkpoint(self, folder: str) -> None:
        with open(os.path.join(folder, "state.json"), "w") as f:
            json.dump({"epoch": self.epoch}, f)

    def load_checkpoint(self, folder: str) -> None:
        with open(os.path.join(folder, "state.json")) as f:
            self.epoch = json.load(f)["epoch"]


def _run_pool(scheduler_name: str, arms: int, args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from bandit_tune import run_arms
    from bandit_tune.policies import ASHA, Hyperband
    from bandit_tune.ray_tune.cluster import ensure_ray

    ensure_ray()
    max_t = args.max_t
    policy: Any = Hyperband(max_t, 3) if scheduler_name == "pool_hyperband" else ASHA(max_t, 3)
    configs = [{"arm": i, "epoch_s": args.epoch_s} for i in range(arms)]
    rss0, cpu0 = _rss_mb(), resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    found = run_arms(CurveArm, configs, policy, metric=METRIC, cpus_per_arm=args.cpus_per_arm,
                     directory=tempfile.mkdtemp(prefix="bandit_tune_controller_"))
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    rss1 = _rss_mb()
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    logs = os.path.join(ray._private.worker._global_node.get_session_dir_path(), "logs")
    workers = len([f for f in os.listdir(logs) if f.startswith("worker-") and f.endswith(".out")])
    ray.shutdown()
    return {
        "scheduler": scheduler_name, "arms": arms, "results": found.epochs, "wall_s": wall,
        "results_per_s": found.epochs / wall,
        "driver_cpu_ms_per_result": 1000 * cpu / max(found.epochs, 1),
        "driver_kb_per_arm": 1024 * (rss1 - rss0) / arms, "best": found.best_score,
        "worker_processes": workers,
    }


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_one(scheduler_name: str, arms: int, args: argparse.Namespace) -> dict[str, Any]:
    """One scheduler over ``arms`` arms in this (fresh) process."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if scheduler_name.startswith("pool_"):
        return _run_pool(scheduler_name, arms, args)
    import ray
    from ray import tune

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    max_t = args.max_t
    if scheduler_name == "ray_fifo":
        from ray.tune.schedulers import FIFOScheduler

        scheduler: Any = FIFOScheduler()
    elif scheduler_name == "ray_asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=max_t,
                                  grace_period=1, reduction_factor=3)
    else:
        from bandit_tune import BanditScheduler
        from bandit_tune.policies import ASHA, Hyperband

        if scheduler_name == "bandit_hyperband":
            policy: Any = Hyperband(max_t, 3)
        else:
            mode = "stopping" if scheduler_name.endswith("stopping") else "promotion"
            policy = ASHA(max_t, 3, mode=mode)
        scheduler = BanditScheduler(policy)
    storage = tempfile.mkdtemp(prefix="bandit_tune_controller_")
    param_space = {"arm": tune.grid_search(list(range(arms))), "max_t": max_t,
                   "epoch_s": args.epoch_s}
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": args.cpus_per_arm}),
        param_space=param_space,
        tune_config=tune.TuneConfig(metric=METRIC, mode="max", scheduler=scheduler,
                                    reuse_actors=True),
        run_config=tune.RunConfig(storage_path=storage, name="controller", verbose=0),
    )
    rss0, cpu0 = _rss_mb(), resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    rss1 = _rss_mb()
    results, best = 0, float("-inf")
    for result in grid:
        frame = result.metrics_dataframe
        if frame is not None and len(frame):
            results += len(frame)
            best = max(best, float(frame[METRIC].max()))
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    logs = os.path.join(ray._private.worker._global_node.get_session_dir_path(), "logs")
    workers = len([f for f in os.listdir(logs) if f.startswith("worker-") and f.endswith(".out")])
    ray.shutdown()
    return {
        "scheduler": scheduler_name, "arms": arms, "results": results, "wall_s": wall,
        "results_per_s": results / wall, "driver_cpu_ms_per_result": 1000 * cpu / max(results, 1),
        "driver_kb_per_arm": 1024 * (rss1 - rss0) / arms, "best": best,
        "worker_processes": workers,
    }


def _table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| arms | scheduler | results | wall s | results/s | driver CPU ms/result | "
        "driver KB/arm | worker processes | best | Ray ASHA wall / this wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arms in sorted({r["arms"] for r in runs}):
        group = [r for r in runs if r["arms"] == arms]
        ray_asha = next((r["wall_s"] for r in group if r["scheduler"] == "ray_asha"), None)
        for r in group:
            ratio = f"{ray_asha / r['wall_s']:.2f}" if ray_asha else "-"
            lines.append(
                f"| {arms:,} | {r['scheduler']} | {r['results']:,} | {r['wall_s']:.1f} | "
                f"{r['results_per_s']:.1f} | {r['driver_cpu_ms_per_result']:.2f} | "
                f"{r['driver_kb_per_arm']:.1f} | {r.get('worker_processes', '-')} | "
                f"{r['best']:.4f} | {ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", type=int, nargs="+", default=[300])
    parser.add_argument("--schedulers", nargs="+", default=SCHEDULERS, choices=SCHEDULERS)
    parser.add_argument("--max-t", type=int, default=27)
    parser.add_argument("--cpus-per-arm", type=float, default=0.1)
    parser.add_argument("--epoch-s", type=float, default=0.0, help="sleep per epoch")
    parser.add_argument(
        "--env", nargs="*", default=[], metavar="KEY=VALUE",
        help="environment for every scheduler's process (e.g. Ray Tune's own knobs)",
    )
    parser.add_argument("--out", default=None, help="append each run as a JSON line here")
    parser.add_argument("--one", nargs=2, metavar=("SCHEDULER", "ARMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one[0], int(args.one[1]), args)))
        return
    runs = []
    for arms in args.arms:
        for name in args.schedulers:
            command = [sys.executable, __file__, "--one", name, str(arms), "--max-t",
                       str(args.max_t), "--cpus-per-arm", str(args.cpus_per_arm),
                       "--epoch-s", str(args.epoch_s)]
            env = dict(os.environ, **dict(item.split("=", 1) for item in args.env))
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"{name} at {arms} arms failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                continue
            run = json.loads(line[len("RESULT "):])
            runs.append(run)
            print(json.dumps(run), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(run) + "\n")
    print(_table(runs))


if __name__ == "__main__":
    main()
