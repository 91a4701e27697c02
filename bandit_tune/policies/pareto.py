"""Multi-objective halving: promote by Pareto rank when "best" is a trade-off.

Scores are tuples, one value per objective, each oriented so that higher is
better (the runner negates the objectives to minimise). At a rung the arms are
ordered as NSGA-II orders a population (Deb et al. 2002), as MO-ASHA does
(Schmucker et al., 2021): by non-dominated front first, then, within a front,
by crowding distance (the points at the ends of the front and those in its
sparse parts first, so the kept arms stay spread along the trade-off), then by
arrival. ``scalarization="epsnet"`` orders each front as MO-ASHA's epsilon-net
does: the best arm of the first objective first, then always the arm farthest (in
the objectives scaled to [0, 1] over the rung, Chebyshev distance) from those
already taken, so the kept arms cover the trade-off evenly.
``scalarization="random_weights"`` instead ranks by a ParEGO-style
augmented Tchebycheff scalarization (Knowles 2006) with random weights drawn per
bracket (per rung for ASHA), for comparison. An arm with a NaN or infinite
objective diverged: it stops, as in the single-objective policies.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from bandit_tune.policies.asha import ASHA
from bandit_tune.policies.base import ArmState, Decision, check_state
from bandit_tune.policies.hyperband import Hyperband
from bandit_tune.policies.successive_halving import SuccessiveHalving

_RUNNING, _PAUSED, _DONE = ArmState.RUNNING, ArmState.PAUSED, ArmState.STOPPED
SCALARIZATIONS = ("pareto", "epsnet", "random_weights")


def _array(points: Sequence[Sequence[float]]) -> np.ndarray:
    values = np.asarray(points, dtype=float)
    if values.ndim != 2:
        raise ValueError(
            f"points must be a sequence of equal-length tuples, got shape {values.shape}"
        )
    return values


def non_dominated_fronts(points: Sequence[Sequence[float]]) -> list[list[int]]:
    """Indices of ``points`` (higher is better in every objective) by Pareto front, best first.

    ``a`` dominates ``b`` when it is at least as good in every objective and
    better in one; equal points dominate neither and share a front. Points with a
    NaN share the last front. O(n^2 k) time and O(n^2) memory (numpy).
    """
    values = _array(points) if len(points) else np.zeros((0, 1))
    n = len(values)
    bad = np.isnan(values).any(axis=1)
    good = np.flatnonzero(~bad)
    v = values[good]
    at_least = (v[:, None, :] >= v[None, :, :]).all(axis=2)
    better = (v[:, None, :] > v[None, :, :]).any(axis=2)
    dominates = at_least & better  # [i, j]: i dominates j
    dominated_by = dominates.sum(axis=0)
    fronts: list[list[int]] = []
    remaining = np.ones(len(good), dtype=bool)
    while remaining.any():
        front = np.flatnonzero(remaining & (dominated_by == 0))
        fronts.append([int(good[i]) for i in front])
        remaining[front] = False
        dominated_by = dominated_by - dominates[front].sum(axis=0)
    if bad.any():
        fronts.append([int(i) for i in np.flatnonzero(bad)])
    assert sum(len(f) for f in fronts) == n
    return fronts


def pareto_front(points: Sequence[Sequence[float]]) -> np.ndarray:
    """The non-dominated points among ``points`` (higher is better; NaN rows dropped).

    A sweep in decreasing order of the objectives: O(n f k) for ``f`` points on
    the front, so it suits thousands of recorded epochs.
    """
    values = _array(points) if len(points) else np.zeros((0, 1))
    values = values[~np.isnan(values).any(axis=1)]
    if len(values) == 0:
        return values
    order = np.lexsort(tuple(-values[:, k] for k in range(values.shape[1] - 1, -1, -1)))
    front: list[np.ndarray] = []
    for row in values[order]:
        if front:
            kept = np.asarray(front)
            if ((kept >= row).all(axis=1) & (kept > row).any(axis=1)).any():
                continue
            if (kept == row).all(axis=1).any():
                continue
        front.append(row)
    return np.asarray(front)


def crowding_distances(points: Sequence[Sequence[float]], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II's crowding distance of each index in ``front`` (``inf`` at the front's ends)."""
    values = _array(points)
    out = {int(i): 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in out}
    sub = values[list(front)]
    for k in range(sub.shape[1]):
        order = np.argsort(sub[:, k], kind="stable")
        low, high = sub[order[0], k], sub[order[-1], k]
        out[int(front[order[0]])] = math.inf
        out[int(front[order[-1]])] = math.inf
        span = high - low
        if span <= 0:
            continue
        for j in range(1, len(order) - 1):
            i = int(front[order[j]])
            out[i] += (sub[order[j + 1], k] - sub[order[j - 1], k]) / span
    return out


