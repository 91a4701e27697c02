"""keras-tuner's hypermodel: ``build_model(hp)`` or a :class:`HyperModel`, and its recorded space.

A hypermodel defines the search space by running: each ``hp.Int``/``hp.Choice``
in ``build`` (and in a ``fit`` override) declares a parameter. Recording calls
it once per conditional branch with Keras loaded, building models it discards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bandit_tune.space import HyperParameters, SearchSpace, record_space


class HyperModel:
    """keras-tuner style hypermodel: override :meth:`build`, optionally :meth:`fit`.

    Overriding ``fit`` tunes fit arguments too::

        class MyHyperModel(bandit_tune.HyperModel):
            def build(self, hp):
                ...
                return model

            def fit(self, hp, model, *args, **kwargs):
                return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), **kwargs)
    """

    def __init__(self, name: str | None = None, tunable: bool = True) -> None:
        self.name = name
        self.tunable = tunable

    def build(self, hp: HyperParameters) -> Any:
        """Build and compile a Keras model for ``hp``."""
        raise NotImplementedError(f"{type(self).__name__} must implement build(hp)")

    def declare_hyperparameters(self, hp: HyperParameters) -> None:
        """Declare parameters used only in :meth:`fit` (called while recording)."""

    def fit(self, hp: HyperParameters, model: Any, *args: Any, **kwargs: Any) -> Any:
        """Train ``model``; the default calls ``model.fit(*args, **kwargs)``."""
        return model.fit(*args, **kwargs)


class _FunctionHyperModel(HyperModel):
    def __init__(self, build_fn: Callable[[HyperParameters], Any]) -> None:
        super().__init__(getattr(build_fn, "__name__", None))
        self.build_fn = build_fn

    def build(self, hp: HyperParameters) -> Any:
        return self.build_fn(hp)


def as_hypermodel(hypermodel: Any) -> HyperModel:
    """Wrap a ``build_model(hp)`` function; pass through objects with ``build``."""
    if isinstance(hypermodel, HyperModel):
        return hypermodel
    if callable(getattr(hypermodel, "build", None)):  # e.g. a keras_tuner.HyperModel
        return hypermodel
    if callable(hypermodel):
        return _FunctionHyperModel(hypermodel)
    raise TypeError(
        f"hypermodel must be a build_model(hp) function or a HyperModel with build(hp), "
        f"got {type(hypermodel).__name__}"
    )


class _Wrapping(HyperModel):
    """A hypermodel around another: builds, declares and fits with it unless overridden."""

    def __init__(self, inner: HyperModel) -> None:
        super().__init__(getattr(inner, "name", None))
        self.inner = inner

    def build(self, hp: HyperParameters) -> Any:
        """The inner hypermodel's model."""
        return self.inner.build(hp)

    def declare_hyperparameters(self, hp: HyperParameters) -> None:
        """The inner hypermodel's, if it has them."""
        declare = getattr(self.inner, "declare_hyperparameters", None)
        if callable(declare):
            declare(hp)

    def fit(self, hp: HyperParameters, model: Any, *args: Any, **kwargs: Any) -> Any:
        """The inner hypermodel's ``fit``."""
        return self.inner.fit(hp, model, *args, **kwargs)


class TunerHyperModel(_Wrapping):
    """A hypermodel with a keras-tuner tuner's own options applied to every model it builds.

    ``hyperparameters`` is declared first in every ``hp`` (its declarations win over
    ``build``'s own of the same name: ``hp.Fixed("learning_rate", 0.1)`` fixes it);
    ``allow_new_entries=False`` refuses a parameter it does not declare and
    ``tune_new_entries=False`` fixes such a parameter to its default. ``optimizer``,
    ``loss`` and ``metrics`` recompile each model with those in place of build's.
    An arm whose model has more than ``max_model_size`` parameters fails when it
    is built (see :func:`bandit_tune.arm.train.build_arm`).
    """

    def __init__(
        self,
        inner: HyperModel,
        hyperparameters: HyperParameters | None = None,
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        optimizer: Any = None,
        loss: Any = None,
        metrics: Any = None,
        max_model_size: int | None = None,
    ) -> None:
        super().__init__(inner)
        self.max_model_size = max_model_size
        self.hyperparameters = hyperparameters
        self.tune_new_entries = tune_new_entries
        self.allow_new_entries = allow_new_entries
        self.optimizer, self.loss, self.metrics = optimizer, loss, metrics

    def build(self, hp: HyperParameters) -> Any:
        """Declare the given space, build with the inner hypermodel, recompile if asked."""
        if self.hyperparameters is not None:
            hp._declare_given(self.hyperparameters, self.allow_new_entries, self.tune_new_entries)
        model = self.inner.build(hp)
        if self.optimizer is None and self.loss is None and self.metrics is None:
            return model
        return recompile(model, self.optimizer, self.loss, self.metrics)


