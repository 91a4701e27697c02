"""keras-tuner's documented HyperParameters behaviour, example by example.

Each test follows an example or a rule of keras-tuner's API reference
(HyperParameters, Int, Float, Choice, Boolean, Fixed, conditional_scope,
name_scope, get_config/from_config, copy, merge): a keras-tuner user's code
gives the same values here.
"""

import math

import pytest

import bandit_tune as kt
from bandit_tune import Boolean, Choice, Fixed, Float, HyperParameters, Int


def test_int_values_as_documented():
    assert Int("n_layers", min_value=6, max_value=12).values == (6, 7, 8, 9, 10, 11, 12)
    assert Int("n_layers", min_value=6, max_value=13, step=3).values == (6, 9, 12)
    batch = Int("batch_size", min_value=2, max_value=32, step=2, sampling="log")
    assert batch.values == (2, 4, 8, 16, 32)
    assert Int("n", 6, 12).step == 1 and Int("n", 6, 12).default == 6


def test_float_values_as_documented():
    assert Float("rotation", min_value=0, max_value=1, step=0.2).values == (
        0.0,
        0.2,
        0.4,
        0.6,
        0.8,
        1.0,
    )
    lr = Float("learning_rate", min_value=0.001, max_value=10, step=10, sampling="log")
    assert lr.values == pytest.approx((0.001, 0.01, 0.1, 1, 10))
    continuous = Float("dropout", 0.0, 0.5)
    assert len(continuous.values) == 10 and all(0 <= v <= 0.5 for v in continuous.values)
    assert continuous.default == 0.0


def test_choice_defaults_and_ordering():
    choice = Choice("units", [32, 64, 128])
    assert choice.default == 32 and choice.ordered is True
    assert Choice("act", ["relu", "tanh"]).ordered is False
    assert Choice("units", [32, 64], default=64).default == 64
    with pytest.raises(ValueError, match="ordered=True needs numeric"):
        Choice("act", ["relu", "tanh"], ordered=True)
    with pytest.raises(TypeError, match="only one type"):
        Choice("mixed", [1, "a"])


@pytest.mark.parametrize(
    "hp",
    [
        Int("a", 1, 10),
        Int("b", 8, 64, step=8),
        Int("c", 2, 32, step=2, sampling="log"),
        Float("d", 0.0, 1.0, step=0.25),
        Float("e", 1e-4, 1e-1, step=10, sampling="log"),
        Float("f", 1.0, 100.0, step=10, sampling="reverse_log"),
        Choice("g", ["x", "y", "z"]),
        Boolean("h"),
        Fixed("i", 7),
    ],
    ids=lambda hp: hp.name,
)
def test_prob_and_value_round_trip(hp):
    for value in hp.values:
        prob = hp.value_to_prob(value)
        assert 0.0 <= prob < 1.0
        assert hp.prob_to_value(prob) == pytest.approx(value)


def test_continuous_prob_mapping_follows_sampling():
    log = Float("lr", 1e-4, 1e-1, sampling="log")
    assert log.prob_to_value(0.0) == pytest.approx(1e-4)
    assert log.prob_to_value(0.5) == pytest.approx(math.sqrt(1e-4 * 1e-1))
    assert log.value_to_prob(1e-2) == pytest.approx(2 / 3)
    reverse = Float("momentum", 0.5, 0.999, sampling="reverse_log")
    # reverse_log puts more values near the top of the range than log does
    assert reverse.prob_to_value(0.5) > Float("m", 0.5, 0.999, sampling="log").prob_to_value(0.5)
    integer = Int("units", 1, 4)
    assert [integer.prob_to_value(p) for p in (0.0, 0.3, 0.6, 0.99)] == [1, 2, 3, 4]


def test_random_sample_is_seeded_and_in_range():
    hp = Int("units", 32, 512, step=32)
    assert hp.random_sample(seed=3) == hp.random_sample(seed=3)
    draws = {hp.random_sample(seed=s) for s in range(200)}
    assert draws <= set(hp.values) and len(draws) > 5
    assert Boolean("bn").random_sample(seed=1) in (True, False)


