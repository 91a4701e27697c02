"""The objective: a metric's name and direction, the one place that says which way is better.

Every rule about direction lives here: keras-tuner's inference from Keras' metric
names (:func:`infer_direction`), turning a value into the higher-is-better score
a policy sees (:meth:`Objective.orient`), comparing two values
(:meth:`Objective.better`) and finding the best of an arm's epochs
(:meth:`Objective.best_of`, :meth:`Objective.best_index`). Pure: no Ray, no Keras.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# keras-tuner's rule: a metric Keras knows has a direction; anything else must say it.
_MAX_METRICS = frozenset(
    """accuracy acc binary_accuracy categorical_accuracy sparse_categorical_accuracy
    top_k_categorical_accuracy sparse_top_k_categorical_accuracy auc precision recall
    f1_score fbeta_score f1 r2_score r2 iou mean_iou binary_iou one_hot_iou one_hot_mean_iou
    true_positives true_negatives precision_at_recall recall_at_precision
    sensitivity_at_specificity specificity_at_sensitivity cosine_similarity""".split()
)
_MIN_METRICS = frozenset(
    """loss mse mae mape msle rmse mean_squared_error mean_absolute_error
    mean_absolute_percentage_error mean_squared_logarithmic_error root_mean_squared_error
    logcosh log_cosh hinge squared_hinge categorical_hinge binary_crossentropy
    categorical_crossentropy sparse_categorical_crossentropy binary_focal_crossentropy
    categorical_focal_crossentropy kl_divergence kld kullback_leibler_divergence poisson
    huber huber_loss false_positives false_negatives ctc dice params latency_ms""".split()
)


def infer_direction(metric: str) -> str | None:
    """``"max"`` or ``"min"`` for a metric Keras knows (as keras-tuner infers it), else ``None``.

    ``val_`` and Keras' numbered suffixes (``auc_1``) are ignored; any name that
    ends in ``loss`` is minimised.

    >>> [infer_direction(m) for m in ("val_accuracy", "val_auc_1", "val_loss", "val_dice_coef")]
    ['max', 'max', 'min', None]
    """
    name = metric.lower().removeprefix("val_")
    name = re.sub(r"_\d+$", "", name)
    if name in _MAX_METRICS:
        return "max"
    if name in _MIN_METRICS or name.endswith("loss"):
        return "min"
    return None


DIRECTIONS = ("min", "max")


def sign(direction: str) -> float:
    """``1.0`` for ``"max"``, ``-1.0`` for ``"min"``: a value times it is higher-is-better.

    >>> sign("min"), sign("max")
    (-1.0, 1.0)
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'min' or 'max', got {direction!r}")
    return 1.0 if direction == "max" else -1.0


def orient(value: float, direction: str) -> float:
    """``value`` made higher-is-better (what a policy sees): negated for ``"min"``.

    >>> orient(0.25, "min"), orient(0.9, "max")
    (-0.25, 0.9)
    """
    return -value if sign(direction) < 0 else value


def better(a: float, b: float, direction: str) -> bool:
    """Whether ``a`` is strictly better than ``b`` in ``direction`` (a NaN is never better).

    >>> better(0.1, 0.2, "min"), better(float("nan"), 0.2, "max")
    (True, False)
    """
    if a != a:  # NaN
        return False
    if b != b:
        return True
    return orient(a, direction) > orient(b, direction)


def best_of(values: Iterable[float], direction: str) -> float | None:
    """The best of ``values`` in ``direction``, NaNs left out (``None``: no number).

    >>> best_of([0.3, float("nan"), 0.2], "min")
    0.2
    """
    finite = [float(v) for v in values if v == v]
    if not finite:
        return None
    return max(finite, key=lambda v: orient(v, direction))


