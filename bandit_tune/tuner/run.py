"""Running a search's arms: the space recorded while Ray starts, then Ray Tune or the pool.

Functions of explicit arguments that :class:`~bandit_tune.tuner.search.BanditTuner`
calls in order: :func:`record` (the search space, recorded in a helper while Ray
starts), :func:`make_host` (the runner with its scheduler for the chosen
backend, and the arm source), :func:`arm_arguments` (what every arm's training
function receives), then :func:`run_tune` or the pool's source, inside
:func:`guarded` (the progress display; Ctrl-C and faults keep what was learned).
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from bandit_tune.driver.project import STATE_FILE
from bandit_tune.driver.runner import TooManyFailures
from bandit_tune.objective import Objective
from bandit_tune.policies.base import ArmPolicy
from bandit_tune.space import SearchSpace
from bandit_tune.tuner.options import prepare_population, slots


@dataclass(frozen=True)
class Settings:
    """The tuner's settings a run reads, taken by name from its attributes (:meth:`of`)."""

    hypermodel: Any
    objectives: list[Objective]
    backend: str
    address: str | None
    cpus_per_arm: float
    gpus_per_arm: float
    max_concurrent: int | None
    max_consecutive_failed_trials: int | None
    max_retries_per_trial: int
    directory: str
    project_name: str
    storage_path: str | None
    fast_input: bool
    verbose: int
    budget: float | None
    max_total_epochs: int | None

    @classmethod
    def of(cls, attributes: Mapping[str, Any]) -> Settings:
        """The settings among ``attributes`` (a tuner's ``vars()``)."""
        return cls(**{f.name: attributes[f.name] for f in fields(cls)})

    @property
    def project_dir(self) -> str:
        """``directory/project_name``."""
        return os.path.join(self.directory, self.project_name)


@dataclass
class Ran:
    """What :func:`execute` leaves for the tuner's results."""

    space: SearchSpace
    scheduler: Any
    #: Ray Tune's ``ResultGrid`` (``None`` on the pool, or for a reloaded search).
    grid: Any
    #: The pool's error text per failed arm (``None`` on Ray Tune: it keeps its own).
    errors: dict[str, str] | None
    #: The live display, or ``None`` when ``verbose=0``.
    progress: Any
    #: The folder held a finished search: reloaded, nothing ran.
    reloaded: bool = False


