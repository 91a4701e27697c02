"""Shared fixtures: one local Ray on 127.0.0.1 for every integration test."""

import os

# Before Ray or TensorFlow load: keep Ray on loopback (../shared/MEASURED.md), quiet.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Ray workers unpickle test functions by module name: let them import tests/.
_HERE = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_HERE, os.environ.get("PYTHONPATH")) if p)

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Run the ``slow`` tests first (stable: in file order otherwise).

    ``make test`` runs two pytest workers (``-n 2``). xdist hands each worker a
    contiguous first chunk, so the long tests start at once on the first worker
    while the second takes the short ones, rather than one long test ending the
    run alone.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def ray_local():
    import ray

    from bandit_tune.ray_tune.cluster import ensure_ray

    resources = ensure_ray(num_cpus=2)
    assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
    yield resources
    ray.shutdown()


@pytest.fixture(scope="session")
def digits_small():
    """A small stratified digits split: enough to learn, quick to train."""
    from bandit_tune.demo import load_digits_split

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_digits_split(0)
    return (x_train[:600], y_train[:600]), (x_val[:200], y_val[:200]), (x_test, y_test)


def small_build_model(hp, max_units=64):
    import keras

    units = hp.Int("units", min_value=16, max_value=max_units, step=16)
    lr = hp.Choice("learning_rate", values=[1e-2, 1e-3])
    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Flatten(),
            keras.layers.Dense(units, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def wide_build_model(hp):
    """``small_build_model`` with a wider ``units`` range (another search space)."""
    return small_build_model(hp, max_units=128)


@pytest.fixture
def build_model():
    return small_build_model


@pytest.fixture
def curves():
    rng = np.random.default_rng(0)
    return rng.uniform(size=(20, 9)).cumsum(axis=1)
