"""keras-tuner users' scripts beyond the seed notes: each runs unchanged.

The four cases of the keras-tuner-depth issue, written the way keras-tuner's
guides write them (digits in place of MNIST): ``executions_per_trial``, the
tuner's ``loss``/``metrics``/``optimizer`` overrides, ``hyperparameters=`` with a
``Fixed`` override and ``tune_new_entries``, and a pre-declared space with
``allow_new_entries=False``. The declared-space rules without Ray or Keras first.
"""

import numpy as np
import pytest

import bandit_tune as kt
from bandit_tune.arm.hypermodel import TunerHyperModel, as_hypermodel
from bandit_tune.space import record_space


def _declares(hp):
    hp.Int("units", 16, 64, step=16)
    hp.Choice("learning_rate", [1e-2, 1e-3])
    return None


def _recorded(hyperparameters, **options):
    wrapper = TunerHyperModel(as_hypermodel(_declares), hyperparameters, **options)
    return record_space(wrapper.build)


def test_a_fixed_override_wins_over_build_models_declaration():
    hp = kt.HyperParameters()
    hp.Fixed("learning_rate", 0.1)
    space = _recorded(hp)
    assert space.params["learning_rate"].kind == "fixed"
    assert {c["learning_rate"] for c in space.sample(20, seed=0)} == {0.1}
    assert space.params["units"].kind == "int"  # tune_new_entries=True: still tuned
    assert {c["learning_rate"] for c in space.grid()} == {0.1}


def test_tune_new_entries_false_fixes_what_hyperparameters_does_not_declare():
    hp = kt.HyperParameters()
    hp.Choice("learning_rate", [1e-2, 1e-3])
    space = _recorded(hp, tune_new_entries=False)
    assert space.params["units"].kind == "fixed" and space.params["units"].default == 16
    assert space.params["learning_rate"].kind == "choice"


def test_allow_new_entries_false_refuses_an_undeclared_parameter_by_name():
    hp = kt.HyperParameters()
    hp.Choice("learning_rate", [1e-2, 1e-3])
    with pytest.raises(ValueError, match=r"declared 'units'.*allow_new_entries=False"):
        _recorded(hp, allow_new_entries=False)


def test_tuner_options_are_checked_when_the_tuner_is_made():
    with pytest.raises(ValueError, match="executions_per_trial must be an integer >= 1"):
        kt.RandomSearch(_declares, executions_per_trial=0)
    with pytest.raises(ValueError, match="no hyperparameters were declared"):
        kt.RandomSearch(_declares, allow_new_entries=False)
    with pytest.raises(TypeError, match="must be a bandit_tune.HyperParameters"):
        kt.RandomSearch(_declares, hyperparameters={"learning_rate": 0.1})


def _build_model(hp):
    import keras

    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten()])
    for i in range(hp.Int("num_layers", 1, 2)):
        model.add(keras.layers.Dense(hp.Int(f"units_{i}", 16, 32, step=16), activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Choice("learning_rate", [1e-2, 1e-3])),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@pytest.mark.ray
def test_executions_overrides_and_a_fixed_learning_rate(
    ray_local, digits_small, tmp_path, monkeypatch
):
    """keras-tuner's getting-started options in one search: every one takes effect.

    With TensorBoard and ModelCheckpoint given relative paths: each arm writes its
    own (keras-tuner's layout), under the folder the script runs in.
    """
    import os

    import keras

    monkeypatch.chdir(tmp_path)
    (x, y), (xv, yv), _ = digits_small
    hp = kt.HyperParameters()
    hp.Fixed("learning_rate", 0.1)
    tuner = kt.RandomSearch(
        _build_model,
        hyperparameters=hp,
        tune_new_entries=True,
        objective="val_accuracy",
        max_trials=3,
        max_epochs=2,
        executions_per_trial=2,
        optimizer=keras.optimizers.SGD(learning_rate=0.05),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy", "sparse_top_k_categorical_accuracy"],
        seed=1,
        directory=str(tmp_path),
        project_name="clients",
        verbose=0,
    )
    tuner.search(
        x,
        y,
        validation_data=(xv, yv),
        callbacks=[
            keras.callbacks.TensorBoard(log_dir="tb"),
            keras.callbacks.ModelCheckpoint(
                "best.keras", monitor="val_accuracy", save_best_only=True
            ),
        ],
    )
    results = tuner.results_
    for arm_id in results["arm_id"]:
        for k in range(2):
            assert os.path.isdir(tmp_path / "tb" / arm_id / f"execution{k}" / "hparams")
            assert os.path.isfile(tmp_path / arm_id / f"execution{k}" / "best.keras")
    assert not os.path.exists(tmp_path / "best.keras")  # no file shared by every arm
    assert set(results["learning_rate"]) == {0.1}  # the override, in every arm
    assert tuner.best_params_["learning_rate"] == 0.1
    assert tuner.get_best_hyperparameters()[0].get("learning_rate") == 0.1
    history = next(iter(tuner._histories.values()))
    # two executions per arm, the mean reported: the policy decided on it
    row = history.iloc[-1]
    runs = [row[f"split{k}_val_accuracy"] for k in range(2)]
    assert row["val_accuracy"] == pytest.approx(np.mean(runs))
    assert "val_sparse_top_k_categorical_accuracy" in history.columns  # metrics override
    model = tuner.get_best_models()[0]
    assert type(model.optimizer).__name__ == "SGD"  # optimizer override
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)


