"""Check the data against a model ``build_model`` makes, once, before any arm starts.

Run where the search space is recorded (a helper process that imports Keras
anyway, or the user's process when Keras is loaded there): one model is built
with the default hyperparameters, the labels are checked against its loss and
output (string labels, labels 1..10 for 10 classes, one-hot labels with a sparse
loss), and a few samples go through ``model.evaluate``. A problem is reported in
words, with the exception's own message, never a TensorFlow node name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SAMPLES = 16
"""Samples of x (and of the validation data) sent through the model."""


def sample(data: Any, y_full: bool = True) -> Any:
    """The first :data:`SAMPLES` of each array in ``data`` (``x``, ``y``, validation)."""

    def head(value: Any, n: int | None = SAMPLES) -> Any:
        if value is None:
            return None
        if isinstance(value, dict):
            return {k: head(v, n) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
            return type(value)(head(v, n) for v in value)
        try:
            array = np.asarray(value)
        except Exception:  # noqa: BLE001 — not array-like: nothing to check
            return None
        return array if n is None or array.ndim == 0 else array[:n]

    x, y, validation = data
    out_validation = None
    if isinstance(validation, tuple) and len(validation) >= 2:
        out_validation = (head(validation[0]), head(validation[1], None if y_full else SAMPLES))
    return head(x), head(y, None if y_full else SAMPLES), out_validation


def _loss_name(model: Any) -> str:
    loss = getattr(model, "loss", None)
    if isinstance(loss, str):
        return loss.lower()
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return str(name).lower()


def _check_labels(model: Any, y: Any, label: str) -> str | None:
    """A sentence about labels that cannot work with the model's loss, or ``None``."""
    if y is None or isinstance(y, (dict, list, tuple)):
        return None
    y = np.asarray(y)
    loss = _loss_name(model)
    try:
        outputs = int(model.output_shape[-1])
    except Exception:  # noqa: BLE001 — several outputs: Keras checks them
        return None
    if y.dtype.kind in "USO":
        shown = ", ".join(repr(v) for v in list(dict.fromkeys(y.ravel().tolist()))[:3])
        return (
            f"{label} holds strings ({shown}...); encode them as integers 0..{outputs - 1} "
            "first (e.g. sklearn.preprocessing.LabelEncoder)"
        )
    sparse = "sparse_categorical" in loss.replace(" ", "_")
    categorical = "categorical" in loss and not sparse
    if sparse:
        if y.ndim > 1 and y.shape[-1] == outputs and outputs > 1:
            return (
                f"{label} looks one-hot (shape {y.shape}) but the loss is {loss!r}, which takes "
                "integer labels: pass y.argmax(axis=-1), or use loss='categorical_crossentropy'"
            )
        if y.size and (y.dtype.kind == "f" and not np.all(np.equal(np.mod(y, 1), 0))):
            return f"{label} holds fractions; {loss!r} takes integer class labels"
        if y.size:
            low, high = int(np.min(y)), int(np.max(y))
            if low < 0 or high >= outputs:
                hint = " (shift them: y - 1)" if low == 1 and high == outputs else ""
                return (
                    f"{label} holds labels {low}..{high} but the model has {outputs} outputs, "
                    f"so {loss!r} needs labels 0..{outputs - 1}{hint}"
                )
    if categorical and (y.ndim == 1 or y.shape[-1] != outputs):
        return (
            f"{label} has shape {y.shape} but {loss!r} takes one-hot labels of shape "
            f"(n, {outputs}): use keras.utils.to_categorical(y, {outputs}), or "
            "loss='sparse_categorical_crossentropy' for integer labels"
        )
    return None