def best_index(values: Sequence[float], direction: str) -> int | None:
    """The first position of the best of ``values`` (``None``: no number).

    An arm's best epoch is ``best_index(scores, direction) + 1``.

    >>> best_index([0.5, 0.9, 0.9, 0.7], "max")
    1
    """
    best = best_of(values, direction)
    if best is None:
        return None
    return next(i for i, v in enumerate(values) if float(v) == best)


@dataclass(frozen=True)
class Objective:
    """The metric to optimise and its direction, as keras-tuner's ``Objective``."""

    name: str
    direction: str = "min"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"objective name must be a non-empty string, got {self.name!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"objective direction must be 'min' or 'max', got {self.direction!r}")

    def orient(self, value: float) -> float:
        """``value`` made higher-is-better (what a policy sees): negated for ``min``.

        >>> Objective("val_loss", "min").orient(0.25), Objective("val_accuracy", "max").orient(0.9)
        (-0.25, 0.9)
        """
        return orient(value, self.direction)

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b`` (a NaN is never better).

        >>> Objective("val_loss", "min").better(0.1, 0.2)
        True
        """
        return better(a, b, self.direction)

    def best_of(self, values: Iterable[float]) -> float | None:
        """The best of ``values``, NaNs left out (``None`` when none is a number).

        >>> Objective("val_mae", "min").best_of([0.3, float("nan"), 0.2])
        0.2
        """
        return best_of(values, self.direction)

    def best_index(self, values: Sequence[float]) -> int | None:
        """Where the best of ``values`` is: the first such position (``None``: no number).

        An arm's best epoch is ``best_index(scores) + 1``.

        >>> Objective("val_accuracy", "max").best_index([0.5, 0.9, 0.9, 0.7])
        1
        """
        return best_index(values, self.direction)

    @staticmethod
    def direction_of(metric: str) -> str:
        """The direction of any metric name, for views that must give one.

        An oracle's metrics include names the user never declared: Keras' own rule
        (:func:`infer_direction`) first, then ``min`` for a name that contains
        "loss", else ``max``.

        >>> Objective.direction_of("val_mae"), Objective.direction_of("my_loss_x")
        ('min', 'min')
        >>> Objective.direction_of("val_accuracy"), Objective.direction_of("score")
        ('max', 'max')
        """
        return infer_direction(metric) or ("min" if "loss" in metric.lower() else "max")

    @classmethod
    def of(cls, objective: Any) -> Objective:
        """Accept an ``Objective``, a keras-tuner ``Objective`` or a metric name."""
        if isinstance(objective, Objective):
            return objective
        if isinstance(objective, str):
            direction = infer_direction(objective) if objective else None
            if direction is None:
                raise ValueError(
                    f"cannot infer whether {objective!r} is to be maximised or minimised: it is "
                    "not a metric Keras knows. Say it with bandit_tune.Objective("
                    f"{objective!r}, direction='max') or direction='min' (as keras-tuner asks "
                    "for kt.Objective)"
                )
            return cls(objective, direction)
        name, direction = getattr(objective, "name", None), getattr(objective, "direction", None)
        if isinstance(name, str) and direction in ("min", "max"):
            return cls(name, direction)
        raise ValueError(
            f"objective must be a metric name such as 'val_accuracy' or "
            f"Objective(name, direction), got {objective!r}"
        )


def objectives_of(objective: Any) -> list[Objective]:
    """One objective, or a list of them; refuses a list that names a metric twice."""
    if isinstance(objective, (list, tuple)):
        if not objective:
            raise ValueError("objective is an empty list; name at least one metric")
        objectives = [Objective.of(o) for o in objective]
    else:
        objectives = [Objective.of(objective)]
    seen: dict[str, str] = {}
    for o in objectives:
        if o.name in seen:
            what = "conflicting directions" if seen[o.name] != o.direction else "the same direction"
            raise ValueError(
                f"objective {o.name!r} is named twice, with {what} ({seen[o.name]!r} and "
                f"{o.direction!r}); name each metric once"
            )
        seen[o.name] = o.direction
    return objectives