@pytest.mark.ray
def test_a_predeclared_space_without_new_entries(ray_local, digits_small, tmp_path):
    """build_model reads hp.get("num_layers") from the tuner's declared space."""
    import keras

    def build(hp):
        model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten()])
        for _ in range(hp.get("num_layers")):
            model.add(keras.layers.Dense(16, activation="relu"))
        model.add(keras.layers.Dense(10, activation="softmax"))
        model.compile(
            optimizer=keras.optimizers.Adam(hp.get("learning_rate")),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    (x, y), (xv, yv), _ = digits_small
    hp = kt.HyperParameters()
    hp.Int("num_layers", 1, 3)
    hp.Choice("learning_rate", [1e-2, 1e-3])
    tuner = kt.RandomSearch(
        build,
        hyperparameters=hp,
        allow_new_entries=False,
        objective="val_accuracy",
        max_trials=3,
        max_epochs=1,
        seed=0,
        directory=str(tmp_path),
        project_name="declared",
        verbose=0,
    )
    tuner.search(x, y, validation_data=(xv, yv))
    assert list(tuner.space_.params) == ["num_layers", "learning_rate"]
    assert tuner.results_["num_layers"].nunique() > 1  # the declared space was searched
    layers = tuner.best_params_["num_layers"]
    model = tuner.get_best_models()[0]
    assert sum(isinstance(layer, keras.layers.Dense) for layer in model.layers) == layers + 1

    # keras-tuner's oracle view of the same search
    best = tuner.oracle.get_best_trials(2)
    assert [t.trial_id for t in best] == list(tuner.results_["arm_id"][:2])
    assert best[0].score == tuner.best_score_ and best[0].status == "COMPLETED"
    assert best[0].hyperparameters.values == tuner.best_params_
    assert best[0].metrics.get_best_value("val_accuracy") == tuner.best_score_
    assert set(tuner.oracle.trials) == set(tuner.results_["arm_id"])
    assert tuner.oracle.get_trial(best[0].trial_id).score == best[0].score
    assert [p.name for p in tuner.oracle.get_space().space] == ["num_layers", "learning_rate"]
    history = tuner._histories[best[0].trial_id]
    assert best[0].metrics.get_last_value("val_accuracy") == history["val_accuracy"].iloc[-1]
    with pytest.raises(KeyError, match="no trial 'nope'"):
        tuner.oracle.get_trial("nope")
    best[0].summary()
    assert tuner.project_dir == str(tmp_path / "declared")
    assert tuner.hypermodel.build(best[0].hyperparameters).count_params() > 0

    # overwrite=False on a finished project: reloaded at construction, nothing trains
    def again():
        return kt.RandomSearch(
            build,
            hyperparameters=hp,
            allow_new_entries=False,
            objective="val_accuracy",
            max_trials=3,
            max_epochs=1,
            seed=0,
            directory=str(tmp_path),
            project_name="declared",
            verbose=0,
        )

    reloaded = again()
    assert list(reloaded.results_["arm_id"]) == list(tuner.results_["arm_id"])
    assert reloaded.best_params_ == tuner.best_params_
    assert reloaded.get_best_hyperparameters()[0].values == tuner.best_params_
    rerun = again().search(x, y, validation_data=(xv, yv))
    assert rerun.results_["epochs"].sum() == tuner.results_["epochs"].sum()
    assert rerun.results_["best_score"].tolist() == tuner.results_["best_score"].tolist()
    assert (
        kt.RandomSearch(
            build,
            hyperparameters=hp,
            objective="val_accuracy",
            directory=str(tmp_path),
            project_name="declared",
            verbose=0,
        )
        .reload()
        .best_score_
        == tuner.best_score_
    )


def test_keras_tuner_arguments_out_of_scope_name_the_way_instead():
    with pytest.raises(ValueError, match="logger.*not supported.*results_"):
        kt.RandomSearch(_declares, logger=object())
    with pytest.raises(ValueError, match="distribution_strategy.*cpus_per_arm"):
        kt.RandomSearch(_declares, distribution_strategy=object())
    with pytest.raises(TypeError, match="oracle: not supported; instead"):
        kt.RandomSearch(_declares, oracle=object())
    with pytest.raises(TypeError, match=r"unexpected arguments \['colour'\]"):
        kt.RandomSearch(_declares, colour="red")
    with pytest.raises(RuntimeError, match="inside search"):
        kt.RandomSearch(_declares).run_trial(None)
    with pytest.raises(ValueError, match="max_consecutive_failed_trials must be"):
        kt.RandomSearch(_declares, max_consecutive_failed_trials=0)
    with pytest.raises(ValueError, match="max_model_size must be"):
        kt.RandomSearch(_declares, max_model_size=-5)
    tuner = kt.RandomSearch(_declares, tuner_id="chief", logger=None)
    assert tuner.tuner_id == "chief"
    with pytest.raises(AttributeError, match="no SklearnTuner.*HalvingGridSearchCV"):
        kt.SklearnTuner  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'Nonsense'"):
        kt.Nonsense  # noqa: B018


@pytest.mark.ray
@pytest.mark.parametrize("backend", ["tune", "pool"])
def test_oversized_models_fail_and_consecutive_failures_stop_the_search(
    ray_local, digits_small, tmp_path, backend
):
    """``max_consecutive_failed_trials`` is the runner's rule: both backends obey it."""
    (x, y), (xv, yv), _ = digits_small
    tuner = kt.RandomSearch(
        _build_model,
        backend=backend,
        objective="val_accuracy",
        max_trials=5,
        max_epochs=1,
        max_model_size=100,  # every model here is larger
        max_consecutive_failed_trials=2,
        seed=0,
        directory=str(tmp_path),
        project_name=f"oversized_{backend}",
        verbose=0,
    )
    with pytest.raises(RuntimeError, match=r"2 arms failed in a row.*max_model_size=100"):
        tuner.search(x, y, validation_data=(xv, yv))
    assert len(tuner.results_) <= 3  # stopped: not all five arms were tried


def test_search_space_summary_prints_each_parameter_as_keras_tuner_does(capsys):
    hp = kt.HyperParameters()
    hp.Fixed("learning_rate", 0.1)
    kt.RandomSearch(_build_model, hyperparameters=hp, verbose=0).search_space_summary()
    out = capsys.readouterr().out
    assert "Search space summary\nDefault search space size: 4" in out  # units_1 too
    assert "num_layers (Int)\n{'default': None, 'conditions': [], 'min_value': 1" in out
    assert "learning_rate (Fixed)\n{'conditions': [], 'value': 0.1}" in out


def test_early_stopping_patience_survives_a_pause():
    """A paused arm resumes with a fresh EarlyStopping copy: its count goes on, not from 0."""
    import copy

    import keras

    from bandit_tune.arm.callbacks import callback_states, restore_states

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)), rng.integers(0, 2, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss="sparse_categorical_crossentropy")
    # lr 0: the loss never improves, so each epoch after the first adds one to the count
    original = keras.callbacks.EarlyStopping(monitor="loss", patience=3, min_delta=1.0)
    first = copy.deepcopy(original)
    model.fit(x, y, epochs=3, callbacks=[first], verbose=0)  # until the rung at epoch 3
    assert first.wait == 2 and first.stopped_epoch == 0
    states = callback_states([first])
    assert states[0]["wait"] == 2

    resumed = copy.deepcopy(original)  # what the resumed arm gets
    history = model.fit(
        x,
        y,
        initial_epoch=3,
        epochs=9,
        callbacks=[resumed, restore_states([resumed], states)],
        verbose=0,
    )
    # two epochs without improvement before the pause, the third right after it
    assert len(history.history["loss"]) == 1 and resumed.stopped_epoch == 3
    fresh = copy.deepcopy(original)  # without the saved state it would count from 0 again
    again = model.fit(x, y, initial_epoch=3, epochs=9, callbacks=[fresh], verbose=0)
    assert len(again.history["loss"]) == 4