def short_error(exc: BaseException) -> str:
    """The exception's own words: its first meaningful line, without TensorFlow's graph noise."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines()]
    skip = (
        "graph execution error",
        "detected at node",
        "node:",
        "[[",
        "file ",
        "traceback",
        "exception encountered when calling",
        "arguments received by",
        "•",
    )
    kept = [line for line in lines if line and not line.lower().startswith(skip)]
    text = kept[0] if kept else type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def check_fit(hypermodel: Any, space: Any, data: Any, clear: bool = True) -> str | None:
    """Build one model with the default hyperparameters and try it on ``data``'s samples.

    Returns a sentence saying what does not fit, or ``None``. ``data`` is
    :func:`sample`'s output. The samples go through the model eagerly (no graph
    to trace); only what fails eagerly is tried again as Keras runs it in a search
    (a traced function), and reported if it fails there too. ``clear``: end with
    ``keras.backend.clear_session()``.
    """
    import keras

    from bandit_tune.space import HyperParameters

    if data is None:
        return None
    x, y, validation = data
    hp = HyperParameters(space.defaults())
    try:
        model = hypermodel.build(hp)
    except Exception:  # noqa: BLE001 — recording built it: this is the arm's own error
        return None
    try:
        if getattr(model, "optimizer", None) is None:
            # an uncompiled model for a custom fit: only the input shape can be checked
            if x is None:
                return None
            return _check_input_shape(model, x, "x")
        problem = _check_labels(model, y, "y")
        if problem is None and validation is not None:
            problem = _check_labels(model, validation[1], "validation_data y")
        if problem is not None:
            return problem
        if x is None:
            return None
        if y is None and getattr(model, "loss", None) is not None:
            return "search(x, y) got no y, and the model's loss needs targets: pass y"
        problem = _check_input_shape(model, x, "x")
        if problem is None and validation is not None:
            problem = _check_input_shape(model, validation[0], "validation_data x")
        if problem is not None:
            return problem
        count = min(SAMPLES, len(np.asarray(y))) if y is not None else None
        error = _evaluate(model, x, None if y is None else _head(y, count))
        if error is not None:
            return f"the model fails on the first samples of x and y: {short_error(error)}"
        if validation is not None:
            error = _evaluate(model, validation[0], _head(validation[1], SAMPLES))
            if error is not None:
                return f"the model fails on the validation data: {short_error(error)}"
        return None
    finally:
        if clear:
            keras.backend.clear_session()


def _evaluate(model: Any, x: Any, y: Any) -> BaseException | None:
    """``model.evaluate`` on the samples, eagerly first; the error if it fails both ways."""
    eager = getattr(model, "run_eagerly", False)
    try:
        model.run_eagerly = True
        model.evaluate(x, y, verbose=0, batch_size=SAMPLES)
        return None
    except Exception:  # noqa: BLE001 — maybe only eagerly: tried as a search runs it
        pass
    finally:
        try:
            model.run_eagerly = eager
            model.test_function = None  # Keras keeps the eager one otherwise
        except Exception:  # noqa: BLE001 — a model whose attributes are read-only
            pass
    try:
        model.evaluate(x, y, verbose=0, batch_size=SAMPLES)
    except Exception as exc:  # noqa: BLE001 — said in words by the caller
        return exc
    return None


def _check_input_shape(model: Any, x: Any, label: str) -> str | None:
    """A sentence when the samples' shape is not the model's input shape, or ``None``."""
    try:
        expected = tuple(model.input_shape)
    except Exception:  # noqa: BLE001 — several inputs or not built: evaluate will tell
        return None
    if isinstance(x, (dict, list, tuple)) or not expected or isinstance(expected[0], tuple):
        return None
    shape = tuple(np.asarray(x).shape)
    wanted, got = expected[1:], shape[1:]
    if len(wanted) != len(got) or any(w is not None and w != g for w, g in zip(wanted, got)):
        shown = tuple("?" if w is None else w for w in wanted)
        return (
            f"{label} has samples of shape {got} but the model takes inputs of shape {shown} "
            "(its Input layer)"
        )
    return None


def _head(value: Any, n: int | None) -> Any:
    if n is None or value is None or isinstance(value, (dict, list, tuple)):
        return value
    return np.asarray(value)[:n]
