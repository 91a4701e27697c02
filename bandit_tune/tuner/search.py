"""The tuner users call: keras-tuner's constructor and methods, scikit-learn's results.

``BanditTuner(policy=...)`` takes any :class:`~bandit_tune.policies.ArmPolicy`;
:mod:`bandit_tune.tuner.tuners` holds keras-tuner's named tuners built on it. Work
happens in :meth:`BanditTuner.search` on Ray Tune (each arm trains in
:func:`bandit_tune.arm.train.train_arm`); what was learned lives in trailing-underscore
attributes.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bandit_tune import policies
from bandit_tune.arm.hypermodel import TunerHyperModel, as_hypermodel, record_hypermodel
from bandit_tune.arm.train import train_arm
from bandit_tune.driver.project import (
    ARMS_FILE,
    STATE_FILE,
    Project,
    check_project_name,
    read_state,
    write_json,
)
from bandit_tune.driver.runner import TooManyFailures
from bandit_tune.objective import objectives_of, sign
from bandit_tune.policies.base import ArmPolicy, check_policy
from bandit_tune.policies.registry import TrainToEnd, policy_by_name
from bandit_tune.space import HyperParameters, SearchSpace, _plain


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
        if logger is not None:
            raise ValueError(
                "logger (keras-tuner's cloud logger) is not supported: the results are in "
                "tuner.results_ and in the project folder (state.json, arms.json), each arm's "
                "metrics in Ray Tune's result files; pass logger=None"
            )
        if distribution_strategy is not None:
            raise ValueError(
                "distribution_strategy (one model over several devices) is not supported: "
                "bandit_tune trains arms in parallel on Ray workers instead; give each arm "
                "devices with cpus_per_arm/gpus_per_arm, and join a cluster with address="
            )
        if kwargs:
            _refuse_unsupported(type(self).__name__, kwargs)
        if tuner_id is not None and not isinstance(tuner_id, str):
            raise ValueError(f"tuner_id must be a string, got {tuner_id!r}")
        self.tuner_id = tuner_id or "tuner0"
        self._finished = False
        self.max_consecutive_failed_trials = _at_least_one(
            "max_consecutive_failed_trials", max_consecutive_failed_trials, optional=True
        )
        self.max_model_size = _at_least_one("max_model_size", max_model_size, optional=True)
        self.executions_per_trial = _at_least_one("executions_per_trial", executions_per_trial)
        for label, flag in (
            ("tune_new_entries", tune_new_entries),
            ("allow_new_entries", allow_new_entries),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{label} must be True or False, got {flag!r}")
        if hyperparameters is not None and not isinstance(hyperparameters, HyperParameters):
            raise TypeError(
                "hyperparameters must be a bandit_tune.HyperParameters (declare the parameters "
                f"on it: hp.Fixed(...), hp.Choice(...)), got {type(hyperparameters).__name__}"
            )
        if (hyperparameters is None or not hyperparameters.space) and (
            not tune_new_entries or not allow_new_entries
        ):
            raise ValueError(
                "tune_new_entries=False / allow_new_entries=False restrict the parameters "
                "beyond those declared in hyperparameters=, but no hyperparameters were "
                "declared: pass hyperparameters=hp with its declarations"
            )
        if (
            metrics is not None
            and not isinstance(metrics, (list, tuple, str))
            and not callable(metrics)
        ):
            raise ValueError(f"metrics must be a list of metrics, got {metrics!r}")
        self.tune_new_entries, self.allow_new_entries = tune_new_entries, allow_new_entries
        self.optimizer, self.loss, self.metrics = optimizer, loss, metrics
        self.hypermodel = as_hypermodel(hypermodel)
        if type(self).run_trial is not BanditTuner.run_trial:
            # keras-tuner's way to change how each trial trains: it runs in the arm's worker
            from bandit_tune.arm.hypermodel import RunTrialHyperModel

            self.hypermodel = RunTrialHyperModel(self.hypermodel, type(self))
        if hyperparameters is not None or any(
            v is not None for v in (optimizer, loss, metrics, max_model_size)
        ):
            self.hypermodel = TunerHyperModel(
                self.hypermodel,
                hyperparameters.copy() if hyperparameters is not None else None,
                tune_new_entries,
                allow_new_entries,
                optimizer,
                loss,
                metrics,
                max_model_size,
            )
        self.policy = policy
        #: Every objective (one for a plain search); :attr:`objective` is the first.
        self.objectives = objectives_of(objective)
        self.objective = self.objectives[0]
        if len(self.objectives) > 1 and policy is not None:
            if not getattr(policy, "multi_objective", False):
                raise ValueError(
                    f"{type(policy).__name__} is a single-objective policy and objective= "
                    f"names {len(self.objectives)} objectives; use a multi-objective policy "
                    "(bandit_tune.policies.MOHyperband, MOASHA, MOSuccessiveHalving) or one "
                    "objective"
                )
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 1:
            raise ValueError(f"max_epochs must be an integer >= 1, got {max_epochs!r}")
        self.max_epochs = max_epochs
        if max_trials is not None and (not isinstance(max_trials, int) or max_trials < 1):
            raise ValueError(f"max_trials must be an integer >= 1 or None, got {max_trials!r}")
        self.max_trials = max_trials
        self.seed = seed
        self.directory = os.path.abspath(directory or "bandit_tune_results")
        self.project_name = check_project_name(
            "untitled_project" if project_name is None else project_name
        )
        self.overwrite = overwrite
        if backend not in ("tune", "pool"):
            raise ValueError(f"backend must be 'tune' or 'pool', got {backend!r}")
        if backend == "pool" and type(self)._searcher is not BanditTuner._searcher:
            raise ValueError(
                f"backend='pool' runs arms from a sample fixed before the search; "
                f"{type(self).__name__} proposes each arm from the results so far: use "
                "backend='tune'"
            )
        if backend == "pool" and storage_path is not None:
            raise ValueError(
                "storage_path is Ray Tune's; backend='pool' keeps checkpoints in "
                "directory/project_name (shared by the nodes of a cluster)"
            )
        self.backend = backend
        self.cpus_per_arm = _resource_share("cpus_per_arm", cpus_per_arm, zero=False)
        self.gpus_per_arm = _resource_share("gpus_per_arm", gpus_per_arm, zero=True)
        self.max_concurrent = max_concurrent
        self.address = address
        self.max_retries_per_trial = max_retries_per_trial
        self.verbose = verbose
        self.hyperparameters = hyperparameters
        from bandit_tune.driver.budget import parse_budget

        self.budget = None if budget is None else parse_budget(budget)
        if self.budget is not None and self.budget < 10:
            raise ValueError(
                f"budget={budget!r} is too small: starting Ray alone takes ~5 s; give at least 10 s"
            )
        if max_total_epochs is not None and (
            isinstance(max_total_epochs, bool)
            or not isinstance(max_total_epochs, int)
            or max_total_epochs < max_epochs
        ):
            raise ValueError(
                f"max_total_epochs must be an integer >= max_epochs={max_epochs} (one arm "
                f"trained to the end), got {max_total_epochs!r}"
            )
        self.max_total_epochs = max_total_epochs
        if target_score is not None and (
            isinstance(target_score, bool)
            or not isinstance(target_score, (int, float))
            or not math.isfinite(target_score)
        ):
            raise ValueError(f"target_score must be a finite number, got {target_score!r}")
        self.target_score = target_score
        self.storage_path = storage_path
        if not isinstance(fast_input, bool):
            raise ValueError(f"fast_input must be True or False, got {fast_input!r}")
        self.fast_input = fast_input
        if isinstance(policy, str):
            self.policy = policy = policy_by_name(policy, max_epochs)
        if policy is not None:
            check_policy(policy)
        if getattr(policy, "mutable_keys", None) is not None:
            _check_population(policy, max_trials, max_epochs)
        if (
            isinstance(policy, policies.Hyperband)
            and policy.cycle
            and (self.budget is not None or max_total_epochs is not None)
        ):
            # whole brackets that fit; a wall-clock budget re-plans from measured epoch times
            passes = getattr(self, "hyperband_iterations", 1)
            # the same kind and settings (MOHyperband keeps its ordering)
            self.policy = policy.planned_for(max_total_epochs or policy.budget * passes)
        if not overwrite:
            self._reload_if_finished()

    def _reload_if_finished(self) -> None:
        """keras-tuner's constructor reloads a finished project: its results are there at once."""
        from bandit_tune.driver.project import read_state

        path = os.path.join(self.project_dir, STATE_FILE)
        if not os.path.isfile(path):
            return
        try:
            state = read_state(path)
            if state.get("extra", {}).get("finished"):
                self._results_from_state(state)
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
        if cv is not None:
            bad = [o.name for o in self.objectives if not o.name.startswith("val_")]
            bad = [n for n in bad if n not in ("params", "latency_ms")]
            if len(self.objectives) > 1 and bad:
                raise ValueError(
                    f"with cv every objective is a validation metric (or the built-in params "
                    f"and latency_ms); got {bad}"
                )
            if validation_split is not None or validation_data is not None:
                raise ValueError(
                    "cv and validation_split/validation_data both define validation data; "
                    "pass only cv=k (each fold validates on its held-out part)"
                )
            if not self.objective.name.startswith("val_"):
                raise ValueError(
                    f"with cv the objective is a validation metric; got {self.objective.name!r}, "
                    f"use 'val_{self.objective.name}'"
                )
            self._check_data(x, y, 0.5, None)
            from bandit_tune.arm.cv import make_folds

            data = (x, y, make_folds(x, y, cv, self.seed))
        else:
            from bandit_tune.arm.checks import check_validation

            validation_split = check_validation(validation_split, validation_data)
            data = self._check_data(x, y, validation_split, validation_data)
        self._validation_labels = _validation_labels(y, validation_split, validation_data, cv)
        if cv is None and self.executions_per_trial > 1:
            # k models per arm on the same split: the folds' machinery with k equal folds
            data, cv = _executions(data, validation_split, self.executions_per_trial), EXECUTIONS
            validation_split = None
        self.n_splits_ = len(data[2]) if cv is not None else 1
        max_epochs = self.max_epochs
        if self.policy is None and epochs is not None:
            max_epochs = int(epochs)
        policy = self.policy if self.policy is not None else TrainToEnd()
        self._prepare_directory()
        try:
            return self._run(
                data,
                cv,
                policy,
                limits,
                max_epochs,
                validation_split,
                batch_size,
                callbacks,
                fit_kwargs,
            )
        finally:
            self._project.release()

    def _run(
        self,
        data: Any,
        cv: Any,
        policy: ArmPolicy,
        limits: Any,
        max_epochs: int,
        validation_split: float | None,
        batch_size: int | None,
        callbacks: Sequence[Any] | None,
        fit_kwargs: dict[str, Any],
    ) -> BanditTuner:
        """The search itself, with the project folder locked."""
        from bandit_tune.arm.fit_check import sample
        from bandit_tune.arm.recording import SpaceRecording
        from bandit_tune.ray_tune.cluster import ensure_ray

        # The helper imports Keras, records the space and tries one model on a sample of
        # the data (~7 s of CPU) while Ray starts and Ray Tune is imported here (~4 s
        # each); ray.init must stay on the main thread. Ray Tune is imported only now:
        # its ~3 s then overlap the recording (and not at all for backend="pool").
        # With Keras imported here the space is recorded in a thread of this process
        # instead (~1 s), begun only once Ray has started (start_here: ensure_ray and
        # ray.init set environment variables, which that thread's TensorFlow reads).
        recording: Any = None
        mutable = sorted(getattr(policy, "mutable_keys", None) or ())
        if self.backend == "pool":
            from bandit_tune.arm.recording import WorkerRecording
            from bandit_tune.pool import warm_worker

            warm = warm_worker(self.cpus_per_arm, self.gpus_per_arm)
            if warm is not None:  # a second search of this process: Keras is imported there
                recording = WorkerRecording(warm, self.hypermodel, sample(data), mutable)
        if recording is None:
            recording = SpaceRecording(self.hypermodel, sample(data), mutable)
        try:
            resources = ensure_ray(self.address)
            recording.start_here()
            if self.backend == "pool":
                from bandit_tune.arm.setup import warm_keras
                from bandit_tune.pool import start_workers

                # the workers import Keras while the space is recorded
                start_workers(
                    self._slots(resources), self.cpus_per_arm, self.gpus_per_arm, warm_keras
                )
            from bandit_tune.arm.callbacks import absolute_paths
            from bandit_tune.ray_tune.cluster import Packed

            if self.backend != "pool":  # the pool's search never needs Ray Tune
                from ray import tune  # noqa: F401 - imported while the space is recorded
        except BaseException:
            recording.cancel()
            raise
        space, problem = recording.result()
        from bandit_tune.arm.hypermodel import MUTABLE_PROBLEM

        if problem is not None and problem.startswith(MUTABLE_PROBLEM):
            raise ValueError(problem)
        if mutable:
            _prepare_population(policy, space)
        if problem is not None:
            raise ValueError(
                f"the data does not fit the model build_model makes (tried with the default "
                f"hyperparameters before any arm started): {problem}"
            )
        self.space_ = space
        resume = self._resume_state
        configs = self._configs(space)
        if resume is not None and "configs" in resume.get("extra", {}):
            configs = list(resume["extra"]["configs"])
        check_population = getattr(policy, "check_population", None)
        if mutable and callable(check_population):
            import warnings

            for warning in check_population(configs):
                warnings.warn(warning, UserWarning, stacklevel=3)

        slots = self._slots(resources)
        scheduler, source = self._scheduler(policy, limits, slots, configs)
        fingerprint = self._remember(
            scheduler, source, configs, space, policy, max_epochs, data, cv
        )
        if resume is not None:
            self._resume_into(scheduler, source, resume, fingerprint)
            if resume.get("extra", {}).get("finished"):
                # keras-tuner's overwrite=False: a finished search is reloaded, not re-run
                self._results_from_state(resume)
                if self.verbose:
                    print(
                        f"bandit_tune: reloaded the finished search in {self.project_dir} "
                        "(overwrite=True runs it afresh)"
                    )
                return self
        storage, experiment = self._experiment(resume is not None)
        fit_args = dict(fit_kwargs)
        if validation_split is not None:
            fit_args["validation_split"] = validation_split
        if batch_size is not None:
            fit_args["batch_size"] = batch_size
        steps = policy.decision_steps()
        if cv is not None:
            from bandit_tune.arm.cv import train_arm_cv as arm_function
        else:
            arm_function = train_arm
        arm_kwargs = dict(
            hypermodel=Packed(self.hypermodel),
            data=data,
            fit_kwargs=fit_args,
            callbacks=Packed(absolute_paths(list(callbacks or []))),
            max_epochs=max_epochs,
            checkpoint_epochs=None if steps is None else list(steps),
            cpus=max(1, int(self.cpus_per_arm)),
            input_key=uuid.uuid4().hex if self.fast_input else None,
            latency=any(o.name == "latency_ms" for o in self.objectives),
            **(
                {}
                if cv is not None
                else {"objective": (self.objective.name, self.objective.direction)}
            ),
        )
        self.scheduler_ = scheduler
        if self.backend == "pool":
            source.parameters = arm_kwargs
            source.cls = arm_function
            self.result_grid_ = None
            self._fit(
                lambda: source.run(self.address), scheduler, policy, limits, slots, max_epochs
            )
            self._arm_errors = dict(source.errors)
            return self._finish_search(scheduler, limits, max_epochs, steps)
        from ray import tune

        from bandit_tune.pool import shutdown_pool

        shutdown_pool()  # idle pool workers of an earlier search would hold the CPUs
        trainable = tune.with_resources(
            tune.with_parameters(arm_function, **arm_kwargs),
            {"cpu": self.cpus_per_arm, "gpu": self.gpus_per_arm},
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                metric=self.objective.name,
                mode=self.objective.direction,
                search_alg=source,
                scheduler=scheduler,
                # unbounded: Tune counts every trial it creates, and an arm re-created
                # after a lost node or resumed after a killed driver is a new trial; the
                # arm source ends the search (FINISHED) once no arm is left
                num_samples=-1,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=experiment,
                storage_path=storage,
                verbose=0,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                failure_config=tune.FailureConfig(max_failures=self.max_retries_per_trial),
            ),
        )
        self.result_grid_ = self._fit(tuner.fit, scheduler, policy, limits, slots, max_epochs)
        return self._finish_search(scheduler, limits, max_epochs, steps)

    def _finish_search(
        self, scheduler: Any, limits: Any, max_epochs: int, steps: Sequence[int] | None
    ) -> BanditTuner:
        """After the arms: save the finished state, build ``results_``, say the best."""
        self._finished = True  # a later search() of this project reloads it, training nothing
        scheduler.snapshot(force=True)
        self._save_arms(scheduler)
        self.stop_reason_ = limits.reason
        self._collect(max_epochs, steps)
        self._warn_if_budget_too_small(limits, max_epochs)
        if self.verbose:
            print(
                f"bandit_tune: {len(self.results_)} arms, {int(self.results_['epochs'].sum())} "
                f"epochs; best {self.objective.name} = {self.best_score_:.4f} "
                f"with {self.best_params_}"
            )
        return self

    fit = search

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

    def _slots(self, resources: dict[str, Any]) -> int:
        """Arms that train at once: ``max_concurrent``, else what the resources allow."""
        slots = self.max_concurrent or max(1, _fits(resources.get("CPU", 1), self.cpus_per_arm))
        if self.gpus_per_arm:
            slots = min(slots, _fits(resources.get("GPU", 0), self.gpus_per_arm) or 1)
        return int(slots)

    def _scheduler(
        self, policy: ArmPolicy, limits: Any, slots: int, configs: list[dict[str, Any]]
    ) -> tuple[Any, Any]:
        """The Ray scheduler over the runner, and the searcher that hands out arms.

        On the pool the runner is held by a plain :class:`~bandit_tune.driver.host.RunnerHost`
        (the pool's search never imports Ray Tune).
        """
        if self.backend == "pool":
            from bandit_tune.driver.host import RunnerHost as host
        else:
            from bandit_tune.ray_tune.scheduler import BanditScheduler as host

        scheduler = host(
            policy,
            metric=self.objective.name,
            mode=self.objective.direction,
            time_attr="epoch",
            objectives=[(o.name, o.direction) for o in self.objectives]
            if len(self.objectives) > 1
            else None,
        )
        scheduler.slots = slots
        if limits.seconds or limits.max_total_epochs or limits.target_score is not None:
            scheduler.budget = limits
        scheduler.max_consecutive_failures = self.max_consecutive_failed_trials
        scheduler.state_path = os.path.join(self.project_dir, STATE_FILE)
        scheduler.runner.root = self.project_dir
        if self.backend == "pool":
            from bandit_tune.pool import PoolSearch

            # the arms' function and its arguments are set once the search knows them
            source = PoolSearch(
                None,
                configs,
                scheduler.runner,
                [o.name for o in self.objectives],
                self.cpus_per_arm,
                self.gpus_per_arm,
                slots,
                self.project_dir,
                self.max_retries_per_trial,
                keep_paused=8,
                step_key="epoch",
            )
            return scheduler, source
        return scheduler, self._searcher(configs, scheduler)

    def _remember(
        self,
        scheduler: Any,
        source: Any,
        configs: list[dict[str, Any]],
        space: SearchSpace,
        policy: ArmPolicy,
        max_epochs: int,
        data: Any,
        cv: Any,
    ) -> dict[str, Any]:
        """Put what a resumed search needs beside the runner's state in the snapshot."""
        fingerprint = self._fingerprint(space, policy, max_epochs, data, cv)
        space_config = [{"class_name": type(p).__name__, "config": p.get_config()} for p in space]
        scheduler.extra_state = lambda: {
            "configs": configs,
            "fingerprint": fingerprint,
            "space": space_config,
            "max_epochs": max_epochs,
            "n_splits": getattr(self, "n_splits_", 1),
            "finished": self._finished,
            "backend": self.backend,
            **source.position(),
        }
        return fingerprint

    def _resume_into(
        self, scheduler: Any, source: Any, resume: dict[str, Any], fingerprint: dict[str, Any]
    ) -> None:
        """Take up the interrupted search's snapshot, if it is the same search."""
        extra = resume.get("extra", {})
        self._check_unchanged(extra.get("fingerprint"), fingerprint)
        if extra.get("backend", "tune") != self.backend and not extra.get("finished"):
            raise ValueError(
                f"the search in {self.project_dir} ran with "
                f"backend={extra.get('backend', 'tune')!r} and is unfinished; resume it with "
                "the same backend, or pass overwrite=True"
            )
        try:
            scheduler.restore_snapshot(resume)
        except (ValueError, KeyError) as exc:
            raise ValueError(
                f"cannot resume the search in {self.project_dir}: {exc}. Build the tuner "
                "with the same policy and arguments, or pass overwrite=True to start afresh"
            ) from exc
        source.set_position(extra)

    def _fit(
        self,
        run: Callable[[], Any],
        scheduler: Any,
        policy: ArmPolicy,
        limits: Any,
        slots: int,
        max_epochs: int,
    ) -> Any:
        """``tuner.fit()`` with the progress display; a fault keeps what was learned."""
        from bandit_tune.ray_tune.runtime import (
            interruptible,
            stop_trial_actors,
            tune_actors_on_idle_workers,
        )

        os.makedirs(self.project_dir, mode=0o700, exist_ok=True)
        scheduler.snapshot(force=True)
        progress = contextlib.nullcontext()
        if self.verbose:
            from bandit_tune.tuner.progress import Progress

            budget = getattr(policy, "budget", None)
            progress = Progress(
                scheduler,
                (self.objective.name, self.objective.direction),
                max_epochs,
                epoch_budget=self.max_total_epochs
                or (budget if isinstance(budget, int) and self.budget is None else None),
                seconds_budget=self.budget,
                started=limits.started,
            )
            scheduler.listeners.append(progress)
            #: The live display of the last search (its ``best`` is ``results_``' first arm).
            self.progress_ = progress
        pool = self.backend == "pool"
        try:
            with (
                progress,
                contextlib.nullcontext() if pool else _pending_trials(slots),
                contextlib.nullcontext() if pool else tune_actors_on_idle_workers(),
                contextlib.nullcontext() if pool else interruptible(scheduler),
            ):
                return run()
        except KeyboardInterrupt:
            # Ctrl-C: the scheduler froze the search's state at the interrupt; the arms
            # that were training resume from their checkpoints when the call is repeated
            scheduler.runner.interrupt()
            self._save_arms(scheduler)
            stop_trial_actors(scheduler.trials())
            raise KeyboardInterrupt(
                f"search interrupted; its state is saved in {self.project_dir}: run the same "
                "search again to resume it"
            ) from None
        except Exception as exc:
            scheduler.snapshot(force=True)
            self._save_arms(scheduler)
            cause = scheduler.policy_error
            if cause is None and isinstance(exc, TooManyFailures):
                cause = exc  # the pool's runner raised it directly (Ray Tune wraps it)
            if cause is None:
                raise
            try:  # what the arms did so far, for the user to see (errors included)
                self.result_grid_ = None
                self._collect(max_epochs, policy.decision_steps())
            except Exception:  # noqa: BLE001 — the search's own error is what matters
                pass
            # Ray wraps it in a TuneError with a traceback; give the user the error itself.
            kept = f" Results reported so far are kept in {self.project_dir}."
            raise type(cause)(f"{cause}.{kept}") from exc

    def _flag_chance(self) -> None:
        """Mark arms whose accuracy stayed at chance; warn when every arm did."""
        from bandit_tune.tuner.results import chance_level, mark_chance

        chance = chance_level(self.objective.name, getattr(self, "_validation_labels", None))
        if mark_chance(self.results_, chance):
            import warnings

            warnings.warn(
                f"every arm's {self.objective.name} stayed at chance (<= {chance:.3f}, the share "
                "of the most common class): the models learned nothing, whatever the "
                "hyperparameters. Check the data: NaN or unscaled features, labels shuffled "
                "apart from x, a wrong loss",
                UserWarning,
                stacklevel=3,
            )

    def _warn_if_budget_too_small(self, limits: Any, max_epochs: int) -> None:
        if limits.reason is not None and limits.seconds is not None:
            reached = int(self.results_["epochs"].max()) if len(self.results_) else 0
            if reached < max_epochs:
                import warnings

                warnings.warn(
                    f"the budget of {limits.seconds:g} s fit only "
                    f"{int(self.results_['epochs'].sum())} epochs and no arm reached "
                    f"max_epochs={max_epochs} (the best trained {reached}): the best arm is "
                    "barely trained. Give a larger budget, or a smaller max_epochs",
                    UserWarning,
                    stacklevel=2,
                )

    # -- results ---------------------------------------------------------------------
    def _collect(self, max_epochs: int, steps: Sequence[int] | None) -> None:
        from bandit_tune.tuner.results import arm_table, cv_table

        names = list(self.space_.params)
        objective = (self.objective.name, self.objective.direction)
        self.results_, self._histories = arm_table(
            self.scheduler_,
            self.result_grid_,
            objective,
            names,
            max_epochs,
            steps,
            errors=getattr(self, "_arm_errors", None),
        )
        if len(self.objectives) > 1:
            from bandit_tune.tuner.results import add_pareto

            self.results_ = add_pareto(
                self.results_, self._histories, [(o.name, o.direction) for o in self.objectives]
            )
        for param in self.space_:
            if param.kind == "fixed" and len(self.results_):
                # a model-based searcher proposes only what varies: the constant is here too
                self.results_[param.name] = [param.default] * len(self.results_)
        valid = self.results_["best_score"].notna()
        reason = getattr(self, "stop_reason_", None)
        if not valid.any() and reason is not None and not self.results_["epochs"].any():
            raise RuntimeError(
                f"the search stopped ({reason}) before any arm reported a "
                f"{self.objective.name!r}: nothing was trained. Give a larger budget (starting "
                f"Ray and TensorFlow's first models takes 10-20 s on a small machine); "
                f"the project is in {self.project_dir}"
            )
        if not valid.any():
            errors = [e.strip() for e in self.results_["error"] if isinstance(e, str) and e.strip()]
            cause = ""
            if errors:
                # the last line of a traceback names the error (e.g. an import that fails
                # in the workers): show it rather than only pointing at results_
                from bandit_tune.tuner.results import error_line

                last = error_line(errors[0])
                cause = f" ({len(errors)} arm(s) failed; the first with: {last})"
            raise RuntimeError(
                f"no arm reported a finite {self.objective.name!r}{cause}; see results_['error'] "
                f"and {self.project_dir}"
            )
        self._flag_chance()
        self.cv_results_ = cv_table(
            self.results_, self._histories, objective, names, getattr(self, "n_splits_", 1)
        )
        self.best_index_ = int(self.results_.index[valid][0])
        best = self.results_.loc[self.best_index_]
        self.best_params_ = {k: _plain(best[k]) for k in names}
        self.best_score_ = float(best["best_score"])
        if "schedule" in self.results_:
            import pandas as pd

            from bandit_tune.driver.lineage import lineage_rows

            arms = self.scheduler_.runner.arms
            #: Population-based training: every exploit (who copied whom, when, old
            #: and new values), in order.
            rows = lineage_rows({a.arm_id: a.to_json() for a in arms})
            columns = ["order", "arm_id", "left_at", "donor", "donor_step"]
            self.lineage_ = pd.DataFrame(rows, columns=None if rows else columns)
            #: The best arm's schedule: the values its model trained with, epoch range
            #: by epoch range (through the arms it copied); retrain with it.
            self.best_schedule_ = list(best["schedule"])

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
        from bandit_tune.driver.project import read_state

        path = os.path.join(self.project_dir, STATE_FILE)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"no search to reload in {self.project_dir} (it has no {STATE_FILE}); run "
                "search() first, or give the directory and project_name of an earlier search"
            )
        self._results_from_state(read_state(path))
        return self

    def _results_from_state(self, state: dict[str, Any]) -> None:
        from bandit_tune.driver.arms import ArmTable
        from bandit_tune.driver.runner import Runner
        from bandit_tune.space import deserialize

        extra = state.get("extra", {})
        if "space" not in extra:
            raise ValueError(
                f"the search in {self.project_dir} was saved by an older bandit_tune without "
                "its search space; run it again (overwrite=True) to reload it later"
            )
        name, direction = (state.get("metric") or [None, None])[:2]
        mine: Any = self.objective.direction
        if len(self.objectives) > 1:
            mine = [o.direction for o in self.objectives]
        if name is not None and (name, direction) != (self.objective.name, mine):
            raise ValueError(
                f"the search in {self.project_dir} was run with objective {name!r} "
                f"({direction}), this tuner has {self.objective.name!r} "
                f"({self.objective.direction}); build the tuner with the same objective"
            )
        self.space_ = SearchSpace({p.name: p for p in map(deserialize, extra["space"])})
        runner = Runner(TrainToEnd(), mode=self.objective.direction)
        runner.root = self.project_dir
        runner.arms = ArmTable.from_json(
            state, paused_order=state.get("paused"), root=self.project_dir
        )
        self.scheduler_ = _Saved(runner)
        self.result_grid_ = None
        self.n_splits_ = int(extra.get("n_splits", 1))
        self._collect(int(extra.get("max_epochs", self.max_epochs)), state.get("rungs"))

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

    def _save_arms(self, scheduler: Any) -> None:
        """Write every arm's reported results and decisions to ``project_dir/arms.json``.

        Kept by the driver itself, so it is complete even when Ray's own result
        files lag behind (a fault, a resumed trial).
        """
        os.makedirs(self.project_dir, mode=0o700, exist_ok=True)
        payload = {
            "objective": [self.objective.name, self.objective.direction],
            "results": scheduler.results,
            "decisions": scheduler.history,
            "policy": scheduler.policy.state_dict(),
            "rungs": list(scheduler.policy.decision_steps() or []),
        }
        write_json(os.path.join(self.project_dir, ARMS_FILE), payload)

    def _require_results(self) -> None:
        if not hasattr(self, "results_"):
            raise RuntimeError("no results yet: call search(...) first")

    def get_best_hyperparameters(self, num_trials: int = 1) -> list[HyperParameters]:
        """The best ``num_trials`` arms' hyperparameters, best first (keras-tuner API)."""
        self._require_results()
        out = []
        for _, row in self.results_.head(num_trials).iterrows():
            out.append(self._arm_hyperparameters(row))
        return out

    def _arm_hyperparameters(self, row: Any) -> HyperParameters:
        """An arm's :class:`HyperParameters`: the space, and the arm's active values."""
        hp = HyperParameters()
        hp.merge(list(self.space_), overwrite=False)
        given = getattr(self.hypermodel, "hyperparameters", None)
        if isinstance(given, HyperParameters):
            hp.merge(given, overwrite=False)
        values = {}
        for name in self.space_.params:
            value = _plain(row[name]) if name in row else None
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                values[name] = value
        hp.values = values
        hp.values = {k: v for k, v in values.items() if hp.is_active(k)}
        return hp

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
        from bandit_tune.policies.pareto import hypervolume

        self._require_results()
        names = [o.name for o in self.objectives]
        signs = np.array([sign(o.direction) for o in self.objectives])
        values = self.results_[names].to_numpy(dtype=float) * signs
        values = values[np.isfinite(values).all(axis=1)]
        if reference is None:
            ref = values.min(axis=0) if len(values) else np.zeros(len(names))
        else:
            if len(reference) != len(names):
                raise ValueError(
                    f"reference needs one value per objective ({len(names)}: {names}), "
                    f"got {list(reference)}"
                )
            ref = np.asarray(reference, dtype=float) * signs
        front = self.pareto_front()[names].to_numpy(dtype=float) * signs
        return hypervolume(front, ref)

    def get_best_models(self, num_models: int = 1, preference: Any = None) -> list[Any]:
        """The best arms' models, restored from their checkpoints (not retrained).

        Each model has the weights of the epoch its ``best_score`` was reached at
        (``results_["best_epoch"]``), as keras-tuner returns them, not those of its
        last epoch. With ``cv`` the first fold's model stands in, at its last epoch.
        A multi-objective search orders arms by Pareto rank (the front first:
        ``get_best_models(len(tuner.pareto_front()))`` returns the front), or by
        ``preference(row)`` (higher preferred; ``row`` is a ``results_`` row) when given.
        """
        from bandit_tune.arm.checkpoints import load_model

        self._require_results()
        rows = self.results_
        if preference is not None:
            if not callable(preference):
                raise TypeError("preference must be a function of a results_ row")
            order = sorted(range(len(rows)), key=lambda i: -float(preference(rows.iloc[i])))
            rows = rows.iloc[order]
        models = []
        for _, row in rows.head(num_models).iterrows():
            if row["checkpoint"] is None or (
                isinstance(row["checkpoint"], float) and math.isnan(row["checkpoint"])
            ):
                raise RuntimeError(f"arm {row['arm_id']} has no checkpoint to restore")
            hp = self._arm_hyperparameters(row)
            models.append(load_model(self.hypermodel.build, hp, str(row["checkpoint"])))
        return models

    def evaluate(self, x: Any, y: Any, **kwargs: Any) -> dict[str, float]:
        """Score the best model on held-out data (the test set, used once)."""
        model = self.get_best_models(1)[0]
        return {
            k: float(v)
            for k, v in model.evaluate(x, y, verbose=0, return_dict=True, **kwargs).items()
        }

    def results_summary(self, num_trials: int = 10) -> None:
        """Print the best arms as keras-tuner does, plus epochs and status."""
        self._require_results()
        print("Results summary")
        print(f"Results in {self.project_dir}")
        print(f"Showing {min(num_trials, len(self.results_))} best trials")
        print(f'Objective(name="{self.objective.name}", direction="{self.objective.direction}")')
        for _, row in self.results_.head(num_trials).iterrows():
            print(f"\nTrial {row['arm_id']} summary\nHyperparameters:")
            for k in self.space_.params:
                print(f"{k}: {_plain(row[k])}")
            print(f"Score: {row['best_score']}")
            print(f"Epochs: {row['epochs']} ({row['status']})")
            if isinstance(row.get("error"), str) and row["error"].strip():
                from bandit_tune.tuner.results import error_line

                print(f"Error: {error_line(row['error'])}")
            if row["diagnosis"] == "chance":
                print("Diagnosis: chance (no better than always answering the most common class)")
            if row["diagnosis"] in ("overfit", "underfit"):
                train = self.objective.name.removeprefix("val_")
                print(
                    f"Diagnosis: {row['diagnosis']} (train {train} {row['train_score']:.4f} vs "
                    f"{self.objective.name} {row['best_score']:.4f}, gap {row['gap']:+.4f})"
                )

    # -- helpers -----------------------------------------------------------------------
    def _check_data(
        self, x: Any, y: Any, validation_split: Any, validation_data: Any
    ) -> tuple[Any, Any, Any]:
        from bandit_tune.arm.checks import check_finite, refuse_streams

        if x is None:
            raise ValueError("search needs training data: search(x, y, ...)")
        refuse_streams("x", x)
        refuse_streams("y", y)
        if y is not None and hasattr(x, "__len__") and hasattr(y, "__len__") and len(x) != len(y):
            raise ValueError(f"x has {len(x)} samples but y has {len(y)}; they must match")
        if validation_split is not None:
            if not isinstance(validation_split, (int, float)) or not 0 < validation_split < 1:
                raise ValueError(
                    "validation_split must be a fraction strictly between 0 and 1, "
                    f"got {validation_split!r}"
                )
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            validation_data = tuple(validation_data)
            refuse_streams("validation_data[0]", validation_data[0])
        check_finite("x", x)
        check_finite("y", y)
        if validation_data is not None:
            check_finite("validation_data[0] (x_val)", validation_data[0])
            check_finite("validation_data[1] (y_val)", validation_data[1])
        if (
            self.objective.name.startswith("val_")
            and validation_split is None
            and validation_data is None
        ):
            raise ValueError(
                f"objective {self.objective.name!r} needs validation data: pass "
                "validation_split=0.2 or validation_data=(x_val, y_val) to search"
            )
        return x, y, validation_data

    def _fingerprint(
        self, space: SearchSpace, policy: ArmPolicy, max_epochs: int, data: Any, cv: Any
    ) -> dict[str, Any]:
        """What a resumed search must share with the one it resumes, as plain data."""
        import json

        from bandit_tune.space import _describe

        x, y, third = data
        return json.loads(
            json.dumps(
                {
                    "search space": {p.name: _describe(p) for p in space},
                    "objective": [self.objective.name, self.objective.direction]
                    if len(self.objectives) == 1
                    else [[o.name, o.direction] for o in self.objectives],
                    "policy": type(policy).__name__,
                    "max_epochs": max_epochs,
                    "data": {
                        "x": _shape_of(x),
                        "y": _shape_of(y),
                        "validation": (
                            f"{len(third)} folds" if cv is not None else _shape_of(third)
                        ),
                    },
                },
                default=str,
            )
        )

    def _check_unchanged(self, saved: Any, now: dict[str, Any]) -> None:
        """Refuse to resume a search whose space, objective, policy or data changed."""
        if not isinstance(saved, dict):
            return  # a snapshot of an older version: nothing to compare
        changed = [
            f"{key}: was {saved.get(key)}, now {value}"
            for key, value in now.items()
            if saved.get(key) != value
        ]
        if changed:
            raise ValueError(
                f"the search in {self.project_dir} was started with other settings, so it "
                f"cannot be resumed: {'; '.join(changed)}. Pass overwrite=True to start "
                "afresh (or another project_name), or run it with the settings it had"
            )

    def _prepare_directory(self) -> None:
        """Lock ``directory/project_name`` for this search and find what it resumes.

        The name was checked in the constructor; ``overwrite=True`` deletes only a
        folder this library wrote, and only once the lock is held. The same project
        with a snapshot resumes (keras-tuner's convention); a folder of an earlier
        search without one is kept apart under a timestamped name.
        """
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create results directory {self.directory!r}: {exc}") from exc
        if not os.access(self.directory, os.W_OK):
            raise PermissionError(
                f"results directory {self.directory!r} is not writable; pass directory= a "
                "folder you can write to"
            )
        project = Project(self.directory, self.project_name)
        if self.overwrite:
            project.refuse_foreign_overwrite()
        elif _foreign(project.path):
            # a folder this library did not write: leave it alone, start beside it
            project = self._timestamped()
        project.acquire()  # fails at once while another live driver holds the project
        try:
            self._resume_state = None
            if self.overwrite:
                project.clear()
            elif os.path.exists(os.path.join(project.path, STATE_FILE)):
                # keras-tuner's convention: the same directory and project resume
                self._resume_state = read_state(os.path.join(project.path, STATE_FILE))
            elif _holds_results(project.path):
                # an earlier search that left no snapshot: keep its results apart
                project.release()
                project = self._timestamped()
                project.acquire()
        except BaseException:
            project.release()
            raise
        self._project = project

    def _experiment(self, resumed: bool) -> tuple[str, str]:
        """Ray Tune's ``(storage_path, name)`` for this run of the search.

        The first run's experiment is the project folder itself; each resumed run
        gets a new experiment inside it (``resume1``, ``resume2``...), so all the
        search wrote stays in one folder (``overwrite`` and a moved folder see it
        whole). With ``storage_path`` the experiments live there instead.
        """
        if self.storage_path is not None:
            if not resumed:
                return self.storage_path, self.project_name
            prefix = f"{self.project_name}_resume"
            taken = os.listdir(self.storage_path) if os.path.isdir(self.storage_path) else []
            return self.storage_path, f"{prefix}{sum(d.startswith(prefix) for d in taken) + 1}"
        if not resumed:
            return self.directory, self.project_name
        runs = sum(1 for d in os.listdir(self.project_dir) if d.startswith("resume"))
        return self.project_dir, f"resume{runs + 1}"

    def _timestamped(self) -> Project:
        import time

        self.project_name = f"{self.project_name}_{time.strftime('%Y%m%d-%H%M%S')}"
        return Project(self.directory, self.project_name)