class _CustomLoop(kt.HyperModel):
    """keras-tuner's guide "Tune hyperparameters in your custom training loop", on digits."""

    def build(self, hp):
        import keras

        inputs = keras.Input(shape=(8, 8))
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(units=hp.Choice("units", [16, 32]), activation="relu")(x)
        outputs = keras.layers.Dense(units=10)(x)
        return keras.Model(inputs=inputs, outputs=outputs)  # not compiled: fit trains it

    def fit(self, hp, model, x, y, validation_data, callbacks=None, **kwargs):
        import keras
        import tensorflow as tf

        batch_size = hp.Int("batch_size", 32, 64, step=32, default=64)
        train_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
        validation_ds = tf.data.Dataset.from_tensor_slices(validation_data).batch(batch_size)
        optimizer = keras.optimizers.Adam(hp.Float("learning_rate", 1e-3, 1e-2, sampling="log"))
        loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        epoch_loss_metric = keras.metrics.Mean()

        @tf.function
        def run_train_step(images, labels):
            with tf.GradientTape() as tape:
                loss = loss_fn(labels, model(images))
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))

        @tf.function
        def run_val_step(images, labels):
            epoch_loss_metric.update_state(loss_fn(labels, model(images)))

        for callback in callbacks:
            callback.set_model(model)
        best_epoch_loss = float("inf")
        for epoch in range(3):
            for images, labels in train_ds:
                run_train_step(images, labels)
            for images, labels in validation_ds:
                run_val_step(images, labels)
            epoch_loss = float(epoch_loss_metric.result().numpy())
            for callback in callbacks:
                callback.on_epoch_end(epoch, logs={"my_metric": epoch_loss})
            epoch_loss_metric.reset_state()
            best_epoch_loss = min(best_epoch_loss, epoch_loss)
        return best_epoch_loss