def execute(
    s: Settings,
    prepared: Any,
    policy: ArmPolicy,
    limits: Any,
    max_epochs: int,
    fit_args: dict[str, Any],
    callbacks: Sequence[Any] | None,
    resume: dict[str, Any] | None,
    configs_for: Callable[[SearchSpace], list[dict[str, Any]]],
    searcher_for: Callable[[list[dict[str, Any]], Any], Any],
    extra_state: Callable[[], dict[str, Any]],
    on_fault_results: Callable[[SearchSpace, Any], None],
) -> Ran:
    """Run the search's arms (the project folder locked); see :class:`Ran`.

    ``configs_for(space)`` and ``searcher_for(configs, scheduler)`` are the tuner's
    (keras-tuner's tuner classes choose their arms there); ``extra_state()`` adds the
    tuner's own entries to every snapshot; ``on_fault_results(space, scheduler)``
    builds the results of arms so far when a known error ends the search.
    """
    cpus, gpus, pool = s.cpus_per_arm, s.gpus_per_arm, s.backend == "pool"
    space, resources = record(
        s.hypermodel, prepared.data, policy, s.backend, s.address, cpus, gpus, s.max_concurrent
    )
    configs = configs_for(space)
    if resume is not None and "configs" in resume.get("extra", {}):
        configs = list(resume["extra"]["configs"])
    check_configs(policy, configs)
    n_slots = slots(resources, s.max_concurrent, cpus, gpus)
    scheduler = make_host(s, policy, limits, n_slots)
    if pool:
        source = pool_source(scheduler, configs, s, n_slots)
    else:
        source = searcher_for(configs, scheduler)
    printed = fingerprint(space, s.objectives, policy, max_epochs, prepared.data, prepared.cv)
    scheduler.extra_state = snapshot_extra(
        configs, printed, space, max_epochs, s.backend, extra_state, source.position
    )
    if resume is not None:
        resume_into(scheduler, source, resume, printed, s.backend, s.project_dir)
        if resume.get("extra", {}).get("finished"):
            return Ran(space, scheduler, None, None, None, reloaded=True)
    steps = policy.decision_steps()
    function, arguments = arm_arguments(s, prepared, fit_args, callbacks, max_epochs, steps)
    if pool:
        source.parameters, source.cls = arguments, function
        fit = lambda: source.run(s.address)  # noqa: E731
    else:
        fit = run_tune(function, arguments, scheduler, source, s, resume is not None)

    def on_fault(known: bool) -> None:
        from bandit_tune.tuner.outcome import save_arms

        save_arms(s.project_dir, s.objectives[0], scheduler)
        if known:  # what the arms did so far, for the user to see (errors included)
            with contextlib.suppress(Exception):
                on_fault_results(space, scheduler)

    progress = make_progress(s, scheduler, policy, limits, max_epochs)
    grid = guarded(
        fit,
        scheduler,
        pool,
        n_slots,
        progress or contextlib.nullcontext(),
        s.project_dir,
        on_fault,
    )
    if pool:
        return Ran(space, scheduler, None, dict(source.errors), progress)
    return Ran(space, scheduler, grid, None, progress)


def snapshot_extra(
    configs: list[dict[str, Any]],
    printed: dict[str, Any],
    space: SearchSpace,
    max_epochs: int,
    backend: str,
    tuner_state: Callable[[], dict[str, Any]],
    position: Callable[[], dict[str, Any]],
) -> Callable[[], dict[str, Any]]:
    """What a resumed search needs beside the runner's state, read at every snapshot."""
    space_config = [{"class_name": type(p).__name__, "config": p.get_config()} for p in space]
    return lambda: {
        "configs": configs,
        "fingerprint": printed,
        "space": space_config,
        "max_epochs": max_epochs,
        "backend": backend,
        **tuner_state(),
        **position(),
    }


def make_progress(
    s: Settings, scheduler: Any, policy: ArmPolicy, limits: Any, max_epochs: int
) -> Any:
    """The live display, listening to the runner's decisions (``None`` when silent)."""
    if not s.verbose:
        return None
    from bandit_tune.tuner.progress import Progress

    budget = getattr(policy, "budget", None)
    objective = s.objectives[0]
    progress = Progress(
        scheduler,
        (objective.name, objective.direction),
        max_epochs,
        epoch_budget=s.max_total_epochs
        or (budget if isinstance(budget, int) and s.budget is None else None),
        seconds_budget=s.budget,
        started=limits.started,
    )
    scheduler.listeners.append(progress)
    return progress