class _ArmTrial:
    """What a ``Tuner.run_trial`` override gets as ``trial``: keras-tuner's attributes."""

    def __init__(self, hyperparameters: HyperParameters, trial_id: str = "arm") -> None:
        self.trial_id = trial_id
        self.hyperparameters = hyperparameters


class RunTrialHyperModel(_Wrapping):
    """A hypermodel whose ``fit`` is a tuner subclass's ``run_trial`` override.

    keras-tuner's way to change how each trial trains: ``run_trial(trial, *args,
    **kwargs)`` gets the trial (with ``trial.hyperparameters``) and the search's
    data and fit arguments; ``super().run_trial(trial, *args, **kwargs)`` trains
    the arm's model with them (bandit_tune's reporting callbacks in ``callbacks``,
    so the policy sees every epoch). The override runs in the arm's worker on an
    instance of the tuner class made without ``__init__`` (``self.hypermodel`` is
    set); declarations it makes are recorded with the space. An override that
    trains by itself and returns a number (or a dict of metrics) without
    reporting epochs has that value reported once, as the arm's only epoch.
    """

    def __init__(self, inner: HyperModel, tuner_class: type) -> None:
        super().__init__(inner)
        self.tuner_class = tuner_class

    def fit(self, hp: HyperParameters, model: Any, *args: Any, **kwargs: Any) -> Any:
        """Run the tuner's ``run_trial`` override for this arm's model."""
        inner = self.inner
        tuner = self.tuner_class.__new__(self.tuner_class)
        tuner.hypermodel = inner
        tuner._arm_fit = lambda values, a, k: inner.fit(values, model, *a, **k)
        x, y = kwargs.pop("x", None), kwargs.pop("y", None)
        callbacks = list(kwargs.get("callbacks") or [])
        out = tuner.run_trial(_ArmTrial(hp), x, y, *args, **kwargs)
        _report_returned(out, model, callbacks)
        return out


def _report_returned(out: Any, model: Any, callbacks: list[Any]) -> None:
    """Report a run_trial's returned score when it reported no epoch itself."""
    from bandit_tune.arm.checkpoints import ReportCallback

    reporter = next((c for c in callbacks if isinstance(c, ReportCallback)), None)
    if reporter is None or reporter.last_epoch or reporter.objective is None:
        return
    if isinstance(out, (int, float)) and not isinstance(out, bool):
        logs = {reporter.objective[0]: float(out)}
    elif isinstance(out, dict):
        logs = {k: float(v) for k, v in out.items() if isinstance(v, (int, float))}
    else:
        return
    reporter.set_model(model)
    reporter.on_epoch_end(0, logs)


def unwrap(hypermodel: Any) -> Any:
    """The user's hypermodel inside a :class:`TunerHyperModel` (else ``hypermodel``)."""
    return hypermodel.inner if isinstance(hypermodel, TunerHyperModel) else hypermodel


def recompile(model: Any, optimizer: Any = None, loss: Any = None, metrics: Any = None) -> Any:
    """Compile ``model`` again with ``optimizer``/``loss``/``metrics`` in place of its own.

    What is not given stays as build_model compiled it. The optimizer is made
    fresh for this model (one optimizer object cannot train two models).
    """
    import keras

    kwargs: dict[str, Any] = {}
    if getattr(model, "optimizer", None) is not None:
        kwargs = dict(keras.saving.deserialize_keras_object(model.get_compile_config()) or {})
    elif optimizer is None:
        raise ValueError(
            "build_model returned a model that is not compiled, and the tuner was given "
            "loss/metrics but no optimizer: compile it in build_model, or pass optimizer= "
            "to the tuner too"
        )
    if optimizer is not None:
        if isinstance(optimizer, str):
            kwargs["optimizer"] = keras.optimizers.get(optimizer)
        else:
            kwargs["optimizer"] = type(optimizer).from_config(optimizer.get_config())
    if loss is not None:
        kwargs["loss"] = loss
    if metrics is not None:
        kwargs["metrics"] = list(metrics) if isinstance(metrics, (list, tuple)) else [metrics]
    model.compile(**kwargs)
    return model


def check_model(model: Any, where: str = "build_model(hp)", compiled: bool = True) -> None:
    """Raise unless ``model`` is a Keras model, compiled unless ``compiled=False``.

    A hypermodel with its own ``fit`` (a custom training loop, as in keras-tuner's
    guide) may return an uncompiled model.
    """
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{where} must return a compiled keras.Model, got {type(model).__name__}; "
            "return the model after model.compile(...)"
        )
    if compiled and getattr(model, "optimizer", None) is None:
        raise ValueError(
            f"{where} returned a model that is not compiled; call model.compile(optimizer, "
            "loss, metrics) before returning it"
        )


