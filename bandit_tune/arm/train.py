"""One arm's training in a Ray worker: build or take back its model, fit, report.

:func:`train_arm` is the Ray Tune function trainable every tuner runs (one
``model.fit`` per segment of an arm, with the reporting callback); a paused arm
resumed on the worker that paused it continues with the model kept in memory.
"""

from __future__ import annotations

import collections
import copy
import os
from typing import Any

from bandit_tune.arm.hypermodel import HyperModel, check_model
from bandit_tune.space import HyperParameters

_ARMS_BUILT = 0
#: Per worker process: the models of arms that paused here, by trial id, with their
#: epoch and size. A paused arm resumed on the same worker continues with this model
#: (already traced, optimizer state in memory) instead of being rebuilt from its
#: checkpoint. Bounded in count and in parameters (weights plus optimizer slots).
_PAUSED_MODELS: collections.OrderedDict[str, tuple[Any, int, int]] = collections.OrderedDict()
_PAUSED_KEEP = 64
_PAUSED_PARAMS = 32_000_000


def keep_paused_model(key: str, model: Any, epoch: int) -> None:
    """Remember ``model`` at ``epoch`` for ``key``, dropping the oldest beyond the bounds."""
    try:
        params = int(model.count_params())
    except Exception:  # noqa: BLE001 — an unbuilt or exotic model: count it as large
        params = _PAUSED_PARAMS // 4
    _PAUSED_MODELS[key] = (model, epoch, params)
    _PAUSED_MODELS.move_to_end(key)
    while len(_PAUSED_MODELS) > 1 and (
        len(_PAUSED_MODELS) > _PAUSED_KEEP
        or sum(p for _, _, p in _PAUSED_MODELS.values()) > _PAUSED_PARAMS
    ):
        _PAUSED_MODELS.popitem(last=False)


def forget_paused_model(key: str) -> None:
    """The model kept for ``key`` trains on: it no longer holds its checkpoint's epoch."""
    _PAUSED_MODELS.pop(key, None)


def peek_paused_model(key: str, epoch: int) -> Any:
    """The model kept for ``key`` if it is exactly at ``epoch`` (else ``None``); keeps it."""
    kept = _PAUSED_MODELS.get(key)
    return kept[0] if kept is not None and kept[1] == epoch else None


def copy_state(source: Any, target: Any) -> None:
    """Give ``target`` (built with new values) ``source``'s weights and optimizer state.

    The learning rate stays ``target``'s own (population-based training's exploit in
    memory: the same as :func:`bandit_tune.arm.checkpoints.restore_arm` from the donor's
    checkpoint).
    """
    from bandit_tune.arm.checkpoints import keeping_learning_rate

    target.set_weights(source.get_weights())
    optimizer = getattr(target, "optimizer", None)
    if optimizer is None:
        return
    if not optimizer.built:
        optimizer.build(target.trainable_variables)
    theirs = list(source.optimizer.variables)
    mine = list(optimizer.variables)
    if len(theirs) != len(mine):
        raise ValueError("the donor's optimizer has other variables than the arm's")
    with keeping_learning_rate(optimizer):
        for variable, saved in zip(mine, theirs):
            variable.assign(saved.numpy())


def take_paused_model(key: str, epoch: int) -> Any:
    """The model kept for ``key`` if it is exactly at ``epoch`` (else ``None``); forgets it."""
    kept = _PAUSED_MODELS.pop(key, None)
    if kept is not None and kept[1] == epoch:
        return kept[0]
    return None


def _node_id() -> str:
    import ray

    try:
        return str(ray.get_runtime_context().get_node_id())
    except Exception:  # noqa: BLE001 — informative only
        return ""


def build_arm(
    config: dict[str, Any], hypermodel: HyperModel, cpus: int, n_models: int, reuse: bool = False
) -> tuple[HyperParameters, list[Any]]:
    """In a worker: set TensorFlow threads, free the last arm's graph, build ``n_models`` models.

    ``reuse``: a finished arm's model of the same architecture, already traced, may
    stand in for a freshly built one (:mod:`bandit_tune.arm.model_reuse`).
    """
    from bandit_tune.arm.checkpoints import configure_threads

    configure_threads(cpus)
    global _ARMS_BUILT
    _ARMS_BUILT += 1
    if _ARMS_BUILT % 32 == 0:
        import keras

        # Free Keras' global state and TensorFlow's kernel cache now and then. Without
        # the full garbage collection it would add (0.2-0.8 s with paused models kept):
        # Python's own collector frees the arms' models as it goes.
        keras.backend.clear_session(free_memory=False)
    hp = HyperParameters(config)
    models = []
    limit = getattr(hypermodel, "max_model_size", None)
    from bandit_tune.arm.inputs import uses_default_fit

    compiled = uses_default_fit(hypermodel)  # a custom fit may train an uncompiled model
    for _ in range(n_models):
        model = hypermodel.build(hp)
        check_model(model, compiled=compiled)
        if limit is not None and model.count_params() > limit:
            raise ValueError(
                f"the model has {model.count_params():,} parameters, more than "
                f"max_model_size={limit:,}: the arm is skipped without training"
            )
        if reuse and compiled:
            from bandit_tune.arm import model_reuse

            model = model_reuse.take(model) or model
        models.append(model)
    return hp, models