#: ``cv`` of a search whose arms train ``executions_per_trial`` models on one split.
EXECUTIONS = "executions"


def _prepare_population(policy: Any, space: SearchSpace) -> None:
    """Give a population-based policy its mutations' ranges; try its explore step once."""
    with_space = getattr(policy, "with_space", None)
    if callable(with_space):
        with_space(space.params)
    explore = getattr(policy, "explore", None)
    if callable(explore):
        config = space.defaults()
        try:
            explore(config, np.random.default_rng(0))
        except ValueError as exc:
            name = type(policy).__name__
            raise ValueError(f"{name}: {exc} (tried before any training)") from None


def _check_population(policy: Any, max_trials: int | None, max_epochs: int) -> None:
    """Refuse, before any training, a population-based policy the search cannot run."""
    name = type(policy).__name__
    population = getattr(policy, "population_size", None)
    if population is not None and max_trials is not None and population > max_trials:
        raise ValueError(
            f"{name}(population_size={population}) is larger than max_trials={max_trials}: "
            f"the population would never be complete; pass max_trials={population} (or "
            "leave it out) or a smaller population_size"
        )
    max_t = getattr(policy, "max_t", None)
    if max_t is not None and max_t != max_epochs:
        raise ValueError(
            f"{name}(max_t={max_t}) trains each arm {max_t} epochs but the tuner's "
            f"max_epochs={max_epochs}; pass max_epochs={max_t}"
        )


