"""Proposers: which recorded arm a replay starts next, from configurations and results.

On Ray a searcher (a fixed list, or Optuna's TPE through Ray Tune) hands the
scheduler its next configuration. In replay (:func:`bandit_tune.replay.simulate`,
:func:`bandit_tune.replay.compare`) the configurations are the recorded arms', so a
proposer picks one of the arms not started yet, having seen every result so
far. Without one, a replay draws arms in the (seeded) recorded order, which is
what a random search does.

:class:`GPProposer` is a multi-fidelity model in the MOBSTER / BOHB spirit: one
Gaussian process over (configuration, epochs), fitted to every arm's partial
curve, so a new arm is ranked by the score its configuration is predicted to
reach at ``max_t`` before it trains an epoch. :class:`TPEProposer` is Optuna's
TPE fitted to each arm's latest score at the highest step with enough arms (the
BOHB rule), its suggestion mapped to the nearest recorded arm. Neither imports
Ray or TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


class Proposer:
    """Base class: picks which recorded arm starts next (the replay's searcher).

    The replay calls :meth:`setup` once with every recorded configuration,
    :meth:`observe` after every result (scores higher-is-better) and
    :meth:`propose` whenever the policy takes a new arm. A proposer must be
    deterministic for a given ``seed`` and the results it saw.
    """

    def setup(self, configs: Sequence[dict[str, Any]], max_t: int, seed: int | None) -> None:
        """Take the recorded configurations (indexed as the curves' rows) and the horizon."""
        self.configs = list(configs)
        self.max_t = int(max_t)
        self.seed = 0 if seed is None else int(seed)

    def observe(self, row: int, step: int, score: float) -> None:
        """Arm ``row`` reported ``score`` (higher is better) after ``step`` epochs."""

    def propose(self, available: Sequence[int]) -> int:
        """Return the row of the next arm: one of ``available`` (the default: the first)."""
        return int(available[0])

    def on_resume(self, started: Sequence[int]) -> None:
        """A resumed replay: these rows were proposed before (their results follow)."""


class Encoder:
    """Turns configurations into rows of numbers in [0, 1] (the models' input).

    Fitted on the recorded configurations: numbers are scaled to [0, 1] over the
    recorded range (on a log scale when they are positive and span more than a
    factor of 20); strings and booleans become one column per value (0 or 1).
    """

    def __init__(self, configs: Sequence[dict[str, Any]]) -> None:
        if not configs:
            raise ValueError(
                "a proposer needs the recorded arms' configurations; the curves have none"
            )
        keys = sorted({k for c in configs for k in c if not str(k).startswith("__")})
        if not keys:
            raise ValueError(
                "the recorded configurations are empty: a proposer has nothing to model"
            )
        #: Per key: ``("num", low, high, log)`` or ``("cat", levels)``.
        self.columns: dict[str, tuple[Any, ...]] = {}
        for key in keys:
            values = [c.get(key) for c in configs]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                x = np.array(values, dtype=float)
                log = bool(x.min() > 0 and x.max() / x.min() > 20)
                self.columns[key] = ("num", float(x.min()), float(x.max()), log)
            else:
                self.columns[key] = ("cat", sorted({str(v) for v in values}))

    def __call__(self, configs: Sequence[dict[str, Any]]) -> np.ndarray:
        """The configurations as an array ``[configs, columns]``."""
        out: list[np.ndarray] = []
        for key, spec in self.columns.items():
            values = [c.get(key) for c in configs]
            if spec[0] == "num":
                _, low, high, log = spec
                x = np.array([low if v is None else v for v in values], dtype=float)
                if log:
                    x, low, high = np.log(x), math.log(low), math.log(high)
                out.append((x - low) / (high - low) if high > low else np.zeros_like(x))
            else:
                for level in spec[1]:
                    out.append(np.array([str(v) == level for v in values], dtype=float))
        return np.stack(out, axis=1)


def encode(configs: Sequence[dict[str, Any]]) -> np.ndarray:
    """``configs`` as rows of numbers in [0, 1], scaled over themselves (see :class:`Encoder`)."""
    return Encoder(configs)(configs)


def _matern52(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    d = np.sqrt(np.maximum(((a[:, None, :] - b[None, :, :]) / scale) ** 2, 0.0).sum(-1))
    r = math.sqrt(5.0) * d
    return (1.0 + r + r * r / 3.0) * np.exp(-r)


class GPProposer(Proposer):
    """One GP over (configuration, log epochs): start the arm with the best expected improvement.

    Every result of every arm (at steps 1, 2, 4, 8, ... and its latest) is a
    point ``(config, log(step) / log(max_t)) -> score``; a Matern-5/2 GP with a
    length scale per input, chosen among a few by marginal likelihood, is
    refitted at each proposal. Each arm not started yet is scored by the
    expected improvement of its predicted score at ``max_t`` over the best score
    observed so far; the best is started. The first ``n_startup`` arms, and a
    share ``random_fraction`` of the later ones (to keep exploring), follow the
    recorded (seeded) order instead. O(points^3) per proposal: ``max_points``
    caps the points, the latest of each arm kept first.

    Args:
        n_startup: arms started in recorded order before the model is used.
        random_fraction: share of later arms started in recorded order.
        max_points: most points the GP is fitted to.
    """

    def __init__(
        self, n_startup: int = 10, random_fraction: float = 0.2, max_points: int = 600
    ) -> None:
        if isinstance(n_startup, bool) or not isinstance(n_startup, int) or n_startup < 1:
            raise ValueError(f"GPProposer: n_startup must be an integer >= 1, got {n_startup!r}")
        if not 0.0 <= float(random_fraction) <= 1.0:
            raise ValueError(
                f"GPProposer: random_fraction must lie in [0, 1], got {random_fraction!r}"
            )
        if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 10:
            raise ValueError(f"GPProposer: max_points must be an integer >= 10, got {max_points!r}")
        self.n_startup, self.random_fraction, self.max_points = (
            n_startup,
            float(random_fraction),
            max_points,
        )

    def setup(self, configs: Sequence[dict[str, Any]], max_t: int, seed: int | None) -> None:
        """Encode the configurations; forget earlier results."""
        super().setup(configs, max_t, seed)
        self._x = encode(configs)
        self._points: dict[int, dict[int, float]] = {}  # row -> {step: score}
        self._started = 0

    def on_resume(self, started: Sequence[int]) -> None:
        """Count the proposals made before the resume (they seed the later choices)."""
        self._started = len(started)

    def observe(self, row: int, step: int, score: float) -> None:
        """Keep the result at steps 1, 2, 4, 8, ... and the arm's latest."""
        if not math.isfinite(score):
            return
        kept = self._points.setdefault(row, {})
        latest = max(kept) if kept else 0
        if latest and latest & (latest - 1):  # the previous latest was not a power of 2
            del kept[latest]
        kept[step] = float(score)

    def propose(self, available: Sequence[int]) -> int:
        """The available arm whose predicted score at ``max_t`` improves most on the best."""
        self._started += 1
        rng = np.random.default_rng([self.seed, self._started])
        if (
            self._started <= self.n_startup
            or len(self._points) < 3
            or rng.random() < self.random_fraction
        ):
            return int(available[0])
        x, y = self._data()
        if len(y) < 3 or float(np.ptp(y)) == 0.0:
            return int(available[0])
        mean_y, std_y = y.mean(), y.std()
        z = (y - mean_y) / std_y
        candidates = np.asarray(available, dtype=int)
        top = np.ones((len(candidates), 1))
        xc = np.hstack([self._x[candidates], top])
        best_fit: tuple[float, Any] | None = None
        for scale in (0.1, 0.25, 0.5, 1.0):
            scales = np.full(x.shape[1], scale * math.sqrt(x.shape[1] - 1 or 1))
            scales[-1] = 0.5  # the epochs axis
            k = _matern52(x, x, scales) + 1e-2 * np.eye(len(z))
            try:
                chol = np.linalg.cholesky(k)
            except np.linalg.LinAlgError:
                continue
            alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, z))
            evidence = -0.5 * float(z @ alpha) - float(np.log(np.diag(chol)).sum())
            if best_fit is None or evidence > best_fit[0]:
                best_fit = (evidence, (scales, chol, alpha))
        if best_fit is None:
            return int(available[0])
        scales, chol, alpha = best_fit[1]
        cross = _matern52(xc, x, scales)
        mean = cross @ alpha
        v = np.linalg.solve(chol, cross.T)
        sd = np.sqrt(np.maximum(1.0 - (v * v).sum(0), 1e-12))
        incumbent = (y.max() - mean_y) / std_y
        gap = mean - incumbent
        u = gap / sd
        normal_cdf = 0.5 * (1.0 + np.vectorize(math.erf)(u / math.sqrt(2.0)))
        normal_pdf = np.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)
        ei = gap * normal_cdf + sd * normal_pdf
        return int(candidates[int(np.argmax(ei))])

    def _data(self) -> tuple[np.ndarray, np.ndarray]:
        rows, steps, scores = [], [], []
        for row, kept in self._points.items():
            for step, score in kept.items():
                rows.append(row)
                steps.append(step)
                scores.append(score)
        # highest steps first, then by row: the same points whatever order results came in
        order = np.lexsort((np.asarray(rows), -np.asarray(steps)))[: self.max_points]
        rows_a = np.asarray(rows)[order]
        u = np.log(np.asarray(steps, dtype=float)[order]) / math.log(max(self.max_t, 2))
        x = np.hstack([self._x[rows_a], u[:, None]])
        return x, np.asarray(scores)[order]


