"""Which policy at which scale: 16 to 1,024 workers, simulated on heterogeneous clusters.

Replays learning curves through each policy with :func:`bandit_tune.replay.simulate`'s
cluster model: arms of different sizes (seconds per epoch drawn per arm,
log-normal), stragglers (``--slow-share`` of the workers ``--slowdown`` times
slower) and lost workers (``--loss`` chance per epoch; a replacement joins
``--restart`` seconds later, the arm continues from its last epoch elsewhere).
The curves are the shipped digits MLP curves, drawn with replacement and
jittered (``--arms-per-worker`` arms per worker), so every scale has enough arms;
each search has the same simulated wall-clock budget (``--time-budget``, 2,000 s:
about seven full 27-epoch trainings of a median arm), as a cluster user gives one.

Printed per policy and cluster size: the share of worker time spent idle, the
simulated wall time until the final best arm was first seen, the wall time to the
end, epochs trained, and the regret of the final best (best score any drawn arm
reaches minus the best found). ``--plot FILE`` draws idle share and regret
against the number of workers.

    .venv/bin/python benchmarks/cluster_scale.py
    .venv/bin/python benchmarks/cluster_scale.py --workers 16 64 --plot docs/img/cluster_scale.png
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from bandit_tune import load_curves, simulate
from bandit_tune.policies import ASHA, AdaptiveASHA, Hyperband, SuccessiveHalving

R, ETA = 27, 3
POLICIES = {
    "hyperband": lambda: Hyperband(R, ETA),
    "successive_halving": lambda: SuccessiveHalving(R, ETA),
    "asha": lambda: ASHA(R, ETA),
    "asha_stopping": lambda: ASHA(R, ETA, mode="stopping"),
    "adaptive_asha": lambda: AdaptiveASHA(R, ETA),
}


def cluster(workers: int, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The curves, per-arm seconds and per-worker speeds of one simulated cluster."""
    digits = load_curves("digits_mlp")
    rng = np.random.default_rng(seed)
    n = workers * args.arms_per_worker
    rows = rng.integers(0, digits.scores.shape[0], size=n)
    jitter = rng.normal(0, 0.002, size=(n, 1))
    scores = np.clip(digits.scores[rows] + jitter, 0.0, 1.0)
    seconds = args.epoch_s * rng.lognormal(0.0, args.arm_spread, size=n)
    speed = np.ones(workers)
    slow = rng.choice(workers, size=int(round(args.slow_share * workers)), replace=False)
    speed[slow] = args.slowdown
    return {"curves": scores, "seconds": seconds, "worker_speed": speed}


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for workers in args.workers:
        for name in args.policies:
            found: dict[str, list[float]] = {}
            for seed in range(args.seeds):
                setup = cluster(workers, args, seed)
                start = time.perf_counter()
                result = simulate(
                    POLICIES[name](), setup["curves"], n_workers=workers,
                    seconds=setup["seconds"], seed=seed, worker_speed=setup["worker_speed"],
                    worker_loss=args.loss, worker_restart=args.restart,
                    time_budget=args.time_budget,
                )
                values = {
                    "idle": result.idle_share,
                    "to_best": result.best_found_at,
                    "wall": result.seconds,
                    "epochs": result.epochs_used,
                    "regret": float(np.nanmax(setup["curves"])) - result.best_score,
                    "lost": result.workers_lost,
                    "cpu": time.perf_counter() - start,
                }
                for key, value in values.items():
                    found.setdefault(key, []).append(value)
            row = {"workers": workers, "policy": name}
            row.update({key: float(np.mean(v)) for key, v in found.items()})
            rows.append(row)
            print(
                f"{workers:>5} workers {name:<20} idle {row['idle']:.3f}  to best "
                f"{row['to_best']:8.0f} s  end {row['wall']:8.0f} s  epochs {row['epochs']:9.0f}"
                f"  regret {row['regret']:.4f}  ({row['cpu']:.1f} s to simulate)",
                flush=True,
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| workers | policy | idle share | wall to final best (s) | wall to end (s) | "
        "epochs | regret |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workers']:,} | {r['policy']} | {r['idle']:.2f} | {r['to_best']:,.0f} | "
            f"{r['wall']:,.0f} | {r['epochs']:,.0f} | {r['regret']:.4f} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r["policy"] for r in rows):
        mine = [r for r in rows if r["policy"] == name]
        workers = [r["workers"] for r in mine]
        axes[0].plot(workers, [r["idle"] for r in mine], marker="o", label=name)
        axes[1].plot(workers, [r["regret"] for r in mine], marker="o", label=name)
    for ax, label in zip(axes, ["idle share of worker time", "regret at the end of the budget"]):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("workers")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--arms-per-worker", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epoch-s", type=float, default=10.0, help="median seconds per epoch")
    parser.add_argument("--arm-spread", type=float, default=0.5, help="log-normal sigma per arm")
    parser.add_argument("--slow-share", type=float, default=0.1)
    parser.add_argument("--slowdown", type=float, default=3.0)
    parser.add_argument("--loss", type=float, default=0.001, help="chance per epoch")
    parser.add_argument("--restart", type=float, default=120.0, help="seconds")
    parser.add_argument(
        "--time-budget", type=float, default=2000.0,
        help="simulated wall-clock seconds per search (0: until the arms run out)",
    )
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    args.time_budget = args.time_budget or None
    rows = run(args)
    print(table(rows))
    if args.plot:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
