"""Feed NumPy training data to Keras through a tf.data pipeline built once per worker.

Given NumPy arrays, Keras 3 on TensorFlow rebuilds its input pipeline for the
validation pass of every epoch and slices batches through a generic adapter; for
the small models a tuner tries by the hundred that costs about as much as the
training itself (measured on digits with a 256-unit MLP: 0.105 s per epoch from
arrays, 0.046 s from the pipeline below). :func:`fit_inputs` turns the arrays of
``model.fit(x, y, validation_data=..., batch_size=...)`` into

- a training dataset that reshuffles all samples every epoch (``shuffle=True``,
  Keras' default) or keeps their order (``shuffle=False``), in batches of
  ``batch_size`` with the last partial batch kept, as Keras does;
- a validation dataset in batches of ``validation_batch_size`` (else
  ``batch_size``), cached after its first pass;
- both without tf.data's autotuning and with one private thread (see
  :func:`_options`: two workers on two cores train ~1.6x faster);

and keeps both for the next arm on the same worker, so each worker converts the
data once per search. ``validation_split`` is applied first, exactly as Keras
applies it (the last fraction of the samples, before shuffling).

Anything else is left to Keras untouched: data that is not NumPy arrays,
``steps_per_epoch``/``validation_steps``, ``shuffle="batch"``, a backend other
than TensorFlow, a :class:`~bandit_tune.HyperModel` with its own ``fit`` (it may
use the arrays or tune ``batch_size``), or more than ``MAX_BYTES`` of data.
"""

from __future__ import annotations

import collections
import math
from typing import Any

import numpy as np

MAX_BYTES = 2 << 30
"""Above this many bytes of arrays the data is left to Keras (the pipeline holds a copy)."""

_KEEP = 2  # searches whose datasets one worker keeps
_CACHE: collections.OrderedDict[str, dict[str, tuple[Any, Any]]] = collections.OrderedDict()

_LEFT_TO_KERAS = ("steps_per_epoch", "validation_steps")