def _at_least_one(label: str, value: Any, optional: bool = False) -> Any:
    """``value`` if it is an integer >= 1 (or ``None`` when ``optional``); else ValueError."""
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        allowed = " or None" if optional else ""
        raise ValueError(f"{label} must be an integer >= 1{allowed}, got {value!r}")
    return value


def _resource_share(label: str, value: Any, zero: bool) -> float:
    """A CPU or GPU count per arm as Ray takes it: a fraction below 1 packs arms on a device.

    Ray reserves fractions of one device (``0.25``: four arms share a GPU) but only
    whole devices above one, and counts in steps of 1/10,000.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{label} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        least = ">= 0" if zero else "> 0"
        raise ValueError(f"{label} must be {least}, got {value!r}")
    if value > 1 and value != int(value):
        raise ValueError(
            f"{label}={value!r}: above 1 it must be a whole number (Ray reserves a fraction "
            "of one device, to pack several arms on it, or whole devices)"
        )
    if 0 < value < 1e-4:
        raise ValueError(f"{label}={value!r} is below Ray's smallest share, 0.0001")
    return float(value) if value < 1 else int(value)


def _fits(total: float, share: float) -> int:
    """How many arms of ``share`` fit in ``total`` (as Ray counts: in 1/10,000ths)."""
    return int(round(float(total) * 10_000)) // max(1, int(round(share * 10_000)))


class _Saved:
    """A saved search's arm records where the result table reads a scheduler's."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.arm_of: dict[str, str] = {}


