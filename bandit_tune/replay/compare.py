"""Compare arm policies on the same recorded curves and seeds: regret table and plot."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandit_tune.policies.base import ArmPolicy
from bandit_tune.replay.curves import Curves, as_curves
from bandit_tune.replay.simulate import SimulationResult, simulate


@dataclass
class Comparison:
    """What :func:`compare` measured.

    Attributes:
        table: one row per policy: mean regret at each budget (``regret@2R`` ...),
            its standard deviation over seeds, and the mean rank (1 is best).
        runs: every replay, keyed by ``(policy name, seed)``.
        budgets: the budgets in units of ``R`` (epochs of one full arm).
        max_t: ``R``.
        oracle: the best score any arm reached (regret is measured from it).
    """

    table: Any
    runs: dict[tuple[str, int], SimulationResult] = field(default_factory=dict)
    budgets: tuple[float, ...] = ()
    max_t: int = 1
    oracle: float = 0.0

    def plot(self, path: str = "compare.png") -> str:
        """Save the mean anytime regret per policy (x: epochs / R) as a PNG; return the path."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        horizon = int(max(self.budgets) * self.max_t)
        grid = np.arange(1, horizon + 1)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name in self.table.index:
            curves = [
                _regret_at(run, self.oracle, grid)
                for (policy, _), run in self.runs.items()
                if policy == name
            ]
            mean = np.nanmean(np.vstack(curves), axis=0)
            ax.plot(grid / self.max_t, np.maximum(mean, 1e-6), label=name)
        for budget in self.budgets:
            ax.axvline(budget, color="0.85", lw=0.8, zorder=0)
        ax.set_yscale("log")
        ax.set_xlabel("epochs trained / R")
        ax.set_ylabel("regret (oracle - best so far)")
        ax.set_title(f"anytime regret, mean over {len(self.runs) // len(self.table)} seeds")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def _regret_at(run: SimulationResult, oracle: float, epochs: np.ndarray) -> np.ndarray:
    """Regret after each number of epochs in ``epochs`` (inf before the first result)."""
    if not run.trace:
        return np.full(len(epochs), np.inf)
    used = np.array([t[0] for t in run.trace])
    best = np.array([t[2] for t in run.trace])
    index = np.searchsorted(used, epochs, side="right") - 1
    out = np.where(index >= 0, oracle - best[np.clip(index, 0, None)], np.inf)
    return out


def _instances(name: str, make: Any) -> tuple[ArmPolicy, Any]:
    """A fresh policy (and proposer) for one replay from a :func:`compare` entry."""
    proposer = None
    if isinstance(make, tuple):
        if len(make) != 2:
            raise TypeError(f"{name!r}: a pair must be (policy, proposer), got {len(make)} items")
        make, make_proposer = make
        made = isinstance(make_proposer, type) or not hasattr(make_proposer, "propose")
        proposer = make_proposer() if made else copy.deepcopy(make_proposer)
        if not callable(getattr(proposer, "propose", None)):
            raise TypeError(f"{name!r}: the proposer must be a Proposer or a factory returning one")
    policy = copy.deepcopy(make) if isinstance(make, ArmPolicy) else make()
    if not isinstance(policy, ArmPolicy) and not hasattr(policy, "on_result"):
        raise TypeError(f"{name!r} must be an ArmPolicy or a factory returning one")
    return policy, proposer


def compare(
    policies: Mapping[str, Any] | Sequence[ArmPolicy],
    curves: Any = None,
    seeds: Sequence[int] = (0, 1, 2),
    n_workers: int = 1,
    budgets: Sequence[float] = (2, 5, 10, 20),
) -> Comparison:
    """Replay several policies over the same curves and seeds; tabulate their regret.

    Args:
        policies: ``{name: policy or zero-argument factory}`` or a list of policies
            (named by class). A policy object is deep-copied for every replay. A
            value may also be a pair ``(policy, proposer)``: the
            :class:`~bandit_tune.replay.proposers.Proposer` (or a factory of one) then
            picks which recorded arm starts next (model-based search, e.g.
            ``(Hyperband(27), GPProposer())``: BOHB-style).
        curves: anything :func:`bandit_tune.replay.simulate` takes (default: the shipped
            ``load_curves("digits_mlp")``).
        seeds: each seed shuffles the order in which arms are drawn.
        n_workers: arms trained at the same time.
        budgets: where regret is read, in units of ``R`` (the curves' epochs).

    Returns:
        A :class:`Comparison`; ``.table`` is a pandas DataFrame, ``.plot()`` draws it.

    Example::

        >>> from bandit_tune import compare
        >>> from bandit_tune.policies import ASHA, Hyperband
        >>> result = compare({"hyperband": lambda: Hyperband(27), "asha": lambda: ASHA(27)})
        >>> list(result.table.columns)[:2]
        ['regret@2R', 'regret@5R']
    """
    from bandit_tune.replay.curves import load_curves

    recorded: Curves = load_curves() if curves is None else as_curves(curves)
    named = _named(policies)
    budgets = tuple(float(b) for b in budgets)
    if not budgets or any(not (b > 0 and math.isfinite(b)) for b in budgets):
        raise ValueError(f"budgets must be positive multiples of R, got {budgets!r}")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("compare needs at least one seed")
    max_t = recorded.max_t
    oracle = recorded.best()
    horizon = int(math.ceil(max(budgets) * max_t))
    points = np.array([int(round(b * max_t)) for b in budgets])
    runs: dict[tuple[str, int], SimulationResult] = {}
    regrets: dict[str, np.ndarray] = {}
    for name, make in named.items():
        rows = []
        for seed in seeds:
            policy, proposer = _instances(name, make)
            run = simulate(
                policy, recorded, n_workers=n_workers, budget=horizon, seed=seed, proposer=proposer
            )
            runs[(name, seed)] = run
            rows.append(_regret_at(run, oracle, points))
        regrets[name] = np.vstack(rows)  # [seeds, budgets]
    table = _table(regrets, runs, budgets, seeds)
    return Comparison(table, runs, budgets, max_t, oracle)


def _named(policies: Any) -> dict[str, Any]:
    """Policies by name: a mapping as given, else each under its class name (primed if taken)."""
    if isinstance(policies, Mapping):
        named = dict(policies)
    else:
        named = {}
        for policy in policies:
            name = type(policy).__name__
            while name in named:
                name += "'"
            named[name] = policy
    if not named:
        raise ValueError("compare needs at least one policy")
    return named


def _table(
    regrets: dict[str, np.ndarray],
    runs: dict[tuple[str, int], SimulationResult],
    budgets: tuple[float, ...],
    seeds: list[int],
) -> Any:
    """Mean regret and its spread per budget, the mean rank and the epochs used, per policy."""
    import pandas as pd

    names = list(regrets)
    stacked = np.stack([regrets[n] for n in names])  # [policies, seeds, budgets]
    ranks = np.apply_along_axis(
        lambda v: pd.Series(v).rank(method="average").to_numpy(), 0, stacked
    )
    table = pd.DataFrame(index=pd.Index(names, name="policy"))
    labels = [f"{b:g}R" for b in budgets]
    for j, label in enumerate(labels):
        table[f"regret@{label}"] = stacked[:, :, j].mean(axis=1)
    for j, label in enumerate(labels):
        table[f"std@{label}"] = stacked[:, :, j].std(axis=1)
    table["mean_rank"] = ranks.mean(axis=(1, 2))
    table["epochs"] = [np.mean([runs[(n, s)].epochs_used for s in seeds]) for n in names]
    return table