def _leaves(value: Any) -> list[Any] | None:
    """The arrays of ``value`` (an array or a list/tuple/dict of arrays), else ``None``."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        parts = list(value.values())
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        return None
    if not parts or not all(isinstance(p, np.ndarray) for p in parts):
        return None
    return parts


def _split(value: Any, start: int | None, stop: int | None) -> Any:
    if isinstance(value, dict):
        return {k: v[start:stop] for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(v[start:stop] for v in value)
    return value[start:stop]


def _tensors(value: Any) -> Any:
    # tf.data reads a list as one stacked tensor; a tuple keeps the model's inputs apart
    return tuple(value) if isinstance(value, list) else value


def eligible(kwargs: dict[str, Any]) -> bool:
    """Whether :func:`fit_inputs` would build a pipeline for these ``fit`` arguments."""
    if any(kwargs.get(k) is not None for k in _LEFT_TO_KERAS):
        return False
    if kwargs.get("shuffle", True) not in (True, False):
        return False
    if kwargs.get("class_weight") is not None and kwargs.get("sample_weight") is not None:
        return False
    parts = [_leaves(kwargs.get("x")), _leaves(kwargs.get("y"))]
    if kwargs.get("sample_weight") is not None:
        parts.append(_leaves(kwargs["sample_weight"]))
    validation = kwargs.get("validation_data")
    if validation is not None:
        if not isinstance(validation, (tuple, list)) or len(validation) not in (2, 3):
            return False
        parts.extend(_leaves(v) for v in validation)
    if any(p is None for p in parts):
        return False
    arrays = [a for p in parts for a in p]  # type: ignore[union-attr]
    if sum(a.nbytes for a in arrays) > MAX_BYTES or any(a.dtype == object for a in arrays):
        return False
    train = [a for p in parts[: 3 if kwargs.get("sample_weight") is not None else 2] for a in p]  # type: ignore[union-attr]
    n = len(train[0])
    if n == 0 or any(a.ndim == 0 or len(a) != n for a in train):
        return False
    split = kwargs.get("validation_split")
    if split and validation is None and not 0 < math.floor(n * (1.0 - float(split))) < n:
        return False  # Keras explains what is wrong with this split
    import keras

    return bool(keras.backend.backend() == "tensorflow")


def uses_default_fit(hypermodel: Any) -> bool:
    """Whether ``hypermodel`` trains with plain ``model.fit`` (it does not override ``fit``)."""
    from bandit_tune.arm.hypermodel import HyperModel, unwrap

    user = unwrap(hypermodel)
    return isinstance(user, HyperModel) and type(user).fit is HyperModel.fit


def fit_inputs(kwargs: dict[str, Any], search: str, part: str = "") -> dict[str, Any]:
    """``model.fit`` arguments with NumPy data replaced by cached tf.data pipelines.

    ``search`` names the search's data and ``part`` a piece of it (a fold): the
    pipelines built for them are reused by the next arm on this worker. Returns
    ``kwargs`` unchanged when the data is not :func:`eligible`.
    """
    if not eligible(kwargs):
        return kwargs
    out = dict(kwargs)
    for name in ("x", "y", "sample_weight", "batch_size", "shuffle", "validation_batch_size"):
        out.pop(name, None)
    out.pop("validation_split", None)
    parts = _CACHE.setdefault(search, {})
    _CACHE.move_to_end(search)
    while len(_CACHE) > _KEEP:
        _CACHE.popitem(last=False)
    if part not in parts:
        parts[part] = _build(kwargs)
    train, validation = parts[part]
    out["x"] = train
    out["shuffle"] = False  # the pipeline reshuffles itself; Keras would warn it ignores this
    if validation is not None:
        out["validation_data"] = validation
    return out


def _build(kwargs: dict[str, Any]) -> tuple[Any, Any]:
    import tensorflow as tf

    x, y, weights = kwargs["x"], kwargs["y"], kwargs.get("sample_weight")
    validation = kwargs.get("validation_data")
    batch = int(kwargs.get("batch_size") or 32)
    split = kwargs.get("validation_split")
    if split and validation is None:
        # keras.utils.split: the last fraction of the samples validates, before shuffling
        at = int(math.floor(len(_leaves(y)[0]) * (1.0 - float(split))))  # type: ignore[index]
        validation = (_split(x, at, None), _split(y, at, None))
        if weights is not None:
            validation = (*validation, _split(weights, at, None))
        x, y = _split(x, None, at), _split(y, None, at)
        weights = None if weights is None else _split(weights, None, at)
    parts = (_tensors(x), _tensors(y)) + (() if weights is None else (_tensors(weights),))
    n = len(_leaves(y)[0])  # type: ignore[index]
    train = tf.data.Dataset.from_tensor_slices(parts)
    if kwargs.get("shuffle", True):
        train = train.shuffle(n, reshuffle_each_iteration=True)
    train = train.batch(batch).prefetch(2).with_options(_options())
    valid = None
    if validation is not None:
        val_batch = int(kwargs.get("validation_batch_size") or batch)
        valid = (
            tf.data.Dataset.from_tensor_slices(tuple(_tensors(v) for v in validation))
            .batch(val_batch)
            .cache()
            .with_options(_options())
        )
    return train, valid


def _options() -> Any:
    """tf.data options for the pipelines: no autotuning, one private thread.

    By default each pipeline runs an autotuning thread and a thread pool the size
    of the machine; with one arm per core (the pool's and Ray Tune's workers) those
    threads take turns with the training on every core. Measured with two workers
    on two cores (digits, 256-unit MLP): 0.14-0.16 s an epoch with the defaults,
    0.086 s with these (the same as one worker alone). The pipelines only slice,
    shuffle and batch arrays in memory, which needs neither.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    return options


def prebuild(model: Any, kwargs: dict[str, Any]) -> bool:
    """Create the optimizer's and compiled metrics' variables before ``model.fit``.

    Without a distribution strategy Keras creates them inside the first traced
    training and validation steps, which makes TensorFlow trace each step twice
    (once to create variables, once without); building them first from the
    pipeline's element spec saves about a third of a new arm's first epoch
    (0.41 s to 0.26 s for the digits MLP). Only for a model whose layers are
    already built (its input shapes are never guessed here) fed by a
    :func:`fit_inputs` pipeline; returns whether it built anything.
    """
    import tensorflow as tf

    data = kwargs.get("x")
    if not isinstance(data, tf.data.Dataset) or not getattr(model, "built", False):
        return False
    build = getattr(model, "_symbolic_build", None)
    optimizer = getattr(model, "optimizer", None)
    metrics = getattr(model, "_compile_metrics", None)
    unbuilt = (optimizer is not None and not optimizer.built) or (
        metrics is not None and not metrics.built
    )
    if build is None or not unbuilt:
        return False
    try:
        build(data_batch=data.element_spec)
    except Exception:  # noqa: BLE001 — Keras builds them in its first step as before
        return False
    return True
