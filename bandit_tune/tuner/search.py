"""The tuner users call: keras-tuner's constructor and methods, scikit-learn's results.

``BanditTuner(policy=...)`` takes any :class:`~bandit_tune.policies.ArmPolicy`;
:mod:`bandit_tune.tuner.tuners` holds keras-tuner's named tuners built on it. Work
happens in :meth:`BanditTuner.search` on Ray Tune (each arm trains in
:func:`bandit_tune.arm.train.train_arm`); what was learned lives in trailing-underscore
attributes. The class stores parameters and calls functions of explicit arguments:
:mod:`~bandit_tune.tuner.options` (the arguments), :mod:`~bandit_tune.tuner.data`
(the data), :func:`bandit_tune.driver.project.open_project` (the folder and its lock),
:mod:`~bandit_tune.tuner.run` (Ray Tune or the pool) and
:mod:`~bandit_tune.tuner.outcome` (results, reloads, summaries).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from bandit_tune.arm.hypermodel import record_hypermodel
from bandit_tune.driver.project import STATE_FILE, open_project, read_state
from bandit_tune.policies.base import ArmPolicy
from bandit_tune.policies.registry import TrainToEnd
from bandit_tune.space import HyperParameters, SearchSpace
from bandit_tune.tuner import outcome, run
from bandit_tune.tuner.data import prepare
from bandit_tune.tuner.options import check_options

__all__ = ["BanditTuner"]


class BanditTuner:
    """Tune a Keras hypermodel with any arm policy on Ray Tune.

    Args:
        hypermodel: a ``build_model(hp)`` function or a :class:`HyperModel`.
        policy: an :class:`~bandit_tune.policies.ArmPolicy`; ``None`` trains every
            arm to ``max_epochs`` (Keras callbacks such as EarlyStopping still apply).
        objective: metric name (``"val_accuracy"``) or :class:`Objective`; or a list
            of them for a multi-objective search (the policy must be one, e.g.
            :class:`~bandit_tune.policies.MOHyperband`): ``["val_accuracy",
            Objective("params", "min")]``. ``params`` (trainable parameters) and
            ``latency_ms`` (median forward pass on a batch of 32, on the worker)
            are built-in metrics any arm reports. ``results_`` then has a column
            per objective (read at the first objective's best epoch) and a
            ``pareto_rank`` (1: the front), rows ordered by it; see
            :meth:`pareto_front` and :meth:`hypervolume`.
        max_epochs: epochs of the longest arm.
        max_trials: arms to try (default: what the policy plans, else 10).
        seed: makes the sampled configurations reproducible.
        directory: results go to ``directory/project_name``.
        project_name: see ``directory``.
        overwrite: start afresh, deleting earlier results of the project.
        cpus_per_arm: CPUs one arm uses (also its TensorFlow threads, at least 1). A
            fraction packs arms: ``0.5`` trains two arms per CPU.
        gpus_per_arm: GPUs one arm uses; ``0.25`` packs four arms on one GPU (each
            arm's TensorFlow then allocates GPU memory as it grows).
        max_concurrent: arms training at once (default: as many as resources allow).
        address: join this Ray cluster instead of starting a local Ray.
        max_retries_per_trial: retries of a failing arm (Ray's ``max_failures``);
            an arm whose worker or node was lost is placed again at least 3 times
            (``LOST_WORKER_RETRIES``), on either backend.
        verbose: 0 silent; 1 (default) shows the live progress display (plain lines
            when output is not a terminal) and a line when the search ends.
        hyperparameters: a :class:`~bandit_tune.HyperParameters` declared before
            ``build_model`` runs (keras-tuner's argument): its declarations win over
            build_model's own of the same name (``hp.Fixed("learning_rate", 0.1)``
            fixes it in every arm).
        tune_new_entries: whether parameters build_model declares beyond
            ``hyperparameters`` are tuned (``False``: fixed at their default).
        allow_new_entries: whether build_model may declare parameters beyond
            ``hyperparameters`` (``False``: such a declaration is an error, raised
            while the space is recorded, before any arm trains).
        executions_per_trial: models each arm trains, from different random
            initialisations on the same data; the policy decides on their mean
            (keras-tuner's argument, to tame noisy scores). Each execution shows as a
            split in ``cv_results_``.
        optimizer: recompile every model build_model returns with this optimizer
            (a name or a Keras optimizer, copied per model; keras-tuner's override).
        loss: recompile every model with this loss.
        metrics: recompile every model with these metrics.
        max_consecutive_failed_trials: stop the search (raising ``RuntimeError``)
            when this many arms fail one after another (keras-tuner's default 3;
            ``None``: never). Every arm's error stays in ``results_``.
        max_model_size: arms whose model has more parameters than this fail at
            once, without training (keras-tuner's argument).
        tuner_id: a name for this tuner (keras-tuner's argument; kept as
            :attr:`tuner_id`).
        logger: keras-tuner's cloud logger: only ``None`` (see the error otherwise).
        distribution_strategy: only ``None`` (see the error otherwise).
        budget: a wall-clock limit (``"90s"``, ``"10m"``, ``"2h"``, ``"1h30m"`` or
            seconds), counted from the call to :meth:`search` with Ray's start
            included. Hyperband plans whole brackets to fit it and re-plans from the
            epoch times it measures; at the limit every arm stops and the search
            ends with the best arm so far.
        max_total_epochs: a limit on the epochs trained in all (exact).
        target_score: end the search as soon as an arm reaches this value of the
            objective (for example human-level accuracy); all results are kept.
        storage_path: where Ray Tune keeps trial results and checkpoints — a folder
            on a shared file system or any URI Ray Tune's storage accepts
            (default: ``directory``).
        fast_input: feed NumPy data to Keras through a tf.data pipeline that each
            worker builds once and reuses for every arm (same batches, reshuffled
            every epoch as Keras does; about twice as fast per epoch for small
            models). ``False`` hands the arrays to ``model.fit`` as they are. See
            :mod:`bandit_tune.arm.inputs` for what is left to Keras.
        backend: ``"tune"`` runs every arm as a Ray Tune trial (the default);
            ``"pool"`` runs the arms on long-lived Ray workers that bandit_tune
            owns (:func:`bandit_tune.run_arms`): no trial per arm, and the workers
            (with Keras imported) stay alive for the next search of the process.
            ``"pool"`` takes the tuners whose arms are a sample fixed before the
            search (Hyperband, SuccessiveHalving, ASHA, RandomSearch, GridSearch);
            its checkpoints live in the project folder (``directory``), which on
            several nodes must be shared by them.

    Attributes (after :meth:`search`):
        results_: pandas DataFrame, one row per arm.
        best_params_, best_score_, best_index_: the best arm's configuration, its
            best objective value and its row in ``results_``.
        space_: the recorded :class:`~bandit_tune.SearchSpace`.
    """

    def __init__(
        self,
        hypermodel: Any,
        policy: ArmPolicy | None = None,
        objective: Any = "val_loss",
        max_epochs: int = 10,
        max_trials: int | None = None,
        seed: int | None = None,
        directory: str | None = None,
        project_name: str | None = None,
        overwrite: bool = False,
        cpus_per_arm: float = 1,
        gpus_per_arm: float = 0,
        max_concurrent: int | None = None,
        address: str | None = None,
        max_retries_per_trial: int = 0,
        verbose: int = 1,
        hyperparameters: HyperParameters | None = None,
        budget: str | float | None = None,
        max_total_epochs: int | None = None,
        target_score: float | None = None,
        storage_path: str | None = None,
        fast_input: bool = True,
        backend: str = "tune",
        tune_new_entries: bool = True,
        allow_new_entries: bool = True,
        executions_per_trial: int = 1,
        optimizer: Any = None,
        loss: Any = None,
        metrics: Any = None,
        max_consecutive_failed_trials: int | None = 3,
        max_model_size: int | None = None,
        tuner_id: str | None = None,
        logger: None = None,
        distribution_strategy: None = None,
        **kwargs: Any,
    ) -> None:
        arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        own_run_trial = type(self).run_trial is not BanditTuner.run_trial
        fixed_sample = type(self)._searcher is BanditTuner._searcher
        vars(self).update(
            check_options(
                type(self).__name__,
                type(self) if own_run_trial else None,
                fixed_sample,
                getattr(self, "hyperband_iterations", 1),
                arguments,
            )
        )
        self._finished = False
        if not self.overwrite:
            self._reload_if_finished()

    def _reload_if_finished(self) -> None:
        """keras-tuner's constructor reloads a finished project: its results are there at once."""
        path = os.path.join(self.project_dir, STATE_FILE)
        if not os.path.isfile(path):
            return
        try:
            state = read_state(path)
            if state.get("extra", {}).get("finished"):
                self._take_state(state)
        except Exception:  # noqa: BLE001 — search() says what is wrong with the project
            for name in ("results_", "space_"):
                self.__dict__.pop(name, None)

    # -- planning --------------------------------------------------------------------
    def n_arms(self) -> int:
        """Arms the search will start."""
        if self.max_trials is not None:
            return self.max_trials
        planned = getattr(self.policy, "n_arms", None)
        if self.budget is not None or self.max_total_epochs is not None:
            # the budget ends the search; enough arms for whatever a re-plan adds
            cap = self.max_total_epochs or 10_000
            return max(int(planned) if isinstance(planned, int) else 0, min(cap, 2_000))
        return int(planned) if isinstance(planned, int) else 10

    def plan(self) -> list[list[tuple[int, int]]] | None:
        """The policy's bracket plan as ``(n_arms, epochs)`` rungs, if it has one."""
        plan = getattr(self.policy, "plan", None)
        return plan() if callable(plan) else None

    def _configs(self, space: SearchSpace) -> list[dict[str, Any]]:
        """The arms' configurations: a seeded random sample of the space."""
        return space.sample(self.n_arms(), seed=self.seed)

    def _searcher(self, configs: list[dict[str, Any]], scheduler: Any) -> Any:
        """The Ray Tune searcher that hands out arms (a fixed list, gated by the scheduler)."""
        from bandit_tune.ray_tune.searchers import GatedSearcher

        return GatedSearcher(configs, scheduler)

    @property
    def project_dir(self) -> str:
        """``directory/project_name``."""
        return os.path.join(self.directory, self.project_name)

    def search_space_summary(self) -> None:
        """Print the recorded search space."""
        space = record_hypermodel(self.hypermodel)
        print(f"Search space summary\nDefault search space size: {len(space)}")
        for p in space:
            config = {k: v for k, v in p.get_config().items() if k != "name"}
            print(f"{p.name} ({type(p).__name__})\n{config}")

    # -- the search ------------------------------------------------------------------
    def search(
        self,
        x: Any = None,
        y: Any = None,
        epochs: int | None = None,
        validation_split: float | None = None,
        validation_data: Any = None,
        batch_size: int | None = None,
        callbacks: Sequence[Any] | None = None,
        cv: Any = None,
        **fit_kwargs: Any,
    ) -> BanditTuner:
        """Run the search on Ray Tune and fill ``results_``; returns ``self``.

        Arguments are those of ``model.fit``. Decisions use ``validation_split``
        or ``validation_data`` — never a test set; score that with :meth:`evaluate`.
        ``epochs`` is ignored when a policy sets the epochs (as in keras-tuner's
        Hyperband); with ``policy=None`` it caps ``max_epochs``.

        ``cv=k`` (or a scikit-learn splitter) trains one model per fold for each
        arm — ``StratifiedKFold`` for classification targets — and the policy decides
        on the mean validation score over folds; ``cv_results_`` then has
        ``split{k}_test_score`` columns. Do not pass validation data with ``cv``.
        """
        from bandit_tune.arm.checks import read_datasets
        from bandit_tune.driver.budget import Budget

        x, y, validation_data, batch_size = read_datasets(x, y, validation_data, batch_size)
        limits = Budget(
            seconds=self.budget,
            max_total_epochs=self.max_total_epochs,
            target_score=self.target_score,
            mode=self.objective.direction,
        )
        prepared = prepare(
            x,
            y,
            validation_split,
            validation_data,
            cv,
            self.objectives,
            self.seed,
            self.executions_per_trial,
        )
        self._validation_labels = prepared.validation_labels
        self.n_splits_ = prepared.n_splits
        fit_args = dict(fit_kwargs)
        if prepared.validation_split is not None:
            fit_args["validation_split"] = prepared.validation_split
        if batch_size is not None:
            fit_args["batch_size"] = batch_size
        max_epochs = self.max_epochs
        if self.policy is None and epochs is not None:
            max_epochs = int(epochs)
        policy = self.policy if self.policy is not None else TrainToEnd()
        project, self._resume_state = open_project(
            self.directory, self.project_name, self.overwrite
        )
        self.project_name = project.name  # a folder kept apart: the search starts beside it
        try:
            return self._run(prepared, policy, limits, max_epochs, fit_args, callbacks)
        finally:
            project.release()

    fit = search

    def _run(
        self,
        prepared: Any,
        policy: ArmPolicy,
        limits: Any,
        max_epochs: int,
        fit_args: dict[str, Any],
        callbacks: Sequence[Any] | None,
    ) -> BanditTuner:
        """The search itself, with the project folder locked."""
        steps = policy.decision_steps()

        def fault_results(space: SearchSpace, scheduler: Any) -> None:
            self.space_, self.scheduler_, self.result_grid_ = space, scheduler, None
            self._collect(max_epochs, steps)

        def configs_for(space: SearchSpace) -> list[dict[str, Any]]:
            self.space_ = space  # a model-based tuner's searcher reads it
            return self._configs(space)

        ran = run.execute(
            run.Settings.of(vars(self)),
            prepared,
            policy,
            limits,
            max_epochs,
            fit_args,
            callbacks,
            self._resume_state,
            configs_for,
            self._searcher,
            lambda: {"n_splits": getattr(self, "n_splits_", 1), "finished": self._finished},
            fault_results,
        )
        self.space_, self.scheduler_ = ran.space, ran.scheduler
        if ran.reloaded:  # keras-tuner's overwrite=False: a finished search is not re-run
            self._take_state(self._resume_state or {})
            if self.verbose:
                print(
                    f"bandit_tune: reloaded the finished search in {self.project_dir} "
                    "(overwrite=True runs it afresh)"
                )
            return self
        self.result_grid_, self._arm_errors = ran.grid, ran.errors
        if ran.progress is not None:
            #: The live display of the last search (its ``best`` is ``results_``' first arm).
            self.progress_ = ran.progress
        return self._finish_search(ran.scheduler, limits, max_epochs, steps)

    def _finish_search(
        self, scheduler: Any, limits: Any, max_epochs: int, steps: Sequence[int] | None
    ) -> BanditTuner:
        """After the arms: save the finished state, build ``results_``, say the best."""
        self._finished = True  # a later search() of this project reloads it, training nothing
        scheduler.snapshot(force=True)
        outcome.save_arms(self.project_dir, self.objective, scheduler)
        self.stop_reason_ = limits.reason
        self._collect(max_epochs, steps)
        outcome.warn_if_budget_too_small(self.results_, limits, max_epochs)
        if self.verbose:
            print(
                f"bandit_tune: {len(self.results_)} arms, {int(self.results_['epochs'].sum())} "
                f"epochs; best {self.objective.name} = {self.best_score_:.4f} "
                f"with {self.best_params_}"
            )
        return self

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> Any:
        """Train one arm's model on ``args``/``kwargs`` (keras-tuner's per-trial hook).

        Override it as in keras-tuner, e.g. to tune a fit argument::

            class MyTuner(bandit_tune.RandomSearch):
                def run_trial(self, trial, *args, **kwargs):
                    kwargs["batch_size"] = trial.hyperparameters.Int("batch_size", 32, 128, step=32)
                    return super().run_trial(trial, *args, **kwargs)

        The override runs in the arm's worker (see
        :class:`~bandit_tune.arm.hypermodel.RunTrialHyperModel`); this base method fits the
        arm's model there, with the callbacks that report every epoch to the policy.
        """
        fit = getattr(self, "_arm_fit", None)
        if fit is None:
            raise RuntimeError(
                "run_trial trains an arm inside search(); call search() instead of run_trial"
            )
        return fit(trial.hyperparameters, args, kwargs)

    # -- results ---------------------------------------------------------------------
    def _collect(self, max_epochs: int, steps: Sequence[int] | None) -> None:
        # the table first: it stays for the user to see when no arm scored (then it raises)
        vars(self).update(
            outcome.table(
                self.scheduler_,
                self.result_grid_,
                self.objectives,
                self.space_,
                max_epochs,
                steps,
                errors=getattr(self, "_arm_errors", None),
            )
        )
        vars(self).update(
            outcome.best(
                self.results_,
                self._histories,
                self.scheduler_.runner,
                self.objectives,
                self.space_,
                getattr(self, "n_splits_", 1),
                getattr(self, "stop_reason_", None),
                self.project_dir,
                getattr(self, "_validation_labels", None),
            )
        )

    def _take_state(self, state: dict[str, Any]) -> None:
        """Set the results of the search a snapshot saved (a reload)."""
        space, saved, n_splits, max_epochs = outcome.from_state(
            state, self.objectives, self.project_dir
        )
        self.space_, self.scheduler_, self.n_splits_ = space, saved, n_splits
        self.result_grid_ = None
        self._collect(max_epochs or self.max_epochs, state.get("rungs"))

    @property
    def oracle(self) -> Any:
        """keras-tuner's ``tuner.oracle``: ``trials``, ``get_best_trials(n)``, ``get_trial(id)``."""
        from bandit_tune.tuner.oracle import Oracle

        return Oracle(self)

    def reload(self) -> BanditTuner:
        """Load the search saved in :attr:`project_dir` (keras-tuner's ``reload``); returns self.

        ``results_``, ``best_params_``, :meth:`get_best_models` and :attr:`oracle`
        then work without training. A tuner made with ``overwrite=False`` for a
        project whose search finished reloads it at once.
        """
        path = os.path.join(self.project_dir, STATE_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"no search to reload in {self.project_dir} (it has no {STATE_FILE}); run "
                "search() first, or give the directory and project_name of an earlier search"
            )
        self._take_state(read_state(path))
        return self

    def plot(self, path: str = "curves.png") -> str:
        """Save the arms' validation curves and epochs per arm as a PNG; return its path.

        A multi-objective search also saves its front (:meth:`plot_front`) beside
        it, as ``<path without .png>_front.png``; population-based training each
        mutable hyperparameter's schedule per arm, as ``<path without .png>_schedule.png``
        (an exploit is a triangle on the curves).
        """
        from bandit_tune.tuner.results import load_arms, plot_arms, plot_schedules

        self._require_results()
        arms = load_arms(self.project_dir)
        saved = plot_arms(arms, path, arms.get("rungs"))
        if len(self.objectives) > 1:
            self.plot_front(os.path.splitext(path)[0] + "_front.png")
        if "schedule" in self.results_ and self.results_["exploits"].sum():
            log = [p.name for p in self.space_ if getattr(p, "sampling", None) == "log"]
            plot_schedules(self.results_, os.path.splitext(path)[0] + "_schedule.png", log)
        return saved

    def plot_front(self, path: str = "front.png") -> str:
        """Save every arm (coloured by the rung it reached) and the Pareto front as a PNG."""
        from bandit_tune.tuner.results import plot_front

        self._require_results()
        if len(self.objectives) < 2:
            raise ValueError("plot_front draws a multi-objective search; this has one objective")
        return plot_front(self.results_, [(o.name, o.direction) for o in self.objectives], path)

    def _require_results(self) -> None:
        if not hasattr(self, "results_"):
            raise RuntimeError("no results yet: call search(...) first")

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        """The best ``num_trials`` arms' hyperparameters, best first (keras-tuner API)."""
        self._require_results()
        rows = self.results_.head(num_trials).iterrows()
        return [self._arm_hyperparameters(row) for _, row in rows]

    def _arm_hyperparameters(self, row: Any) -> HyperParameters:
        """An arm's :class:`HyperParameters`: the space, and the arm's active values."""
        given = getattr(self.hypermodel, "hyperparameters", None)
        return outcome.arm_hyperparameters(self.space_, given, row)

    def pareto_front(self) -> Any:
        """The arms no other arm beats in every objective (``results_`` rows, rank 1).

        With one objective: the best arm. Each objective is read at the arm's best
        epoch of the first objective (the epoch its model is restored at).
        """
        self._require_results()
        if "pareto_rank" not in self.results_:
            return self.results_.head(1)
        return self.results_[self.results_["pareto_rank"] == 1]

    def hypervolume(self, reference: Sequence[float] | None = None) -> float:
        """The hypervolume of :meth:`pareto_front` against ``reference``.

        ``reference`` gives one value per objective in its own units (a bound no
        useful model is worse than, e.g. ``[0.9, 100_000]`` for accuracy and
        parameters); default: the worst value of each objective over all arms.
        Objectives to minimise count as their negation, so larger is better.
        """
        self._require_results()
        return outcome.hypervolume(self.results_, self.pareto_front(), self.objectives, reference)

    def get_best_models(self, num_models: int = 1, preference: Any = None) -> list[Any]:
        """The best arms' models, restored from their checkpoints (not retrained).

        Each model has the weights of the epoch its ``best_score`` was reached at
        (``results_["best_epoch"]``), as keras-tuner returns them, not those of its
        last epoch. With ``cv`` the first fold's model stands in, at its last epoch.
        A multi-objective search orders arms by Pareto rank (the front first:
        ``get_best_models(len(tuner.pareto_front()))`` returns the front), or by
        ``preference(row)`` (higher preferred; ``row`` is a ``results_`` row) when given.
        """
        self._require_results()
        rows = outcome.ordered(self.results_, preference).head(num_models)
        return outcome.best_models(rows, self.hypermodel.build, self._arm_hyperparameters)

    def evaluate(self, x: Any, y: Any, **kwargs: Any) -> dict[str, float]:
        """Score the best model on held-out data (the test set, used once)."""
        model = self.get_best_models(1)[0]
        scores = model.evaluate(x, y, verbose=0, return_dict=True, **kwargs)
        return {k: float(v) for k, v in scores.items()}

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the best arms as keras-tuner does, plus epochs and status."""
        self._require_results()
        outcome.print_summary(
            self.results_, self.objective, self.space_, self.project_dir, num_trials
        )