@pytest.mark.ray
def test_a_custom_training_loop_reports_every_epoch_to_the_policy(
    ray_local, digits_small, tmp_path
):
    (x, y), (xv, yv), _ = digits_small
    tuner = kt.RandomSearch(
        objective=kt.Objective("my_metric", "min"),
        max_trials=2,
        hypermodel=_CustomLoop(),
        max_epochs=3,
        seed=0,
        directory=str(tmp_path),
        project_name="custom_training",
        overwrite=True,
        verbose=0,
    )
    tuner.search(x=x, y=y, validation_data=(xv, yv))
    assert set(tuner.space_.params) == {"units", "batch_size", "learning_rate"}
    for history in tuner._histories.values():
        assert list(history["epoch"]) == [1, 2, 3]  # every epoch reached the policy
    best = tuner.get_best_hyperparameters()[0]
    assert best.get("units") in (16, 32)
    model = tuner.get_best_models()[0]  # restored from the arm's last checkpoint
    assert model.count_params() > 0


@pytest.mark.ray
def test_tied_arms_one_best_arm_in_the_live_display_results_and_models(
    ray_local, digits_small, tmp_path
):
    """Blank images of one class: every arm reaches val_accuracy 1.0 after its first step."""
    import io

    (x, y), (xv, yv), _ = digits_small
    tuner = kt.RandomSearch(
        _build_model,
        objective="val_accuracy",
        max_trials=4,
        max_epochs=2,
        seed=0,
        directory=str(tmp_path),
        project_name="ties",
        verbose=1,
    )
    import contextlib

    with contextlib.redirect_stdout(io.StringIO()), pytest.warns(UserWarning, match="chance"):
        tuner.search(
            np.zeros_like(x),
            np.full_like(y, 3),
            validation_data=(np.zeros_like(xv), np.full_like(yv, 3)),
        )
    results = tuner.results_
    top = results[results["best_score"] == 1.0]
    assert len(top) == len(results) == 4  # every arm ties on the objective
    best = results.iloc[0]
    # broken by the val_loss at the best epoch, then by epochs trained
    expected = min(top.itertuples(), key=lambda r: (r.best_epoch_loss, -r.epochs))
    assert best["arm_id"] == expected.arm_id
    assert tuner.progress_.best[1] == best["arm_id"]  # the live display's best
    assert tuner.oracle.get_best_trials()[0].trial_id == best["arm_id"]
    assert tuner.get_best_hyperparameters()[0].values == tuner.best_params_
    model = tuner.get_best_models()[0]
    assert (
        model.count_params()
        == tuner.hypermodel.build(tuner.get_best_hyperparameters()[0]).count_params()
    )


