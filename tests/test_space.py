import pytest

from bandit_tune import HyperParameters, record_space


def seed_build_model(hp):
    """The seed notes' keras-tuner build_model, without the Keras parts."""
    units = hp.Int("units", min_value=32, max_value=512, step=32)
    learning_rate = hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])
    return units, learning_rate


def test_recording_the_seed_build_model():
    space = record_space(seed_build_model)
    assert list(space.params) == ["units", "learning_rate"]
    units = space.params["units"]
    assert (units.kind, units.min_value, units.max_value, units.step) == ("int", 32, 512, 32)
    assert space.params["learning_rate"].values == (1e-2, 1e-3, 1e-4)
    assert space.grid_size() == 16 * 3
    assert space.grid()[0] == {"units": 32, "learning_rate": 0.01}
    assert space.grid()[-1] == {"units": 512, "learning_rate": 0.0001}


def test_each_call_returns_the_value_as_in_keras_tuner():
    hp = HyperParameters({"units": 96})
    assert hp.Int("units", 32, 512, step=32) == 96
    assert hp.Choice("act", ["relu", "tanh"]) == "relu"
    assert hp.Boolean("bn") is False
    assert hp.Fixed("k", 3) == 3
    assert hp.Float("drop", 0.0, 0.5, default=0.25) == 0.25
    assert hp.get("units") == 96 and hp["act"] == "relu"
    assert hp.values == {"units": 96, "act": "relu", "bn": False, "k": 3, "drop": 0.25}


def test_conditional_parameters_are_recorded_from_every_branch():
    def build(hp):
        kind = hp.Choice("kind", ["mlp", "cnn"])
        with hp.conditional_scope("kind", "cnn"):
            filters = hp.Int("filters", 8, 32, step=8)
        with hp.conditional_scope("kind", ["mlp"]):
            hp.Int("units", 16, 64, step=16)
        return kind, filters

    space = record_space(build)
    assert set(space.params) == {"kind", "filters", "units"}
    assert space.params["filters"].conditions[0].values == ("cnn",)
    hp = HyperParameters({"kind": "mlp"})
    assert build(hp) == ("mlp", None)  # inactive parameters return None


def test_sampling_is_reproducible_and_respects_steps_and_log():
    def build(hp):
        hp.Int("units", 32, 512, step=32)
        hp.Float("lr", 1e-4, 1e-1, sampling="log")
        hp.Int("layers", 1, 4)

    space = record_space(build)
    a, b = space.sample(50, seed=3), space.sample(50, seed=3)
    assert a == b and a != space.sample(50, seed=4)
    assert all(c["units"] % 32 == 0 and 32 <= c["units"] <= 512 for c in a)
    assert all(1e-4 <= c["lr"] <= 1e-1 for c in a)
    assert {c["layers"] for c in a} == {1, 2, 3, 4}
    # log sampling: about as many draws below 1e-2.5 as above
    low = sum(c["lr"] < 10**-2.5 for c in space.sample(2000, seed=0))
    assert 800 < low < 1200


def test_grid_refuses_a_continuous_float_and_says_how_to_fix_it():
    space = record_space(lambda hp: hp.Float("dropout", 0.0, 0.5))
    with pytest.raises(ValueError, match=r"step.*Choice"):
        space.grid()
    stepped = record_space(lambda hp: hp.Float("dropout", 0.0, 0.5, step=0.25))
    assert stepped.grid() == [{"dropout": 0.0}, {"dropout": 0.25}, {"dropout": 0.5}]
    logstep = record_space(lambda hp: hp.Int("units", 8, 64, step=2, sampling="log"))
    assert [c["units"] for c in logstep.grid()] == [8, 16, 32, 64]