def pareto_order(points: Sequence[Sequence[float]], seqs: Sequence[int] | None = None) -> list[int]:
    """Indices of ``points`` best first: front, then larger crowding distance, then ``seqs``."""
    seqs = list(range(len(points))) if seqs is None else list(seqs)
    order: list[int] = []
    for front in non_dominated_fronts(points):
        if any(math.isnan(x) for x in points[front[0]]):
            order.extend(sorted(front, key=lambda i: seqs[i]))
            continue
        crowd = crowding_distances(points, front)
        order.extend(sorted(front, key=lambda i: (-crowd[i], seqs[i])))
    return order


def epsnet_order(points: Sequence[Sequence[float]], seqs: Sequence[int] | None = None) -> list[int]:
    """Indices best first: by front, each front in epsilon-net order (see the module)."""
    values = _array(points)
    seqs = list(range(len(values))) if seqs is None else list(seqs)
    if len(values) == 0:
        return []
    low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    scaled = (values - low) / np.where(high > low, high - low, 1.0)
    order: list[int] = []
    for front in non_dominated_fronts(points):
        front = sorted(front, key=lambda i: seqs[i])
        if np.isnan(values[front[0]]).any():
            order.extend(front)
            continue
        first = max(front, key=lambda i: (scaled[i, 0], -seqs[i]))
        taken = [first]
        rest = [i for i in front if i != first]
        nearest = np.abs(scaled[rest] - scaled[first]).max(axis=1) if rest else np.zeros(0)
        while rest:
            k = int(np.argmax(nearest))  # ties: the earliest arrival (rest is in seq order)
            chosen = rest.pop(k)
            nearest = np.delete(nearest, k)
            taken.append(chosen)
            if rest:
                distance = np.abs(scaled[rest] - scaled[chosen]).max(axis=1)
                nearest = np.minimum(nearest, distance)
        order.extend(taken)
    return order


def tchebycheff_order(
    points: Sequence[Sequence[float]], weights: Sequence[float], seqs: Sequence[int] | None = None
) -> list[int]:
    """Indices best first by ParEGO's augmented Tchebycheff scalarization with ``weights``.

    Each objective is scaled to [0, 1] over ``points`` (1 best); an arm's cost is
    ``max_k w_k (1 - f_k) + 0.05 sum_k w_k (1 - f_k)``, lowest first; NaN last.
    """
    values = _array(points)
    seqs = list(range(len(values))) if seqs is None else list(seqs)
    low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    span = np.where(high > low, high - low, 1.0)
    gap = (high - values) / span * np.asarray(weights, dtype=float)
    cost = gap.max(axis=1) + 0.05 * gap.sum(axis=1)
    cost = np.where(np.isnan(cost), np.inf, cost)
    return sorted(range(len(values)), key=lambda i: (cost[i], seqs[i]))


def hypervolume(points: Sequence[Sequence[float]], reference: Sequence[float]) -> float:
    """The volume dominated by ``points`` (higher is better) and bounded below by ``reference``.

    Exact (recursive slicing over the first objective); points that do not
    dominate the reference, or hold a NaN, add nothing. Fine for the fronts of
    a search (tens of points, two or three objectives).
    """
    ref = np.asarray(reference, dtype=float)
    values = _array(points) if len(points) else np.zeros((0, len(ref)))
    if values.shape[1] != len(ref):
        raise ValueError(
            f"the reference point has {len(ref)} objectives, the points {values.shape[1]}"
        )
    values = values[~np.isnan(values).any(axis=1)]
    values = values[(values > ref).all(axis=1)]
    return _hv(values, ref)


def _hv(values: np.ndarray, ref: np.ndarray) -> float:
    if len(values) == 0:
        return 0.0
    if values.shape[1] == 1:
        return float(values[:, 0].max() - ref[0])
    order = np.argsort(-values[:, 0], kind="stable")
    values = values[order]
    total = 0.0
    for i in range(len(values)):
        upper = values[i, 0]
        lower = values[i + 1, 0] if i + 1 < len(values) else ref[0]
        if upper > lower:
            total += (upper - lower) * _hv(values[: i + 1, 1:], ref[1:])
    return total


def check_scalarization(scalarization: str) -> None:
    """Raise ``ValueError`` unless ``scalarization`` is one of :data:`SCALARIZATIONS`."""
    if scalarization not in SCALARIZATIONS:
        raise ValueError(f"scalarization must be one of {SCALARIZATIONS}, got {scalarization!r}")


def rung_order(
    points: Sequence[Sequence[float]],
    seqs: Sequence[int],
    scalarization: str,
    seed: int,
    index: int,
) -> list[int]:
    """Indices of one rung's ``points`` best first, by ``scalarization``.

    ``index`` (the bracket, or ASHA's rung) draws the random weights of
    ``"random_weights"``.
    """
    if not points:
        return []
    if scalarization == "random_weights":
        return tchebycheff_order(points, _weights(seed, index, len(points[0])), seqs)
    if scalarization == "epsnet":
        return epsnet_order(points, seqs)
    return pareto_order(points, seqs)


