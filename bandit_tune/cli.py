"""The ``bandit-tune`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bandit_tune.policies import Hyperband


def _plan(args: argparse.Namespace) -> int:
    policy = Hyperband(args.max_epochs, args.eta, args.min_epochs)
    if args.budget is not None:
        from bandit_tune.driver.budget import parse_budget

        epochs = _budget_epochs(args.budget, args.epoch_seconds, args.workers)
        policy = Hyperband(args.max_epochs, args.eta, args.min_epochs, max_total_epochs=epochs)
        seconds = parse_budget(args.budget) if not str(args.budget).isdigit() else None
        where = (
            f"{args.budget} at {args.epoch_seconds} s/epoch on {args.workers} workers"
            if seconds
            else f"{epochs} epochs"
        )
        print(f"budget: {where} -> at most {epochs} epochs in whole brackets")
    print(policy.describe())
    return 0


def _budget_epochs(budget: str, epoch_seconds: float, workers: int) -> int:
    """Epochs that fit a budget: a plain integer is epochs, a duration is converted."""
    from bandit_tune.driver.budget import parse_budget

    text = str(budget).strip()
    if text.isdigit():
        return int(text)
    if epoch_seconds <= 0 or workers < 1:
        raise ValueError("--epoch-seconds must be > 0 and --workers >= 1")
    return int(parse_budget(text) * workers / epoch_seconds)


def _load_callable(spec: str, what: str) -> object:
    """``path/to/file.py:name`` or ``package.module:name`` -> the object."""
    import importlib
    import importlib.util
    import os

    if ":" not in spec:
        raise ValueError(f"{what} {spec!r} must look like path/to/file.py:name or module:name")
    where, name = spec.rsplit(":", 1)
    if where.endswith(".py") or os.path.sep in where:
        if not os.path.exists(where):
            raise FileNotFoundError(f"{what} file {where!r} does not exist")
        module_name = os.path.splitext(os.path.basename(where))[0]
        sys.path.insert(0, os.path.dirname(os.path.abspath(where)))
        spec_ = importlib.util.spec_from_file_location(module_name, where)
        assert spec_ is not None and spec_.loader is not None
        module = importlib.util.module_from_spec(spec_)
        sys.modules[module_name] = module
        try:
            spec_.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 — said in words
            raise _load_error(f"{what} file {where!r}", exc) from None
        # Ray's workers cannot import a loose file: ship its functions by value.
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    else:
        try:
            module = importlib.import_module(where)
        except ModuleNotFoundError as exc:
            if exc.name is None or not where.startswith(exc.name):
                raise _load_error(f"{what} module {where!r}", exc) from None
            raise ValueError(
                f"{what} {spec!r}: no module named {exc.name!r} (give path/to/file.py:name, or "
                "a module on the Python path)"
            ) from None
        except Exception as exc:  # noqa: BLE001 — said in words
            raise _load_error(f"{what} module {where!r}", exc) from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise ValueError(f"{what} {spec!r}: {where} has no {name!r}") from None


def _load_error(where: str, exc: Exception) -> ValueError:
    """What went wrong loading the user's module, in one line."""
    if isinstance(exc, SyntaxError):
        return ValueError(f"{where} has a syntax error at line {exc.lineno}: {exc.msg}")
    return ValueError(f"{where} failed while loading: {type(exc).__name__}: {exc}")


