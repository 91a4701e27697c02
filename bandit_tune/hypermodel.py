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


def check_model(model: Any, where: str = "build_model(hp)") -> None:
    """Raise unless ``model`` is a compiled Keras model."""
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{where} must return a compiled keras.Model, got {type(model).__name__}; "
            "return the model after model.compile(...)"
        )
    if getattr(model, "optimizer", None) is None:
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


def record_hypermodel(hypermodel: HyperModel) -> SearchSpace:
    """Record the space ``hypermodel.build`` (and a ``fit`` override) declares."""
    import keras

    fit_overridden = type(hypermodel).fit is not HyperModel.fit and callable(
        getattr(hypermodel, "fit", None)
    )

    def build(hp: HyperParameters) -> None:
        model = hypermodel.build(hp)
        check_model(model)
        if hasattr(hypermodel, "declare_hyperparameters"):
            hypermodel.declare_hyperparameters(hp)
        if fit_overridden:
            try:
                hypermodel.fit(hp, _FitRecorder(model), x=None, y=None, epochs=1, verbose=0)
            except Exception:  # noqa: BLE001 — only the declarations before the failure matter
                pass

    try:
        return record_space(build)
    finally:
        keras.backend.clear_session()