def record(
    hypermodel: Any,
    data: Any,
    policy: ArmPolicy,
    backend: str,
    address: str | None,
    cpus: float,
    gpus: float,
    max_concurrent: int | None,
) -> tuple[SearchSpace, dict[str, Any]]:
    """Start (or join) Ray and record the search space meanwhile; ``(space, resources)``.

    The helper imports Keras, records the space and tries one model on a sample of
    the data (~7 s of CPU) while Ray starts and Ray Tune is imported here (~4 s
    each); ray.init must stay on the main thread. Ray Tune is imported only now:
    its ~3 s then overlap the recording (and not at all for backend="pool"). With
    Keras imported here the space is recorded in a thread of this process instead
    (~1 s), begun only once Ray has started (start_here: ensure_ray and ray.init
    set environment variables, which that thread's TensorFlow reads).
    """
    from bandit_tune.arm.fit_check import sample
    from bandit_tune.arm.hypermodel import MUTABLE_PROBLEM
    from bandit_tune.arm.recording import SpaceRecording
    from bandit_tune.ray_tune.cluster import ensure_ray

    recording: Any = None
    mutable = sorted(getattr(policy, "mutable_keys", None) or ())
    if backend == "pool":
        from bandit_tune.arm.recording import WorkerRecording
        from bandit_tune.pool import warm_worker

        warm = warm_worker(cpus, gpus)
        if warm is not None:  # a second search of this process: Keras is imported there
            recording = WorkerRecording(warm, hypermodel, sample(data), mutable)
    if recording is None:
        recording = SpaceRecording(hypermodel, sample(data), mutable)
    try:
        resources = ensure_ray(address)
        recording.start_here()
        if backend == "pool":
            from bandit_tune.arm.setup import warm_keras
            from bandit_tune.pool import start_workers

            # the workers import Keras while the space is recorded
            start_workers(slots(resources, max_concurrent, cpus, gpus), cpus, gpus, warm_keras)
        else:  # the pool's search never needs Ray Tune
            from ray import tune  # noqa: F401 - imported while the space is recorded
    except BaseException:
        recording.cancel()
        raise
    space, problem = recording.result()
    if problem is not None and problem.startswith(MUTABLE_PROBLEM):
        raise ValueError(problem)
    if mutable:
        prepare_population(policy, space)
    if problem is not None:
        raise ValueError(
            f"the data does not fit the model build_model makes (tried with the default "
            f"hyperparameters before any arm started): {problem}"
        )
    return space, resources


def check_configs(policy: ArmPolicy, configs: list[dict[str, Any]]) -> None:
    """Warn about a population-based policy's sample (its own ``check_population``)."""
    check = getattr(policy, "check_population", None)
    if getattr(policy, "mutable_keys", None) and callable(check):
        for warning in check(configs):
            warnings.warn(warning, UserWarning, stacklevel=4)


def make_host(s: Settings, policy: ArmPolicy, limits: Any, n_slots: int) -> Any:
    """The runner with its scheduler: Ray Tune's ``BanditScheduler``, or a plain host.

    On the pool the runner is held by a plain :class:`~bandit_tune.driver.host.RunnerHost`
    (the pool's search never imports Ray Tune).
    """
    objectives = s.objectives
    if s.backend == "pool":
        from bandit_tune.driver.host import RunnerHost as host
    else:
        from bandit_tune.ray_tune.scheduler import BanditScheduler as host

    scheduler = host(
        policy,
        metric=objectives[0].name,
        mode=objectives[0].direction,
        time_attr="epoch",
        objectives=[(o.name, o.direction) for o in objectives] if len(objectives) > 1 else None,
    )
    scheduler.slots = n_slots
    if limits.seconds or limits.max_total_epochs or limits.target_score is not None:
        scheduler.budget = limits
    scheduler.max_consecutive_failures = s.max_consecutive_failed_trials
    scheduler.state_path = os.path.join(s.project_dir, STATE_FILE)
    scheduler.runner.root = s.project_dir
    return scheduler


def pool_source(
    scheduler: Any, configs: list[dict[str, Any]], s: Settings, n_slots: int
) -> Any:
    """The pool's arm source over the runner (its function and arguments come later)."""
    from bandit_tune.pool import PoolSearch

    return PoolSearch(
        None,
        configs,
        scheduler.runner,
        [o.name for o in s.objectives],
        s.cpus_per_arm,
        s.gpus_per_arm,
        n_slots,
        s.project_dir,
        s.max_retries_per_trial,
        keep_paused=8,
        step_key="epoch",
    )


