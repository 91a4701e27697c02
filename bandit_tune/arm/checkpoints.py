"""Keras side of an arm: per-epoch reports to Ray Tune, checkpoints at rungs, resume.

:class:`ReportCallback` reports every Keras log (``loss``, ``accuracy``,
``val_loss``, ...) after each epoch and attaches a checkpoint — weights,
optimizer state and the epoch — only at the epochs where the policy may pause
or stop the arm, and at the last epoch. :func:`restore` rebuilds that state so a
resumed arm continues at the next epoch with its optimizer state, never
retraining an epoch.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import Any

import keras
import numpy as np

from bandit_tune.arm.model_state import load_state, save_state
from bandit_tune.objective import better

EPOCH_KEY = "epoch"
"""Result key holding the number of epochs the arm has trained (1-based)."""

_STATE = "arm.json"
_BEST = "best.npz"

Best = tuple[int, float, Any]
"""The arm's best epoch so far: ``(epoch, objective value, weights or None)``."""


def save_arm(
    model: keras.Model,
    directory: str,
    epoch: int,
    logs: dict[str, Any] | None = None,
    best: Best | None = None,
    callbacks: list[Any] | None = None,
) -> None:
    """Write weights, optimizer state and ``epoch`` into ``directory``.

    The layers' and the optimizer's variables (moments, iteration count) go into
    one file (:mod:`bandit_tune.arm.model_state`); no pickle is involved, so loading
    it back is safe. ``best`` (the best epoch so far) is kept beside it:
    its epoch and value, and its weights when they are not the model's own.
    ``callbacks`` (the arm's own) save what must survive a pause (see
    :func:`bandit_tune.arm.callbacks.callback_states`).
    """
    save_state(model, directory)
    state: dict[str, Any] = {"epoch": epoch, "logs": _plain_logs(logs or {})}
    if callbacks:
        from bandit_tune.arm.callbacks import callback_states

        state["callbacks"] = callback_states(callbacks)
    if best is not None:
        best_epoch, value, weights = best
        state["best"] = {"epoch": int(best_epoch), "value": float(value)}
        if best_epoch != epoch and weights is not None:
            np.savez(os.path.join(directory, _BEST), *weights)
    with open(os.path.join(directory, _STATE), "w") as f:
        json.dump(state, f)


def checkpoint_best(directory: str) -> Best | None:
    """The best epoch a :func:`save_arm` checkpoint knows of, with its weights if kept apart."""
    info = _checkpoint_state(directory).get("best")
    if not info:
        return None
    weights = None
    path = os.path.join(directory, _BEST)
    if os.path.exists(path):
        with np.load(path) as saved:
            weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    return int(info["epoch"]), float(info["value"]), weights


def restore_best(model: keras.Model, directory: str) -> int | None:
    """Give a model restored from ``directory`` the weights of its best epoch; return that epoch.

    ``None`` when the checkpoint knows no best epoch (the model keeps its last weights).
    """
    best = checkpoint_best(directory)
    if best is None:
        return None
    if best[2] is not None:
        model.set_weights(best[2])
    return best[0]


