"""Population-based training against Hyperband's best fixed arm, same epochs, on digits.

A digits MLP trained with SGD (momentum 0.9), where the learning rate's schedule
matters: its space is the learning rate (1e-3 to 1, log) and the dropout rate
(0 to 0.6). Per seed, two real Keras searches on Ray with the same number of epochs:

- ``PopulationBasedTraining``: a population of 8 trains ``--max-t`` epochs each,
  exploiting and exploring every ``--interval`` epochs (``RandomSearch(policy=...)``);
- ``Hyperband(max_epochs=--max-t, factor=3)`` with ``max_total_epochs`` = the
  population's epochs: every arm keeps its values for all its epochs.

``--variants`` picks the population-based policies: ``pbt`` (asynchronous, the
default), ``pbt_synch`` (synchronous) and ``pb2`` (GP-bandit explore). Printed per
seed and variant: each search's best validation accuracy, the test accuracy of its
best model, the epochs and seconds it spent, and the best arm's schedule; then the
means over seeds::

    .venv/bin/python benchmarks/pbt.py --seeds 0 1 2 3 4 --variants pbt pbt_synch pb2 \
        --plot docs/img/pbt_schedule.png
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import numpy as np


def build_model(hp: Any) -> Any:
    """The benchmark's MLP: 64 units, a dropout layer, SGD with momentum."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(hp.Float("dropout", 0.0, 0.6)),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(
            hp.Float("learning_rate", 1e-3, 1.0, sampling="log"), momentum=0.9
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


VARIANTS = {
    "pbt": lambda **kw: _policy("PopulationBasedTraining", **kw),
    "pbt_synch": lambda **kw: _policy("PopulationBasedTraining", synch=True, **kw),
    "pb2": lambda **kw: _policy("PB2", **kw),
}


def _policy(name: str, **kwargs: Any) -> Any:
    import bandit_tune

    return getattr(bandit_tune, name)(
        hyperparam_mutations={"learning_rate": None, "dropout": None}, **kwargs
    )


def run(
    seed: int,
    max_t: int,
    interval: int,
    population: int,
    variant: str = "pbt",
    plot: str | None = None,
) -> dict[str, Any]:
    """One seed and one PBT variant: its search's scores (Hyperband's: :func:`hyperband`)."""
    import bandit_tune
    from bandit_tune.demo import load_digits_split

    (x, y), (xv, yv), (xt, yt) = load_digits_split(seed)
    out: dict[str, Any] = {"seed": seed, "variant": variant}
    with tempfile.TemporaryDirectory() as directory:
        policy = VARIANTS[variant](
            max_t=max_t, population_size=population, perturbation_interval=interval, seed=seed
        )
        started = time.perf_counter()
        pbt = bandit_tune.RandomSearch(
            build_model,
            objective="val_accuracy",
            max_epochs=max_t,
            policy=policy,
            seed=seed,
            directory=directory,
            project_name="pbt",
            verbose=0,
        )
        pbt.search(x, y, validation_data=(xv, yv), batch_size=32)
        out["pbt_seconds"] = time.perf_counter() - started
        epochs = int(pbt.results_["epochs"].sum())
        out["pbt_epochs"] = epochs
        out["pbt_val"] = pbt.best_score_
        out["pbt_test"] = pbt.evaluate(xt, yt)["accuracy"]
        out["pbt_exploits"] = len(pbt.lineage_)
        out["pbt_schedule"] = pbt.best_schedule_
        if plot:
            import os
            import shutil

            pbt.plot(os.path.join(directory, "curves.png"))
            shutil.copy(os.path.join(directory, "curves_schedule.png"), plot)
    return out


def hyperband(seed: int, max_t: int, epochs: int) -> dict[str, Any]:
    """Hyperband(max_t, 3) with ``epochs`` in all on the seed's split: its scores."""
    import bandit_tune
    from bandit_tune.demo import load_digits_split

    (x, y), (xv, yv), (xt, yt) = load_digits_split(seed)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        hyperband = bandit_tune.Hyperband(
            build_model,
            objective="val_accuracy",
            max_epochs=max_t,
            factor=3,
            max_total_epochs=epochs,
            seed=seed,
            directory=directory,
            project_name="hyperband",
            verbose=0,
        )
        hyperband.search(x, y, validation_data=(xv, yv), batch_size=32)
        out["hb_seconds"] = time.perf_counter() - started
        out["hb_epochs"] = int(hyperband.results_["epochs"].sum())
        out["hb_arms"] = len(hyperband.results_)
        out["hb_val"] = hyperband.best_score_
        out["hb_test"] = hyperband.evaluate(xt, yt)["accuracy"]
        out["hb_params"] = hyperband.best_params_
    return out


def main() -> None:
    """Run the seeds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--max-t", type=int, default=27)
    parser.add_argument("--interval", type=int, default=3)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--variants", nargs="+", default=["pbt"], choices=sorted(VARIANTS))
    parser.add_argument("--plot", default=None, help="save the first seed's PBT schedules here")
    args = parser.parse_args()
    print(
        f"{'seed':>4} {'variant':>9} | {'epochs':>6} {'val':>7} {'test':>7} {'exploits':>8} "
        f"{'s':>4} | {'HB epochs':>9} {'arms':>4} {'val':>7} {'test':>7} {'s':>4} | val - HB"
    )
    rows = []
    epochs = args.population * args.max_t
    for seed in args.seeds:
        hb = hyperband(seed, args.max_t, epochs)
        for variant in args.variants:
            plot = args.plot if seed == args.seeds[0] and variant == args.variants[0] else None
            r = {**run(seed, args.max_t, args.interval, args.population, variant, plot), **hb}
            rows.append(r)
            print(
                f"{seed:>4} {variant:>9} | {r['pbt_epochs']:>6} {r['pbt_val']:>7.4f} "
                f"{r['pbt_test']:>7.4f} {r['pbt_exploits']:>8} {r['pbt_seconds']:>4.0f} | "
                f"{r['hb_epochs']:>9} {r['hb_arms']:>4} {r['hb_val']:>7.4f} {r['hb_test']:>7.4f} "
                f"{r['hb_seconds']:>4.0f} | {r['pbt_val'] - r['hb_val']:+.4f}",
                flush=True,
            )
            print(f"     best {variant} schedule: {r['pbt_schedule']}", flush=True)
        print(f"     best Hyperband arm: {hb['hb_params']}", flush=True)
    for variant in args.variants:
        mine = [r for r in rows if r["variant"] == variant]
        val, hb_val = np.mean([r["pbt_val"] for r in mine]), np.mean([r["hb_val"] for r in mine])
        test = np.mean([r["pbt_test"] for r in mine])
        hb_test = np.mean([r["hb_test"] for r in mine])
        wins = sum(r["pbt_val"] >= r["hb_val"] for r in mine)
        print(
            f"{variant}: mean val accuracy {val:.4f} (Hyperband {hb_val:.4f}), mean test "
            f"accuracy {test:.4f} (Hyperband {hb_test:.4f}); >= Hyperband's val on {wins} of "
            f"{len(mine)} seeds"
        )


if __name__ == "__main__":
    main()
