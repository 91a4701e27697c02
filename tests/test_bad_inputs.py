"""A table of bad inputs: each is refused before training, naming the value and what is accepted."""

import numpy as np
import pytest

import bandit_tune
from bandit_tune import HyperParameters, record_space, simulate
from bandit_tune.policies import ASHA, ArmPolicy, Hyperband, SuccessiveHalving

X = np.zeros((20, 8, 8), dtype="float32")
Y = np.arange(20) % 2


def good_build(hp):
    import keras

    model = keras.Sequential(
        [
            keras.Input((8, 8)),
            keras.layers.Flatten(),
            keras.layers.Dense(hp.Int("units", 4, 8, step=4)),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def uncompiled_build(hp):
    import keras

    hp.Int("units", 4, 8, step=4)
    return keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(2)])


class WrongSignature(ArmPolicy):
    def on_result(self, arm_id, score):  # forgot step
        return "CONTINUE"


def tuner(**kwargs):
    args = {"hypermodel": good_build, "objective": "val_accuracy", "max_epochs": 3, "verbose": 0}
    args.update(kwargs)
    return bandit_tune.BanditTuner(**args)


def search(t, **kwargs):
    args = {"x": X, "y": Y, "validation_split": 0.25}
    args.update(kwargs)
    return t.search(**args)


