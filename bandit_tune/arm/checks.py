"""Checks of the data given to ``search``, made in the driver before any worker starts.

Bad data found here fails at once, naming the array and the first bad place,
instead of failing in every arm with a TensorFlow node name.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

SUPPORTED = (
    "NumPy arrays (or lists, pandas objects), a dict or list of arrays for a model "
    "with several inputs or outputs, or a finite tf.data.Dataset of (features, labels) batches"
)
MAX_DATASET_BYTES = 4 * 2**30
"""A tf.data.Dataset larger than this is not read into memory."""


def is_dataset(value: Any) -> bool:
    """Whether ``value`` is a ``tf.data.Dataset`` (without importing TensorFlow)."""
    return any(
        c.__module__.startswith("tensorflow") and c.__name__ == "DatasetV2"
        for c in type(value).__mro__
    )


def from_dataset(dataset: Any, name: str) -> tuple[Any, Any, int]:
    """Read a finite, batched ``tf.data.Dataset`` of ``(features, labels)`` into arrays.

    Arms train in Ray workers, which get the data once through Ray's object store:
    the dataset is read once, here, and its batches are concatenated. Returns
    ``(x, y, batch size)``. Random transformations in the dataset (augmentation,
    shuffling) are applied once, when it is read; the arms reshuffle every epoch.
    """
    import tensorflow as tf

    if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise ValueError(
            f"{name} is an infinite tf.data.Dataset (it repeats): pass it without .repeat(); "
            "the number of epochs is the policy's to set"
        )
    batches, size = [], 0
    for batch in dataset.as_numpy_iterator():
        if not isinstance(batch, tuple) or len(batch) not in (2, 3):
            raise ValueError(
                f"{name} is a tf.data.Dataset of {type(batch).__name__}; it must yield "
                "(features, labels) batches, as model.fit takes it"
            )
        batches.append(batch[:2])
        size += sum(np.asarray(part).nbytes for part in _leaves(batch[:2]))
        if size > MAX_DATASET_BYTES:
            raise ValueError(
                f"{name} holds more than {MAX_DATASET_BYTES / 2**30:.0f} GiB: too large to read "
                "into memory and ship to the workers; tune on a sample of it"
            )
    if not batches:
        raise ValueError(f"{name} is an empty tf.data.Dataset")
    features = _concatenate([b[0] for b in batches])
    labels = _concatenate([b[1] for b in batches])
    first = next(iter(_leaves(batches[0][0])))
    return features, labels, int(np.asarray(first).shape[0])


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _leaves(v)]
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _concatenate(parts: list[Any]) -> Any:
    first = parts[0]
    if isinstance(first, dict):
        return {k: _concatenate([p[k] for p in parts]) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(_concatenate([p[i] for p in parts]) for i in range(len(first)))
    return np.concatenate([np.asarray(p) for p in parts])


def read_datasets(
    x: Any, y: Any, validation_data: Any, batch_size: int | None
) -> tuple[Any, Any, Any, int | None]:
    """Turn ``tf.data.Dataset`` arguments of ``search`` into arrays (see :func:`from_dataset`)."""
    if is_dataset(x):
        if y is not None:
            raise ValueError(
                "y must be None when x is a tf.data.Dataset: the dataset yields (features, labels)"
            )
        x, y, batch = from_dataset(x, "x")
        batch_size = batch_size or batch
    if is_dataset(validation_data):
        validation_data = from_dataset(validation_data, "validation_data")[:2]
    return x, y, validation_data, batch_size


def refuse_streams(name: str, value: Any) -> None:
    """Raise for a generator, an iterator or a ``tf.data.Dataset`` given as ``name``.

    Arms train in other processes (other machines on a cluster): their data is
    shipped once through Ray's object store, which a stream cannot be.
    """
    kind = None
    if inspect.isgenerator(value) or isinstance(value, Iterator):
        kind = "a generator or iterator"
    elif is_dataset(value):
        kind = "a tf.data.Dataset here (only x and validation_data take one)"
    elif (
        hasattr(value, "__getitem__")
        and hasattr(value, "on_epoch_end")
        and hasattr(value, "__len__")
    ):
        kind = "a keras.utils.PyDataset / Sequence"
    if kind is not None:
        raise ValueError(
            f"{name} is {kind}; arms train in Ray workers, which get the data once through "
            f"Ray's object store. Pass {SUPPORTED}"
        )


def _arrays(name: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(f"{name}[{k!r}]", v) for k, v in value.items()]
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        return [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [(name, value)]


def check_finite(name: str, value: Any) -> None:
    """Raise ``ValueError`` if a numeric array in ``value`` holds NaN or infinity.

    A NaN in one sample makes every arm's loss NaN: all arms would score alike
    (at chance) and the search would end as if it had worked.
    """
    for label, array in _arrays(name, value):
        if value is None or isinstance(array, (str, bytes)):
            continue
        try:
            data = np.asarray(array)
        except Exception:  # noqa: BLE001 — not array-like: Keras will say what it is
            continue
        if data.dtype.kind not in "fc":
            continue
        finite = np.isfinite(data)
        if not finite.all():
            where = tuple(int(i) for i in np.argwhere(~finite)[0])
            bad = data[where]
            count = int((~finite).sum())
            index = ", ".join(map(str, where))
            raise ValueError(
                f"{label} holds {count} non-finite value(s); the first is {label}[{index}] = "
                f"{bad}. A NaN or infinity in the data makes every arm's loss NaN: clean or "
                "impute it before the search (e.g. np.nan_to_num, or drop those samples)"
            )


def check_validation(validation_split: Any, validation_data: Any) -> Any:
    """Keras' rule when both are given: ``validation_data`` wins. Warn once; return the split."""
    if validation_split is not None and validation_data is not None:
        warnings.warn(
            f"both validation_data and validation_split={validation_split} were given; as in "
            "Keras, validation_data is used and validation_split is ignored",
            UserWarning,
            stacklevel=4,
        )
        return None
    return validation_split
