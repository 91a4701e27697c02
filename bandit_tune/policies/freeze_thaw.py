"""Freeze-thaw: one model over (configuration, epochs) decides which arm trains next.

Freeze-thaw Bayesian optimisation (Swersky et al., 2014) keeps every arm frozen
(paused) until a model of all the learning curves says that thawing it is the
best use of the next epochs; DyHPO (Wistuba et al., NeurIPS 2022) does this with
one Gaussian process over (configuration, budget). :class:`FreezeThaw` is that
idea on ASHA's rungs: the model is a Gaussian process over the arm's encoded
configuration and ``log(epochs)``, fitted to every arm's results at its rungs, so
an arm is judged by what its own curve *and* the curves of similar
configurations say about its score at ``max_t``, and a configuration can be
ranked before it trains an epoch (:meth:`FreezeThaw.predict`).

Only numpy (and scipy's triangular solves) are used; the model is refitted when
the results have grown by a share (amortised), and each decision conditions the
cached fit on the deciding arm's own newer results in O(points^2).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bandit_tune.policies.asha import ASHA
from bandit_tune.policies.base import ArmState

_NOISE = 1e-2  # observation noise, in units of the scores' variance
_SCALES = (0.15, 0.3, 0.6, 1.2)  # length scales of the configuration axes tried at each fit
_EPOCH_SCALE = 0.5  # length scale of the log-epochs axis (log(t) / log(max_t))


def _matern52(a: np.ndarray, b: np.ndarray, scales: np.ndarray) -> np.ndarray:
    # the proposers' kernel too; the policy package imports nothing outside itself
    d = np.sqrt((((a[:, None, :] - b[None, :, :]) / scales) ** 2).sum(-1))
    r = math.sqrt(5.0) * d
    return (1.0 + r + r * r / 3.0) * np.exp(-r)


def _expected_improvement(mean: float, sd: float, incumbent: float) -> float:
    gap = mean - incumbent
    if sd <= 0.0 or not math.isfinite(sd):
        return max(gap, 0.0)
    u = gap / sd
    return gap * 0.5 * (1.0 + math.erf(u / math.sqrt(2.0))) + sd * math.exp(-0.5 * u * u) / (
        math.sqrt(2.0 * math.pi)
    )


def _plain(value: Any) -> Any:
    """``value`` as it reads back from the saved state (numpy scalars as numbers)."""
    if isinstance(value, np.generic):
        return value.item()
    return json.loads(json.dumps(value, default=str))


def _level(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class _Encoding:
    """Configurations as numbers in [0, 1], scaled over the configurations seen at a fit.

    Numbers are scaled over their range (log scale when positive and spanning more
    than a factor of 20); anything else becomes one 0/1 column per value seen. Keys
    starting with ``_`` are not hyperparameters (the replay's ``_arm``) and are
    left out.
    """

    def __init__(self, configs: Sequence[dict[str, Any]]) -> None:
        keys = sorted({k for c in configs for k in c if not str(k).startswith("_")})
        self.columns: list[tuple[str, tuple[Any, ...]]] = []
        for key in keys:
            values = [c.get(key) for c in configs if key in c]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                x = np.array(values, dtype=float)
                if not np.isfinite(x).all():
                    continue
                log = bool(x.min() > 0 and x.max() / x.min() > 20)
                low, high = (np.log(x.min()), np.log(x.max())) if log else (x.min(), x.max())
                if high > low:
                    self.columns.append((key, ("num", float(low), float(high), log)))
            else:
                levels = sorted({_level(v) for v in values})
                if len(levels) > 1:
                    self.columns.append((key, ("cat", levels)))

    def __call__(self, config: dict[str, Any]) -> list[float]:
        row: list[float] = []
        for key, spec in self.columns:
            value = config.get(key)
            if spec[0] == "num":
                _, low, high, log = spec
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    row.append(0.5)
                    continue
                v = float(value)
                if log:
                    v = math.log(v) if v > 0 else low
                row.append((v - low) / (high - low))
            else:
                row.extend(1.0 if _level(value) == level else 0.0 for level in spec[1])
        return row


class _Fit:
    """A Gaussian process fitted to a fixed set of points (standardised scores)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, encoding: _Encoding) -> None:
        from scipy.linalg import cho_factor, cho_solve

        self.encoding = encoding
        self.mean, self.std = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.mean) / self.std
        best: tuple[float, Any] | None = None
        width = x.shape[1] - 1
        for scale in _SCALES:
            scales = np.full(x.shape[1], scale * math.sqrt(max(width, 1)))
            scales[-1] = _EPOCH_SCALE
            k = _matern52(x, x, scales) + _NOISE * np.eye(len(z))
            try:
                factor = cho_factor(k, lower=True)
            except np.linalg.LinAlgError:
                continue
            alpha = cho_solve(factor, z)
            evidence = -0.5 * float(z @ alpha) - float(np.log(np.diag(factor[0])).sum())
            if best is None or evidence > best[0]:
                best = (evidence, (scales, factor, alpha))
        if best is None:  # pragma: no cover - the noise term keeps K positive definite
            raise np.linalg.LinAlgError("no length scale gave a positive definite kernel")
        self.scales, self.factor, self.alpha = best[1]
        self.x = x

    def predict(
        self, row: list[float], points: Sequence[tuple[float, float]], at: float
    ) -> tuple[float, float]:
        """Mean and sd of the score at log-epochs ``at`` of configuration ``row``.

        ``points`` are ``(log-epochs, score)`` of this configuration that the fit has
        not seen: the prediction is conditioned on them exactly (a block update).
        """
        from scipy.linalg import solve_triangular

        lower = self.factor[0]
        target = np.array([[*row, at]])
        extra = np.array([[*row, u] for u, _ in points]).reshape(len(points), len(row) + 1)
        both = np.vstack([target, extra])
        cross = _matern52(self.x, both, self.scales)  # [fit, 1 + extra]
        v = solve_triangular(lower, cross, lower=True)
        mean = cross.T @ self.alpha
        cov = _matern52(both, both, self.scales) - v.T @ v
        if len(points):
            z = (np.array([s for _, s in points]) - self.mean) / self.std
            cov_pp = cov[1:, 1:] + _NOISE * np.eye(len(points))
            gain = np.linalg.solve(cov_pp, cov[1:, :1])[:, 0]
            m = float(mean[0] + gain @ (z - mean[1:]))
            var = float(cov[0, 0] - cov[0, 1:] @ gain)
        else:
            m, var = float(mean[0]), float(cov[0, 0])
        return self.mean + self.std * m, self.std * math.sqrt(max(var, 1e-12))


