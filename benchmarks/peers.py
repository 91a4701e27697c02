"""Digits workload, side by side: bandit_tune vs Ray Tune, keras-tuner, Optuna and random search.

Every system tunes the demo's Keras MLP (units 32..512, learning rate 1e-2/1e-3/1e-4)
on scikit-learn's digits (60/20/20 split) with R=27 epochs and eta=3, batch 32, and
the same seeds. Each system runs in a fresh Python process, so Ray's start and
TensorFlow's import count where a user would pay them. Printed per system (mean
over seeds): wall seconds, epochs trained, ideal seconds (sum of epoch seconds /
parallel slots), wall / ideal, best validation accuracy, test accuracy of the best
configuration (retrained from scratch for R epochs, the same way for every
system), and bandit_tune Hyperband's wall-clock ratio to each system.
``bandit_tune_hyperband_second`` times a second search in the same process (a
notebook's second run: an untimed first search with another seed ran before it).
``bandit_tune_hyperband_pool`` (and ``_second``) runs the same tuner with
``backend="pool"``: the arms multiplexed over long-lived Ray workers that
bandit_tune owns (kept, with Keras imported, for the next search of the process)
instead of a Ray Tune trial per arm.

    .venv/bin/python benchmarks/peers.py --seeds 0 1 2            # all systems
    .venv/bin/python benchmarks/peers.py --systems bandit_tune_hyperband ray_hyperband

Timings are figures to read, never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

R = int(os.environ.get("BANDIT_TUNE_BENCH_R", "27"))  # --max-epochs sets it for the children
ETA, BATCH = 3, 32
UNITS = list(range(32, 513, 32))
RATES = [1e-2, 1e-3, 1e-4]
SYSTEMS = [
    "bandit_tune_hyperband",
    "bandit_tune_hyperband_second",
    "bandit_tune_hyperband_keras_input",
    "bandit_tune_hyperband_pool",
    "bandit_tune_hyperband_pool_second",
    "bandit_tune_asha",
    "ray_hyperband",
    "ray_hyperband_defaults",
    "ray_asha",
    "keras_tuner_hyperband",
    "optuna_hyperband",
    "random_search",
]


def _hyperband_arms() -> int:
    from bandit_tune.policies import Hyperband

    return Hyperband(R, ETA).n_arms  # one pass: 49 arms at R=27 (Li et al., Algorithm 1)


HYPERBAND_ARMS = _hyperband_arms()


# -- shared pieces (run inside each system's process) ---------------------------------
def _threads(n: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass


def _data() -> Any:
    from bandit_tune.demo import load_digits_split

    return load_digits_split(0)


def _model(units: int, learning_rate: float) -> Any:
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(8, 8)),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def build_model(hp: Any) -> Any:
    """The workload's search space, for bandit_tune and keras-tuner alike."""
    return _model(hp.Int("units", 32, 512, step=32), hp.Choice("learning_rate", RATES))


def _epoch_clock() -> Any:
    import keras

    class EpochClock(keras.callbacks.Callback):
        """Seconds of each epoch's training and validation."""

        seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            EpochClock.seconds.append(time.perf_counter() - self._t)

    return EpochClock


def _test_accuracy(units: int, learning_rate: float, seed: int) -> float:
    """Retrain the chosen configuration from scratch for R epochs; accuracy on the test set."""
    import keras

    keras.utils.set_random_seed(seed)
    (x, y), (xv, yv), (xt, yt) = _data()
    model = _model(units, learning_rate)
    model.fit(x, y, validation_data=(xv, yv), epochs=R, batch_size=BATCH, verbose=0)
    return float(model.evaluate(xt, yt, verbose=0)[1])


# -- the systems ------------------------------------------------------------------------
def run_bandit_tune(
    kind: str, seed: int, workdir: str, fast_input: bool = True, backend: str = "tune"
) -> dict[str, Any]:
    import bandit_tune

    (x, y), (xv, yv), _ = _data()

    common = dict(
        objective="val_accuracy",
        max_epochs=R,
        seed=seed,
        directory=workdir,
        project_name=kind,
        overwrite=True,
        verbose=0,
        fast_input=fast_input,
        backend=backend,
    )
    if kind == "hyperband":
        tuner = bandit_tune.Hyperband(build_model, factor=ETA, **common)
    elif kind == "asha":
        tuner = bandit_tune.ASHA(build_model, factor=ETA, max_trials=HYPERBAND_ARMS, **common)
    else:  # random search with Hyperband's epoch budget: 13 arms x 27 epochs
        budget = bandit_tune.policies.Hyperband(R, ETA).budget
        tuner = bandit_tune.RandomSearch(
            build_model, max_trials=max(1, round(budget / R)), **common
        )
    tuner.search(x, y, validation_data=(xv, yv), batch_size=BATCH)
    rows = [r for rs in tuner.scheduler_.results.values() for r in rs]
    best = tuner.best_params_
    return {
        "epochs": len(rows),
        "epoch_seconds": sum(r["epoch_s"] for r in rows),
        "slots": tuner.scheduler_.slots,
        "best_val": tuner.best_score_,
        "best": [best["units"], best["learning_rate"]],
    }


