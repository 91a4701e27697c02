"""Curve-model policies: rank arms by where their learning curves are heading.

:class:`CurveFit` fits a small ensemble of saturating curves to one arm's scores,
incrementally (O(1) per result, whatever the number of arms), in the spirit of
Deep Power Laws (Kadra et al., NeurIPS 2023) without a neural network: each
member is linear in its two parameters, so running sums give its least-squares
fit in closed form. :class:`CurveEnsemble` is ASHA whose rungs rank arms by the
ensemble's predicted score at ``max_t`` instead of the score they reached.
"""

from __future__ import annotations

import math
from typing import Any

from bandit_tune.policies.asha import ASHA
from bandit_tune.policies.base import ArmState, Decision

#: The ensemble's members: ``y(t) = c + b * h(t)`` with ``b >= 0`` and ``h`` one of
#: these saturating (or slowly growing) shapes: power laws ``-t**-a``, exponentials
#: ``-exp(-a t)`` and the log curve ``log t``.
MEMBERS: tuple[tuple[str, float], ...] = (
    ("pow", 0.5),
    ("pow", 1.0),
    ("pow", 2.0),
    ("exp", 0.1),
    ("exp", 0.3),
    ("exp", 1.0),
    ("log", 0.0),
)


def _shape(kind: str, a: float, t: float) -> float:
    if kind == "pow":
        return -(t**-a)
    if kind == "exp":
        return -math.exp(-a * t)
    return math.log(t)


class CurveFit:
    """One arm's learning curve and its ensemble fit, updated in O(1) per result.

    Every member ``y = c + b h(t)`` is fitted by least squares from running sums
    (``b`` clipped at 0: a member never predicts a falling curve; a curve that
    falls is predicted by the best score it reached). Members are weighted by
    their Gaussian likelihood with their own residual variance (``mse ** -(n/2)``,
    so the weights sharpen as the curve grows); the prediction is the weighted mean
    of their values at the horizon and the spread their weighted standard
    deviation. Fewer than ``min_points`` finite scores: the prediction is the
    last score and the spread infinite (nothing to extrapolate from).
    """

    __slots__ = ("n", "sy", "syy", "sh", "shh", "shy", "last", "best", "points")

    def __init__(self) -> None:
        k = len(MEMBERS)
        self.n = 0
        self.sy = self.syy = 0.0
        self.sh, self.shh, self.shy = [0.0] * k, [0.0] * k, [0.0] * k
        self.last = self.best = -math.inf
        #: ``[step, score]`` of every finite result (the state a resume rebuilds from).
        self.points: list[list[float]] = []

    def add(self, step: int, score: float) -> None:
        """Record the arm's ``score`` at ``step`` (non-finite scores are ignored)."""
        if not math.isfinite(score) or step < 1:
            return
        self.points.append([step, score])
        self.n += 1
        self.sy += score
        self.syy += score * score
        self.last = score
        self.best = max(self.best, score)
        for i, (kind, a) in enumerate(MEMBERS):
            h = _shape(kind, a, step)
            self.sh[i] += h
            self.shh[i] += h * h
            self.shy[i] += h * score

    def predict(self, horizon: int, min_points: int = 3) -> tuple[float, float]:
        """``(mean, spread)`` of the score the arm is predicted to reach by ``horizon``."""
        n = self.n
        if n < min_points:
            return self.last, math.inf
        mean_y = self.sy / n
        values: list[float] = []
        errors: list[float] = []
        for i, (kind, a) in enumerate(MEMBERS):
            mean_h = self.sh[i] / n
            var_h = self.shh[i] / n - mean_h * mean_h
            if var_h <= 1e-12:
                continue
            b = max(0.0, (self.shy[i] / n - mean_h * mean_y) / var_h)
            c = mean_y - b * mean_h
            sse = (
                self.syy
                - 2 * c * self.sy
                - 2 * b * self.shy[i]
                + n * c * c
                + 2 * c * b * self.sh[i]
                + b * b * self.shh[i]
            )
            values.append(c + b * _shape(kind, a, horizon))
            errors.append(max(sse, 0.0) / n + 1e-8)
        if not values:
            return self.last, math.inf
        # Gaussian likelihood of each member with its own noise: MSE ** -(n / 2), taken
        # relative to the best member (no overflow); sharper as the curve grows
        least = min(errors)
        weights = [(least / e) ** (n / 2) for e in errors]
        total = sum(weights)
        mean = sum(w * v for w, v in zip(weights, values)) / total
        spread = math.sqrt(sum(w * (v - mean) ** 2 for w, v in zip(weights, values)) / total)
        return max(mean, self.best), spread