def _finite_point(score: Any) -> bool:
    try:
        values = tuple(score)
    except TypeError:
        raise TypeError(
            f"a multi-objective policy needs a tuple of scores (one per objective), got {score!r}"
        ) from None
    return bool(values) and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


class _ParetoRanking:
    """Rank a synchronous rung by Pareto order (or random-weight Tchebycheff per bracket)."""

    multi_objective = True
    scalarization: str
    seed: int

    def _check_scalarization(self, scalarization: str, seed: int) -> None:
        check_scalarization(scalarization)
        self.scalarization, self.seed = scalarization, int(seed)

    @staticmethod
    def _finite(score: Any) -> bool:
        return _finite_point(score)

    def _rank(
        self, arrived: list[tuple[str, tuple[Any, int]]], bracket: int
    ) -> list[tuple[str, tuple[Any, int]]]:
        points = [tuple(score) for _, (score, _) in arrived]
        seqs = [seq for _, (_, seq) in arrived]
        order = rung_order(points, seqs, self.scalarization, self.seed, bracket)
        return [arrived[i] for i in order]


def _weights(seed: int, index: int, k: int) -> list[float]:
    """Random weights on the simplex for bracket (or rung) ``index`` (seeded)."""
    rng = random.Random(seed * 1_000_003 + index)
    draws = [rng.expovariate(1.0) for _ in range(k)]
    total = sum(draws)
    return [d / total for d in draws]


class MOSuccessiveHalving(_ParetoRanking, SuccessiveHalving):
    """Successive halving that keeps the top ``1/eta`` of each rung by Pareto order.

    Paper: Schmucker et al., "Multi-objective Asynchronous Successive Halving",
    2021, https://arxiv.org/abs/2106.12639

    As :class:`~bandit_tune.policies.SuccessiveHalving`, with scores that are
    tuples (one per objective, higher is better): see the module docstring.

    Args:
        max_t: epochs of the top rung.
        eta: reduction factor (>= 2).
        min_t: the least epochs before the first decision.
        n_arms: arms in a bracket (default ``eta**s_max``).
        scalarization: ``"pareto"`` (non-dominated sorting + crowding distance),
            ``"epsnet"`` (fronts in epsilon-net order) or ``"random_weights"``
            (ParEGO-style, weights per bracket).
        seed: seed of the random weights.
    """

    def __init__(
        self,
        max_t: int,
        eta: float = 3,
        min_t: int = 1,
        n_arms: int | None = None,
        scalarization: str = "pareto",
        seed: int = 0,
    ) -> None:
        self._check_scalarization(scalarization, seed)
        super().__init__(max_t, eta, min_t, n_arms)


class MOHyperband(_ParetoRanking, Hyperband):
    """Hyperband whose rungs keep the top ``1/eta`` by Pareto order (MO-Hyperband).

    Paper: Schmucker et al., "Multi-objective Asynchronous Successive Halving",
    2021, https://arxiv.org/abs/2106.12639

    As :class:`~bandit_tune.policies.Hyperband`, with scores that are tuples (one
    per objective, higher is better): see the module docstring.

    Args:
        max_t: epochs of the top rung.
        eta: reduction factor (>= 2).
        min_t: the least epochs before the first decision.
        scalarization: ``"pareto"``, ``"epsnet"`` or ``"random_weights"`` (weights
            per bracket).
        seed: seed of the random weights.
        max_total_epochs: as Hyperband's: whole brackets that fit this many epochs.
    """

    def __init__(
        self,
        max_t: int,
        eta: float = 3,
        min_t: int = 1,
        scalarization: str = "pareto",
        seed: int = 0,
        max_total_epochs: int | None = None,
    ) -> None:
        self._check_scalarization(scalarization, seed)
        super().__init__(max_t, eta, min_t, max_total_epochs=max_total_epochs)

    def planned_for(self, max_total_epochs: int) -> MOHyperband:
        """A fresh MOHyperband with these settings whose brackets fit ``max_total_epochs``."""
        return MOHyperband(
            self.max_t,
            self.eta,
            self.min_t,
            scalarization=self.scalarization,
            seed=self.seed,
            max_total_epochs=max_total_epochs,
        )