class TPEProposer(Proposer):
    """Optuna's TPE over the recorded configurations, fitted at one step (the BOHB rule).

    Each proposal fits TPE to the arms' scores at the highest step that at least
    ``n_min`` arms have reached (``n_min``: the configuration's dimensions + 2),
    asks it for a configuration, and starts the available recorded arm nearest
    to it (in :class:`Encoder` space). The first ``n_startup`` arms follow the
    recorded (seeded) order. Needs Optuna (a dependency of bandit_tune).

    Args:
        n_startup: arms started in recorded order before TPE is used.
    """

    def __init__(self, n_startup: int = 10) -> None:
        if isinstance(n_startup, bool) or not isinstance(n_startup, int) or n_startup < 1:
            raise ValueError(f"TPEProposer: n_startup must be an integer >= 1, got {n_startup!r}")
        self.n_startup = n_startup

    def setup(self, configs: Sequence[dict[str, Any]], max_t: int, seed: int | None) -> None:
        """Build TPE's search space from the recorded configurations."""
        import optuna

        super().setup(configs, max_t, seed)
        self._encoder = Encoder(configs)
        self._x = self._encoder(configs)
        self._distributions: dict[str, Any] = {}
        for key, spec in self._encoder.columns.items():
            if spec[0] == "cat":
                self._distributions[key] = optuna.distributions.CategoricalDistribution(spec[1])
                continue
            _, low, high, log = spec
            values = [c.get(key) for c in configs]
            if all(isinstance(v, int) for v in values):
                self._distributions[key] = optuna.distributions.IntDistribution(
                    int(low), max(int(high), int(low) + 1), log=log
                )
            else:
                self._distributions[key] = optuna.distributions.FloatDistribution(
                    low, high if high > low else low + 1e-12, log=log
                )
        self._scores: dict[int, dict[int, float]] = {}
        self._started = 0

    def on_resume(self, started: Sequence[int]) -> None:
        """Count the proposals made before the resume."""
        self._started = len(started)

    def observe(self, row: int, step: int, score: float) -> None:
        """Keep every finite result."""
        if math.isfinite(score):
            self._scores.setdefault(row, {})[step] = float(score)

    def propose(self, available: Sequence[int]) -> int:
        """The available arm nearest to TPE's suggestion."""
        import optuna

        self._started += 1
        if self._started <= self.n_startup:
            return int(available[0])
        n_min = len(self._distributions) + 2
        reached = sorted((max(s) for s in self._scores.values()), reverse=True)
        if len(reached) < n_min:
            return int(available[0])
        step = reached[n_min - 1]  # the highest step n_min arms have reached
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(
            seed=int(np.random.default_rng([self.seed, self._started]).integers(2**31)),
            n_startup_trials=0,
        )
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for row, scores in self._scores.items():
            if step in scores:
                params = {k: self._value(k, self.configs[row].get(k)) for k in self._distributions}
                study.add_trial(
                    optuna.trial.create_trial(
                        params=params, distributions=self._distributions, value=scores[step]
                    )
                )
        trial = study.ask(self._distributions)
        target = self._encoder([trial.params])[0]
        candidates = np.asarray(available, dtype=int)
        distance = ((self._x[candidates] - target) ** 2).sum(axis=1)
        return int(candidates[int(np.argmin(distance))])

    def _value(self, key: str, value: Any) -> Any:
        spec = self._encoder.columns[key]
        if spec[0] == "cat":
            return str(value)
        return value
