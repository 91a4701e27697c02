"""Multi-objective halving on digits: accuracy against model size, in replay.

The shipped digits curves (256 Keras MLPs x 27 epochs) with each arm's
parameter count computed from its configuration give recorded vectors
``(val_accuracy, -params)``. For each seed (arm order), every candidate is
replayed with 2 workers for one Hyperband iteration's epochs (``MOHyperband(27)
.budget``); random search trains arms fully, in the same order, with 3x those
epochs. Printed: the hypervolume of the front each found, as a share of the front
of all 256 arms, and the epochs spent. The reference point is (``--min-accuracy``,
the largest model): only models at least that accurate count, as a user who must
ship a good model sees it::

    .venv/bin/python benchmarks/multi_objective.py --seeds 0 1 2 --plot docs/img/pareto_front.png
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from bandit_tune import load_curves, simulate
from bandit_tune.policies import MOASHA, MOHyperband, hypervolume
from bandit_tune.policies.pareto import pareto_front
from bandit_tune.policies.registry import TrainToEnd


def mlp_params(config: dict[str, Any], inputs: int = 64, classes: int = 10) -> int:
    """Trainable parameters of the digits MLP of ``config`` (Dense layers, biases included)."""
    units, layers = int(config["units"]), int(config["layers"])
    total, width = 0, inputs
    for _ in range(layers):
        total += width * units + units
        width = units
    return total + width * classes + classes


def digits_vectors() -> tuple[np.ndarray, np.ndarray]:
    """``[arms, epochs, 2]`` of (val_accuracy, -params), and the parameter counts."""
    curves = load_curves("digits_mlp")
    params = np.array([mlp_params(c) for c in curves.configs], dtype=float)
    size = np.repeat(-params[:, None], curves.max_t, axis=1)
    return np.stack([curves.scores, size], axis=2), params


def main() -> None:
    """Replay the candidates and print the table (and the plot)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plot", default=None, help="save the fronts of the first seed here")
    parser.add_argument("--min-accuracy", type=float, default=0.9)
    args = parser.parse_args()
    vectors, params = digits_vectors()
    flat = vectors.reshape(-1, 2)
    reference = np.array([args.min_accuracy, -params.max() - 1])
    oracle = hypervolume(pareto_front(flat), reference)
    epochs = MOHyperband(27).budget
    print(f"front of all 256 arms: hypervolume {oracle:.1f} (reference {reference.tolist()})")
    header = f"{'candidate':<32}{'seed':>5}{'epochs':>8}{'hypervolume share':>20}"
    print(header)
    shares: dict[str, list[float]] = {}
    fronts: dict[str, Any] = {}
    for seed in args.seeds:
        rows = {
            "MOHyperband(27)": simulate(
                MOHyperband(27), vectors, args.workers, seed=seed, budget=epochs
            ),
            "MOHyperband(27, epsnet)": simulate(
                MOHyperband(27, scalarization="epsnet"),
                vectors,
                args.workers,
                seed=seed,
                budget=epochs,
            ),
            "MOASHA(27, epsnet)": simulate(
                MOASHA(27, scalarization="epsnet"),
                vectors,
                args.workers,
                seed=seed,
                budget=epochs,
            ),
            "MOHyperband(27, random_weights)": simulate(
                MOHyperband(27, scalarization="random_weights", seed=seed),
                vectors,
                args.workers,
                seed=seed,
                budget=epochs,
            ),
            "MOASHA(27)": simulate(MOASHA(27), vectors, args.workers, seed=seed, budget=epochs),
            "random search, 3x the epochs": simulate(
                TrainToEnd(), vectors, args.workers, seed=seed, budget=3 * epochs
            ),
        }
        for name, result in rows.items():
            share = front_volume(vectors, result, reference) / oracle
            shares.setdefault(name, []).append(share)
            print(f"{name:<32}{seed:>5}{result.epochs_used:>8}{share:>20.4f}")
            if seed == args.seeds[0]:
                fronts[name] = result
    print("\nmean hypervolume share over seeds:")
    for name, values in shares.items():
        print(f"{name:<32}{np.mean(values):.4f}  (min {np.min(values):.4f})")
    if args.plot:
        plot(vectors, fronts, args.plot)


def front_volume(vectors: np.ndarray, result: Any, reference: np.ndarray) -> float:
    """The hypervolume of the front of every (arm, epoch) the replay trained."""
    seen = [vectors[int(arm[-5:]), step - 1] for arm, step, _, _ in result.decisions]
    return hypervolume(pareto_front(seen), reference)


def plot(vectors: np.ndarray, results: dict[str, Any], path: str) -> None:
    """Every arm's final (params, accuracy) and each candidate's best-seen front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    final = vectors[:, -1, :]
    ax.scatter(-final[:, 1], final[:, 0], s=8, color="0.75", label="every arm, epoch 27")
    for (name, result), marker in zip(results.items(), "osD^"):
        seen = [vectors[int(arm[-5:]), step - 1] for arm, step, _, _ in result.decisions]
        front = pareto_front(seen)
        front = front[np.argsort(-front[:, 1])]
        ax.step(-front[:, 1], front[:, 0], where="post", marker=marker, ms=4, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel("validation accuracy")
    ax.set_title("digits MLPs: the front each search found (seed 0)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