CASES = [
    # (id, callable, exception, message fragment)
    ("empty space", lambda: record_space(lambda hp: None), ValueError, "space is empty"),
    (
        "contradictory declarations",
        lambda: record_space(lambda hp: (hp.Int("u", 1, 2), hp.Float("u", 0.0, 1.0))),
        ValueError,
        "declared twice",
    ),
    (
        "the same name declared twice with different ranges",
        lambda: record_space(lambda hp: (hp.Int("u", 1, 4), hp.Int("u", 1, 8))),
        ValueError,
        r"'u' declared twice with different arguments: first Int\(min_value=1, max_value=4\), "
        r"then Int\(min_value=1, max_value=8\)",
    ),
    (
        "the same choice declared twice with other values",
        lambda: record_space(lambda hp: (hp.Choice("c", [1, 2]), hp.Choice("c", [1, 3]))),
        ValueError,
        r"Choice\(values=\[1, 2\]\), then Choice\(values=\[1, 3\]\)",
    ),
    (
        "min_value > max_value",
        lambda: HyperParameters().Int("u", 9, 3),
        ValueError,
        "min_value=9 is greater",
    ),
    (
        "log with non-positive bound",
        lambda: HyperParameters().Float("lr", -1.0, 1.0, sampling="log"),
        ValueError,
        "min_value > 0",
    ),
    (
        "unknown sampling",
        lambda: HyperParameters().Int("u", 1, 3, sampling="exp"),
        ValueError,
        "sampling must be",
    ),
    ("empty choice", lambda: HyperParameters().Choice("c", []), ValueError, "non-empty"),
    (
        "choice default not a value",
        lambda: HyperParameters().Choice("c", [1], default=2),
        ValueError,
        "default 2",
    ),
    (
        "grid over continuous float",
        lambda: record_space(lambda hp: hp.Float("d", 0.0, 1.0)).grid(),
        ValueError,
        "give it a step",
    ),
    ("eta < 2", lambda: Hyperband(27, eta=1), ValueError, "eta must be a number >= 2"),
    (
        "max_epochs < min_epochs",
        lambda: SuccessiveHalving(3, min_t=9),
        ValueError,
        "min_t=9 is larger than max_t=3",
    ),
    ("max_t zero", lambda: ASHA(0), ValueError, "max_t must be an integer >= 1"),
    ("ASHA mode", lambda: ASHA(9, mode="greedy"), ValueError, "'promotion' or 'stopping'"),
    (
        "tuner factor < 2",
        lambda: bandit_tune.Hyperband(good_build, max_epochs=9, factor=1),
        ValueError,
        "eta must be",
    ),
    (
        "tuner max_epochs",
        lambda: tuner(max_epochs=0),
        ValueError,
        "max_epochs must be an integer >= 1",
    ),
    ("max_trials", lambda: tuner(max_trials=0), ValueError, "max_trials must be an integer >= 1"),
    (
        "wrong objective direction",
        lambda: tuner(objective=bandit_tune.Objective("val_accuracy", "up")),
        ValueError,
        "'min' or 'max'",
    ),
    (
        "objective whose direction Keras cannot tell",
        lambda: tuner(objective="val_dice_coef"),
        ValueError,
        r"cannot infer whether 'val_dice_coef' is to be maximised.*Objective\('val_dice_coef'",
    ),
    (
        "custom metric name",
        lambda: tuner(objective="val_my_metric"),
        ValueError,
        "direction='max'",
    ),
    (
        "objective not a metric",
        lambda: tuner(objective=42),
        ValueError,
        "objective must be a metric name",
    ),
    (
        "unknown policy name",
        lambda: tuner(policy="bayesian_bandit"),
        ValueError,
        "unknown policy 'bayesian_bandit'",
    ),
    ("policy that is not a policy", lambda: tuner(policy=object()), TypeError, "ArmPolicy"),
    (
        "custom policy with a wrong signature",
        lambda: tuner(policy=WrongSignature()),
        TypeError,
        r"WrongSignature.on_result must accept \(arm_id, step, score\)",
    ),
    (
        "unknown tuner argument",
        lambda: tuner(max_epoch=3),
        TypeError,
        "unexpected arguments \\['max_epoch'\\]",
    ),
    (
        "hypermodel not callable",
        lambda: tuner(hypermodel=3),
        TypeError,
        "build_model\\(hp\\) function",
    ),
    (
        "x/y length mismatch",
        lambda: search(tuner(), y=Y[:5]),
        ValueError,
        "x has 20 samples but y has 5",
    ),
    (
        "validation_split outside (0, 1)",
        lambda: search(tuner(), validation_split=1.5),
        ValueError,
        "validation_split must be a fraction strictly between 0 and 1, got 1.5",
    ),
    (
        "val_ objective without validation data",
        lambda: search(tuner(), validation_split=None),
        ValueError,
        "needs validation data",
    ),
    (
        "validation_data not a pair",
        lambda: search(tuner(), validation_split=None, validation_data=X),
        ValueError,
        "validation_data must be a tuple",
    ),
    (
        "build_model returns no model",
        lambda: search(tuner(hypermodel=lambda hp: hp.Int("u", 1, 2))),
        TypeError,
        "must return a compiled keras.Model, got int",
    ),
    (
        "build_model returns an uncompiled model",
        lambda: search(tuner(hypermodel=uncompiled_build)),
        ValueError,
        "not compiled",
    ),
    ("cv with validation data", lambda: search(tuner(), cv=3), ValueError, "pass only cv=k"),
    (
        "cv of 1",
        lambda: search(tuner(), validation_split=None, cv=1),
        ValueError,
        "cv must be an integer >= 2",
    ),
    ("no data", lambda: search(tuner(), x=None), ValueError, "needs training data"),
    (
        "simulate on a 1-d curve",
        lambda: simulate(Hyperband(3), [0.1, 0.2]),
        ValueError,
        "2-d array",
    ),
    (
        "simulate with zero workers",
        lambda: simulate(Hyperband(3), [[0.1]], n_workers=0),
        ValueError,
        "n_workers must be an integer >= 1",
    ),
    ("results before search", lambda: tuner().get_best_models(), RuntimeError, "call search"),
    ("malformed budget", lambda: tuner(budget="ten minutes"), ValueError, "is not a duration"),
    ("budget too short for Ray", lambda: tuner(budget="3s"), ValueError, "at least 10 s"),
    (
        "epoch budget too small for one arm",
        lambda: bandit_tune.Hyperband(good_build, max_epochs=27, max_total_epochs=20),
        ValueError,
        "max_total_epochs must be an integer >= max_epochs=27",
    ),
    (
        "plan smaller than one arm",
        lambda: Hyperband(27, max_total_epochs=20),
        ValueError,
        "too small for one arm",
    ),
    ("target score not a number", lambda: tuner(target_score="high"), ValueError, "finite number"),
    (
        "bandit pool of zero arms",
        lambda: bandit_tune.policies.UCB(9, n_arms=0),
        ValueError,
        "n_arms must be an integer >= 1",
    ),
    (
        "compare with no policy",
        lambda: bandit_tune.compare({}, [[0.1, 0.2]]),
        ValueError,
        "at least one policy",
    ),
    (
        "unknown shipped curves",
        lambda: bandit_tune.load_curves("imagenet"),
        ValueError,
        "unknown curve set",
    ),
    ("no CPU per arm", lambda: tuner(cpus_per_arm=0), ValueError, "cpus_per_arm must be > 0"),
    ("negative GPUs", lambda: tuner(gpus_per_arm=-1), ValueError, "gpus_per_arm must be >= 0"),
    (
        "1.5 GPUs per arm",
        lambda: tuner(gpus_per_arm=1.5),
        ValueError,
        "above 1 it must be a whole number",
    ),
    ("CPU share as text", lambda: tuner(cpus_per_arm="2"), ValueError, "must be a number"),
    (
        "run: model not file:function",
        lambda: _cli_load("model.py"),
        ValueError,
        "must look like path/to/file.py:name",
    ),
    (
        "run: data file missing",
        lambda: _cli_data("/nonexistent/data.npz"),
        FileNotFoundError,
        "does not exist",
    ),
]