def reuse_later(key: str, model: Any) -> None:
    """The arm ``key`` is over on this worker: its model may train a later arm."""
    from bandit_tune.arm import model_reuse

    kept = _PAUSED_MODELS.get(key)
    if kept is not None and kept[0] is model:
        del _PAUSED_MODELS[key]  # resumed here later, the arm loads its checkpoint
    model_reuse.give(model)


def train_arm(
    config: dict[str, Any],
    hypermodel: HyperModel,
    data: tuple[Any, Any, Any],
    fit_kwargs: dict[str, Any],
    callbacks: list[Any],
    max_epochs: int,
    checkpoint_epochs: list[int] | None,
    cpus: int,
    input_key: str | None = None,
    objective: tuple[str, str] | None = None,
    latency: bool = False,
) -> None:
    """Ray Tune function trainable for one arm: build, maybe restore, fit, report.

    ``input_key`` (one per search) lets :mod:`bandit_tune.arm.inputs` feed NumPy data
    through a tf.data pipeline kept on the worker; ``None`` leaves it to Keras.
    ``objective`` (``(metric, direction)``) keeps the best epoch's weights in the
    checkpoints. ``latency`` reports each model's forward latency (``latency_ms``).
    """
    import time

    from bandit_tune.arm import report as session
    from bandit_tune.arm.setup import import_keras_lean
    from bandit_tune.ray_tune.cluster import unpack

    import_keras_lean()  # before anything imports Keras in this worker
    from bandit_tune.arm.checkpoints import ReportCallback
    from bandit_tune.arm.inputs import fit_inputs, prebuild, uses_default_fit
    from bandit_tune.driver.arms import RESERVED_PREFIX, plain_config

    entered = time.perf_counter()
    hypermodel, callbacks = unpack(hypermodel), unpack(callbacks)
    resume_from = config.get(RESERVED_PREFIX + "checkpoint")
    # models kept in this worker's memory are found by arm id (an arm re-created as a
    # new trial keeps its id; a donor is named by it)
    key = str(config.get(RESERVED_PREFIX + "arm_id") or session.arm_key())
    config = plain_config(config)
    start = _start(key, config, hypermodel, cpus, max_epochs, resume_from)
    if start is None:
        return  # its checkpoint is at its last epoch: nothing left to train
    hp, model, initial_epoch, best, saved_states, _resumed_here, in_memory_exploit = start
    x, y, validation_data = data
    setup = _setup_report(entered, model, _resumed_here, in_memory_exploit, initial_epoch)
    from bandit_tune.arm.callbacks import per_arm, restore_states

    own = [per_arm(copy.deepcopy(c), key, 0, config) for c in callbacks]
    reporter = ReportCallback(
        checkpoint_epochs,
        max_epochs,
        extra=setup,
        on_checkpoint=lambda epoch: keep_paused_model(key, model, epoch),
        # a retry after an error in this process must not take the model, trained on
        # since, for its checkpoint's epoch
        on_train_on=lambda: forget_paused_model(key),
        objective=objective,
        best=best,
        companions=own,
        latency=latency,
    )
    arm_callbacks = [*own, restore_states(own, saved_states), reporter]
    kwargs = {**fit_kwargs, "x": x, "y": y, "epochs": max_epochs, "verbose": 0}
    kwargs.update(initial_epoch=initial_epoch, callbacks=arm_callbacks)
    if validation_data is not None:
        kwargs["validation_data"] = validation_data
    if input_key is not None and uses_default_fit(hypermodel):
        kwargs = fit_inputs(kwargs, input_key)
        prebuild(model, kwargs)
    try:
        hypermodel.fit(hp, model, **kwargs)
    except BaseException as exc:
        if session.dropped(exc) and uses_default_fit(hypermodel):
            reuse_later(key, model)  # the pool's driver is done with the arm here
        raise
    _save_as_it_ends(model, reporter, arm_callbacks)
    if uses_default_fit(hypermodel):
        reuse_later(key, model)


