"""k-fold cross-validation of one arm: one model per fold, decisions on the fold mean.

Folds are made once in the driver with scikit-learn's splitters
(``StratifiedKFold`` for classification targets, ``KFold`` otherwise) and shipped
to workers with the data. Between two decision steps each fold trains in one
``fit`` call; then every epoch of the segment is reported with the mean over
folds of each Keras log, its ``_std``, and each fold's value as
``split{k}_<name>``, so the policy decides on the cross-validated mean.
"""

from __future__ import annotations

import copy
import math
import os
import tempfile
from typing import Any

import numpy as np


def make_folds(x: Any, y: Any, cv: Any, seed: int | None = None) -> list[tuple[Any, Any]]:
    """Return ``[(train_index, validation_index), ...]`` for ``cv`` folds or a splitter."""
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.utils.multiclass import type_of_target

    if isinstance(cv, bool) or (isinstance(cv, int) and cv < 2):
        raise ValueError(f"cv must be an integer >= 2 or a scikit-learn splitter, got {cv!r}")
    if isinstance(cv, int):
        random_state = 0 if seed is None else seed
        classes = y is not None and type_of_target(np.asarray(y)) in ("binary", "multiclass")
        splitter: Any = (StratifiedKFold if classes else KFold)(
            cv, shuffle=True, random_state=random_state
        )
    elif callable(getattr(cv, "split", None)):
        splitter = cv
    else:
        raise ValueError(f"cv must be an integer >= 2 or a scikit-learn splitter, got {cv!r}")
    folds = [(np.asarray(tr), np.asarray(va)) for tr, va in splitter.split(x, y)]
    if len(folds) < 2:
        raise ValueError(f"cv={cv!r} produced {len(folds)} fold(s); need at least 2")
    return folds


def _take(data: Any, index: Any) -> Any:
    return None if data is None else data[index]