def restore_arm(model: keras.Model, directory: str, keep_learning_rate: bool = False) -> int:
    """Load what :func:`save_arm` wrote into a freshly built ``model``; return its epoch.

    ``keep_learning_rate``: the model was built with new hyperparameters and takes
    another arm's state (population-based training's exploit): the optimizer's
    moments and step count come from the checkpoint, its learning rate stays the
    one the new configuration built it with (Keras saves it among the optimizer's
    variables). Every other new value is in the freshly built model already.
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        # Build the optimizer first so its saved variables have somewhere to go.
        optimizer.build(model.trainable_variables)
    with keeping_learning_rate(optimizer if keep_learning_rate else None):
        load_state(model, directory)
    return checkpoint_epoch(directory)


@contextlib.contextmanager
def keeping_learning_rate(optimizer: Any) -> Iterator[None]:
    """Whatever the block loads into ``optimizer``, its learning rate stays as it was.

    ``None`` (or a learning-rate schedule): nothing is kept.
    """
    rate = getattr(optimizer, "_learning_rate", None)
    if not (hasattr(rate, "assign") and hasattr(rate, "numpy")):
        yield
        return
    value = rate.numpy()
    yield
    rate.assign(value)


def _checkpoint_state(directory: str) -> dict[str, Any]:
    with open(os.path.join(directory, _STATE)) as f:
        return dict(json.load(f))


def checkpoint_epoch(directory: str) -> int:
    """The epoch a :func:`save_arm` checkpoint in ``directory`` was taken at."""
    return int(_checkpoint_state(directory)["epoch"])


def checkpoint_callbacks(directory: str) -> list[dict[str, Any] | None]:
    """The callback states :func:`save_arm` stored with the checkpoint (maybe empty)."""
    return list(_checkpoint_state(directory).get("callbacks") or [])


def checkpoint_logs(directory: str) -> dict[str, float]:
    """The logs :func:`save_arm` stored with the checkpoint in ``directory`` (maybe empty)."""
    return dict(_checkpoint_state(directory).get("logs") or {})


def _plain_logs(logs: dict[str, Any]) -> dict[str, float]:
    plain = {}
    for k, v in logs.items():
        if isinstance(v, (str, bytes)) or np.ndim(v) != 0:
            continue
        try:
            plain[k] = float(v)
        except (TypeError, ValueError):
            continue
    return plain


def mark_divergence(metrics: dict[str, Any], log_keys: Iterable[str]) -> bool:
    """Flag an epoch whose loss is not finite; return whether it diverged.

    The epoch's other logs (``val_accuracy``...) were computed with broken weights
    (NaN after the first non-finite step), so they are set to NaN: a diverged epoch
    never ranks an arm or makes it the best. Its losses are kept as reported.
    """
    keys = list(log_keys)
    diverged = not all(math.isfinite(metrics[k]) for k in keys if k.endswith("loss"))
    metrics["diverged"] = diverged
    if diverged:
        for k in keys:
            if "loss" not in k:
                metrics[k] = math.nan
    return diverged


class ReportCallback(keras.callbacks.Callback):
    """Report Keras logs to Ray Tune after every epoch; checkpoint where it matters.

    Put it last in ``callbacks`` so that it sees a stop requested by
    ``EarlyStopping`` in the same epoch.

    Args:
        checkpoint_epochs: epochs (1-based) after which to attach a checkpoint;
            ``None`` checkpoints every epoch.
        max_epochs: the last epoch, always checkpointed.
        extra: constant keys added to every report.
        on_checkpoint: called with the epoch after each checkpoint is written,
            before it is reported (the trainable keeps the model for a quick resume).
        on_train_on: called when an epoch starts after a checkpoint: the model kept
            at that checkpoint is no longer at its epoch (the trainable forgets it).
        objective: ``(metric, "max" | "min")``: the best epoch's weights are kept and
            saved with each checkpoint, so the tuner can return the model at the
            epoch its best score refers to (as keras-tuner does).
        best: the best epoch before this stretch of training (from the checkpoint
            it resumes).
        companions: the arm's own callbacks, whose state goes with each checkpoint.
        latency: also report ``latency_ms``, the median milliseconds of a forward
            pass of the model on a batch of 32 (5 timed calls after a warm-up, on
            the worker), for a search that trades accuracy against speed.

    Every report carries ``params``, the model's trainable parameters (a
    built-in objective: ``Objective("params", "min")``).
    """

    def __init__(
        self,
        checkpoint_epochs: Iterable[int] | None = None,
        max_epochs: int | None = None,
        extra: dict[str, Any] | None = None,
        on_checkpoint: Any = None,
        objective: tuple[str, str] | None = None,
        best: Best | None = None,
        companions: list[Any] | None = None,
        latency: bool = False,
        on_train_on: Any = None,
    ) -> None:
        super().__init__()
        self.latency = latency
        self.on_train_on = on_train_on
        self._sizes: dict[str, float] = {}
        self.companions = list(companions or [])
        self.on_checkpoint = on_checkpoint
        self.objective = objective
        self.best = best
        self.checkpoint_epochs = None if checkpoint_epochs is None else set(checkpoint_epochs)
        self.max_epochs = max_epochs
        self.extra = dict(extra or {})
        self.last_epoch = 0
        #: The epoch of the last checkpoint reported (0: none yet).
        self.last_checkpoint = 0
        self.last_logs: dict[str, float] = {}
        self.diverged = False
        self._epoch_started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Start the epoch's clock."""
        if self.on_train_on is not None and self.last_checkpoint and epoch >= self.last_checkpoint:
            self.on_train_on()
        self._epoch_started = time.perf_counter()

    def _final_epoch(self) -> int | None:
        # Keras tells callbacks the epochs of this fit call; a HyperModel.fit may
        # have tuned them below max_epochs.
        return (self.params or {}).get("epochs") or self.max_epochs

    def _wants_checkpoint(self, epoch: int) -> bool:
        return (
            self.checkpoint_epochs is None
            or epoch in self.checkpoint_epochs
            or epoch == self._final_epoch()
            or bool(getattr(self.model, "stop_training", False))
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Report this epoch (1-based ``epoch`` key) and maybe a checkpoint."""
        from bandit_tune.arm import report as session

        done = epoch + 1
        plain = _plain_logs(logs or {})
        metrics = {**plain, **self.extra, **self._model_size(), EPOCH_KEY: done}
        # seconds of this epoch's training and validation alone (no report, no checkpoint)
        metrics["epoch_s"] = time.perf_counter() - self._epoch_started
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            # optimizer steps so far: shows that a resumed arm kept its optimizer state
            metrics["optimizer_iterations"] = int(optimizer.iterations)
        if mark_divergence(metrics, plain):
            self.diverged = True
            self.model.stop_training = True
        final = self._final_epoch()
        metrics["early_stopped"] = bool(
            getattr(self.model, "stop_training", False)
            and not self.diverged
            and (final is None or done < final)
        )
        metrics["completed"] = bool(final is not None and done >= final and not self.diverged)
        self.last_epoch, self.last_logs = done, metrics
        self._track_best(done, metrics)
        if self._wants_checkpoint(done):
            with tempfile.TemporaryDirectory() as directory:
                save_arm(self.model, directory, done, metrics, self.best, self.companions)
                self.last_checkpoint = done
                if self.on_checkpoint is not None and done != self._final_epoch():
                    self.on_checkpoint(done)
                session.report(metrics, checkpoint=directory)
        else:
            session.report(metrics)

    def _model_size(self) -> dict[str, float]:
        """``params`` (and ``latency_ms`` when asked): measured once per model."""
        if not self._sizes:
            import numpy as np

            weights = getattr(self.model, "trainable_weights", [])
            self._sizes["params"] = int(sum(int(np.prod(w.shape)) for w in weights))
            if self.latency:
                self._sizes["latency_ms"] = forward_latency_ms(self.model)
        return self._sizes

    def _track_best(self, epoch: int, metrics: dict[str, Any]) -> None:
        if self.objective is None:
            return
        name, direction = self.objective
        value = metrics.get(name)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        if self.best is not None and not better(value, self.best[1], direction):
            return
        self.best = (epoch, float(value), self.model.get_weights())


def forward_latency_ms(model: Any, batch: int = 32, repeats: int = 5) -> float:
    """Median milliseconds of ``model(x, training=False)`` on a batch of zeros."""
    import numpy as np

    shapes = [tuple(int(d or 1) for d in t.shape[1:]) for t in model.inputs]
    inputs = [np.zeros((batch, *shape), dtype="float32") for shape in shapes]
    x = inputs[0] if len(inputs) == 1 else inputs
    model(x, training=False)  # warm-up (traces the call)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(x, training=False)
        times.append((time.perf_counter() - started) * 1000.0)
    return float(np.median(times))


def configure_threads(cpus: int) -> None:
    """Give TensorFlow ``cpus`` intra-op threads, where it is not initialised yet."""
    try:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(max(1, int(cpus)))
        tf.config.threading.set_inter_op_parallelism_threads(1)
        # arms that share a GPU (gpus_per_arm < 1) must not each reserve all its memory
        for gpu in tf.config.list_physical_devices("GPU"):
            tf.config.experimental.set_memory_growth(gpu, True)
    except (RuntimeError, ValueError, ImportError):
        pass  # already initialised in this (reused) worker: keep its settings


def load_model(build: Any, hp: Any, checkpoint: str) -> Any:
    """A model built by ``build(hp)`` with the weights of an arm's best epoch in ``checkpoint``.

    With cross-validation the checkpoint holds one model per fold: fold 0's stands
    in, at its last epoch. A checkpoint in remote storage is fetched first.
    """
    import os

    from bandit_tune.arm.report import local_folder

    keras.backend.clear_session()
    model = build(hp)
    with local_folder(checkpoint) as directory:
        fold0 = os.path.join(directory, "fold0")
        if os.path.isdir(fold0):
            restore_arm(model, fold0)
        else:
            restore_arm(model, directory)
            restore_best(model, directory)
    return model