_NOT_SUPPORTED = {
    "oracle": "the search's arms come from the tuner class (RandomSearch, GridSearch, "
    "BayesianOptimization, Hyperband) and its policy=",
    "hypermodel_kwargs": "pass a HyperModel instance or a build_model function",
}


def _refuse_unsupported(tuner: str, kwargs: dict[str, Any]) -> None:
    """Raise for keyword arguments the tuner does not take, naming the way instead."""
    lines = [
        f"{name}: not supported; instead {_NOT_SUPPORTED[name]}"
        for name in sorted(kwargs)
        if name in _NOT_SUPPORTED
    ]
    unknown = sorted(name for name in kwargs if name not in _NOT_SUPPORTED)
    if unknown:
        lines.append(
            f"unexpected arguments {unknown} (see docs/migrating-from-keras-tuner.md for the "
            "keras-tuner arguments bandit_tune takes)"
        )
    raise TypeError(f"{tuner}: " + "; ".join(lines))


def _executions(data: Any, validation_split: float | None, k: int) -> tuple[Any, Any, Any]:
    """``(x, y, folds)`` with ``k`` identical folds: the training part, then the validation one."""
    x, y, validation_data = data
    if validation_data is not None:
        x_val, y_val = validation_data[0], validation_data[1]
        n_train = len(x)
        x = np.concatenate([np.asarray(x), np.asarray(x_val)])
        y = np.concatenate([np.asarray(y), np.asarray(y_val)])
    else:
        assert validation_split is not None
        n_train = int(math.floor(len(x) * (1.0 - validation_split)))  # as Keras splits
    train, valid = np.arange(n_train), np.arange(n_train, len(x))
    return x, y, [(train, valid)] * k


