"""A model's variables (layers' and optimizer's) in one uncompressed ``.npz`` file.

An arm writes a checkpoint at every rung, so its cost is paid hundreds of times a
search. Keras' ``model.save_weights`` walks the model's object graph and writes
HDF5 on each call (~20 ms for a small MLP on one core). Here the walk is Keras'
own (every layer's and the optimizer's ``save_own_variables``, so custom layers
store what they choose), but it is done once per model: the variables it hands
over are remembered and later saves only read their values (~2 ms). Loading walks
the freshly built model with ``load_own_variables``. Nothing is pickled either
way (the file is read with ``allow_pickle=False``).

The walk is private Keras API (``keras.src.saving.saving_lib``); where it is
missing, :func:`save_state` writes ``model.weights.h5`` with ``save_weights`` and
:func:`load_state` reads either file.
"""

from __future__ import annotations

import functools
import os
import weakref
from typing import Any

import numpy as np

ARRAYS = "model.npz"
"""The file :func:`save_state` writes in the checkpoint folder."""

H5 = "model.weights.h5"
"""Keras' own format: written where the fast path is unavailable, read when present."""

_INDEX = "__index__"

#: model -> (signature, [(path, key, variable)]): the variables the walk handed over.
_WALKED: weakref.WeakKeyDictionary[Any, tuple[tuple[int, ...], list[Any]]] = (
    weakref.WeakKeyDictionary()
)


def _saving_lib() -> Any:
    """Keras' saving internals, or ``None`` where this Keras lacks what is used here."""
    try:
        from keras.src.saving import saving_lib
    except ImportError:
        return None
    needed = ("_save_state", "_load_state", "NpzIOStore")
    return saving_lib if all(hasattr(saving_lib, n) for n in needed) else None


def _signature(model: Any) -> tuple[int, ...]:
    """What must not change for the remembered variables to be the model's state.

    A recompiled model (a new optimizer object) or an optimizer built since is
    walked again.
    """
    optimizer = getattr(model, "optimizer", None)
    built = bool(getattr(optimizer, "built", False))
    return (
        len(model.weights),
        id(optimizer),
        int(built),
        len(optimizer.variables) if built else 0,
    )


@functools.cache
def _store_class(saving_lib: Any) -> type:
    """A Keras weights store (Keras checks the type) kept as plain dicts in memory."""

    class _DictStore(saving_lib.NpzIOStore):  # type: ignore[misc,name-defined]
        def __init__(self, contents: dict[str, dict[str, Any]]) -> None:
            self.contents = contents
            self.mode, self.archive, self.root_path = "r", None, ""

        def make(self, path: str, metadata: Any = None) -> dict[str, Any]:
            self.contents[path] = {}
            return self.contents[path]

        def get(self, path: str) -> dict[str, Any]:
            return self.contents.get(path, {})

        def close(self) -> None:
            return None

    return _DictStore


def _walk(model: Any, saving_lib: Any) -> list[tuple[str, str, Any]]:
    """Every ``(path, key, value)`` the model and its optimizer save, by Keras' own walk."""
    contents: dict[str, dict[str, Any]] = {}
    saving_lib._save_state(
        model,
        weights_store=_store_class(saving_lib)(contents),
        assets_store=None,
        inner_path="",
        visited_saveables=set(),
    )
    return [(path, str(key), value) for path, d in contents.items() for key, value in d.items()]


def _is_variable(value: Any) -> bool:
    import keras

    return isinstance(value, keras.Variable)


def _as_variables(model: Any, entries: list[tuple[str, str, Any]]) -> list[tuple[str, str, Any]]:
    """The walk's entries with the optimizer's value copies replaced by its variables.

    Keras' optimizer saves ``variable.numpy()`` for each of ``optimizer.variables``
    in order; the replacement is made only where every copy matches its variable.
    """
    optimizer = getattr(model, "optimizer", None)
    variables = list(getattr(optimizer, "variables", None) or [])
    own = [i for i, (path, _, _) in enumerate(entries) if path == "optimizer"]
    if not variables or len(own) != len(variables):
        return entries
    out = list(entries)
    for i, variable in zip(own, variables):
        path, key, value = entries[i]
        current = np.asarray(variable.numpy())
        copy = np.asarray(value)
        if key != str(own.index(i)) or copy.shape != current.shape or not np.array_equal(
            copy, current, equal_nan=copy.dtype.kind == "f"
        ):
            return entries
        out[i] = (path, key, variable)
    return out


def _entries(model: Any, saving_lib: Any) -> list[tuple[str, str, Any]]:
    """The walk's entries; its variables are remembered for the model's next save."""
    signature = _signature(model)
    cached = _WALKED.get(model)
    if cached is not None and cached[0] == signature:
        return cached[1]
    entries = _as_variables(model, _walk(model, saving_lib))
    if all(_is_variable(value) for _, _, value in entries):
        try:
            _WALKED[model] = (signature, entries)
        except TypeError:  # not weak-referenceable: walk every time
            pass
    return entries


def save_state(model: Any, directory: str) -> str:
    """Write ``model``'s variables and its optimizer's into ``directory``; return the file."""
    saving_lib = _saving_lib()
    if saving_lib is None:
        path = os.path.join(directory, H5)
        model.save_weights(path)
        return path
    entries = _entries(model, saving_lib)
    arrays: dict[str, np.ndarray] = {}
    for i, (_, _, value) in enumerate(entries):
        arrays[f"v{i}"] = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
    arrays[_INDEX] = np.array([[p, k] for p, k, _ in entries], dtype=str).reshape(-1, 2)
    path = os.path.join(directory, ARRAYS)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def load_state(model: Any, directory: str) -> None:
    """Load what :func:`save_state` wrote in ``directory`` into a built ``model``.

    The optimizer must be built already (its variables need somewhere to go).
    Raises ``ValueError`` naming the layers whose variables do not fit.
    """
    arrays_path = os.path.join(directory, ARRAYS)
    if not os.path.exists(arrays_path):
        model.load_weights(os.path.join(directory, H5))
        return
    saving_lib = _saving_lib()
    if saving_lib is None:
        raise ValueError(
            f"{arrays_path} was written by bandit_tune's fast checkpoint format, which needs "
            "keras.src.saving.saving_lib; this Keras lacks it"
        )
    contents: dict[str, dict[str, Any]] = {}
    with np.load(arrays_path, allow_pickle=False) as saved:
        index = saved[_INDEX]
        for i, (path, key) in enumerate(index.reshape(-1, 2)):
            contents.setdefault(str(path), {})[str(key)] = saved[f"v{i}"]
    failed: set[int] = set()
    errors: dict[int, Any] = {}
    saving_lib._load_state(
        model,
        weights_store=_store_class(saving_lib)(contents),
        assets_store=None,
        inner_path="",
        skip_mismatch=False,
        visited_saveables=set(),
        failed_saveables=failed,
        error_msgs=errors,
    )
    if errors:
        parts = [
            f"{getattr(obj, 'name', type(obj).__name__)}: {err}" for obj, err in errors.values()
        ]
        raise ValueError(
            f"the checkpoint in {directory} does not fit this model: " + "; ".join(parts)
        )