def test_declarations_return_defaults_and_values_is_a_plain_dict():
    hp = HyperParameters()
    assert hp.Int("units", 32, 512, step=32) == 32
    assert hp.Choice("learning_rate", [1e-2, 1e-3]) == 1e-2
    assert hp.Boolean("bn") is False
    assert hp.Fixed("k", 3) == 3
    assert hp.values == {"units": 32, "learning_rate": 1e-2, "bn": False, "k": 3}
    assert [p.name for p in hp.space] == ["units", "learning_rate", "bn", "k"]
    assert isinstance(hp.space[0], Int) and isinstance(hp.space[0], kt.HyperParameter)
    hp.values["units"] = 64  # a user (or an oracle) sets a value
    assert hp.Int("units", 32, 512, step=32) == 64 and hp.get("units") == 64 and hp["units"] == 64
    assert "units" in hp and "nothing" not in hp
    with pytest.raises(KeyError, match="not declared"):
        hp.get("nothing")


def test_conditional_scope_as_documented():
    def build(hp):
        model_type = hp.Choice("model_type", ["mlp", "cnn"])
        with hp.conditional_scope("model_type", ["mlp"]):
            units = hp.Int("units", 32, 128, step=32)
        with hp.conditional_scope("model_type", ["cnn"]):
            filters = hp.Int("filters", 16, 64, step=16)
        return model_type, units, filters

    hp = HyperParameters()
    assert build(hp) == ("mlp", 32, None)  # inactive: None
    assert hp.values == {"model_type": "mlp", "units": 32}  # only active values
    assert [p.name for p in hp.space] == ["model_type", "units", "filters"]
    assert hp.is_active("units") and not hp.is_active("filters")
    with pytest.raises(ValueError, match="inactive"):
        hp.get("filters")

    cnn = HyperParameters({"model_type": "cnn", "units": 64})
    assert build(cnn) == ("cnn", None, 16)
    assert cnn.values == {"model_type": "cnn", "filters": 16}

    with pytest.raises(ValueError, match="not declared"):
        with HyperParameters().conditional_scope("missing", ["a"]):
            pass
    # parent_name/parent_values on a declaration is the same as the scope
    hp = HyperParameters()
    hp.Choice("opt", ["adam", "sgd"])
    assert hp.Float("momentum", 0.0, 0.9, parent_name="opt", parent_values=["sgd"]) is None
    assert hp.space[-1].conditions[0].name == "opt"


def test_name_scope_prefixes_names():
    hp = HyperParameters()
    with hp.name_scope("block1"):
        hp.Int("units", 8, 32, step=8)
        with hp.name_scope("conv"):
            hp.Choice("kernel", [3, 5])
        assert hp.get("units") == 8  # get inside the scope uses the scoped name
    assert set(hp.values) == {"block1/units", "block1/conv/kernel"}
    assert hp.get("block1/conv/kernel") == 3


def test_get_config_from_config_and_copy_round_trip():
    hp = HyperParameters()
    hp.Choice("model_type", ["mlp", "cnn"])
    with hp.conditional_scope("model_type", "cnn"):
        hp.Float("dropout", 0.0, 0.5, step=0.1, default=0.2)
    hp.Int("units", 2, 64, step=2, sampling="log")
    hp.Boolean("bn", default=True)
    hp.Fixed("seed", 7)
    hp.values["model_type"] = "cnn"
    config = hp.get_config()
    assert [item["class_name"] for item in config["space"]] == [
        "Choice",
        "Float",
        "Int",
        "Boolean",
        "Fixed",
    ]
    again = HyperParameters.from_config(config)
    assert again.space == hp.space and again.values == hp.values
    copied = hp.copy()
    copied.values["units"] = 64
    assert hp.values["units"] == 2  # independent
    assert copied.get_config()["space"] == config["space"]
    for p in hp.space:
        assert type(p).from_config(p.get_config()) == p