def _setup_report(
    entered: float, model: Any, resumed_here: bool, in_memory_exploit: bool, initial_epoch: int
) -> dict[str, Any]:
    """What every result of this segment carries: its set-up seconds and how it started."""
    import time

    from bandit_tune.arm import model_reuse

    return {
        # seconds from entering the trainable to the first epoch: build, restore
        "setup_s": time.perf_counter() - entered,
        "segment_started": time.time() - (time.perf_counter() - entered),
        "worker_pid": os.getpid(),
        "resumed_in_memory": resumed_here,
        # a finished arm's model, already traced, took this arm's initial state
        "model_reused": model_reuse.reused(model) and not resumed_here,
        "exploit_in_memory": in_memory_exploit,
        "initial_epoch": initial_epoch,
        "node_id": _node_id(),
    }


def _start(
    key: str,
    config: dict[str, Any],
    hypermodel: HyperModel,
    cpus: int,
    max_epochs: int,
    resume_from: str | None,
) -> tuple[Any, Any, int, Any, list[Any], bool, bool] | None:
    """The arm's model to train on: built, kept in this worker, or restored from a checkpoint.

    Returns ``(hp, model, initial_epoch, best, callback states, resumed in memory,
    exploit copied in memory)``, or ``None`` (after reporting) when the checkpoint is
    at the last epoch already. The checkpoint is the runner's, else (an arm of an
    interrupted search) the snapshot's.
    """
    from bandit_tune.arm import report as session
    from bandit_tune.arm.checkpoints import (
        checkpoint_best,
        checkpoint_callbacks,
        checkpoint_epoch,
        checkpoint_logs,
        restore_arm,
    )
    from bandit_tune.driver.exploit import exploited_from

    with session.checkpoint_directory(resume_from) as directory:
        if directory is None:
            hp, (model,) = build_arm(config, hypermodel, cpus, 1, reuse=True)
            return hp, model, 0, None, [], False, False
        initial_epoch = checkpoint_epoch(directory)
        if initial_epoch >= max_epochs:  # nothing left to train: build nothing
            report_finished(checkpoint_logs(directory), initial_epoch)
            return None
        # another arm's checkpoint (population-based training's exploit): the model is
        # built anew with the new values, and the donor's best is not ours
        origin = exploited_from(directory)
        exploited = origin is not None
        best = None if exploited else checkpoint_best(directory)
        saved_states = checkpoint_callbacks(directory)
        model = take_paused_model(key, -1 if exploited else initial_epoch)
        if model is not None:
            return HyperParameters(config), model, initial_epoch, best, saved_states, True, False
        hp, (model,) = build_arm(config, hypermodel, cpus, 1, reuse=True)
        donor = None
        if origin is not None:  # the donor paused here at that step: copy in memory
            donor = peek_paused_model(str(origin["donor"]), int(origin["step"]))
        if donor is not None:
            copy_state(donor, model)
            return hp, model, initial_epoch, best, saved_states, False, True
        initial_epoch = restore_arm(model, directory, keep_learning_rate=exploited)
        return hp, model, initial_epoch, best, saved_states, False, False


def _save_as_it_ends(model: Any, reporter: Any, arm_callbacks: list[Any]) -> None:
    """Report a last checkpoint when the model's final state is not the last one saved.

    EarlyStopping put the best weights back after the last report, or a custom fit
    (HyperModel.fit with its own loop) ended at an epoch that had no checkpoint.
    """
    import tempfile

    from bandit_tune.arm import report as session
    from bandit_tune.arm.checkpoints import save_arm

    restored = any(
        getattr(c, "restore_best_weights", False) and getattr(c, "stopped_epoch", 0)
        for c in arm_callbacks
    )
    unsaved = reporter.last_epoch and reporter.last_checkpoint != reporter.last_epoch
    if (restored or unsaved) and reporter.last_epoch:
        with tempfile.TemporaryDirectory() as directory:
            save_arm(model, directory, reporter.last_epoch, reporter.last_logs, reporter.best)
            session.report(dict(reporter.last_logs), checkpoint=directory)


def report_finished(logs: dict[str, float], epoch: int) -> None:
    """Report once more the last result of an arm whose checkpoint is at its last epoch.

    An interrupted search re-creates an arm that was running when the driver died;
    if the arm had just finished (its last checkpoint written, the snapshot not yet
    updated), there is nothing left to train. Tune still needs a result with the
    metric from every trial, so the checkpoint's own logs are reported again (the
    scheduler takes a step it has seen as a repeat), and the arm ends as finished.
    """
    from bandit_tune.arm import report as session
    from bandit_tune.arm.checkpoints import EPOCH_KEY

    session.report({**logs, EPOCH_KEY: epoch, "completed": True})
