"""Population-based training's record: who copied whom, and the schedule each model went through.

Each arm's ``lineage`` (kept by the runner) lists its exploits in order: the step
it left, the donor and the donor's step it continued from, and its mutable values
before and after. A model at the end of the search went through a chain of arms:
its own epochs since its last exploit, the donor's before that, and so on. The
*schedule* of an arm walks that chain back and returns, epoch range by epoch
range, the values the model trained with: what a user retrains with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _values(arm: Mapping[str, Any], mutable: list[str]) -> dict[str, Any]:
    """The arm's mutable values before its first exploit."""
    lineage = arm.get("lineage") or []
    if lineage:
        return dict(lineage[0]["old"])
    return {k: arm["config"].get(k) for k in mutable}


def schedule(arms: Mapping[str, Mapping[str, Any]], arm_id: str) -> list[dict[str, Any]]:
    """The schedule of ``arm_id``'s model: ``[{"from_epoch", "to_epoch", **values}, ...]``.

    Args:
        arms: per arm id, ``{"config", "last_step", "lineage"}`` (the snapshot's arms;
            ``step`` is read as well).
        arm_id: the arm whose final model is followed back.

    Epoch ranges are half-open (``from_epoch`` trained epochs before the range).
    Neighbouring ranges with equal values are merged; an arm that never took an
    exploit has one range.
    """
    mutable = sorted(
        {k for arm in arms.values() for e in arm.get("lineage") or [] for k in e["new"]}
    )
    segments: list[tuple[int, int, dict[str, Any]]] = []
    top = arms[arm_id]
    current, end, before = arm_id, int(top.get("step", top.get("last_step", 0))), math.inf
    for _ in range(10_000):  # a chain is at most as long as the exploits
        arm = arms[current]
        entries = [e for e in arm.get("lineage") or [] if e.get("order", 0) < before]
        if not entries:
            segments.append((0, end, _values(arm, mutable)))
            break
        last = entries[-1]
        start = int(last["donor_step"])
        segments.append((start, end, dict(last["new"])))
        current, end, before = str(last["donor"]), start, last.get("order", 0)
    merged: list[dict[str, Any]] = []
    for start, stop, values in reversed(segments):
        if stop <= start:
            continue
        if merged and {k: merged[-1][k] for k in values} == values:
            merged[-1]["to_epoch"] = stop
            continue
        merged.append({"from_epoch": start, "to_epoch": stop, **values})
    return merged


def lineage_rows(arms: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every exploit as a flat row, in the order they happened (for a DataFrame)."""
    rows = []
    for arm_id, arm in arms.items():
        for entry in arm.get("lineage") or []:
            row = {
                "order": entry.get("order", 0),
                "arm_id": arm_id,
                "left_at": entry["step"],
                "donor": entry["donor"],
                "donor_step": entry["donor_step"],
            }
            row.update({f"old_{k}": v for k, v in entry["old"].items()})
            row.update({f"new_{k}": v for k, v in entry["new"].items()})
            rows.append(row)
    rows.sort(key=lambda r: r["order"])
    return rows