class _FitRecorder:
    """Stands in for the model while a hypermodel's own ``fit`` is recorded.

    ``HyperModel.fit`` overrides declare parameters such as
    ``batch_size=hp.Choice(...)`` in the call itself; running it against this
    stand-in records them without training. Everything but training is the model's.
    """

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def fit(self, *args: Any, **kwargs: Any) -> None:
        return None

    evaluate = predict = fit


def record_hypermodel(
    hypermodel: HyperModel, sample: Any = None, clear: bool = True
) -> SearchSpace:
    """Record the space ``hypermodel.build`` (and a ``fit`` override) declares.

    A ``fit`` override runs against a stand-in model that does not train; with
    ``sample`` (``(x, y, validation_data)``, a few rows of the search's data, as
    :func:`bandit_tune.arm.fit_check.sample` gives) it gets real data, so a custom
    training loop declares what it declares before it first calls the model.
    ``clear``: end with ``keras.backend.clear_session()`` (the models built here
    are dropped either way).
    """
    import keras

    user = unwrap(hypermodel)
    fit_overridden = type(user).fit is not HyperModel.fit and callable(getattr(user, "fit", None))
    fit_kwargs = _recording_fit_kwargs(user, sample) if fit_overridden else {}

    def build(hp: HyperParameters) -> None:
        model = hypermodel.build(hp)
        check_model(model, compiled=not fit_overridden)
        if hasattr(hypermodel, "declare_hyperparameters"):
            hypermodel.declare_hyperparameters(hp)
        if fit_overridden:
            try:
                hypermodel.fit(hp, _FitRecorder(model), **fit_kwargs)
            except Exception:  # noqa: BLE001 — only the declarations before the failure matter
                pass

    try:
        return record_space(build)
    finally:
        if clear:
            keras.backend.clear_session()


MUTABLE_PROBLEM = "hyperparam_mutations: "
"""Prefix of :func:`check_mutable`'s answer (the tuner raises it as a ``ValueError``)."""


def _variable_shapes(hypermodel: HyperModel, values: dict[str, Any]) -> list[tuple[int, ...]]:
    model = hypermodel.build(HyperParameters(values))
    return [tuple(int(d) for d in v.shape) for v in model.weights]


def _alternatives(param: Any) -> list[Any]:
    if hasattr(param, "min_value"):
        return [param.min_value, param.max_value]
    return list(param.values)[:6]


def check_mutable(hypermodel: HyperModel, space: SearchSpace, names: Any) -> str | None:
    """Whether each of ``names`` can change during training without rebuilding the model.

    Builds the model with the space's defaults and again with other values of each
    name (its bounds, or its choices); a value that changes the model's variables
    (their number or a shape) makes the name an architecture hyperparameter.
    Returns a problem (prefixed with :data:`MUTABLE_PROBLEM`) or ``None``.
    """
    import keras

    names = list(names)
    missing = [n for n in names if n not in space.params]
    if missing:
        return (
            f"{MUTABLE_PROBLEM}{missing[0]!r} is not a hyperparameter build_model declares "
            f"(it declares {sorted(space.params)})"
        )
    try:
        base = space.defaults()
        shapes = _variable_shapes(hypermodel, base)
        for name in names:
            for value in _alternatives(space.params[name]):
                if value == base.get(name):
                    continue
                other = _variable_shapes(hypermodel, {**base, name: value})
                if other != shapes:
                    return (
                        f"{MUTABLE_PROBLEM}{name!r} changes the model's variables "
                        f"({name}={base.get(name)!r}: {len(shapes)} variables, "
                        f"{name}={value!r}: {len(other)}, shapes differ), so it cannot change "
                        "during training: an exploit copies weights between arms of one "
                        "architecture. Leave it out of hyperparam_mutations (learning rate, "
                        "weight decay, dropout rate, batch size, loss weights and augmentation "
                        "strength can change)"
                    )
    finally:
        keras.backend.clear_session()
    return None


def _recording_fit_kwargs(user: Any, sample: Any) -> dict[str, Any]:
    """Arguments for recording a ``fit`` override: the sample's rows, as a search passes them."""
    import inspect

    import numpy as np

    x = y = validation = None
    if sample is not None:
        x, y, validation = sample
        if x is not None and y is not None and not isinstance(x, dict):
            y = np.asarray(y)[: len(x)]
        if validation is not None and validation[0] is not None:
            validation = (validation[0], np.asarray(validation[1])[: len(validation[0])])
    kwargs: dict[str, Any] = {
        "x": x,
        "y": y,
        "validation_data": validation,
        "callbacks": [],
        "epochs": 1,
        "verbose": 0,
    }
    try:
        parameters = inspect.signature(user.fit).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in parameters}