def test_ray_domains_preserve_steps_and_log():
    from ray.tune.search.sample import Categorical, Float, Integer

    def build(hp):
        hp.Int("units", 32, 512, step=32)
        hp.Float("lr", 1e-4, 1e-1, sampling="log")
        hp.Int("batch", 16, 256, sampling="log")
        hp.Fixed("k", 7)

    ray_space = record_space(build).to_ray()
    assert isinstance(ray_space["units"], Categorical)
    assert ray_space["units"].categories == list(range(32, 513, 32))
    assert (
        isinstance(ray_space["lr"], Float)
        and "LogUniform" in type(ray_space["lr"].sampler).__name__
    )
    assert (
        isinstance(ray_space["batch"], Integer)
        and "LogUniform" in type(ray_space["batch"].sampler).__name__
    )
    assert ray_space["k"] == 7


@pytest.mark.parametrize(
    "declare,error,match",
    [
        (lambda hp: hp.Int("u", 10, 5), ValueError, "min_value=10 is greater than max_value=5"),
        (lambda hp: hp.Float("lr", 0.0, 1.0, sampling="log"), ValueError, "min_value > 0"),
        (lambda hp: hp.Int("u", 1, 5, sampling="cubic"), ValueError, "sampling must be one of"),
        (lambda hp: hp.Choice("a", []), ValueError, "non-empty"),
        (lambda hp: hp.Choice("a", [1, 1]), ValueError, "duplicates"),
        (lambda hp: hp.Choice("a", [1, 2], default=3), ValueError, "default 3"),
        (lambda hp: hp.Int("u", 1.5, 5), ValueError, "min_value must be an int"),
        (lambda hp: hp.Int("u", 1, 5, step=0), ValueError, "step must be a positive int"),
        (lambda hp: (hp.Int("u", 1, 5), hp.Choice("u", [1, 2])), ValueError, "declared twice"),
    ],
)
def test_bad_declarations_are_refused_with_the_value(declare, error, match):
    with pytest.raises(error, match=match):
        declare(HyperParameters())


def test_empty_space_is_refused():
    with pytest.raises(ValueError, match="empty"):
        record_space(lambda hp: None)


def test_conditional_scope_needs_a_declared_parent():
    hp = HyperParameters()
    with pytest.raises(ValueError, match="not declared"):
        with hp.conditional_scope("kind", "cnn"):
            pass


def test_parameters_declared_in_a_hypermodel_fit_are_recorded():
    import keras

    import bandit_tune
    from bandit_tune.arm.hypermodel import record_hypermodel

    class Tunable(bandit_tune.HyperModel):
        def build(self, hp):
            model = keras.Sequential(
                [keras.Input((4,)), keras.layers.Dense(hp.Int("units", 4, 8, step=4))]
            )
            model.compile(optimizer="adam", loss="mse")
            return model

        def fit(self, hp, model, *args, **kwargs):
            return model.fit(*args, batch_size=hp.Choice("batch_size", [16, 32]), **kwargs)

    space = record_hypermodel(Tunable())
    assert list(space.params) == ["units", "batch_size"]
    assert space.params["batch_size"].values == (16, 32)


def test_bayesian_optimization_with_a_seed_proposes_the_same_first_configurations():
    import bandit_tune
    from bandit_tune.arm.hypermodel import record_hypermodel

    def build(hp):
        import keras

        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(hp.Int("units", 4, 64, step=4))]
        )
        hp.Float("dropout", 0.0, 0.5)
        model.compile(
            optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-4, 1e-1, sampling="log")), loss="mse"
        )
        return model

    def first(seed):
        tuner = bandit_tune.BayesianOptimization(
            build, objective="val_loss", max_trials=8, seed=seed
        )
        searcher = tuner.make_searcher(record_hypermodel(tuner.hypermodel))
        searcher.set_search_properties("val_loss", "min", {})
        return [searcher.suggest(f"t{i}") for i in range(5)]

    a = first(0)
    assert a == first(0) and a != first(1)
    assert all(4 <= c["units"] <= 64 and c["units"] % 4 == 0 and 1e-4 <= c["lr"] <= 1e-1 for c in a)