def load_data(spec: str) -> dict[str, object]:
    """Read ``--data`` into a dict with ``x``, ``y`` and optional validation and test arrays.

    ``spec`` is an ``.npz`` with ``x``/``y`` (optional ``x_val``/``y_val``,
    ``x_test``/``y_test``) or a loader ``module:function`` returning such a dict,
    ``(x, y)`` or ``((x, y), (x_val, y_val))``.
    """
    import os

    import numpy as np

    if spec.endswith(".npz"):
        if not os.path.exists(spec):
            raise FileNotFoundError(f"data file {spec!r} does not exist")
        try:
            with np.load(spec, allow_pickle=False) as npz:
                data = {k: npz[k] for k in npz.files}
        except Exception as exc:  # noqa: BLE001 — truncated, not a zip, pickled objects
            raise ValueError(
                f"data file {spec!r} is not a readable .npz ({type(exc).__name__}: {exc}); "
                "write it with np.savez(path, x=..., y=...)"
            ) from None
    else:
        loaded = _load_callable(spec, "data loader")
        if not callable(loaded):
            raise ValueError(f"data loader {spec!r} is not callable")
        value = loaded()
        if isinstance(value, dict):
            data = dict(value)
        elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], tuple):
            (x, y), (x_val, y_val) = value
            data = {"x": x, "y": y, "x_val": x_val, "y_val": y_val}
        elif isinstance(value, tuple) and len(value) == 2:
            data = {"x": value[0], "y": value[1]}
        else:
            raise ValueError(
                f"data loader {spec!r} returned {type(value).__name__}; return a dict with x "
                "and y, (x, y) or ((x, y), (x_val, y_val))"
            )
    missing = {"x", "y"} - set(data)
    if missing:
        raise ValueError(f"data {spec!r} has no {sorted(missing)}; it holds {sorted(data)}")
    return data


def _run(args: argparse.Namespace) -> int:
    import os

    import bandit_tune
    from bandit_tune.policies.registry import policy_by_name

    build = _load_callable(args.model, "model")
    if not callable(build):
        raise ValueError(f"model {args.model!r} is not callable")
    data = load_data(args.data)
    policy = policy_by_name(args.policy, args.max_epochs, args.eta)
    tuner = bandit_tune.BanditTuner(
        build,
        policy=policy,
        objective=args.objective,
        max_epochs=args.max_epochs,
        max_trials=args.max_trials,
        seed=args.seed,
        directory=args.directory,
        project_name=args.project_name,
        overwrite=args.overwrite,
        address=args.address,
        budget=args.budget,
        max_total_epochs=args.max_total_epochs,
        target_score=args.target_score,
        cpus_per_arm=args.cpus_per_arm,
    )
    fit: dict[str, object] = {}
    if "x_val" in data and "y_val" in data:
        fit["validation_data"] = (data["x_val"], data["y_val"])
    else:
        fit["validation_split"] = args.validation_split
    if args.batch_size:
        fit["batch_size"] = args.batch_size
    ray_before = _ray_running()
    try:
        tuner.search(data["x"], data["y"], **fit)
        tuner.results_summary(num_trials=args.top)
        if "x_test" in data and "y_test" in data:
            print(f"test set: {tuner.evaluate(data['x_test'], data['y_test'])}")
        path = tuner.plot(os.path.join(tuner.project_dir, "curves.png"))
        print(f"learning curves: {path}\nresults: {tuner.project_dir}")
    finally:
        if not ray_before and _ray_running():
            import ray

            ray.shutdown()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from bandit_tune.demo import run_demo

    ray_before = _ray_running()
    try:
        return run_demo(max_epochs=args.max_epochs, directory=args.directory, seed=args.seed)
    finally:
        if not ray_before and _ray_running():
            # stop the Ray the demo started, before interpreter exit tears it down noisily
            import ray

            ray.shutdown()


def _ray_running() -> bool:
    import sys

    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