def arm_arguments(
    s: Settings,
    prepared: Any,
    fit_kwargs: dict[str, Any],
    callbacks: Sequence[Any] | None,
    max_epochs: int,
    steps: Sequence[int] | None,
) -> tuple[Callable[..., Any], dict[str, Any]]:
    """Every arm's training function and the keyword arguments it is called with."""
    from bandit_tune.arm.callbacks import absolute_paths
    from bandit_tune.ray_tune.cluster import Packed

    cv, objectives = prepared.cv, s.objectives
    if cv is not None:
        from bandit_tune.arm.cv import train_arm_cv as function
    else:
        from bandit_tune.arm.train import train_arm as function
    objective = objectives[0]
    arguments = dict(
        hypermodel=Packed(s.hypermodel),
        data=prepared.data,
        fit_kwargs=fit_kwargs,
        callbacks=Packed(absolute_paths(list(callbacks or []))),
        max_epochs=max_epochs,
        checkpoint_epochs=None if steps is None else list(steps),
        cpus=max(1, int(s.cpus_per_arm)),
        input_key=uuid.uuid4().hex if s.fast_input else None,
        latency=any(o.name == "latency_ms" for o in objectives),
    )
    if cv is None:
        arguments["objective"] = (objective.name, objective.direction)
    return function, arguments


def run_tune(
    function: Callable[..., Any],
    arguments: dict[str, Any],
    scheduler: Any,
    source: Any,
    s: Settings,
    resumed: bool,
) -> Callable[[], Any]:
    """The Ray Tune run of the arms, ready to call (``tune.Tuner(...).fit``)."""
    from ray import tune

    from bandit_tune.driver.idle import release_idle_workers

    release_idle_workers()  # idle pool workers of an earlier search would hold the CPUs
    storage, name = experiment(s.storage_path, s.directory, s.project_name, resumed)
    objective = s.objectives[0]
    trainable = tune.with_resources(
        tune.with_parameters(function, **arguments),
        {"cpu": s.cpus_per_arm, "gpu": s.gpus_per_arm},
    )
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=objective.name,
            mode=objective.direction,
            search_alg=source,
            scheduler=scheduler,
            # unbounded: Tune counts every trial it creates, and an arm re-created
            # after a lost node or resumed after a killed driver is a new trial; the
            # arm source ends the search (FINISHED) once no arm is left
            num_samples=-1,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=storage,
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=s.max_retries_per_trial),
        ),
    )
    return tuner.fit


def guarded(
    run: Callable[[], Any],
    scheduler: Any,
    pool: bool,
    n_slots: int,
    progress: Any,
    project_dir: str,
    on_fault: Callable[[bool], None],
) -> Any:
    """``run()`` with the progress display; Ctrl-C and faults keep what was learned.

    Ctrl-C: the scheduler froze the search's state at the interrupt; the arms that
    were training resume from their checkpoints when the call is repeated. Another
    fault: the snapshot is written and ``on_fault(known)`` saves the arms; an error
    the policy, a result or the failure rule raised (``known``: the results so far
    are worth collecting) is re-raised as itself (Ray Tune wraps it in a ``TuneError``).
    """
    from bandit_tune.ray_tune.runtime import (
        interruptible,
        stop_trial_actors,
        tune_actors_on_idle_workers,
    )

    os.makedirs(project_dir, mode=0o700, exist_ok=True)
    scheduler.snapshot(force=True)
    try:
        with (
            progress,
            contextlib.nullcontext() if pool else pending_trials(n_slots),
            contextlib.nullcontext() if pool else tune_actors_on_idle_workers(),
            contextlib.nullcontext() if pool else interruptible(scheduler),
        ):
            return run()
    except KeyboardInterrupt:
        scheduler.runner.interrupt()
        on_fault(False)
        stop_trial_actors(scheduler.trials())
        raise KeyboardInterrupt(
            f"search interrupted; its state is saved in {project_dir}: run the same "
            "search again to resume it"
        ) from None
    except Exception as exc:
        scheduler.snapshot(force=True)
        cause = scheduler.policy_error
        if cause is None and isinstance(exc, TooManyFailures):
            cause = exc  # the pool's runner raised it directly (Ray Tune wraps it)
        on_fault(cause is not None)
        if cause is None:
            raise
        kept = f" Results reported so far are kept in {project_dir}."
        raise type(cause)(f"{cause}.{kept}") from exc


