"""The ``bandit-tune`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bandit_tune.policies import Hyperband, bracket_epochs


def format_plan(policy: Hyperband) -> str:
    """Render a Hyperband plan as a small table."""
    lines = [f"Hyperband(max_t={policy.max_t}, eta={policy.eta}, min_t={policy.min_t})"]
    for s, bracket in enumerate(policy.plan()):
        rungs = "  ".join(f"{n:>3} arms x {t:>3} ep" for n, t in bracket)
        lines.append(f"  bracket {s}: {rungs}   ({bracket_epochs(bracket)} epochs)")
    lines.append(f"  one pass: {policy.n_arms} arms, {policy.budget} epochs")
    return "\n".join(lines)


def _plan(args: argparse.Namespace) -> int:
    print(format_plan(Hyperband(args.max_epochs, args.eta, args.min_epochs)))
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

    from bandit_tune.results import leaderboard, load_arms, plot_arms

    arms = load_arms(args.directory)
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
    plan.set_defaults(func=_plan)
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bandit-tune``."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads
    args = build_parser().parse_args(argv)
    if getattr(args, "eta", None) is not None and float(args.eta).is_integer():
        args.eta = int(args.eta)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"bandit-tune: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
