"""Keras callbacks with paths, made per arm (keras-tuner's layout).

A ``TensorBoard`` or ``ModelCheckpoint`` passed to ``search(callbacks=...)`` is
copied for every arm. Left as they are, a relative path would land in Ray's
worker folder and an absolute one would make every arm write the same file. So
the driver makes the paths absolute (:func:`absolute_paths`, against the folder
``search`` was called from), and each arm's copy writes below its own folder
(:func:`per_arm`): ``<log_dir>/<arm>/execution<k>`` for TensorBoard, with the
hparams plugin's record of the arm's values (TensorBoard's HParams tab compares
arms), and ``<dir>/<arm>/<file name>`` for ModelCheckpoint. With ``cv`` the
``k`` of ``execution<k>`` is the fold.
"""

from __future__ import annotations

import math
import os
from typing import Any

#: The attributes of Keras' EarlyStopping that carry its patience across a pause.
_EARLY_STOPPING_STATE = ("wait", "best", "best_epoch", "stopped_epoch")


def _keras_kind(callback: Any) -> str | None:
    """The Keras callback class among those handled here that ``callback`` is (or extends)."""
    for cls in type(callback).__mro__:
        if (
            cls.__name__ in ("TensorBoard", "ModelCheckpoint", "EarlyStopping")
            and "keras" in cls.__module__
        ):
            return cls.__name__
    return None


def _kind(callback: Any) -> str | None:
    name = type(callback).__name__
    return _keras_kind(callback) or (name if name in ("TensorBoard", "ModelCheckpoint") else None)


def absolute_paths(callbacks: list[Any]) -> list[Any]:
    """``callbacks`` with TensorBoard's ``log_dir`` and ModelCheckpoint's ``filepath`` absolute."""
    for callback in callbacks:
        kind = _kind(callback)
        if kind == "TensorBoard":
            callback.log_dir = os.path.abspath(os.fspath(callback.log_dir))
        elif kind == "ModelCheckpoint":
            callback.filepath = os.path.abspath(os.fspath(callback.filepath))
    return callbacks


def per_arm(
    callback: Any, arm_id: str, execution: int, values: dict[str, Any], executions: int = 1
) -> Any:
    """Point a copied TensorBoard / ModelCheckpoint at the arm's own folder (else unchanged).

    With several models per arm (``executions_per_trial`` or ``cv``) each
    ModelCheckpoint writes below ``<arm>/execution<k>``.
    """
    kind = _kind(callback)
    if kind == "TensorBoard":
        callback.log_dir = os.path.join(callback.log_dir, arm_id, f"execution{execution}")
        _record_hparams(callback.log_dir, values, arm_id)
    elif kind == "ModelCheckpoint":
        head, tail = os.path.split(callback.filepath)
        folder = os.path.join(head, arm_id)
        if executions > 1:
            folder = os.path.join(folder, f"execution{execution}")
        callback.filepath = os.path.join(folder, tail)
        os.makedirs(folder, exist_ok=True)
    return callback


def _record_hparams(log_dir: str, values: dict[str, Any], arm_id: str) -> None:
    """Write the arm's values for TensorBoard's HParams tab (once per log folder)."""
    marker = os.path.join(log_dir, ".hparams_written")
    if os.path.exists(marker):
        return  # a resumed arm: recorded when it started
    try:
        import tensorflow as tf
        from tensorboard.plugins.hparams import api as hparams_api
    except ImportError:  # TensorBoard not installed: the scalars still go to log_dir
        return
    plain = {
        k: v if isinstance(v, (bool, int, float, str)) else str(v)
        for k, v in values.items()
        if v is not None
    }
    os.makedirs(log_dir, exist_ok=True)
    with tf.summary.create_file_writer(os.path.join(log_dir, "hparams")).as_default():
        hparams_api.hparams(plain, trial_id=arm_id)
    with open(marker, "w") as f:
        f.write(arm_id)


def callback_states(callbacks: list[Any]) -> list[dict[str, Any] | None]:
    """What the arm's callbacks must remember across a pause (saved with its checkpoint).

    Keras' ``EarlyStopping`` counts epochs without improvement; an arm paused at a
    rung and resumed later gets a fresh copy, which would start counting again.
    Its counter and best value go with the checkpoint instead (``None`` for other
    callbacks).
    """
    states: list[dict[str, Any] | None] = []
    for callback in callbacks:
        if not _is_early_stopping(callback):
            states.append(None)
            continue
        state: dict[str, Any] = {}
        for name in _EARLY_STOPPING_STATE:
            value = getattr(callback, name, None)
            if hasattr(value, "item"):
                value = value.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = None if math.isnan(value) else ("inf" if value > 0 else "-inf")
            state[name] = value
        states.append(state)
    return states


def _is_early_stopping(callback: Any) -> bool:
    return _keras_kind(callback) == "EarlyStopping"


def restore_states(callbacks: list[Any], states: list[dict[str, Any] | None]) -> Any:
    """A Keras callback that gives ``callbacks`` their saved states as training begins.

    Put it after them: Keras' ``EarlyStopping`` resets itself in ``on_train_begin``.
    """
    import keras

    class RestoreStates(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            for callback, state in zip(callbacks, states, strict=False):
                if state is None or not _is_early_stopping(callback):
                    continue
                for name, value in state.items():
                    if value in ("inf", "-inf"):
                        value = float(value)
                    setattr(callback, name, value)

    return RestoreStates()