class _Collect:
    """Keras callback that keeps each epoch's logs (built lazily to avoid importing Keras)."""

    def __new__(cls) -> Any:
        import keras

        class Collect(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.logs: list[dict[str, float]] = []
                self.stopped = False

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                self.logs.append({k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0})

            def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
                self.stopped = bool(getattr(self.model, "stop_training", False))

        return Collect()


def summarise(fold_logs: list[dict[str, float]]) -> dict[str, float]:
    """Mean, std and per-fold values of each log across folds."""
    out: dict[str, float] = {}
    for key in fold_logs[0]:
        values = [logs.get(key, math.nan) for logs in fold_logs]
        out[key] = float(np.mean(values))
        out[f"{key}_std"] = float(np.std(values))
        for k, value in enumerate(values):
            out[f"split{k}_{key}"] = float(value)
    return out


def train_arm_cv(
    config: dict[str, Any],
    hypermodel: Any,
    data: tuple[Any, Any, list[tuple[Any, Any]]],
    fit_kwargs: dict[str, Any],
    callbacks: list[Any],
    max_epochs: int,
    checkpoint_epochs: list[int] | None,
    cpus: int,
    input_key: str | None = None,
    latency: bool = False,
) -> None:
    """Ray Tune function trainable for one cross-validated arm.

    ``input_key`` (one per search): see :func:`bandit_tune.arm.train.train_arm`. Every
    report carries the model's ``params`` (and ``latency_ms`` with ``latency``),
    measured on the first fold's model.
    """
    from bandit_tune.arm import report as session
    from bandit_tune.arm.setup import import_keras_lean
    from bandit_tune.ray_tune.cluster import unpack

    import_keras_lean()  # before anything imports Keras in this worker
    from bandit_tune.arm.callbacks import callback_states, per_arm, restore_states
    from bandit_tune.arm.inputs import fit_inputs, prebuild, uses_default_fit
    from bandit_tune.driver.arms import RESERVED_PREFIX, plain_config

    hypermodel, callbacks = unpack(hypermodel), unpack(callbacks)
    x, y, folds = data
    resume_from = config.get(RESERVED_PREFIX + "checkpoint")
    arm_name = str(config.get(RESERVED_PREFIX + "arm_id") or session.arm_key())
    config = plain_config(config)
    start = _start_folds(config, hypermodel, cpus, len(folds), max_epochs, resume_from)
    if start is None:
        return  # its checkpoint is at its last epoch: nothing left to train
    hp, models, epoch, states = start
    # each fold's own copies of the callbacks, kept across segments (EarlyStopping's
    # count goes on from one rung to the next, and across a pause)
    own = [
        [per_arm(copy.deepcopy(c), arm_name, k, config, len(folds)) for c in callbacks]
        for k in range(len(folds))
    ]
    ends = sorted({s for s in (checkpoint_epochs or []) if s < max_epochs} | {max_epochs})
    sizes: dict[str, float] = {}
    while epoch < max_epochs:
        end = epoch + 1 if checkpoint_epochs is None else next(s for s in ends if s > epoch)
        per_fold, stopped = [], False
        for k, (model, (train, valid)) in enumerate(zip(models, folds)):
            collect = _Collect()
            kwargs = dict(fit_kwargs)
            kwargs.update(
                x=_take(x, train),
                y=_take(y, train),
                validation_data=(_take(x, valid), _take(y, valid)),
                epochs=end,
                initial_epoch=epoch,
                verbose=0,
                callbacks=[*own[k], restore_states(own[k], states.get(k, [])), collect],
            )
            if input_key is not None and uses_default_fit(hypermodel):
                kwargs = fit_inputs(kwargs, input_key, f"fold{k}")
                prebuild(model, kwargs)
            hypermodel.fit(hp, model, **kwargs)
            states[k] = callback_states(own[k])
            per_fold.append(collect.logs)
            stopped = stopped or collect.stopped
        trained = min(len(logs) for logs in per_fold)
        if trained == 0:
            return
        if not sizes:
            sizes.update(_sizes(models[0], latency))
        if not _report_segment(per_fold, trained, epoch, end, stopped, sizes, models, own):
            return  # diverged
        if trained < end - epoch or stopped:
            return  # the folds ended early (EarlyStopping or a fit with fewer epochs)
        epoch = end


def _start_folds(
    config: dict[str, Any],
    hypermodel: Any,
    cpus: int,
    n_folds: int,
    max_epochs: int,
    resume_from: str | None,
) -> tuple[Any, list[Any], int, dict[int, list[Any]]] | None:
    """The folds' models: built, or restored from the checkpoint; ``(hp, models, epoch, states)``.

    ``None`` (after reporting) when the checkpoint is at the last epoch already. The
    checkpoint is the runner's, else (an arm of an interrupted search) the snapshot's.
    """
    from bandit_tune.arm import report as session
    from bandit_tune.arm.checkpoints import (
        checkpoint_callbacks,
        checkpoint_epoch,
        checkpoint_logs,
        restore_arm,
    )
    from bandit_tune.arm.train import build_arm, report_finished
    from bandit_tune.driver.exploit import exploited_from

    states: dict[int, list[Any]] = {}
    with session.checkpoint_directory(resume_from) as directory:
        if directory is None:
            hp, models = build_arm(config, hypermodel, cpus, n_folds)
            return hp, models, 0, states
        fold0 = os.path.join(directory, "fold0")
        epoch = checkpoint_epoch(fold0)
        if epoch >= max_epochs:  # nothing left to train: build nothing
            report_finished(checkpoint_logs(fold0), epoch)
            return None
        hp, models = build_arm(config, hypermodel, cpus, n_folds)
        exploited = exploited_from(directory) is not None  # another arm's, new values
        for k, model in enumerate(models):
            restore_arm(model, os.path.join(directory, f"fold{k}"), exploited)
            states[k] = checkpoint_callbacks(os.path.join(directory, f"fold{k}"))
        return hp, models, epoch, states


def _sizes(model: Any, latency: bool) -> dict[str, float]:
    """The model's ``params`` (and ``latency_ms``), reported with every result."""
    from bandit_tune.arm.checkpoints import forward_latency_ms

    sizes: dict[str, float] = {
        "params": int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    }
    if latency:
        sizes["latency_ms"] = forward_latency_ms(model)
    return sizes


def _report_segment(
    per_fold: list[list[dict[str, float]]],
    trained: int,
    epoch: int,
    end: int,
    stopped: bool,
    sizes: dict[str, float],
    models: list[Any],
    own: list[list[Any]],
) -> bool:
    """Report the fold means of each epoch trained; a checkpoint with the last. False: diverged."""
    from bandit_tune.arm import report as session
    from bandit_tune.arm.checkpoints import EPOCH_KEY, mark_divergence, save_arm

    for i in range(trained):
        done = epoch + i + 1
        metrics = summarise([logs[i] for logs in per_fold])
        metrics.update(sizes)
        diverged = mark_divergence(metrics, list(metrics))  # the fold logs only
        metrics[EPOCH_KEY] = done
        last = i == trained - 1 or diverged
        metrics["early_stopped"] = bool(last and stopped and not diverged)
        metrics["completed"] = bool(last and not stopped and not diverged and trained < end - epoch)
        if not last:
            session.report(metrics)
            continue
        with tempfile.TemporaryDirectory() as directory:
            for k, model in enumerate(models):
                os.makedirs(os.path.join(directory, f"fold{k}"))
                # the fold-mean result goes with fold 0 (see report_finished)
                logs = metrics if k == 0 else None
                save_arm(model, os.path.join(directory, f"fold{k}"), done, logs, None, own[k])
            session.report(metrics, checkpoint=directory)
        if diverged:
            return False
    return True
