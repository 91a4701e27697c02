"""Recorded learning curves: the shipped digits set, and curves from an earlier search.

:func:`as_curves` turns whatever a user has — an array ``[arms, epochs]``, a list
of curves of different lengths, a tuner, its ``results_``, or the directory of
a finished search — into one :class:`Curves`, which :func:`bandit_tune.replay.simulate`
and :func:`bandit_tune.replay.compare` replay.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandit_tune.objective import orient, sign

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")
#: Shipped curve sets: name -> (file in ``bandit_tune/replay/data``, the metric it is judged by).
SHIPPED = {
    "digits_mlp": ("digits_mlp_curves.npz", "val_accuracy"),
    "digits_cnn": ("digits_cnn_curves.npz", "val_accuracy"),
    "diabetes_mlp": ("diabetes_mlp_curves.npz", "val_loss"),
    "noisy_labels": ("noisy_labels_curves.npz", "val_accuracy"),
}


@dataclass
class Curves:
    """Learning curves of many arms, oriented so that higher is better.

    Attributes:
        scores: ``[arms, epochs]``; NaN where an arm diverged or past its length.
            Several objectives: ``[arms, epochs, objectives]``, each oriented so
            that higher is better.
        lengths: epochs recorded per arm.
        seconds: seconds per epoch shaped like ``scores``, or ``None`` (1 s each).
        configs: each arm's hyperparameters (may be empty dicts).
        metric: what the scores are (``-loss`` when the objective is minimised).
        mode: ``"max"`` or ``"min"``: the direction of the original metric.
    """

    scores: np.ndarray
    lengths: np.ndarray
    seconds: np.ndarray | None = None
    configs: list[dict[str, Any]] = field(default_factory=list)
    metric: str = "score"
    mode: str = "max"

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def max_t(self) -> int:
        """The most epochs any arm has."""
        return int(self.scores.shape[1])

    @property
    def n_objectives(self) -> int:
        """How many objectives each score has (1: scalar curves)."""
        return 1 if self.scores.ndim == 2 else int(self.scores.shape[2])

    def reference(self) -> np.ndarray:
        """Several objectives: the worst recorded value of each, the hypervolume's reference."""
        flat = self.scores.reshape(-1, self.n_objectives)
        flat = flat[np.isfinite(flat).all(axis=1)]
        if len(flat) == 0:
            raise ValueError("curves hold no finite score")
        return flat.min(axis=0)

    def best(self) -> float:
        """The best score any arm reached at any epoch (the oracle of :func:`compare`).

        Several objectives: the hypervolume of the front of every recorded point
        (reference: :meth:`reference`).
        """
        if self.n_objectives > 1:
            from bandit_tune.policies.pareto import hypervolume, pareto_front

            flat = self.scores.reshape(-1, self.n_objectives)
            flat = flat[np.isfinite(flat).all(axis=1)]
            return hypervolume(pareto_front(flat), self.reference())
        finite = self.scores[np.isfinite(self.scores)]
        if finite.size == 0:
            raise ValueError("curves hold no finite score")
        return float(finite.max())

    def original(self, score: float) -> float:
        """Turn an oriented score back into the metric's own sign."""
        return orient(score, self.mode)


def _ragged(rows: list[Any], seconds: Any = None) -> Curves:
    lengths = np.array([len(r) for r in rows], dtype=int)
    if lengths.size == 0 or lengths.max() < 1:
        raise ValueError("curves must hold at least one arm with at least one epoch")
    scores = np.full((len(rows), int(lengths.max())), np.nan)
    for i, row in enumerate(rows):
        scores[i, : len(row)] = np.asarray(row, dtype=float)
    times = None
    if seconds is not None:
        times = np.ones_like(scores)
        for i, row in enumerate(seconds):
            if row is not None and len(row):
                times[i, : len(row)] = np.asarray(row, dtype=float)[: scores.shape[1]]
    return Curves(scores, lengths, times)