@contextlib.contextmanager
def pending_trials(n_slots: int) -> Any:
    """Let Ray Tune start the actors of the first ``n_slots`` arms at once.

    For a searcher of its own kind Tune keeps one trial pending at a time, so the
    second worker of a search started ~3 s after the first (its actor start and
    TensorFlow import). The scheduler never lets more arms wait than slots are
    free. A value the user set in ``TUNE_MAX_PENDING_TRIALS_PG`` is kept.
    """
    key = "TUNE_MAX_PENDING_TRIALS_PG"
    if key in os.environ:
        yield
        return
    os.environ[key] = str(max(1, int(n_slots)))
    try:
        yield
    finally:
        os.environ.pop(key, None)


def experiment(
    storage_path: str | None, directory: str, project_name: str, resumed: bool
) -> tuple[str, str]:
    """Ray Tune's ``(storage_path, name)`` for this run of the search.

    The first run's experiment is the project folder itself; each resumed run
    gets a new experiment inside it (``resume1``, ``resume2``...), so all the
    search wrote stays in one folder (``overwrite`` and a moved folder see it
    whole). With ``storage_path`` the experiments live there instead.
    """
    if storage_path is not None:
        if not resumed:
            return storage_path, project_name
        prefix = f"{project_name}_resume"
        taken = os.listdir(storage_path) if os.path.isdir(storage_path) else []
        return storage_path, f"{prefix}{sum(d.startswith(prefix) for d in taken) + 1}"
    project_dir = os.path.join(directory, project_name)
    if not resumed:
        return directory, project_name
    runs = sum(1 for d in os.listdir(project_dir) if d.startswith("resume"))
    return project_dir, f"resume{runs + 1}"


def fingerprint(
    space: SearchSpace,
    objectives: list[Objective],
    policy: ArmPolicy,
    max_epochs: int,
    data: Any,
    cv: Any,
) -> dict[str, Any]:
    """What a resumed search must share with the one it resumes, as plain data."""
    import json

    from bandit_tune.space import _describe
    from bandit_tune.tuner.data import shape_of

    x, y, third = data
    objective: Any = [[o.name, o.direction] for o in objectives]
    return json.loads(
        json.dumps(
            {
                "search space": {p.name: _describe(p) for p in space},
                "objective": objective[0] if len(objectives) == 1 else objective,
                "policy": type(policy).__name__,
                "max_epochs": max_epochs,
                "data": {
                    "x": shape_of(x),
                    "y": shape_of(y),
                    "validation": f"{len(third)} folds" if cv is not None else shape_of(third),
                },
            },
            default=str,
        )
    )


def resume_into(
    scheduler: Any,
    source: Any,
    resume: dict[str, Any],
    fingerprint: dict[str, Any],
    backend: str,
    project_dir: str,
) -> None:
    """Take up the interrupted search's snapshot, if it is the same search."""
    from bandit_tune.driver.project import check_unchanged

    extra = resume.get("extra", {})
    check_unchanged(extra.get("fingerprint"), fingerprint, project_dir)
    if extra.get("backend", "tune") != backend and not extra.get("finished"):
        raise ValueError(
            f"the search in {project_dir} ran with "
            f"backend={extra.get('backend', 'tune')!r} and is unfinished; resume it with "
            "the same backend, or pass overwrite=True"
        )
    try:
        scheduler.restore_snapshot(resume)
    except (ValueError, KeyError) as exc:
        raise ValueError(
            f"cannot resume the search in {project_dir}: {exc}. Build the tuner "
            "with the same policy and arguments, or pass overwrite=True to start afresh"
        ) from exc
    source.set_position(extra)
