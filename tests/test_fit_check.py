"""Data that cannot fit the model is named before any arm starts, in words."""

import numpy as np
import pytest

from bandit_tune.arm.fit_check import check_fit, sample, short_error
from bandit_tune.arm.hypermodel import as_hypermodel, record_hypermodel

X = np.random.default_rng(0).normal(size=(40, 8, 8)).astype("float32")
Y = np.arange(40) % 10


def sparse_model(hp):
    import keras

    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Flatten(),
            keras.layers.Dense(hp.Int("units", 4, 8, step=4), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def onehot_model(hp):
    model = sparse_model(hp)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def _check(build, x, y, validation=None):
    hypermodel = as_hypermodel(build)
    return check_fit(hypermodel, record_hypermodel(hypermodel), sample((x, y, validation)))


def test_data_that_fits_passes():
    assert _check(sparse_model, X, Y) is None
    assert _check(sparse_model, X, Y, (X[:8], Y[:8])) is None
    assert _check(onehot_model, X, np.eye(10)[Y]) is None


@pytest.mark.parametrize(
    "build, x, y, message",
    [
        (
            sparse_model,
            X,
            Y + 1,
            r"labels 1\.\.10 but the model has 10 outputs.*0\.\.9 \(shift them: y - 1\)",
        ),
        (
            sparse_model,
            X,
            np.array(["cat", "dog"] * 20),
            r"y holds strings \('cat', 'dog'.*LabelEncoder",
        ),
        (sparse_model, X, np.eye(10)[Y], r"looks one-hot \(shape \(40, 10\)\).*argmax"),
        (onehot_model, X, Y, r"has shape \(40,\) but 'categorical_crossentropy' takes one-hot"),
        (sparse_model, X, None, "got no y"),
        (
            sparse_model,
            X[:, :4, :],
            Y,
            r"x has samples of shape \(4, 8\) but the model takes inputs of shape \(8, 8\)",
        ),
    ],
    ids=[
        "labels 1..10",
        "string labels",
        "one-hot with sparse loss",
        "sparse with one-hot loss",
        "no y",
        "wrong x shape",
    ],
)
def test_data_that_cannot_fit_is_named_in_words(build, x, y, message):
    problem = _check(build, x, y)
    assert problem is not None and "node" not in problem.lower()
    import re

    assert re.search(message, problem), problem


def test_bad_validation_labels_are_named():
    problem = _check(sparse_model, X, Y, (X[:8], Y[:8] + 5))
    assert problem is not None and problem.startswith("validation_data y holds labels 5..")


def test_short_error_keeps_the_keras_message_itself():
    error = ValueError(
        "Exception encountered when calling Sequential.call().\n\n\x1b[1mInput 0 of layer "
        "'dense' is incompatible with the layer\x1b[0m\n\nArguments received by "
        "Sequential.call():\n  • kwargs=<class 'inspect._empty'>"
    )
    assert (
        short_error(error) == "ValueError: Input 0 of layer 'dense' is incompatible with the layer"
    )


def test_short_error_drops_tensorflow_graph_noise():
    error = RuntimeError(
        "Graph execution error:\n\nDetected at node 'sparse_categorical_crossentropy/x'\n"
        "Received a label value of 10 which is outside the valid range of [0, 10).\n"
        "\t [[{{node sparse_categorical_crossentropy/SparseSoftmaxCrossEntropyWithLogits}}]]"
    )
    assert short_error(error) == (
        "RuntimeError: Received a label value of 10 which is outside the valid range of [0, 10)."
    )


def graph_only_model(hp):
    """A model whose layer works only inside a traced function (as every search runs it)."""
    import keras
    import tensorflow as tf

    class GraphOnly(keras.layers.Layer):
        def call(self, inputs):
            if tf.executing_eagerly():
                raise RuntimeError("this layer runs only in a traced function")
            return inputs

    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Flatten(),
            GraphOnly(),
            keras.layers.Dense(hp.Int("units", 4, 8, step=4), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def test_the_samples_go_through_eagerly_and_a_graph_only_model_is_not_refused():
    # eager first (no trace to pay); a failure there is tried again traced before it counts
    assert _check(graph_only_model, X, Y, (X[:8], Y[:8])) is None
    assert "fails on the first samples" in _check(graph_only_model, X, Y[:3])  # both ways
