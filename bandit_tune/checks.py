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
    "NumPy arrays (or lists, pandas objects), or a dict or list of arrays for a model "
    "with several inputs or outputs"
)


def refuse_streams(name: str, value: Any) -> None:
    """Raise for a generator, an iterator or a ``tf.data.Dataset`` given as ``name``.

    Arms train in other processes (other machines on a cluster): their data is
    shipped once through Ray's object store, which a stream cannot be.
    """
    kind = None
    if inspect.isgenerator(value) or isinstance(value, Iterator):
        kind = "a generator or iterator"
    elif type(value).__module__.startswith("tensorflow") and "Dataset" in type(value).__name__:
        kind = "a tf.data.Dataset"
    elif (
        hasattr(value, "__getitem__")
        and hasattr(value, "on_epoch_end")
        and hasattr(value, "__len__")
    ):
        kind = "a keras.utils.PyDataset / Sequence"
    if kind is not None:
        raise ValueError(
            f"{name} is {kind}; arms train in Ray workers, which get the data once through "
            f"Ray's object store. Pass {SUPPORTED} (for a dataset that fits in memory: "
            "x, y = map(np.concatenate, zip(*ds.as_numpy_iterator())))"
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