def _cli_load(spec):
    from bandit_tune.cli import _load_callable

    return _load_callable(spec, "model")


def _cli_data(spec):
    from bandit_tune.cli import load_data

    return load_data(spec)


@pytest.mark.parametrize("make,error,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_with_a_clear_message(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    ("cpus", "gpus", "resources", "slots"),
    [
        (0.1, 0, {"CPU": 1.0}, 10),  # 1.0 // 0.1 is 9.0 in floating point; Ray fits 10
        (0.5, 0.25, {"CPU": 2.0, "GPU": 1.0}, 4),
        (0.5, 0.25, {"CPU": 4.0, "GPU": 1.0}, 4),  # the GPU shares decide
        (2, 0, {"CPU": 3.0}, 1),
    ],
)
def test_fractional_shares_pack_as_many_arms_as_ray_fits(cpus, gpus, resources, slots):
    from bandit_tune.tuner.options import slots as arm_slots

    t = tuner(cpus_per_arm=cpus, gpus_per_arm=gpus)
    assert arm_slots(resources, t.max_concurrent, t.cpus_per_arm, t.gpus_per_arm) == slots


def test_the_table_covers_at_least_25_cases():
    assert len(CASES) >= 25


def test_unwritable_directory_is_named(tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(PermissionError, match="not writable"):
        search(tuner(directory=str(locked / "inner")))


@pytest.mark.parametrize(
    "name, direction",
    [
        ("val_accuracy", "max"),
        ("val_auc_2", "max"),
        ("val_sparse_categorical_accuracy", "max"),
        ("val_precision", "max"),
        ("loss", "min"),
        ("val_mean_squared_error", "min"),
        ("val_my_loss", "min"),
        ("val_mae", "min"),
    ],
)
def test_objective_direction_is_inferred_as_keras_tuner_does(name, direction):
    assert bandit_tune.Objective.of(name).direction == direction


def test_a_custom_objective_with_its_direction_is_taken():
    objective = bandit_tune.Objective("val_dice_coef", "max")
    assert tuner(objective=objective).objective == objective


def test_the_same_declaration_twice_is_one_parameter():
    space = record_space(lambda hp: (hp.Int("u", 1, 4), hp.Int("u", 1, 4), hp.Choice("c", [1, 2])))
    assert list(space.params) == ["u", "c"]


def _with_nan():
    x = X.copy()
    x[3, 2, 1] = np.nan
    return x


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"x": _with_nan()}, r"x holds 1 non-finite value\(s\); the first is x\[3, 2, 1\] = nan"),
        (
            {"y": np.where(Y == 1, np.inf, 0.0)},
            r"y holds 10 non-finite value\(s\); the first is y\[1\] = inf",
        ),
        (
            {"validation_split": None, "validation_data": (_with_nan(), Y)},
            r"validation_data\[0\] \(x_val\) holds 1 non-finite",
        ),
        ({"x": (row for row in X)}, "x is a generator or iterator.*NumPy arrays"),
        ({"x": iter(list(X))}, "x is a generator or iterator"),
    ],
    ids=["nan in x", "inf in y", "nan in x_val", "generator", "iterator"],
)
def test_bad_data_fails_before_ray_starts_naming_the_array_and_place(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        search(tuner(directory=str(tmp_path)), **kwargs)
    assert not (tmp_path / "untitled_project").exists()  # refused before anything was made


def test_a_tf_dataset_is_read_into_arrays_with_its_batch_size():
    import tensorflow as tf

    from bandit_tune.arm.checks import read_datasets

    train = tf.data.Dataset.from_tensor_slices((X, Y)).batch(4).prefetch(1)
    val = tf.data.Dataset.from_tensor_slices((X[:6], Y[:6])).batch(3)
    x, y, validation, batch = read_datasets(train, None, val, None)
    assert np.array_equal(x, X) and np.array_equal(y, Y) and batch == 4
    assert np.array_equal(validation[0], X[:6]) and np.array_equal(validation[1], Y[:6])
    assert read_datasets(train, None, None, 8)[3] == 8  # the user's batch_size wins
    dicts = tf.data.Dataset.from_tensor_slices(({"a": X, "b": X}, Y)).batch(5)
    x, y, _, _ = read_datasets(dicts, None, None, None)
    assert set(x) == {"a", "b"} and x["a"].shape == X.shape


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tf: tf.data.Dataset.from_tensor_slices((X, Y)).batch(4).repeat(), "infinite"),
        (
            lambda tf: tf.data.Dataset.from_tensor_slices(X).batch(4),
            "must yield \\(features, labels\\)",
        ),
        (lambda tf: tf.data.Dataset.from_tensor_slices((X, Y)).take(0), "empty"),
    ],
    ids=["repeats", "no labels", "empty"],
)
def test_a_tf_dataset_that_cannot_be_read_is_refused_in_words(make, message):
    import tensorflow as tf

    from bandit_tune.arm.checks import read_datasets

    with pytest.raises(ValueError, match=message):
        read_datasets(make(tf), None, None, None)
    with pytest.raises(ValueError, match="y must be None"):
        read_datasets(tf.data.Dataset.from_tensor_slices((X, Y)).batch(4), Y, None, None)


def test_validation_data_with_validation_split_warns_that_keras_uses_validation_data():
    from bandit_tune.arm.checks import check_validation

    with pytest.warns(UserWarning, match="validation_data is used and validation_split is ignored"):
        assert check_validation(0.2, (X, Y)) is None
    assert check_validation(0.2, None) == 0.2


@pytest.mark.parametrize("max_epochs", [1, 2])
def test_hyperband_that_cannot_stop_anything_early_warns_once(max_epochs):
    with pytest.warns(
        UserWarning, match=r"single bracket.*none is stopped early.*e\.g\. 9"
    ) as seen:
        bandit_tune.Hyperband(
            good_build, objective="val_accuracy", max_epochs=max_epochs, verbose=0
        )
    assert len(seen) == 1


def test_a_policy_that_takes_long_per_decision_is_warned_about():
    import time

    class Slow(ArmPolicy):
        def on_result(self, arm_id, step, score):
            time.sleep(0.12)
            return "CONTINUE"

    with pytest.warns(UserWarning, match=r"Slow\.on_result takes \d+\.\d\d s per decision"):
        simulate(Slow(), np.zeros((2, 3)))