class CurveEnsemble(ASHA):
    """ASHA that ranks each rung by predicted final scores from a curve ensemble.

    Paper: Domhan et al., "Speeding up Automatic Hyperparameter Optimization of
    Deep Neural Networks by Extrapolation of Learning Curves", IJCAI 2015,
    https://www.ijcai.org/Proceedings/15/Papers/487.pdf

    Every result updates the arm's :class:`CurveFit` (O(1)). When the arm reaches
    a rung, it is ranked there not by the score it reached but by
    ``mean + kappa * spread`` of the score its ensemble predicts at ``max_t``
    (the last score until the arm has ``min_points`` results, so the first rung
    ranks as ASHA does). Promotions, pauses, NaN and ties are ASHA's (promotion
    mode): an arm whose curve is still rising steeply is promoted over one that
    has flattened at a slightly higher score. ``kappa > 0`` is optimistic about
    arms whose members disagree (exploration), ``kappa < 0`` cautious.

    Args:
        max_t: epochs of the top rung (the horizon of the predictions).
        eta: reduction factor (>= 2).
        min_t: the least epochs before the first rung.
        kappa: weight of the ensemble's spread in the ranking.
        min_points: results an arm needs before its curve is extrapolated (>= 2).

    Example::

        >>> from bandit_tune.policies import CurveEnsemble
        >>> CurveEnsemble(max_t=27).rungs
        [1, 3, 9, 27]
    """

    def __init__(
        self,
        max_t: int,
        eta: float = 3,
        min_t: int = 1,
        kappa: float = 0.0,
        min_points: int = 3,
    ) -> None:
        if (
            isinstance(kappa, bool)
            or not isinstance(kappa, (int, float))
            or not math.isfinite(kappa)
        ):
            raise ValueError(f"CurveEnsemble: kappa must be a finite number, got {kappa!r}")
        if isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 2:
            raise ValueError(
                f"CurveEnsemble: min_points must be an integer >= 2, got {min_points!r}"
            )
        self.kappa, self.min_points = float(kappa), min_points
        super().__init__(max_t, eta, min_t, mode="promotion")

    def _reset(self) -> None:
        super()._reset()
        self._fits: dict[str, CurveFit] = {}

    def prediction(self, arm_id: str) -> tuple[float, float]:
        """``(mean, spread)`` of the score ``arm_id`` is predicted to reach at ``max_t``."""
        fit = self._fits.get(arm_id)
        if fit is None:
            return -math.inf, math.inf
        return fit.predict(self.max_t, self.min_points)

    def on_result(self, arm_id: str, step: int, score: float) -> Any:
        """Update the arm's curve; at a rung, rank it by its predicted final score."""
        fit = self._fits.get(arm_id)
        if fit is None:
            fit = self._fits[arm_id] = CurveFit()
        fit.add(step, score)
        return super().on_result(arm_id, step, score)

    def _arrive(self, level: int, arm_id: str, score: Any) -> Any:
        mean, spread = self._fits[arm_id].predict(self.max_t, self.min_points)
        ranked = mean + self.kappa * spread if math.isfinite(spread) else mean
        if not math.isfinite(ranked):
            self._arms[arm_id].state = ArmState.STOPPED
            return Decision.STOP
        return super()._arrive(level, arm_id, ranked)

    def state_dict(self) -> dict[str, Any]:
        """ASHA's state with each arm's recorded curve."""
        state = super().state_dict()
        state["params"] = [*state["params"], self.kappa, self.min_points]
        state["curves"] = {a: f.points for a, f in self._fits.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output of a CurveEnsemble with the same parameters."""
        params = list(state.get("params", []))
        mine = [self.kappa, self.min_points]
        if params[-2:] != mine:
            raise ValueError(
                f"CurveEnsemble: saved (kappa, min_points)={params[-2:]} differ from {mine}"
            )
        super().load_state_dict({**state, "params": params[:-2]})
        self._fits = {}
        for arm_id, points in state["curves"].items():
            fit = self._fits[arm_id] = CurveFit()
            for step, score in points:
                fit.add(int(step), float(score))