def _report(args: argparse.Namespace) -> int:
    import os

    from bandit_tune.tuner.results import leaderboard, load_arms, plot_arms

    arms = load_arms(args.directory)
    if arms.get("interrupted"):
        print(f"an interrupted search (no arms.json yet): read from its {arms['interrupted']}")
    board = leaderboard(arms)
    print(
        f"{len(board)} arms, {int(board['epochs'].sum()) if len(board) else 0} epochs "
        f"in {args.directory}"
    )
    print(board.head(args.top).to_string(index=False))
    path = plot_arms(
        arms, args.plot or os.path.join(args.directory, "curves.png"), arms.get("rungs")
    )
    print(f"learning curves: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``bandit-tune``."""
    parser = argparse.ArgumentParser(
        prog="bandit-tune",
        description="Tune Keras models with bandit policies (Hyperband, ASHA, ...) on Ray Tune.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  bandit-tune demo\n  bandit-tune plan --max-epochs 81 --eta 3\n"
        "  bandit-tune run model.py:build_model --data data.npz --objective val_accuracy\n"
        "  bandit-tune report bandit_tune_results/digits_demo",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo",
        help="Hyperband over a Keras MLP on scikit-learn's bundled digits",
        epilog="example:\n  bandit-tune demo --max-epochs 9",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--max-epochs", type=int, default=27, help="epochs of the top rung (R)")
    demo.add_argument("--directory", default="bandit_tune_results", help="where results go")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    plan = sub.add_parser(
        "plan",
        help="print a Hyperband plan without running it",
        epilog="example:\n  bandit-tune plan --max-epochs 81 --eta 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    plan.add_argument("--max-epochs", type=int, default=81)
    plan.add_argument("--eta", type=float, default=3)
    plan.add_argument("--min-epochs", type=int, default=1)
    plan.add_argument(
        "--budget", default=None, help="epochs (an integer) or a duration such as 10m: plan to fit"
    )
    plan.add_argument(
        "--epoch-seconds", type=float, default=1.0, help="seconds per epoch, for a duration budget"
    )
    plan.add_argument("--workers", type=int, default=1, help="arms trained at once")
    plan.set_defaults(func=_plan)
    _add_run(sub)
    report = sub.add_parser(
        "report",
        help="leaderboard and learning-curve plot of a finished (or interrupted) search",
        epilog="example:\n  bandit-tune report bandit_tune_results/digits_demo",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("directory", help="the search's directory/project_name folder")
    report.add_argument("--top", type=int, default=10, help="rows of the leaderboard")
    report.add_argument("--plot", default=None, help="where to write the PNG")
    report.set_defaults(func=_report)
    return parser


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``bandit-tune run``: the user's own model file on the user's own data."""
    run = sub.add_parser(
        "run",
        help="tune your own model file on your own data",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  bandit-tune run model.py:build_model --data digits.npz --objective val_accuracy \\\n"
        "      --policy hyperband --max-epochs 27 --budget 10m\n"
        "  bandit-tune run mypkg.models:build --data mypkg.data:load --address auto\n\n"
        "The model is a keras-tuner build_model(hp) returning a compiled Keras model.\n"
        "--data: an .npz with x and y (optional x_val/y_val, x_test/y_test), or a\n"
        "loader module:function returning such a dict, (x, y) or ((x, y), (x_val, y_val)).",
    )
    run.add_argument("model", help="path/to/model.py:build_model or module:function")
    run.add_argument("--data", required=True, help=".npz file or module:function loader")
    run.add_argument("--objective", default="val_loss", help="metric to optimise: val_accuracy...")
    run.add_argument(
        "--policy", default="hyperband", help="hyperband, asha, successive_halving, ... (see docs)"
    )
    run.add_argument("--max-epochs", type=int, default=27, help="epochs of the longest arm (R)")
    run.add_argument("--eta", type=float, default=3, help="halving rate")
    run.add_argument("--max-trials", type=int, default=None, help="arms to try")
    run.add_argument("--budget", default=None, help="wall-clock limit: 90s, 10m, 2h")
    run.add_argument("--max-total-epochs", type=int, default=None, help="limit on epochs in all")
    run.add_argument("--target-score", type=float, default=None, help="stop once an arm reaches it")
    run.add_argument("--validation-split", type=float, default=0.2)
    run.add_argument("--batch-size", type=int, default=None)
    run.add_argument("--cpus-per-arm", type=float, default=1)
    run.add_argument("--address", default=None, help="join a Ray cluster: auto, host:port, ray://")
    run.add_argument("--directory", default="bandit_tune_results")
    run.add_argument("--project-name", default="run")
    run.add_argument("--overwrite", action="store_true", help="delete earlier results first")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--top", type=int, default=10, help="rows of the summary")
    run.set_defaults(func=_run)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bandit-tune``."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
    args = build_parser().parse_args(argv)
    if getattr(args, "eta", None) is not None and float(args.eta).is_integer():
        args.eta = int(args.eta)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, PermissionError) as exc:
        print(f"bandit-tune: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
