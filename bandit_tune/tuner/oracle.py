"""keras-tuner's ``tuner.oracle`` view of a search: trials, best trials, their metrics.

A read-only view over the tuner's ``results_`` and per-arm histories: each arm
is a :class:`Trial` with keras-tuner's attributes (``trial_id``,
``hyperparameters``, ``score``, ``best_step``, ``status``, ``metrics``). The arms
themselves are chosen by the tuner class and its policy, not by this object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bandit_tune.objective import Objective

if TYPE_CHECKING:
    from bandit_tune.space import HyperParameters

#: keras-tuner's trial statuses for bandit_tune's arm statuses.
_STATUS = {
    "completed": "COMPLETED",
    "early_stopped": "COMPLETED",
    "stopped": "STOPPED",
    "diverged": "INVALID",
    "error": "FAILED",
}


@dataclass
class MetricsTracker:
    """One trial's metrics per epoch (keras-tuner's ``trial.metrics``)."""

    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    directions: dict[str, str] = field(default_factory=dict)

    def exists(self, name: str) -> bool:
        """Whether the trial reported ``name``."""
        return name in self.history

    def get_history(self, name: str) -> list[tuple[int, float]]:
        """``[(epoch, value), ...]`` of metric ``name``."""
        return list(self.history.get(name, []))

    def get_last_value(self, name: str) -> float | None:
        """The last reported value of ``name`` (``None`` if never reported)."""
        values = self.history.get(name)
        return values[-1][1] if values else None

    def get_best_value(self, name: str) -> float | None:
        """The best value of ``name`` (lowest for a loss or a ``min`` objective)."""
        objective = Objective(name, self.get_direction(name))
        return objective.best_of(v for _, v in self.history.get(name, []))

    def get_direction(self, name: str) -> str:
        """``"min"`` or ``"max"`` for ``name``."""
        return self.directions.get(name) or Objective.direction_of(name)


@dataclass
class Trial:
    """One arm as keras-tuner's ``Trial``."""

    trial_id: str
    hyperparameters: HyperParameters
    score: float | None
    best_step: int
    status: str
    metrics: MetricsTracker
    #: bandit_tune's extras: epochs trained and the arm's row in ``results_``.
    epochs: int = 0
    message: str | None = None

    def summary(self) -> None:
        """Print the trial's hyperparameters and score (keras-tuner's ``summary``)."""
        print(f"Trial {self.trial_id} summary\nHyperparameters:")
        for name, value in self.hyperparameters.values.items():
            print(f"{name}: {value}")
        print(f"Score: {self.score}")


class Oracle:
    """keras-tuner's ``tuner.oracle`` for a finished (or reloaded) search."""

    def __init__(self, tuner: Any) -> None:
        """``tuner``: the :class:`~bandit_tune.BanditTuner` whose search this views."""
        self._tuner = tuner

    @property
    def objective(self) -> Any:
        """The tuner's :class:`~bandit_tune.Objective`."""
        return self._tuner.objective

    @property
    def max_trials(self) -> int | None:
        """The tuner's ``max_trials``."""
        return self._tuner.max_trials

    @property
    def trials(self) -> dict[str, Trial]:
        """Every arm as a :class:`Trial`, by id, in the order of ``results_`` (best first)."""
        tuner = self._tuner
        if not hasattr(tuner, "results_"):
            return {}
        return {t.trial_id: t for t in (self._trial(row) for _, row in tuner.results_.iterrows())}

    def get_trial(self, trial_id: str) -> Trial:
        """The trial ``trial_id`` (``KeyError`` naming the ids otherwise)."""
        trials = self.trials
        if trial_id not in trials:
            raise KeyError(f"no trial {trial_id!r}; trials: {sorted(trials)}")
        return trials[trial_id]

    def get_best_trials(self, num_trials: int = 1) -> list[Trial]:
        """The ``num_trials`` best trials that scored, best first."""
        if isinstance(num_trials, bool) or not isinstance(num_trials, int) or num_trials < 1:
            raise ValueError(f"num_trials must be an integer >= 1, got {num_trials!r}")
        scored = [t for t in self.trials.values() if t.score is not None]
        return scored[:num_trials]

    def get_space(self) -> HyperParameters:
        """The search space as a :class:`~bandit_tune.HyperParameters` (default values)."""
        from bandit_tune.space import HyperParameters

        hp = HyperParameters()
        hp.merge(list(self._tuner.space_))
        return hp

    def _trial(self, row: Any) -> Trial:
        tuner = self._tuner
        history = tuner._histories.get(row["arm_id"])
        tracker = MetricsTracker(directions={tuner.objective.name: tuner.objective.direction})
        if history is not None:
            epochs = list(history["epoch"]) if "epoch" in history else range(1, len(history) + 1)
            for name in history.columns:
                if name.startswith(("val_", "loss")) or name in ("accuracy", tuner.objective.name):
                    try:
                        values = [float(v) for v in history[name]]
                    except (TypeError, ValueError):
                        continue
                    tracker.history[name] = list(zip((int(e) for e in epochs), values))
        score = float(row["best_score"])
        error = row.get("error")
        return Trial(
            trial_id=str(row["arm_id"]),
            hyperparameters=tuner._arm_hyperparameters(row),
            score=None if math.isnan(score) else score,
            best_step=int(row["best_epoch"]),
            status=_STATUS.get(str(row["status"]), "COMPLETED"),
            metrics=tracker,
            epochs=int(row["epochs"]),
            message=error if isinstance(error, str) and error.strip() else None,
        )
