"""Replay: policies run on recorded learning curves, in seconds, with no Ray and no Keras.

:func:`simulate` runs a policy over virtual workers, :func:`compare` ranks
policies over many arm orders, :mod:`~bandit_tune.replay.curves` loads the
shipped curve sets (``replay/data``), :mod:`~bandit_tune.replay.proposers`
chooses configurations from partial curves. The same
:class:`~bandit_tune.driver.Runner` drives a live search, so a replayed policy
makes the decisions it makes on a cluster. The same replay on a real Ray Tune run
is :func:`bandit_tune.ray_tune.replay_on_ray.replay_on_ray` (Ray Tune's side).
"""

from __future__ import annotations

from bandit_tune.replay.compare import Comparison, compare
from bandit_tune.replay.curves import Curves, as_curves, load_curves
from bandit_tune.replay.simulate import SimulationResult, simulate

__all__ = [
    "Comparison",
    "Curves",
    "SimulationResult",
    "as_curves",
    "compare",
    "load_curves",
    "simulate",
]
