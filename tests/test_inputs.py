"""The tf.data input pipeline of bandit_tune.arm.inputs (real Keras on TensorFlow, no Ray)."""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from bandit_tune import HyperModel  # noqa: E402
from bandit_tune.arm.hypermodel import as_hypermodel  # noqa: E402
from bandit_tune.arm.inputs import eligible, fit_inputs, uses_default_fit  # noqa: E402


def _data(n: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype("float32")
    x[:, 0] = np.arange(n)  # the sample's index rides in feature 0
    return x, (np.arange(n) % 3).astype("int64")


def _model() -> keras.Model:
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _epoch_order(dataset: tf.data.Dataset) -> list[int]:
    return [int(i) for xb, _ in dataset for i in xb[:, 0].numpy()]


def test_training_batches_reshuffle_every_epoch_and_keep_the_last_partial_batch() -> None:
    x, y = _data(50)
    out = fit_inputs(dict(x=x, y=y, batch_size=16), "s-shuffle")
    assert "y" not in out and "batch_size" not in out
    assert out["shuffle"] is False  # the pipeline shuffles; Keras would only warn
    train = out["x"]
    sizes = [int(xb.shape[0]) for xb, _ in train]
    assert sizes == [16, 16, 16, 2]
    first, second = _epoch_order(train), _epoch_order(train)
    assert sorted(first) == sorted(second) == list(range(50))
    assert first != second  # reshuffled (probability of equal orders: 1/50!)


def test_shuffle_false_keeps_the_order() -> None:
    x, y = _data(20)
    out = fit_inputs(dict(x=x, y=y, batch_size=8, shuffle=False), "s-order")
    assert _epoch_order(out["x"]) == list(range(20))


def test_validation_split_takes_the_last_fraction_like_keras() -> None:
    x, y = _data(50)
    out = fit_inputs(dict(x=x, y=y, batch_size=8, validation_split=0.2), "s-split")
    assert "validation_split" not in out
    assert sorted(_epoch_order(out["x"])) == list(range(40))
    assert _epoch_order(out["validation_data"]) == list(range(40, 50))


def test_pipelines_are_built_once_per_search_and_part() -> None:
    x, y = _data(30)
    a = fit_inputs(dict(x=x, y=y, validation_data=(x, y)), "s-cache")
    b = fit_inputs(dict(x=x.copy(), y=y.copy(), validation_data=(x, y)), "s-cache")
    c = fit_inputs(dict(x=x, y=y, validation_data=(x, y)), "s-cache", "fold1")
    assert a["x"] is b["x"] and a["validation_data"] is b["validation_data"]
    assert c["x"] is not a["x"]


def test_a_model_trains_the_same_number_of_steps_and_validates_on_all_samples() -> None:
    x, y = _data(50)
    xv, yv = _data(20)
    keras.utils.set_random_seed(1)
    model = _model()
    kwargs = fit_inputs(
        dict(x=x, y=y, validation_data=(xv, yv), batch_size=16, epochs=2, verbose=0), "s-fit"
    )
    history = model.fit(**kwargs)
    assert int(model.optimizer.iterations) == 2 * math.ceil(50 / 16)
    loss, accuracy = model.evaluate(xv, yv, verbose=0)
    assert history.history["val_loss"][-1] == pytest.approx(loss, rel=1e-5)
    assert history.history["val_accuracy"][-1] == pytest.approx(accuracy, rel=1e-5)


def test_sample_weights_travel_with_the_batches() -> None:
    x, y = _data(10)
    w = np.ones(10, dtype="float32")
    out = fit_inputs(dict(x=x, y=y, sample_weight=w, batch_size=4), "s-weights")
    assert all(len(batch) == 3 for batch in out["x"])


@pytest.mark.parametrize(
    "change",
    [
        {"steps_per_epoch": 2},
        {"validation_steps": 1},
        {"shuffle": "batch"},
        {"x": [[1.0, 2.0]] * 50},  # a list of lists, not arrays
        {"y": np.zeros(49)},  # lengths differ
        {"x": np.zeros((0, 4)), "y": np.zeros(0)},
        {"sample_weight": np.ones(50), "class_weight": {0: 1.0}},
        {"validation_data": "not a tuple"},
        {"validation_split": 0.99},  # nothing left to train on: Keras says so
        {"x": np.array([object()] * 50, dtype=object)},
    ],
)
def test_what_it_leaves_to_keras(change: dict) -> None:
    x, y = _data(50)
    kwargs = {"x": x, "y": y, "batch_size": 8, **change}
    assert not eligible(kwargs)
    assert fit_inputs(kwargs, "s-left") is kwargs


def test_a_dataset_is_left_to_keras() -> None:
    x, y = _data(10)
    kwargs = {"x": tf.data.Dataset.from_tensor_slices((x, y)).batch(2)}
    assert fit_inputs(kwargs, "s-ds") is kwargs


def test_only_hypermodels_with_keras_own_fit_get_the_pipeline() -> None:
    class TunesBatchSize(HyperModel):
        def build(self, hp):  # noqa: ANN001, ANN201
            return _model()

        def fit(self, hp, model, *args, **kwargs):  # noqa: ANN001, ANN201, ANN002, ANN003
            return model.fit(*args, batch_size=hp.Choice("batch_size", [8, 16]), **kwargs)

    class BuildsOnly(HyperModel):
        def build(self, hp):  # noqa: ANN001, ANN201
            return _model()

    assert uses_default_fit(as_hypermodel(lambda hp: _model()))
    assert uses_default_fit(BuildsOnly())
    assert not uses_default_fit(TunesBatchSize())
    assert not uses_default_fit(object())


def test_prebuild_creates_optimizer_and_metric_variables_before_the_first_step() -> None:
    from bandit_tune.arm.inputs import prebuild

    x, y = _data(40)
    model = _model()
    kwargs = fit_inputs(dict(x=x, y=y, validation_data=(x, y), epochs=1, verbose=0), "s-pre")
    assert not model.optimizer.built
    assert prebuild(model, kwargs)
    assert model.optimizer.built and model._compile_metrics.built
    assert not prebuild(model, kwargs)  # nothing left to build
    history = model.fit(**kwargs)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert int(model.optimizer.iterations) == math.ceil(40 / 32)


def test_prebuild_never_guesses_input_shapes() -> None:
    from bandit_tune.arm.inputs import prebuild

    x, y = _data(40)
    unbuilt = keras.Sequential([keras.layers.Dense(3, activation="softmax")])
    unbuilt.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    kwargs = fit_inputs(dict(x=x, y=y), "s-pre2")
    assert not prebuild(unbuilt, kwargs)
    assert not prebuild(_model(), {"x": x, "y": y})  # arrays left to Keras
    unbuilt.fit(**kwargs, epochs=1, verbose=0)  # Keras builds it from the data as usual
