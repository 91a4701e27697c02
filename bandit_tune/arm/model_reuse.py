"""A finished arm's compiled, traced model trains the next arm of the same architecture.

Most of a new arm's first epoch on a small model is TensorFlow tracing its training
and validation steps: for the digits MLP ~0.45 s of a ~0.55 s first epoch, against
~0.09 s for every later one. A search over units and learning rates builds the same
architecture again and again, and traces it again each time. When an arm ends on a
worker (it completed, or the driver dropped it after its policy's decision), its model
stays here as a spare; a new arm whose freshly built model has the same architecture,
compile settings and weight shapes takes the spare instead. The spare receives the
fresh model's initial weights and its optimizer's initial variables (the learning rate
among them), so it trains as the fresh model would have, from the same start, with
the steps it traced already.

Only models whose sameness their configuration shows are reused: ``Sequential`` and
functional models made of Keras' own layers (no ``Lambda``), compiled with Keras' own
optimizer, losses and metrics (given by name or as Keras objects; a function of the
user's may close over a hyperparameter that no configuration shows). The learning
rate may differ (a number: a variable the traced step reads); every other optimizer
setting must be equal. Anything else is built and traced as before.
"""

from __future__ import annotations

import json
import threading
import weakref
from typing import Any

KEEP = 32
"""Spare models one worker process keeps (the most recently finished)."""

MAX_PARAMS = 8_000_000
"""Parameters the spares may hold in all (weights and optimizer slots alike)."""

_NOT_REUSED = frozenset({"Lambda", "TFSMLayer", "TorchModuleWrapper", "JaxLayer", "FlaxLayer"})
_LOCK = threading.Lock()
_SPARES: list[tuple[str, Any, int]] = []  # (signature, model, parameters), oldest first
_REUSED: weakref.WeakSet[Any] = weakref.WeakSet()  # models take() handed out


def signature(model: Any) -> str | None:
    """What must be equal for one model to train as another; ``None``: never reused."""
    try:
        import keras
        from keras.src.models.functional import Functional
    except ImportError:  # pragma: no cover - another Keras layout
        return None
    if type(model) not in (keras.Sequential, Functional):
        return None
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(model, "built", False):
        return None
    if not type(optimizer).__module__.startswith("keras."):
        return None
    layers = list(model._flatten_layers(include_self=False, recursive=True))
    for layer in layers:
        kind = type(layer)
        if not kind.__module__.startswith("keras.") or kind.__name__ in _NOT_REUSED:
            return None
    try:
        config = model.get_config()
        compiled = model.get_compile_config()
    except Exception:  # noqa: BLE001 - what cannot be described is not reused
        return None
    if not isinstance(compiled, dict) or not _keras_only(config) or not _keras_only(compiled):
        return None
    rate = getattr(optimizer, "_learning_rate", None)
    options = (compiled.get("optimizer") or {}).get("config")
    if isinstance(options, dict):
        options.pop("name", None)
        if hasattr(rate, "assign") and isinstance(options.get("learning_rate"), (int, float)):
            options.pop("learning_rate")  # a variable: the spare takes the new value
    names = {layer.name: f"#{i}" for i, layer in enumerate(layers)}
    names[model.name] = "#model"
    shapes = [[list(w.shape), str(w.dtype), bool(w.trainable)] for w in model.weights]
    try:
        return json.dumps(
            [type(model).__name__, _renamed(config, names), _renamed(compiled, names), shapes],
            sort_keys=True,
        )
    except (TypeError, ValueError):
        return None


def _keras_only(value: Any) -> bool:
    """Whether every object a configuration names is Keras' own (not the user's code)."""
    if isinstance(value, dict):
        module = value.get("module")
        if isinstance(module, str) and not module.startswith("keras"):
            return False
        if value.get("registered_name") not in (None, value.get("class_name")):
            return False  # registered by the user: its config may not tell everything
        return all(_keras_only(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_keras_only(v) for v in value)
    return not callable(value)


_LINKS = frozenset({"inbound_nodes", "input_layers", "output_layers", "keras_history"})


def _renamed(value: Any, names: dict[str, str], link: bool = False) -> Any:
    """``value`` without names, its links between layers by position (each model names its own).

    Only strings where a functional model's config links layers are read as layer
    names: an activation called like a layer elsewhere keeps its meaning.
    """
    if isinstance(value, dict):
        return {
            k: _renamed(v, names, link or k in _LINKS) for k, v in value.items() if k != "name"
        }
    if isinstance(value, (list, tuple)):
        return [_renamed(v, names, link) for v in value]
    if link and isinstance(value, str):
        return names.get(value, value)
    return value


def _size(model: Any) -> int:
    try:
        return int(model.count_params()) * 3  # weights and, say, two optimizer slots each
    except Exception:  # noqa: BLE001 - counted as too large to keep
        return MAX_PARAMS + 1


def give(model: Any) -> None:
    """The arm that trained ``model`` is over here: keep the model for a later arm."""
    key = signature(model)
    if key is None:
        return
    size = _size(model)
    if size > MAX_PARAMS:
        return
    with _LOCK:
        if any(spare is model for _, spare, _ in _SPARES):
            return
        _SPARES.append((key, model, size))
        while len(_SPARES) > KEEP or sum(s for _, _, s in _SPARES) > MAX_PARAMS:
            _SPARES.pop(0)


def take(fresh: Any) -> Any | None:
    """A spare set to ``fresh``'s initial state, to train in its place; ``None``: keep ``fresh``."""
    with _LOCK:
        if not _SPARES:
            return None
    key = signature(fresh)
    if key is None:
        return None
    with _LOCK:
        found = next((i for i, (k, _, _) in enumerate(_SPARES) if k == key), None)
        if found is None:
            return None
        _, spare, _ = _SPARES.pop(found)
    try:
        _reset(spare, fresh)
    except Exception:  # noqa: BLE001 - the fresh model trains instead; the spare is dropped
        return None
    with _LOCK:
        _REUSED.add(spare)
    return spare


def reused(model: Any) -> bool:
    """Whether ``model`` trained an earlier arm (:func:`take` handed it out)."""
    with _LOCK:
        return model in _REUSED


def _reset(spare: Any, fresh: Any) -> None:
    """Give ``spare`` the weights and optimizer variables ``fresh`` starts with."""
    spare.set_weights(fresh.get_weights())
    optimizer = fresh.optimizer
    if not optimizer.built:
        optimizer.build(fresh.trainable_variables)
    if not spare.optimizer.built:  # given before it trained a step
        spare.optimizer.build(spare.trainable_variables)
    mine, theirs = list(spare.optimizer.variables), list(optimizer.variables)
    if [tuple(v.shape) for v in mine] != [tuple(v.shape) for v in theirs]:
        raise ValueError("the optimizers hold other variables")
    for variable, value in zip(mine, theirs):
        variable.assign(value)
    spare.reset_metrics()
    spare.stop_training = False


def clear() -> None:
    """Forget every spare (a worker that starts another search keeps them: same shapes)."""
    with _LOCK:
        _SPARES.clear()


def spares() -> int:
    """How many spare models this process holds."""
    with _LOCK:
        return len(_SPARES)
