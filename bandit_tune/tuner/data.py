"""The data a search trains on: checked, split for validation, folds or executions.

:func:`prepare` turns ``search()``'s arguments into what every arm receives —
``(x, y, validation)`` where validation is Keras' ``validation_data``, or a list
of ``(train, valid)`` index folds (``cv``, or ``executions_per_trial`` models on
one split) — and refuses data that cannot be scored without leakage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: ``cv`` of a search whose arms train ``executions_per_trial`` models on one split.
EXECUTIONS = "executions"


@dataclass
class Prepared:
    """What :func:`prepare` returns."""

    #: ``(x, y, validation_data)``, or ``(x, y, folds)`` with ``cv``.
    data: Any
    #: ``None``, the user's ``cv``, or :data:`EXECUTIONS`.
    cv: Any
    #: Keras' ``validation_split`` for ``model.fit`` (``None`` with folds).
    validation_split: float | None
    #: Models per arm: folds, or executions (1 for a plain split).
    n_splits: int
    #: The labels the objective is scored on (for the chance-level check).
    validation_labels: Any


def prepare(
    x: Any,
    y: Any,
    validation_split: Any,
    validation_data: Any,
    cv: Any,
    objectives: list[Any],
    seed: int | None,
    executions: int,
) -> Prepared:
    """Check ``search()``'s data and split it as the arms need it."""
    objective = objectives[0]
    if cv is not None:
        bad = [o.name for o in objectives if not o.name.startswith("val_")]
        bad = [n for n in bad if n not in ("params", "latency_ms")]
        if len(objectives) > 1 and bad:
            raise ValueError(
                f"with cv every objective is a validation metric (or the built-in params "
                f"and latency_ms); got {bad}"
            )
        if validation_split is not None or validation_data is not None:
            raise ValueError(
                "cv and validation_split/validation_data both define validation data; "
                "pass only cv=k (each fold validates on its held-out part)"
            )
        if not objective.name.startswith("val_"):
            raise ValueError(
                f"with cv the objective is a validation metric; got {objective.name!r}, "
                f"use 'val_{objective.name}'"
            )
        check_data(x, y, 0.5, None, objective.name)
        from bandit_tune.arm.cv import make_folds

        data = (x, y, make_folds(x, y, cv, seed))
    else:
        from bandit_tune.arm.checks import check_validation

        validation_split = check_validation(validation_split, validation_data)
        data = check_data(x, y, validation_split, validation_data, objective.name)
    labels = validation_labels(y, validation_split, validation_data, cv)
    if cv is None and executions > 1:
        # k models per arm on the same split: the folds' machinery with k equal folds
        data, cv = with_executions(data, validation_split, executions), EXECUTIONS
        validation_split = None
    n_splits = len(data[2]) if cv is not None else 1
    return Prepared(data, cv, validation_split, n_splits, labels)


def check_data(
    x: Any, y: Any, validation_split: Any, validation_data: Any, objective: str
) -> tuple[Any, Any, Any]:
    """``(x, y, validation_data)`` checked: matching lengths, finite values, a validation set."""
    from bandit_tune.arm.checks import check_finite, refuse_streams

    if x is None:
        raise ValueError("search needs training data: search(x, y, ...)")
    refuse_streams("x", x)
    refuse_streams("y", y)
    if y is not None and hasattr(x, "__len__") and hasattr(y, "__len__") and len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}; they must match")
    if validation_split is not None:
        if not isinstance(validation_split, (int, float)) or not 0 < validation_split < 1:
            raise ValueError(
                "validation_split must be a fraction strictly between 0 and 1, "
                f"got {validation_split!r}"
            )
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (x_val, y_val)")
        validation_data = tuple(validation_data)
        refuse_streams("validation_data[0]", validation_data[0])
    check_finite("x", x)
    check_finite("y", y)
    if validation_data is not None:
        check_finite("validation_data[0] (x_val)", validation_data[0])
        check_finite("validation_data[1] (y_val)", validation_data[1])
    if objective.startswith("val_") and validation_split is None and validation_data is None:
        raise ValueError(
            f"objective {objective!r} needs validation data: pass "
            "validation_split=0.2 or validation_data=(x_val, y_val) to search"
        )
    return x, y, validation_data


def with_executions(data: Any, validation_split: float | None, k: int) -> tuple[Any, Any, Any]:
    """``(x, y, folds)`` with ``k`` identical folds: the training part, then the validation one."""
    x, y, validation_data = data
    if validation_data is not None:
        x_val, y_val = validation_data[0], validation_data[1]
        n_train = len(x)
        x = np.concatenate([np.asarray(x), np.asarray(x_val)])
        y = np.concatenate([np.asarray(y), np.asarray(y_val)])
    else:
        assert validation_split is not None
        n_train = int(math.floor(len(x) * (1.0 - validation_split)))  # as Keras splits
    train, valid = np.arange(n_train), np.arange(n_train, len(x))
    return x, y, [(train, valid)] * k


def validation_labels(y: Any, split: Any, validation_data: Any, cv: Any) -> Any:
    """The labels the objective is scored on (Keras' split takes the last fraction)."""
    if validation_data is not None and len(validation_data) >= 2:
        return validation_data[1]
    if y is None or isinstance(y, (dict, list, tuple)):
        return None
    if cv is not None:
        return y
    if split:
        labels = np.asarray(y)
        return labels[len(labels) - int(len(labels) * split) :]
    return None


def shape_of(value: Any) -> Any:
    """An array's ``[shape, dtype]`` (per key or item for several inputs); ``None`` for none.

    >>> shape_of(np.zeros((4, 2), dtype="float32"))
    [[4, 2], 'float32']
    """
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): shape_of(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        return [shape_of(v) for v in value]
    shape = getattr(value, "shape", None)
    if shape is None:
        try:
            shape = np.shape(value)
        except Exception:  # noqa: BLE001 — not array-like
            return type(value).__name__
    return [list(shape), str(getattr(value, "dtype", ""))]