def _ray_trainable(config: dict[str, Any]) -> None:
    """A function trainable as Ray Tune's docs write it: checkpoint every epoch, restore."""
    import keras
    from ray import tune

    _threads(1)
    (x, y), (xv, yv), _ = _data()
    model = _model(config["units"], config["learning_rate"])
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(os.path.join(d, "m.weights.h5"))
            start = json.load(open(os.path.join(d, "epoch.json")))["epoch"]

    class Report(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._t = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seconds = time.perf_counter() - self._t
            with tempfile.TemporaryDirectory() as d:
                self.model.save_weights(os.path.join(d, "m.weights.h5"))
                json.dump({"epoch": epoch + 1}, open(os.path.join(d, "epoch.json"), "w"))
                tune.report(
                    {"val_accuracy": float(logs["val_accuracy"]), "epoch_s": seconds},
                    checkpoint=tune.Checkpoint.from_directory(d),
                )

    model.fit(
        x,
        y,
        validation_data=(xv, yv),
        epochs=R,
        initial_epoch=start,
        batch_size=BATCH,
        verbose=0,
        callbacks=[Report()],
    )


def run_ray(kind: str, seed: int, workdir: str, reuse_actors: bool = True) -> dict[str, Any]:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(
        address="local", include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1"
    )
    if kind == "hyperband":
        scheduler = HyperBandScheduler(
            time_attr="training_iteration", max_t=R, reduction_factor=ETA
        )
    else:
        scheduler = ASHAScheduler(
            time_attr="training_iteration", max_t=R, grace_period=1, reduction_factor=ETA
        )
    tuner = tune.Tuner(
        tune.with_resources(_ray_trainable, {"cpu": 1}),
        param_space={"units": tune.choice(UNITS), "learning_rate": tune.choice(RATES)},
        tune_config=tune.TuneConfig(
            metric="val_accuracy",
            mode="max",
            scheduler=scheduler,
            num_samples=HYPERBAND_ARMS,
            reuse_actors=reuse_actors,
            search_alg=tune.search.BasicVariantGenerator(random_state=seed),
        ),
        run_config=tune.RunConfig(
            storage_path=workdir,
            name=kind,
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )
    grid = tuner.fit()
    epochs, seconds = 0, 0.0
    for result in grid:
        frame = result.metrics_dataframe
        if frame is not None and "epoch_s" in frame:
            epochs += len(frame)
            seconds += float(frame["epoch_s"].sum())
    best = grid.get_best_result(metric="val_accuracy", mode="max", scope="all")
    frame = best.metrics_dataframe
    return {
        "epochs": epochs,
        "epoch_seconds": seconds,
        "slots": int(ray.cluster_resources().get("CPU", 1)),
        "best_val": float(frame["val_accuracy"].max()),
        "best": [best.config["units"], best.config["learning_rate"]],
    }


def run_keras_tuner(seed: int, workdir: str) -> dict[str, Any]:
    import keras_tuner

    (x, y), (xv, yv), _ = _data()
    clock = _epoch_clock()

    tuner = keras_tuner.Hyperband(
        build_model,
        objective="val_accuracy",
        max_epochs=R,
        factor=ETA,
        seed=seed,
        directory=workdir,
        project_name="kt",
        overwrite=True,
    )
    tuner.search(x, y, validation_data=(xv, yv), batch_size=BATCH, verbose=0, callbacks=[clock()])
    best = tuner.get_best_hyperparameters()[0].values
    trials = tuner.oracle.get_best_trials(1)
    return {
        "epochs": len(clock.seconds),
        "epoch_seconds": sum(clock.seconds),
        "slots": 1,
        "best_val": float(trials[0].score),
        "best": [best["units"], best["learning_rate"]],
    }


def run_optuna(seed: int) -> dict[str, Any]:
    import keras
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (x, y), (xv, yv), _ = _data()
    clock = _epoch_clock()

    def objective(trial: Any) -> float:
        model = _model(
            trial.suggest_categorical("units", UNITS),
            trial.suggest_categorical("learning_rate", RATES),
        )
        best = 0.0

        class Prune(keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                nonlocal best
                best = max(best, float(logs["val_accuracy"]))
                trial.report(float(logs["val_accuracy"]), epoch + 1)
                if trial.should_prune():
                    self.model.stop_training = True
                    self.pruned = True

        prune = Prune()
        prune.pruned = False
        model.fit(
            x,
            y,
            validation_data=(xv, yv),
            epochs=R,
            batch_size=BATCH,
            verbose=0,
            callbacks=[clock(), prune],
        )
        if prune.pruned:
            raise optuna.TrialPruned()
        return best

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=R, reduction_factor=ETA),
    )
    study.optimize(objective, n_trials=HYPERBAND_ARMS)
    values = [t.intermediate_values for t in study.trials]
    best_trial = max(study.trials, key=lambda t: max(t.intermediate_values.values(), default=0))
    return {
        "epochs": len(clock.seconds),
        "epoch_seconds": sum(clock.seconds),
        "slots": 1,
        "best_val": max(max(v.values(), default=0) for v in values),
        "best": [best_trial.params["units"], best_trial.params["learning_rate"]],
    }


def run_one(system: str, seed: int) -> dict[str, Any]:
    """Run one system once in this process and return its figures."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with tempfile.TemporaryDirectory() as workdir:
        if system == "bandit_tune_hyperband_second":
            # a notebook's second search: the first (another seed, untimed) ran in this
            # process, so Ray, its workers and the imports may be warm
            run_bandit_tune("hyperband", seed + 1000, os.path.join(workdir, "first"))
        if system == "bandit_tune_hyperband_pool_second":
            run_bandit_tune("hyperband", seed + 1000, os.path.join(workdir, "first"),
                            backend="pool")
        start = time.monotonic()
        if system.startswith("bandit_tune_hyperband_pool"):
            out = run_bandit_tune("hyperband", seed, workdir, backend="pool")
        elif system == "bandit_tune_hyperband_keras_input":  # NumPy arrays straight to Keras
            out = run_bandit_tune("hyperband", seed, workdir, fast_input=False)
        elif system == "bandit_tune_hyperband_second":
            out = run_bandit_tune("hyperband", seed, workdir)
        elif system.startswith("bandit_tune_"):
            out = run_bandit_tune(system.removeprefix("bandit_tune_"), seed, workdir)
        elif system == "random_search":
            out = run_bandit_tune("random", seed, workdir)
        elif system == "ray_hyperband_defaults":  # Ray's default: a new actor per trial
            out = run_ray("hyperband", seed, workdir, reuse_actors=False)
        elif system.startswith("ray_"):
            out = run_ray(system.removeprefix("ray_"), seed, workdir)
        elif system == "keras_tuner_hyperband":
            _threads(2)
            out = run_keras_tuner(seed, workdir)
        elif system == "optuna_hyperband":
            _threads(2)
            out = run_optuna(seed)
        else:
            raise ValueError(f"unknown system {system!r}; choose from {', '.join(SYSTEMS)}")
        out["wall"] = time.monotonic() - start
    out["test_accuracy"] = _test_accuracy(out["best"][0], out["best"][1], seed)
    out["ideal"] = out["epoch_seconds"] / out["slots"]
    return out


def main() -> None:
    """Run every system for every seed in fresh processes; print the table and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="*", default=SYSTEMS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--one", nargs=2, metavar=("SYSTEM", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--jsonl", default=None, help="append every run's figures to this file")
    parser.add_argument("--max-epochs", type=int, default=R, help="R (27; smaller for a smoke run)")
    parser.add_argument(
        "--timeout", type=int, default=1200, help="seconds one system's run may take (a hang)"
    )
    args = parser.parse_args()
    os.environ["BANDIT_TUNE_BENCH_R"] = str(args.max_epochs)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one[0], int(args.one[1]))), flush=True)
        return
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in args.seeds:
        for system in args.systems:
            try:
                done = subprocess.run(
                    [sys.executable, __file__, "--one", system, str(seed)],
                    capture_output=True,
                    text=True,
                    timeout=args.timeout,
                    env={
                        **os.environ,
                        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                        "TF_CPP_MIN_LOG_LEVEL": "3",
                        "RAY_USAGE_STATS_ENABLED": "0",
                    },
                )
            except subprocess.TimeoutExpired:
                # measured once: Ray's HyperBandScheduler spinning with every trial paused
                print(f"{system} seed {seed} hung: no result after {args.timeout} s", flush=True)
                continue
            line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                print(f"{system} seed {seed} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
                continue
            result = json.loads(line.removeprefix("RESULT "))
            runs.setdefault(system, []).append(result)
            if args.jsonl:  # every run as it ends: an interrupted benchmark keeps its data
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps({"system": system, "seed": seed, **result}) + "\n")
            print(
                f"  {system:24s} seed {seed}: wall {result['wall']:6.1f} s, "
                f"wall/ideal {result['wall'] / result['ideal']:.2f}",
                flush=True,
            )
    table = _table(runs, args.seeds)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")


def _table(runs: dict[str, list[dict[str, Any]]], seeds: list[int]) -> str:
    def mean(system: str, key: str) -> float:
        values = [r[key] for r in runs[system]]
        return sum(values) / len(values)

    ours = mean("bandit_tune_hyperband", "wall") if "bandit_tune_hyperband" in runs else None
    lines = [
        f"digits MLP, R={os.environ.get('BANDIT_TUNE_BENCH_R', R)}, eta={ETA}, "
        f"mean of seeds {seeds}, "
        f"{os.cpu_count()} cores",
        "",
        "| system | wall s | epochs | ideal s | wall/ideal | best val acc | test acc | "
        "bandit_tune HB wall / this wall |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for system in runs:
        wall = mean(system, "wall")
        ratio = f"{ours / wall:.2f}" if ours else "-"
        lines.append(
            f"| {system} | {wall:.1f} | {mean(system, 'epochs'):.0f} | {mean(system, 'ideal'):.1f}"
            f" | {wall / mean(system, 'ideal'):.2f} | {mean(system, 'best_val'):.4f}"
            f" | {mean(system, 'test_accuracy'):.4f} | {ratio} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
