"""Seconds from ``search`` to its return for ``Hyperband(R=27, budget=...)`` on digits.

    .venv/bin/python benchmarks/budget_check.py --budget 60s

The same workload as ``peers.py`` (Ray's start counts); prints the wall time, the
arms and epochs the search ran and its best validation accuracy.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import peers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="60s")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-epochs", type=int, default=peers.R, help="R (27)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import bandit_tune

    (x, y), (xv, yv), _ = peers._data()

    with tempfile.TemporaryDirectory() as workdir:
        tuner = bandit_tune.Hyperband(
            peers.build_model,
            objective="val_accuracy",
            max_epochs=args.max_epochs,
            factor=peers.ETA,
            seed=args.seed,
            budget=args.budget,
            directory=workdir,
            project_name="budget",
            verbose=0,
        )
        start = time.monotonic()
        tuner.search(x, y, validation_data=(xv, yv), batch_size=peers.BATCH)
        wall = time.monotonic() - start
    print(
        f"budget={args.budget}: search returned after {wall:.1f} s; {len(tuner.results_)} arms, "
        f"{int(tuner.results_['epochs'].sum())} epochs, best val_accuracy "
        f"{tuner.best_score_:.4f}, stop reason: {tuner.stop_reason_}"
    )


if __name__ == "__main__":
    main()
