"""The checkpoint format: every variable back bit for bit, fast saves that stay current."""

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from bandit_tune.arm import model_state  # noqa: E402
from bandit_tune.arm.checkpoints import restore_arm, save_arm  # noqa: E402


def _model(units=16):
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    return model


def _data():
    rng = np.random.default_rng(0)
    return rng.random((48, 6), dtype=np.float32), rng.integers(0, 3, 48)


def _state(model):
    return [np.array(v.numpy()) for v in model.weights + model.optimizer.variables]


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_checkpoint_restores_weights_batch_statistics_and_optimizer_state(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=0)
    save_arm(model, str(tmp_path), 2)
    assert os.path.exists(tmp_path / model_state.ARRAYS)
    fresh = _model()
    assert restore_arm(fresh, str(tmp_path)) == 2
    assert _same(_state(model), _state(fresh))
    assert int(fresh.optimizer.iterations) == int(model.optimizer.iterations) > 0


def test_later_saves_of_the_same_model_write_its_current_values(tmp_path):
    # the walk is done once per model; later saves must still read the live variables
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    os.makedirs(tmp_path / "a")
    save_arm(model, str(tmp_path / "a"), 1)
    model.fit(x, y, epochs=1, verbose=0)
    os.makedirs(tmp_path / "b")
    save_arm(model, str(tmp_path / "b"), 2)
    first, second = _model(), _model()
    restore_arm(first, str(tmp_path / "a"))
    restore_arm(second, str(tmp_path / "b"))
    assert _same(_state(model), _state(second))
    assert not _same(_state(first), _state(second))


def test_a_checkpoint_of_another_architecture_is_refused_naming_the_layer(tmp_path):
    x, y = _data()
    model = _model(16)
    model.fit(x, y, epochs=1, verbose=0)
    save_arm(model, str(tmp_path), 1)
    with pytest.raises(ValueError, match="does not fit this model: dense"):
        restore_arm(_model(8), str(tmp_path))


def test_a_checkpoint_in_keras_own_format_is_still_read(tmp_path):
    # checkpoints written before the fast format (model.weights.h5) resume as they did
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    save_arm(model, str(tmp_path), 1)
    os.remove(tmp_path / model_state.ARRAYS)
    model.save_weights(str(tmp_path / model_state.H5))
    fresh = _model()
    restore_arm(fresh, str(tmp_path))
    assert _same(_state(model), _state(fresh))


def test_nothing_in_the_file_needs_pickle(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    model_state.save_state(model, str(tmp_path))
    with np.load(tmp_path / model_state.ARRAYS, allow_pickle=False) as saved:
        assert all(saved[name].dtype != object for name in saved.files)


def test_a_recompiled_model_saves_its_new_optimizer_state(tmp_path):
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=1, verbose=0)
    os.makedirs(tmp_path / "a")
    save_arm(model, str(tmp_path / "a"), 1)  # remembers the first optimizer's variables
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    os.makedirs(tmp_path / "b")
    save_arm(model, str(tmp_path / "b"), 2)
    fresh = _model()
    restore_arm(fresh, str(tmp_path / "b"))
    assert _same(_state(model), _state(fresh))