def load_curves(name: str = "digits_mlp", metric: str | None = None) -> Curves:
    """Load a recorded set of learning curves that ships with bandit_tune.

    Each set holds 256 random Keras models trained 27 epochs each, with every
    arm's configuration, recorded by ``benchmarks/record_curves.py`` on data
    that ships with scikit-learn or is generated:

    - ``"digits_mlp"``: MLPs (1-3 layers, 16-512 units, dropout, learning rate,
      batch size) on the 8x8 digits; judged by ``val_accuracy``;
    - ``"digits_cnn"``: small CNNs (1-2 conv layers, 4-32 filters, a dense
      layer, dropout, learning rate, batch size) on the same digits split;
      ``val_accuracy``;
    - ``"diabetes_mlp"``: regression MLPs (Adam or SGD with momentum, some of
      which diverge: NaN) on the diabetes data; ``val_loss`` (MSE of the
      standardised target) only;
    - ``"noisy_labels"``: MLPs on a generated 10-class problem whose training
      labels are 30% random: big arms overfit, so curves rise, fall and cross;
      ``val_accuracy``.

    ``metric`` is ``"val_accuracy"`` or ``"val_loss"`` (returned negated, so higher
    is better); ``None``: the metric the set is judged by.
    """
    if name not in SHIPPED:
        raise ValueError(f"unknown curve set {name!r}; shipped: {', '.join(SHIPPED)}")
    filename, default = SHIPPED[name]
    metric = default if metric is None else metric
    if metric not in ("val_accuracy", "val_loss"):
        raise ValueError(f"metric must be 'val_accuracy' or 'val_loss', got {metric!r}")
    with np.load(os.path.join(DATA_DIR, filename)) as data:
        if metric not in data.files:
            raise ValueError(
                f"curve set {name!r} records no {metric!r} (it records "
                f"{', '.join(k for k in data.files if k.startswith('val_'))})"
            )
        values = data[metric].astype(float)
        seconds = data["seconds"].astype(float)
        configs = json.loads(str(data["configs"]))
    mode = "max" if metric == "val_accuracy" else "min"
    scores = values * sign(mode)
    lengths = np.full(len(scores), scores.shape[1], dtype=int)
    return Curves(scores, lengths, seconds, configs, metric, mode)


def _from_arms(arms: dict[str, Any]) -> Curves:
    name, direction = arms["objective"]
    rows, times, configs = [], [], []
    for results in arms["results"].values():
        by_epoch: dict[int, dict[str, Any]] = {}
        for r in results:
            if "epoch" in r:
                by_epoch[int(r["epoch"])] = r  # a retried epoch counts once, the last time
        ordered = [by_epoch[e] for e in sorted(by_epoch)]
        values = [float(r.get(name, math.nan)) for r in ordered]
        rows.append([orient(v, direction) for v in values])
        times.append([float(r.get("time_this_iter_s", 1.0)) for r in ordered])
        config = next((r.get("config") for r in ordered if isinstance(r.get("config"), dict)), {})
        configs.append(config)
    rows_kept = [(r, t, c) for r, t, c in zip(rows, times, configs) if r]
    if not rows_kept:
        raise ValueError("the search holds no arm with a recorded epoch")
    curves = _ragged([r for r, _, _ in rows_kept], [t for _, t, _ in rows_kept])
    curves.configs = [c for _, _, c in rows_kept]
    curves.metric, curves.mode = name, direction
    return curves


def as_curves(source: Any) -> Curves:
    """Turn ``source`` into :class:`Curves`.

    Accepted: a :class:`Curves`; a 2-d array ``[arms, epochs]`` (higher is
    better), or a 3-d array ``[arms, epochs, objectives]`` of recorded vectors
    (each objective higher is better); a list of 1-d curves of any lengths; a
    tuner after ``search`` (``BanditTuner``), its ``results_`` table or the
    ``directory/project_name`` folder of a search (their objective's direction
    is honoured).
    """
    if isinstance(source, Curves):
        return source
    if isinstance(source, (str, os.PathLike)):
        from bandit_tune.driver.project import load_arms

        return _from_arms(load_arms(os.fspath(source)))
    if hasattr(source, "project_dir") and hasattr(source, "results_"):
        return as_curves(source.project_dir)
    if hasattr(source, "columns") and "curve" in getattr(source, "columns", ()):
        name, direction = source.attrs.get("objective", ("score", "max"))
        rows = [list(c) if c is not None else [] for c in source["curve"]]
        rows = [[orient(v, direction) for v in r] for r in rows]
        seconds = list(source["curve_seconds"]) if "curve_seconds" in source else None
        keep = [i for i, r in enumerate(rows) if r]
        if not keep:
            raise ValueError("results_ holds no arm with a recorded epoch")
        curves = _ragged(
            [rows[i] for i in keep], None if seconds is None else [seconds[i] for i in keep]
        )
        params = source.attrs.get("params", [])
        curves.configs = [{p: source.iloc[i][p] for p in params} for i in keep]
        curves.metric, curves.mode = name, direction
        return curves
    if isinstance(source, (list, tuple)) and source and not np.isscalar(source[0]):
        lengths = {len(r) for r in source}
        if len(lengths) > 1:
            return _ragged(list(source))
    scores = np.asarray(source, dtype=float)
    if scores.ndim not in (2, 3) or min(scores.shape) < 1:
        raise ValueError(
            f"curves must be a 2-d array [arms, epochs] (or [arms, epochs, objectives]), a "
            f"list of curves, a tuner, its results_ or a search directory; got an array of "
            f"shape {scores.shape}"
        )
    return Curves(scores, np.full(scores.shape[0], scores.shape[1], dtype=int))