class _BatchSizeTuner(kt.RandomSearch):
    """keras-tuner's documented run_trial override: tune a fit argument."""

    def run_trial(self, trial, *args, **kwargs):
        kwargs["batch_size"] = trial.hyperparameters.Choice("batch_size", [16, 128])
        return super().run_trial(trial, *args, **kwargs)


class _OwnScoreTuner(kt.RandomSearch):
    """A run_trial that trains by itself and returns the score (keras-tuner allows it)."""

    def run_trial(self, trial, x, y, validation_data=None, **kwargs):
        model = self.hypermodel.build(trial.hyperparameters)
        model.fit(x, y, epochs=1, verbose=0)
        return float(model.evaluate(*validation_data, verbose=0)[1])


@pytest.mark.slow
@pytest.mark.ray
def test_run_trial_overrides_run_in_the_arms(ray_local, digits_small, tmp_path):
    (x, y), (xv, yv), _ = digits_small
    tuner = _BatchSizeTuner(
        _build_model,
        objective="val_accuracy",
        max_trials=3,
        max_epochs=2,
        seed=1,
        directory=str(tmp_path),
        project_name="run_trial",
        verbose=0,
    )
    tuner.search(x, y, validation_data=(xv, yv))
    assert "batch_size" in tuner.space_.params  # declared in run_trial, recorded
    assert tuner.results_["batch_size"].nunique() == 2
    for arm_id, history in tuner._histories.items():
        assert list(history["epoch"]) == [1, 2]  # every epoch reached the policy
        batch = tuner.results_.set_index("arm_id").loc[arm_id, "batch_size"]
        steps = int(history["optimizer_iterations"].iloc[-1])
        assert steps == 2 * -(-len(x) // batch)  # trained with the tuned batch size

    own = _OwnScoreTuner(
        _build_model,
        objective="val_accuracy",
        max_trials=2,
        max_epochs=1,
        seed=0,
        directory=str(tmp_path),
        project_name="own_score",
        verbose=0,
    )
    own.search(x, y, validation_data=(xv, yv))
    assert own.results_["best_score"].notna().all()  # the returned value is the score
    assert (own.results_["epochs"] == 1).all()


def test_the_oracle_and_the_tuner_agree_on_every_direction_keras_tuner_infers():
    """One rule for directions: the oracle's metrics view and the tuner's objective agree
    on every metric name keras-tuner knows (also val_, numbered, and unknown names)."""
    from bandit_tune.objective import _MAX_METRICS, _MIN_METRICS, Objective
    from bandit_tune.tuner.oracle import MetricsTracker

    names = sorted(_MAX_METRICS | _MIN_METRICS)
    names += [f"val_{n}" for n in names] + [f"{n}_1" for n in names] + ["val_mae", "mae"]
    for name in names:
        tuner_side = kt.BanditTuner(_build_model, objective=name, verbose=0).objective
        tracker = MetricsTracker(history={name: [(1, 0.5), (2, 0.25), (3, 0.75)]})
        assert tracker.get_direction(name) == tuner_side.direction, name
        expected = 0.25 if tuner_side.direction == "min" else 0.75
        assert tracker.get_best_value(name) == expected, name
    assert MetricsTracker().get_direction("val_mae") == "min"  # was "max": no "loss" in it
    assert Objective.direction_of("my_custom_loss") == "min"
    assert Objective.direction_of("dice_coef") == "max"
