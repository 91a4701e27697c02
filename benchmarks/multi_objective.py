"""Multi-objective halving on digits: accuracy against model size, in replay.

The shipped digits curves (256 Keras MLPs x 27 epochs) with each arm's
parameter count computed from its configuration give recorded vectors
``(val_accuracy, -params)``. For each seed (arm order), every candidate is
replayed with 2 workers for one Hyperband iteration's epochs (``MOHyperband(27)
.budget``); random search trains arms fully, in the same order, with 3x those
epochs (the issue's bar) and with as many. Printed: the hypervolume of the front
each found, as a share of the front of all 256 arms, and the epochs spent;
``--cap-accuracy A`` also prints each share with accuracies above ``A`` counted
as ``A`` (what the highest few validation samples decide). The reference point
is (``--min-accuracy``, the largest model): only models at least that accurate
count, as a user who must ship a good model sees it::

    .venv/bin/python benchmarks/multi_objective.py --seeds 0 1 2 --plot docs/img/pareto_front.png

``--live`` runs real Keras searches on Ray instead (digits, an MLP space of 1-3
layers of 8-256 units, dropout and learning rate): ``MOHyperband(27, epsnet)`` through
``RandomSearch(policy=...)``, and random search with ``max_total_epochs`` = 3x the
epochs it used, per seed; printed: each front's hypervolume against the same
reference and the ratio::

    .venv/bin/python benchmarks/multi_objective.py --live --seeds 0 1 2
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
    parser.add_argument(
        "--cap-accuracy",
        type=float,
        default=None,
        help="also print each share with accuracies above this counted at this value "
        "(how much of a gap is the few highest validation samples)",
    )
    parser.add_argument("--live", action="store_true", help="real Keras searches on Ray")
    parser.add_argument("--max-epochs", type=int, default=27, help="with --live")
    args = parser.parse_args()
    if args.live:
        live(args.seeds, args.min_accuracy, args.max_epochs)
        return
    vectors, params = digits_vectors()
    flat = vectors.reshape(-1, 2)
    reference = np.array([args.min_accuracy, -params.max() - 1])
    oracle = hypervolume(pareto_front(flat), reference)
    epochs = MOHyperband(27).budget
    print(f"front of all 256 arms: hypervolume {oracle:.1f} (reference {reference.tolist()})")
    header = f"{'candidate':<32}{'seed':>5}{'epochs':>8}{'hypervolume share':>20}"
    if args.cap_accuracy is not None:
        header += f"{'capped share':>14}"
    print(header)
    shares: dict[str, list[float]] = {}
    capped: dict[str, list[float]] = {}
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
            "random search, same epochs": simulate(
                TrainToEnd(), vectors, args.workers, seed=seed, budget=epochs
            ),
        }
        for name, result in rows.items():
            share = front_volume(vectors, result, reference) / oracle
            shares.setdefault(name, []).append(share)
            line = f"{name:<32}{seed:>5}{result.epochs_used:>8}{share:>20.4f}"
            if args.cap_accuracy is not None:
                capped.setdefault(name, []).append(
                    front_volume(vectors, result, reference, args.cap_accuracy) / oracle
                )
                line += f"{capped[name][-1]:>14.4f}"
            print(line)
            if seed == args.seeds[0]:
                fronts[name] = result
    print("\nmean hypervolume share over seeds:")
    for name, values in shares.items():
        line = f"{name:<32}{np.mean(values):.4f}  (min {np.min(values):.4f})"
        if name in capped:
            line += f"  capped at {args.cap_accuracy}: {np.mean(capped[name]):.4f}"
        print(line)
    if args.plot:
        plot(vectors, fronts, args.plot)


def live_model(hp: Any) -> Any:
    """The live benchmark's MLP: its size is set by layers and units."""
    import keras

    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten()])
    for _ in range(hp.Int("layers", 1, 3)):
        model.add(keras.layers.Dense(hp.Int("units", 8, 256, sampling="log"), activation="relu"))
        model.add(keras.layers.Dropout(hp.Float("dropout", 0.0, 0.5)))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("learning_rate", 1e-4, 3e-2, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def live(seeds: list[int], min_accuracy: float, max_epochs: int) -> None:
    """Real searches: MOHyperband(epsnet) against random search with 3x its epochs."""
    import tempfile

    import bandit_tune
    from bandit_tune import Objective
    from bandit_tune.demo import load_digits_split

    (x, y), (xv, yv), _ = load_digits_split(0)
    objectives = ["val_accuracy", Objective("params", "min")]
    largest = 3 * 257 * 256 + 64 * 256 + 2570  # above any model of the space
    reference = [min_accuracy, largest]
    print(f"{'seed':>4}{'MO epochs':>10}{'MO hv':>12}{'RS epochs':>10}{'RS hv':>12}{'MO/RS':>8}")
    ratios = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as directory:
            policy = MOHyperband(max_epochs, scalarization="epsnet")
            mo = bandit_tune.RandomSearch(
                live_model,
                objective=objectives,
                policy=policy,
                max_trials=policy.n_arms,
                max_epochs=max_epochs,
                seed=seed,
                directory=directory,
                project_name="mo",
                verbose=0,
            )
            mo.search(x, y, validation_data=(xv, yv))
            epochs = int(mo.results_["epochs"].sum())
            rs = bandit_tune.RandomSearch(
                live_model,
                objective=objectives,
                max_trials=10_000,
                max_epochs=max_epochs,
                max_total_epochs=3 * epochs,
                seed=seed,
                directory=directory,
                project_name="rs",
                verbose=0,
            )
            rs.search(x, y, validation_data=(xv, yv))
            hv_mo, hv_rs = mo.hypervolume(reference), rs.hypervolume(reference)
            ratios.append(hv_mo / hv_rs if hv_rs else float("nan"))
            rs_epochs = int(rs.results_["epochs"].sum())
            print(
                f"{seed:>4}{epochs:>10}{hv_mo:>12.1f}{rs_epochs:>10}{hv_rs:>12.1f}"
                f"{ratios[-1]:>8.3f}",
                flush=True,
            )
    print(f"mean MO / RS hypervolume: {np.mean(ratios):.3f} (min {np.min(ratios):.3f})")


def front_volume(
    vectors: np.ndarray, result: Any, reference: np.ndarray, cap: float | None = None
) -> float:
    """The hypervolume of the front of every (arm, epoch) the replay trained.

    ``cap``: count accuracies above it as ``cap`` (the share of the oracle's
    hypervolume is still taken against the uncapped oracle).
    """
    seen = np.array([vectors[int(arm[-5:]), step - 1] for arm, step, _, _ in result.decisions])
    if cap is not None:
        seen[:, 0] = np.minimum(seen[:, 0], cap)
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
