"""A finished arm's traced model trains the next arm of its architecture (no Ray)."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from bandit_tune.arm import model_reuse  # noqa: E402


def _mlp(units=16, rate=1e-2, dropout=0.0, loss="sparse_categorical_crossentropy", seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input(shape=(6,)), keras.layers.Dense(units, activation="relu")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(3, activation="softmax"))
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss, metrics=["accuracy"])
    return model


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0).astype("int64")


@pytest.fixture(autouse=True)
def _no_spares():
    model_reuse.clear()
    yield
    model_reuse.clear()


def _fit(model, epochs=2):
    x, y = _data()
    history = model.fit(x, y, epochs=epochs, batch_size=32, shuffle=False, verbose=0)
    return history.history["loss"]


def test_a_spare_trains_exactly_as_the_fresh_model_would_have():
    used = _mlp(units=16, rate=1e-2, seed=1)
    _fit(used, epochs=3)
    model_reuse.give(used)
    assert model_reuse.spares() == 1

    fresh = _mlp(units=16, rate=1e-3, seed=2)  # another learning rate: still reused
    start = [w.copy() for w in fresh.get_weights()]
    spare = model_reuse.take(fresh)
    assert spare is used and model_reuse.spares() == 0
    assert all(np.array_equal(a, b) for a, b in zip(spare.get_weights(), start))
    assert int(spare.optimizer.iterations) == 0
    assert float(spare.optimizer.learning_rate) == pytest.approx(1e-3)
    assert all(not np.any(v.numpy()) for v in spare.optimizer.variables[2:])  # moments zero

    reference = _mlp(units=16, rate=1e-3, seed=2)  # the same start, never reused
    assert _fit(spare, 3) == pytest.approx(_fit(reference, 3), rel=1e-5)
    assert all(
        np.allclose(a, b, atol=1e-6) for a, b in zip(spare.get_weights(), reference.get_weights())
    )


@pytest.mark.parametrize(
    "other",
    [
        dict(units=32),  # another shape
        dict(dropout=0.5),  # another layer
        dict(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
    ],
)
def test_another_architecture_or_compile_setting_is_built_afresh(other):
    model_reuse.give(_mlp())
    assert model_reuse.take(_mlp(**other)) is None
    assert model_reuse.spares() == 1  # still there for its own kind


def test_user_code_in_a_model_is_never_reused():
    def my_loss(y_true, y_pred):  # may close over a hyperparameter no config shows
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)

    scaled = keras.Sequential(
        [keras.Input(shape=(6,)), keras.layers.Lambda(lambda t: t * 2.0), keras.layers.Dense(3)]
    )
    scaled.compile(optimizer="adam", loss="mse")
    custom_loss = _mlp(loss=my_loss)

    class Wide(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(3)

        def call(self, x):
            return self.dense(x)

    subclassed = Wide()
    subclassed(np.zeros((1, 6), "float32"))
    subclassed.compile(optimizer="adam", loss="mse")
    for model in (scaled, custom_loss, subclassed):
        assert model_reuse.signature(model) is None
        model_reuse.give(model)
    assert model_reuse.spares() == 0


def _functional(units, activation="relu", layer_name=None):
    inputs = keras.Input(shape=(6,))
    hidden = keras.layers.Dense(units, activation=activation, name=layer_name)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return model


def test_functional_models_are_matched_by_their_links_not_their_names():
    first, second = _functional(8), _functional(8)
    assert first.layers[1].name != second.layers[1].name  # Keras named each anew
    model_reuse.give(first)
    assert model_reuse.take(second) is first
    # a layer named like an activation does not make another activation look equal
    model_reuse.give(_functional(8, "tanh", layer_name="tanh"))
    assert model_reuse.take(_functional(8, "relu", layer_name="relu")) is None


def test_the_spares_are_bounded():
    for _ in range(model_reuse.KEEP + 3):
        model_reuse.give(_mlp())
    assert model_reuse.spares() == model_reuse.KEEP
    model = _mlp()
    model_reuse.give(model)
    model_reuse.give(model)  # given twice: kept once
    assert sum(spare is model for _, spare, _ in model_reuse._SPARES) == 1