def test_merge_overwrites_or_keeps():
    a = HyperParameters()
    a.Int("units", 8, 64, step=8)
    a.values["units"] = 32
    b = HyperParameters()
    b.Int("units", 8, 64, step=8, default=16)
    b.Choice("act", ["relu", "tanh"])

    kept = a.copy()
    kept.merge(b, overwrite=False)
    assert kept.values == {"units": 32, "act": "relu"}
    assert kept.space[0].default == 8

    replaced = a.copy()
    replaced.merge(b)  # overwrite=True: b's declaration and its default
    assert replaced.values == {"units": 16, "act": "relu"}
    assert len(replaced.space) == 2

    listed = HyperParameters()
    listed.merge([Fixed("lr", 0.1), Boolean("bn")])
    assert listed.values == {"lr": 0.1, "bn": False}


@pytest.mark.parametrize(
    "declare, error, match",
    [
        (lambda: Int("u", 1.5, 5), ValueError, "min_value must be an int"),
        (lambda: Int("u", 1, 5.5), ValueError, "max_value must be an int"),
        (lambda: Int("u", 10, 5), ValueError, "min_value=10 is greater than max_value=5"),
        (lambda: Float("f", 1.0, 0.5), ValueError, "greater than"),
        (lambda: Int("u", 1, 5, default=9), ValueError, "outside"),
        (lambda: Float("lr", 0.0, 1.0, sampling="log"), ValueError, "min_value > 0"),
        (lambda: Int("u", 2, 32, step=1, sampling="log"), ValueError, "step > 1"),
        (lambda: Choice("c", []), ValueError, "non-empty"),
        (lambda: Choice("c", [1, 2], default=3), ValueError, "default 3"),
        (lambda: Boolean("b", default="yes"), ValueError, "True or False"),
        (lambda: Fixed("f", [1, 2]), ValueError, "int, float, string, bool"),
        (lambda: HyperParameters().Int("", 1, 2), ValueError, "non-empty string"),
    ],
)
def test_invalid_declarations_raise_as_keras_tuner_does(declare, error, match):
    with pytest.raises(error, match=match):
        declare()


def test_integral_floats_are_accepted_for_int_as_in_keras_tuner():
    assert Int("u", 2.0, 8.0).values == (2, 3, 4, 5, 6, 7, 8)


def test_a_parameter_conditional_on_itself_is_refused():
    hp = HyperParameters()
    hp.Choice("a", [1, 2])
    with pytest.raises(ValueError, match="conditional on itself"):
        with hp.conditional_scope("a", [1]):
            hp.Int("a", 1, 2)


def test_parameters_declared_in_a_loop_are_recorded_and_tuned():
    """keras-tuner's getting-started model: units_1 and units_2 exist only for 2-3 layers."""

    def build(hp):
        for i in range(hp.Int("num_layers", 1, 3)):
            hp.Int(f"units_{i}", min_value=32, max_value=512, step=32)
            if hp.Boolean(f"dropout_{i}"):
                hp.Float(f"rate_{i}", 0.1, 0.5, step=0.1)
        hp.Choice("learning_rate", [1e-2, 1e-3])

    space = kt.record_space(build)
    assert set(space.params) == {
        "num_layers",
        "learning_rate",
        *(f"units_{i}" for i in range(3)),
        *(f"dropout_{i}" for i in range(3)),
        *(f"rate_{i}" for i in range(3)),
    }
    sampled = {c["units_2"] for c in space.sample(50, seed=0)}
    assert len(sampled) > 5  # tuned, not left at its default


def test_a_build_that_fails_on_the_widest_probe_keeps_the_space_it_declared():
    def build(hp):
        layers = hp.Int("num_layers", 1, 4)
        if layers > 2:
            raise ValueError("too deep for this input")
        for i in range(layers):
            hp.Int(f"units_{i}", 8, 16, step=8)

    space = kt.record_space(build)
    assert set(space.params) == {"num_layers", "units_0"}