class FreezeThaw(ASHA):
    """Freeze-thaw on ASHA's rungs, with one Gaussian process over (configuration, epochs).

    Paper: Swersky et al., "Freeze-Thaw Bayesian Optimization", 2014,
    https://arxiv.org/abs/1406.3896

    Every arm's score at each rung is a point ``(config, log(t) / log(max_t)) ->
    score`` of one Gaussian process (Matern-5/2, a length scale for the
    configuration axes chosen by marginal likelihood, scores standardised). When an
    arm reaches a rung it is ranked there by the score the model predicts for it at
    ``max_t``, conditioned on its own results and on those of every other arm (so a
    slow starter whose configuration resembles arms that finished well is kept, and
    a fast starter among configurations that flattened is not), or by the best score
    it has shown if that is higher (a search keeps each arm's best epoch, so an arm
    whose curve is predicted to fall keeps its peak). ASHA's quota stays:
    at most the top ``1/eta`` of a rung is promoted, the arm goes on at once when it
    ranks there, and otherwise freezes (pauses). Which frozen arm a free worker
    thaws is the model's choice: among the arms each rung may promote, the one with
    the largest expected improvement of its predicted final score over the best
    score seen, per epoch it needs to reach its next rung (ASHA takes the highest
    rung first). When no rung may promote, a new arm starts.

    The model is refitted when the results at rungs have grown by ``refit_share``
    since the last fit (amortised: a few fits per doubling), on at most
    ``max_points`` points (the highest rungs first, then the earliest); between fits
    each decision conditions the cached fit on the deciding arm's own newer results.
    Until ``n_startup`` results are recorded at rungs, arms are ranked by their
    score (ASHA). Decisions depend only on the results and their order (no random
    numbers); :meth:`state_dict` keeps every recorded point, so a resumed policy
    refits the same model.

    Args:
        max_t: epochs of the top rung (the horizon of the predictions).
        eta: reduction factor (>= 2).
        min_t: the least epochs before the first rung.
        n_startup: results at rungs before the model is used (>= 3).
        max_points: most points one fit uses (>= 10; a fit costs O(max_points^3)).
        refit_share: refit when the points have grown by this share (> 0) since the
            last fit (and by at least 5 points).

    Example::

        >>> from bandit_tune.policies import FreezeThaw
        >>> FreezeThaw(max_t=27).rungs
        [1, 3, 9, 27]
    """

    def __init__(
        self,
        max_t: int,
        eta: float = 3,
        min_t: int = 1,
        n_startup: int = 12,
        max_points: int = 256,
        refit_share: float = 0.2,
    ) -> None:
        if isinstance(n_startup, bool) or not isinstance(n_startup, int) or n_startup < 3:
            raise ValueError(f"FreezeThaw: n_startup must be an integer >= 3, got {n_startup!r}")
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 10:
            raise ValueError(f"FreezeThaw: max_points must be an integer >= 10, got {max_points!r}")
        if (
            isinstance(refit_share, bool)
            or not isinstance(refit_share, (int, float))
            or not 0 < refit_share <= 10
        ):
            raise ValueError(
                f"FreezeThaw: refit_share must be a number in (0, 10], got {refit_share!r}"
            )
        self.n_startup, self.max_points, self.refit_share = n_startup, max_points, refit_share
        super().__init__(max_t, eta, min_t, mode="promotion")

    def _reset(self) -> None:
        super()._reset()
        self._configs: dict[str, dict[str, Any]] = {}
        #: every finite result at a rung, in arrival order: ``[arm, step, score]``
        self._points: list[list[Any]] = []
        self._per_arm: dict[str, list[int]] = {}  # arm -> indices into _points
        self._fitted = 0  # the fit uses a selection of _points[:_fitted]
        self._fit: _Fit | None = None
        self._in_fit: set[int] = set()
        self._predicted: dict[str, tuple[float, float]] = {}  # arm -> (mean, sd) at max_t
        self._incumbent = -math.inf

    # -- the protocol ----------------------------------------------------------------
    def on_arm_added(self, arm_id: str, config: dict[str, Any]) -> None:
        """Start the arm at the bottom rung; keep its configuration for the model."""
        super().on_arm_added(arm_id, config)
        self._configs[arm_id] = {k: _plain(v) for k, v in config.items()}

    def on_result(self, arm_id: str, step: int, score: float) -> Any:
        """Record the result; at a rung, rank the arm by its predicted score at ``max_t``."""
        record = self._arms.get(arm_id)
        if record is not None and math.isfinite(score) and record.state is not ArmState.STOPPED:
            self._incumbent = max(self._incumbent, float(score))
            if step >= self.rungs[record.level]:
                self._per_arm.setdefault(arm_id, []).append(len(self._points))
                self._points.append([arm_id, int(step), float(score)])
        return super().on_result(arm_id, step, score)

    def _arrive(self, level: int, arm_id: str, score: Any) -> Any:
        self._refit_if_due()
        mean, sd = self.predict_arm(arm_id)
        # the search keeps an arm's best epoch: an arm is worth the better of the score
        # it has shown and the score it is predicted to reach
        best = max(self._points[i][2] for i in self._per_arm[arm_id])
        self._predicted[arm_id] = (max(mean, best), sd)
        return super()._arrive(level, arm_id, max(mean, best))

    def choose_arm_to_resume(self, paused: Sequence[str]) -> str | None:
        """Thaw the promotable arm with the largest expected improvement per epoch."""
        if self._forced:
            return self._forced.pop()
        best: tuple[float, int] | None = None
        for level in self._promotion_levels():
            waiting = self._best_waiting(level)
            quota = int(len(self._recorded[level]) // self.eta)
            if waiting is None or self._recorded[level].bisect_left(waiting[0]) >= quota:
                continue
            mean, sd = self._predicted.get(waiting[1], (-waiting[0][0], 0.0))
            gain = _expected_improvement(mean, sd, self._incumbent)
            value = gain / (self.rungs[level + 1] - self.rungs[level])
            if best is None or value > best[0]:  # ties: the higher rung (visited first)
                best = (value, level)
        if best is None:
            return None
        return self._promotable(best[1], int(len(self._recorded[best[1]]) // self.eta))

    # -- the model -------------------------------------------------------------------
    def warm_start(self, configs: Sequence[dict[str, Any]], curves: Any) -> None:
        """Give the model learning curves from an earlier search before this one starts.

        ``curves`` is ``[arms, epochs]`` (higher is better; NaN where an arm had
        stopped), ``configs`` one configuration per row. Each curve's scores at this
        policy's rungs become points of the model (not arms of this search), so the
        first arms are ranked by what similar configurations did before. Call it
        before the first result.
        """
        if self._arms or self._points:
            raise ValueError("FreezeThaw.warm_start must be called before the search starts")
        scores = np.asarray(curves, dtype=float)
        if scores.ndim != 2 or len(scores) != len(configs):
            raise ValueError(
                f"FreezeThaw.warm_start: curves must be [arms, epochs] with one row per "
                f"configuration; got shape {scores.shape} for {len(configs)} configurations"
            )
        for row, config in enumerate(configs):
            key = f"warm/{row}"
            self._configs[key] = {k: _plain(v) for k, v in config.items()}
            for step in self.rungs:
                if step <= scores.shape[1] and math.isfinite(scores[row, step - 1]):
                    self._per_arm.setdefault(key, []).append(len(self._points))
                    self._points.append([key, step, float(scores[row, step - 1])])
        self._refit_if_due()

    def predict(
        self, config: dict[str, Any], results: Sequence[tuple[int, float]] = ()
    ) -> tuple[float, float]:
        """``(mean, sd)`` of the score a configuration is predicted to reach at ``max_t``.

        ``results`` are ``(epochs, score)`` it already has (none for a configuration
        that has not trained: the prediction then rests on similar configurations).
        Before the model has ``n_startup`` points: the last score (or ``-inf``) and an
        infinite sd.
        """
        finite = [(int(t), float(s)) for t, s in results if math.isfinite(s)]
        if self._fit is None:
            return (finite[-1][1] if finite else -math.inf), math.inf
        row = self._fit.encoding({k: _plain(v) for k, v in config.items()})
        points = [(self._u(t), s) for t, s in finite]
        return self._fit.predict(row, points, 1.0)

    def predict_arm(self, arm_id: str) -> tuple[float, float]:
        """``(mean, sd)`` of the score ``arm_id`` is predicted to reach at ``max_t``."""
        indices = self._per_arm.get(arm_id, [])
        if self._fit is None:
            last = self._points[indices[-1]][2] if indices else -math.inf
            return last, math.inf
        row = self._fit.encoding(self._configs.get(arm_id, {}))
        points = [
            (self._u(self._points[i][1]), self._points[i][2])
            for i in indices
            if i not in self._in_fit
        ]
        return self._fit.predict(row, points, 1.0)

    def _u(self, step: int) -> float:
        return math.log(max(step, 1)) / math.log(max(self.max_t, 2))

    def _refit_if_due(self) -> None:
        n = len(self._points)
        if n < self.n_startup:
            return
        if self._fitted and n - self._fitted < max(5, self.refit_share * self._fitted):
            return
        self._refit(n)

    def _refit(self, n: int) -> None:
        """Fit the model to a selection of the first ``n`` points (deterministic)."""
        # the highest steps first, then the earliest results
        order = sorted(range(n), key=lambda i: (-self._points[i][1], i))[: self.max_points]
        chosen = sorted(order)
        encoding = _Encoding([self._configs.get(a, {}) for a in self._configs_of(n)])
        x = np.array(
            [
                [*encoding(self._configs.get(self._points[i][0], {})), self._u(self._points[i][1])]
                for i in chosen
            ]
        )
        y = np.array([self._points[i][2] for i in chosen])
        self._fitted, self._in_fit = n, set(chosen)
        self._fit = _Fit(x, y, encoding) if float(np.ptp(y)) > 0 else None

    def _configs_of(self, n: int) -> list[str]:
        """The arms with a result among the first ``n`` points, first seen first."""
        return list(dict.fromkeys(self._points[i][0] for i in range(n)))

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """ASHA's state with the configurations, every point and the fit's extent."""
        state = super().state_dict()
        state["params"] = [*state["params"], self.n_startup, self.max_points, self.refit_share]
        state.update(
            configs=self._configs,
            points=self._points,
            fitted=self._fitted,
            predicted={
                a: [m, s if math.isfinite(s) else None] for a, (m, s) in self._predicted.items()
            },
            incumbent=self._incumbent if math.isfinite(self._incumbent) else None,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output of a FreezeThaw with the same parameters."""
        params = list(state.get("params", []))
        mine = [self.n_startup, self.max_points, self.refit_share]
        if params[-3:] != mine:
            raise ValueError(
                f"FreezeThaw: saved (n_startup, max_points, refit_share)={params[-3:]} "
                f"differ from {mine}"
            )
        super().load_state_dict({**state, "params": params[:-3]})
        self._configs = {a: dict(c) for a, c in state["configs"].items()}
        self._points = [[a, int(t), float(s)] for a, t, s in state["points"]]
        for i, (arm_id, _, _) in enumerate(self._points):
            self._per_arm.setdefault(arm_id, []).append(i)
        if state["fitted"]:
            self._refit(int(state["fitted"]))
        self._predicted = {
            a: (float(m), math.inf if s is None else float(s))
            for a, (m, s) in state["predicted"].items()
        }
        incumbent = state["incumbent"]
        self._incumbent = -math.inf if incumbent is None else float(incumbent)