class MOASHA(ASHA):
    """Asynchronous successive halving promoting by Pareto order (MO-ASHA, Schmucker et al. 2021).

    When an arm reaches a rung it is promoted at once if it is among the first
    ``floor(n / eta)`` of the ``n`` arms recorded there in Pareto order and none
    of the promoted; otherwise it pauses and is promoted later when it enters
    that set (a free worker promotes the best such waiting arm, highest rung
    first). Scores are tuples (one per objective, higher is better). The order is
    recomputed over the rung at each decision: O(n^2 k) with numpy, for the
    hundreds of arms a multi-objective search holds.

    Args:
        max_t: epochs of the top rung.
        eta: reduction factor (>= 2).
        min_t: the least epochs before the first decision.
        scalarization: ``"pareto"``, ``"epsnet"`` or ``"random_weights"`` (weights
            per rung).
        seed: seed of the random weights.
    """

    multi_objective = True

    def __init__(
        self,
        max_t: int,
        eta: float = 3,
        min_t: int = 1,
        scalarization: str = "pareto",
        seed: int = 0,
    ) -> None:
        check_scalarization(scalarization)
        self.scalarization, self.seed = scalarization, int(seed)
        super().__init__(max_t, eta, min_t, mode="promotion")

    def _reset(self) -> None:
        super()._reset()
        levels = len(self.rungs) - 1
        self._points: list[dict[str, tuple[tuple[float, ...], int]]] = [{} for _ in range(levels)]
        self._paused_at: list[dict[str, None]] = [{} for _ in range(levels)]

    def _order(self, level: int) -> list[str]:
        arms = list(self._points[level])
        points = [self._points[level][a][0] for a in arms]
        seqs = [self._points[level][a][1] for a in arms]
        order = rung_order(points, seqs, self.scalarization, self.seed, level)
        return [arms[i] for i in order]

    @staticmethod
    def _finite(score: Any) -> bool:
        return _finite_point(score)

    def _arrive(self, level: int, arm_id: str, score: Any) -> Decision:
        """Promote at once when among the first ``floor(n/eta)`` in Pareto order, else pause."""
        record = self._arms[arm_id]
        self._points[level][arm_id] = (tuple(float(v) for v in score), self._seq)
        self._seq += 1
        quota = int(len(self._points[level]) // self.eta)
        if arm_id in self._order(level)[:quota]:
            self._lift(level, arm_id)
            return Decision.CONTINUE
        record.state = _PAUSED
        self._paused_at[level][arm_id] = None
        return Decision.PAUSE

    def choose_arm_to_resume(self, paused: Sequence[str]) -> str | None:
        """Promote the best waiting arm now in its rung's top ``1/eta``, highest rung first."""
        if self._forced:
            return self._forced.pop()
        for level in self._promotion_levels():
            waiting = self._waiting_at(level)
            if not waiting:
                continue
            quota = int(len(self._points[level]) // self.eta)
            for arm_id in self._order(level)[:quota]:
                if arm_id in waiting:
                    self._lift(level, arm_id)
                    return arm_id
        return None

    def on_no_new_arms(self) -> None:
        """Promote the best waiting arm of the highest rung that promoted nobody; else stop all."""
        for level in self._promotion_levels():
            waiting = self._waiting_at(level)
            if self._promoted[level] == 0 and waiting:
                arm_id = next(a for a in self._order(level) if a in waiting)
                self._lift(level, arm_id)
                self._forced.append(arm_id)
                return
        for level in range(len(self._paused_at)):
            for arm_id in self._waiting_at(level):
                self._arms[arm_id].state = _DONE
                self._to_stop.append(arm_id)
            self._paused_at[level].clear()

    def state_dict(self) -> dict[str, Any]:
        """ASHA's layout with each rung's points, promoted and waiting arms."""
        state = super().state_dict()
        state["params"] = [*state["params"], self.scalarization, self.seed]
        state["points"] = [[[a, list(p), q] for a, (p, q) in rung.items()] for rung in self._points]
        state["paused_at"] = [list(rung) for rung in self._paused_at]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output of an MOASHA with the same parameters."""
        check_state(self, state)
        params = list(state["params"])
        if params[-2:] != [self.scalarization, self.seed]:
            raise ValueError(
                f"MOASHA: saved (scalarization, seed)={params[-2:]} differ from "
                f"{[self.scalarization, self.seed]}"
            )
        super().load_state_dict({**state, "params": params[:-2]})
        self._points = [
            {a: (tuple(float(v) for v in p), int(q)) for a, p, q in rung}
            for rung in state["points"]
        ]
        self._paused_at = [dict.fromkeys(rung) for rung in state["paused_at"]]

    def _waiting_at(self, level: int) -> dict[str, None]:
        waiting = self._paused_at[level]
        for arm_id in [a for a in waiting if self._arms[a].state is not _PAUSED]:
            del waiting[arm_id]  # finished or removed while paused
        return waiting

    def _lift(self, level: int, arm_id: str) -> None:
        self._promoted[level] += 1
        self._paused_at[level].pop(arm_id, None)
        record = self._arms[arm_id]
        record.level, record.state = level + 1, _RUNNING