def _validation_labels(y: Any, split: Any, validation_data: Any, cv: Any) -> Any:
    """The labels the objective is scored on (Keras' split takes the last fraction)."""
    if validation_data is not None and len(validation_data) >= 2:
        return validation_data[1]
    if y is None or isinstance(y, (dict, list, tuple)):
        return None
    if cv is not None:
        return y
    if split:
        labels = np.asarray(y)
        return labels[len(labels) - int(len(labels) * split) :]
    return None


def _shape_of(value: Any) -> Any:
    """An array's ``[shape, dtype]`` (per key or item for several inputs); ``None`` for none."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _shape_of(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)) and value and all(hasattr(v, "shape") for v in value):
        return [_shape_of(v) for v in value]
    shape = getattr(value, "shape", None)
    if shape is None:
        try:
            shape = np.shape(value)
        except Exception:  # noqa: BLE001 — not array-like
            return type(value).__name__
    return [list(shape), str(getattr(value, "dtype", ""))]


def _foreign(path: str) -> bool:
    """Whether ``path`` is a non-empty folder (or a file) that this library did not write."""
    from bandit_tune.driver.project import is_own_folder

    if not os.path.exists(path):
        return False
    return not os.path.isdir(path) or (bool(os.listdir(path)) and not is_own_folder(path))


def _holds_results(path: str) -> bool:
    """Whether a project folder holds anything beyond this library's marker and lock."""
    from bandit_tune.driver.project import LOCK_FILE, MARKER_FILE

    return any(entry not in (LOCK_FILE, MARKER_FILE) for entry in os.listdir(path))


@contextlib.contextmanager
def _pending_trials(slots: int) -> Any:
    """Let Ray Tune start the actors of the first ``slots`` arms at once.

    For a searcher of its own kind Tune keeps one trial pending at a time, so the
    second worker of a search started ~3 s after the first (its actor start and
    TensorFlow import). The scheduler never lets more arms wait than slots are
    free. A value the user set in ``TUNE_MAX_PENDING_TRIALS_PG`` is kept.
    """
    key = "TUNE_MAX_PENDING_TRIALS_PG"
    if key in os.environ:
        yield
        return
    os.environ[key] = str(max(1, int(slots)))
    try:
        yield
    finally:
        os.environ.pop(key, None)
