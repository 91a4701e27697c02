"""Curve-model policies and proposers against ASHA on the shipped curve sets (issue 16's table).

For every set, every candidate is replayed with the same arm orders (``--seeds``),
``--workers`` workers and budgets 2R, 5R, 10R and 20R; the table gives each
candidate's mean regret and its ratio to ASHA's (same arm orders), then the
ratio averaged over the sets::

    .venv/bin/python benchmarks/curve_policies.py --seeds 5 --workers 2 \\
        --out benchmarks/results/curve-policies.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from bandit_tune import compare, load_curves
from bandit_tune.policies import (
    ASHA,
    PASHA,
    CurveEnsemble,
    FreezeThaw,
    Hyperband,
    TopKAfterWarmup,
)
from bandit_tune.replay.curves import SHIPPED
from bandit_tune.replay.proposers import GPProposer, TPEProposer

BUDGETS = (2, 5, 10, 20)


def candidates(max_t: int, arms: int) -> dict[str, Any]:
    """The compared entries: a policy, or a (policy, proposer) pair."""
    return {
        "asha": lambda: ASHA(max_t),
        "hyperband": lambda: Hyperband(max_t),
        "pasha": lambda: PASHA(max_t),
        "top_k_after_1": lambda: TopKAfterWarmup(max_t, arms=min(arms, 88), keep=7),
        "curve_ensemble": lambda: CurveEnsemble(max_t),
        "freeze_thaw": lambda: FreezeThaw(max_t),
        "asha+tpe": (lambda: ASHA(max_t), TPEProposer),
        "hyperband+tpe": (lambda: Hyperband(max_t), TPEProposer),
        "asha+gp": (lambda: ASHA(max_t), GPProposer),
        "hyperband+gp": (lambda: Hyperband(max_t), GPProposer),
        "curve_ensemble+gp": (lambda: CurveEnsemble(max_t), GPProposer),
        "freeze_thaw+gp": (lambda: FreezeThaw(max_t), GPProposer),
    }


def main() -> None:
    """Run the comparison and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=list(SHIPPED))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names to run")
    parser.add_argument("--out", default=None, help="append one JSON line per set and entry")
    args = parser.parse_args()
    labels = [f"regret@{b}R" for b in BUDGETS]
    ratios: dict[str, list[np.ndarray]] = {}
    for name in args.sets:
        curves = load_curves(name)
        entries = candidates(curves.max_t, len(curves))
        if args.only:
            entries = {k: v for k, v in entries.items() if k in args.only or k == "asha"}
        started = time.monotonic()
        table = compare(
            entries, curves, seeds=range(args.seeds), n_workers=args.workers, budgets=BUDGETS
        ).table
        regret = table[labels]
        ratio = regret / regret.loc["asha"].replace(0, np.nan)
        print(
            f"\n## {name} ({curves.metric}, {len(curves)} arms x {curves.max_t} epochs; "
            f"{time.monotonic() - started:.0f} s)"
        )
        print(regret.to_string(float_format=lambda v: f"{v:.4f}"))
        print("ratio to ASHA:")
        print(ratio.to_string(float_format=lambda v: f"{v:.2f}"))
        for entry in regret.index:
            ratios.setdefault(entry, []).append(ratio.loc[entry].to_numpy())
            if args.out:
                with open(args.out, "a") as f:
                    f.write(
                        json.dumps(
                            {
                                "set": name,
                                "entry": entry,
                                "seeds": args.seeds,
                                "workers": args.workers,
                                **{k: float(regret.loc[entry, k]) for k in labels},
                            }
                        )
                        + "\n"
                    )
    print(f"\n## mean ratio to ASHA over {len(args.sets)} sets (max over sets in brackets)")
    for entry, rows in ratios.items():
        stacked = np.vstack(rows)
        cells = [
            f"{np.nanmean(stacked[:, j]):.2f} ({np.nanmax(stacked[:, j]):.2f})"
            for j in range(len(BUDGETS))
        ]
        print(f"{entry:>20}  " + "  ".join(f"{b}R {c}" for b, c in zip(BUDGETS, cells)))


if __name__ == "__main__":
    main()
