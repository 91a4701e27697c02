"""Arms multiplexed over long-lived Ray workers: many short arms without a trial each.

Through Ray Tune every arm segment is a trial: started, reported, paused and
resumed by Ray Tune's controller, often in a new worker process. With thousands
of arms that live one to three epochs each, that bookkeeping, not training,
decides the speed. :func:`run_arms` keeps one Ray actor per slot alive for the
whole search, and for every search of the process after it, and moves arms
between them itself: an arm is an object of the user's class, stepped one epoch
per call; a paused arm stays in its worker's memory (and on disk) so resuming it
there costs nothing, and elsewhere it is loaded from its checkpoint. The same
:class:`~bandit_tune.driver.Runner` as in replay and under
:class:`~bandit_tune.BanditScheduler` decides, so every policy runs unchanged.

The arm class has the methods of Ray Tune's class API (a ``ray.tune.Trainable``
subclass works as it is; so does any class with these methods)::

    class Curve:
        def setup(self, config):           # build the model from the configuration
            self.config, self.epoch = config, 0
        def step(self):                    # train one epoch; return its metrics
            self.epoch += 1
            return {"score": 1 - 1 / (self.epoch * self.config["lr"] + 1)}
        def save_checkpoint(self, checkpoint_dir):
            with open(os.path.join(checkpoint_dir, "epoch"), "w") as f:
                f.write(str(self.epoch))
        def load_checkpoint(self, checkpoint_dir):
            with open(os.path.join(checkpoint_dir, "epoch")) as f:
                self.epoch = int(f.read())

    result = run_arms(Curve, [{"lr": lr} for lr in (0.1, 0.3, 1.0)],
                      ASHA(max_t=9, eta=3), metric="score")
    result.best_config

A function works too, written as for Ray Tune but reporting through this
module (``tune.report`` and ``tune.get_checkpoint`` become :func:`report` and
:func:`get_checkpoint`): it runs in a thread of the worker, and a paused arm is
that thread waiting inside ``report``::

    def train(config):
        start = get_checkpoint()           # a folder, or None
        ...
        for epoch in range(first, 100):
            ...
            report({"score": score}, checkpoint=folder)   # copied before it returns

``step`` (or a report) may return ``"done": True`` to end the arm. Checkpoints are written
when an arm pauses (into ``directory/project_name/arms/<arm>/``); a search run
again with the same project resumes where a killed or interrupted one stopped.
On a multi-node cluster the directory must be shared by the nodes (as Ray
Tune's ``storage_path`` must), so an arm paused on one node can resume on
another.
"""

from __future__ import annotations

import collections
import copy
import math
import os
import queue
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bandit_tune.driver.runner import NEW, RESUME, Runner, check_directions
from bandit_tune.policies.base import ArmPolicy, ArmState, Decision

__all__ = ["PoolResult", "get_checkpoint", "report", "run_arms", "shutdown_pool"]

_METHODS = ("setup", "step", "save_checkpoint", "load_checkpoint")
_CHECKPOINT = "checkpoint_"


def _check_trainable(trainable: Any, parameters: dict[str, Any]) -> None:
    """Raise ``TypeError`` unless ``trainable`` is an arm class or a function arm."""
    if isinstance(trainable, type):
        missing = [m for m in _METHODS if not callable(getattr(trainable, m, None))]
        if missing:
            raise TypeError(
                f"{trainable.__name__} lacks {', '.join(missing)}: an arm class needs "
                "setup(config), step() -> dict, save_checkpoint(dir) and load_checkpoint(dir)"
            )
        return
    if not callable(trainable):
        raise TypeError(
            "the trainable must be an arm class (setup, step, save_checkpoint, "
            "load_checkpoint) or a function(config) that calls bandit_tune.pool.report "
            f"once per epoch; got a {type(trainable).__name__}"
        )
    import inspect

    try:
        inspect.signature(trainable).bind({}, **parameters)
    except TypeError as exc:
        name = getattr(trainable, "__name__", repr(trainable))
        raise TypeError(
            f"{name} cannot be called as {name}(config"
            + "".join(f", {k}=..." for k in parameters)
            + f"): {exc}"
        ) from None
    except ValueError:  # no signature to read (a builtin): let the call decide
        pass


def _make(
    cls: type, config: dict[str, Any], folder: str, parameters: dict[str, Any] | None = None
) -> Any:
    """An arm object of ``cls`` set up with ``config`` (a Trainable without Ray Tune's session)."""
    extra = parameters or {}
    try:
        from ray.tune import Trainable
    except ImportError:  # pragma: no cover - ray is a dependency
        Trainable = None  # type: ignore[assignment,misc]  # noqa: N806
    if Trainable is not None and issubclass(cls, Trainable):
        # Trainable.__init__ opens a log folder under ~/ray_results and a resource
        # monitor per object; an arm needs neither, only what its methods read.
        obj = cls.__new__(cls)
        obj.config = dict(config)
        obj._iteration = 0
        obj._time_total = 0.0
        obj._timesteps_total = None
        obj._episodes_total = None
        obj._time_since_restore = 0.0
        obj._timesteps_since_restore = 0
        obj._iterations_since_restore = 0
        obj._last_result = None
        obj._restored = False
        obj._storage = None
        obj._trial_info = None
        obj._logdir = folder
        obj.setup(copy.deepcopy(obj.config), **extra)
        return obj
    obj = cls()
    obj.setup(copy.deepcopy(config), **extra)
    return obj


def _checkpoint_step(path: str | None) -> int:
    if not path:
        return 0
    name = os.path.basename(os.path.normpath(path))
    return int(name[len(_CHECKPOINT) :]) if name.startswith(_CHECKPOINT) else 0


def latest_checkpoint(folder: str) -> str | None:
    """The newest complete checkpoint in an arm's folder (``None``: it has none)."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(_CHECKPOINT)]
    except FileNotFoundError:
        return None
    steps = sorted(
        (int(n[len(_CHECKPOINT) :]), n) for n in names if n[len(_CHECKPOINT) :].isdigit()
    )
    return os.path.join(folder, steps[-1][1]) if steps else None


class _Stopped(BaseException):
    """Raised inside a function arm's thread to end it (the arm was dropped)."""


_SESSION = threading.local()


def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
    """In a function arm: report one epoch's metrics (and its checkpoint); wait for the next.

    Args:
        metrics: the epoch's metrics (the search's metric among them).
        checkpoint: a folder holding the arm's state after this epoch (or a
            ``ray.tune.Checkpoint``): copied into the project before this returns,
            so a temporary folder may be deleted afterwards.

    The call returns when the policy lets the arm train on; an arm that is
    stopped (or dropped while paused) never returns from it.
    """
    session = getattr(_SESSION, "arm", None)
    if session is None:
        raise RuntimeError(
            "bandit_tune.pool.report is for function arms that bandit_tune.run_arms runs"
        )
    session.report(metrics, checkpoint)


def current_arm() -> FunctionArm | None:
    """The function arm this thread runs (``None`` outside :func:`run_arms`' function arms)."""
    return getattr(_SESSION, "arm", None)


def get_checkpoint() -> str | None:
    """In a function arm: the checkpoint folder it starts from (``None``: from scratch)."""
    session = getattr(_SESSION, "arm", None)
    if session is None:
        raise RuntimeError(
            "bandit_tune.pool.get_checkpoint is for function arms that bandit_tune.run_arms runs"
        )
    return session.start_checkpoint


def _persist(folder: str, step: int, write: Any) -> str:
    """Write checkpoint ``step`` of an arm atomically (``write(partial)``), drop older ones."""
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, f"{_CHECKPOINT}{step:06d}")
    partial = final + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    write(partial)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    for name in os.listdir(folder):
        if name.startswith(_CHECKPOINT) and os.path.join(folder, name) != final:
            shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
    return final


class FunctionArm:
    """A function trainable run in a thread and stepped through :func:`report`.

    As Ray Tune runs a function trainable: each :meth:`step` lets the function
    run to its next ``report`` and returns what it reported; a paused arm is a
    thread waiting inside ``report``, so resuming it on the same worker goes on
    with the model in memory.
    """

    def __init__(
        self,
        fn: Any,
        config: dict[str, Any],
        checkpoint: str | None,
        parameters: dict[str, Any],
        folder: str,
    ) -> None:
        self.fn, self.config, self.parameters, self.folder = fn, config, parameters, folder
        self.start_checkpoint = checkpoint
        self.steps = _checkpoint_step(checkpoint)
        self.last_checkpoint: str | None = checkpoint
        self._out: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self._go = threading.Semaphore(0)
        self._stop = False
        self._thread: threading.Thread | None = None
        #: The arm's id (what the function's ``trial id`` is under Ray Tune).
        self.arm_id = ""
        #: The metric holding the arm's own epoch count (``None``: count the reports).
        self.step_key: str | None = None

    def _main(self) -> None:
        _SESSION.arm = self
        try:
            self.fn(copy.deepcopy(self.config), **self.parameters)
        except _Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of step()
            self._out.put(("error", exc, None))
            return
        self._out.put(("end", None, None))

    def report(self, metrics: dict[str, Any], checkpoint: Any) -> None:
        """In the arm's thread: hand over one epoch's result and wait for the next step."""
        if self._stop:
            raise _Stopped
        if not isinstance(metrics, dict):
            raise TypeError(f"report takes a dict of metrics, got {type(metrics).__name__}")
        if self.step_key is not None and self.step_key in metrics:
            self.steps = int(metrics[self.step_key])  # the arm counts its own epochs
        else:
            self.steps += 1
        path = None
        if checkpoint is not None:
            source = os.fspath(getattr(checkpoint, "path", checkpoint))
            path = _persist(
                self.folder,
                self.steps,
                lambda d: shutil.copytree(source, d, dirs_exist_ok=True),
            )
            self.last_checkpoint = path
        self._out.put(("result", dict(metrics), path))
        self._go.acquire()
        if self._stop:
            raise _Stopped

    def step(self) -> tuple[dict[str, Any], str | None] | None:
        """Run the function to its next report: ``(metrics, checkpoint)``; ``None`` at its end."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, daemon=True)
            self._thread.start()
        else:
            self._go.release()
        kind, value, path = self._out.get()
        if kind == "error":
            raise value
        if kind == "end":
            return None
        return value, path

    def cleanup(self) -> None:
        """End the thread (it leaves ``report`` with an exception it does not see)."""
        self._stop = True
        self._go.release()


class ArmWorker:
    """One slot of the pool: a Ray actor that holds arm objects and steps them.

    The driver is the only caller, so calls run in the order it makes them: a
    ``save`` and the next arm's ``step`` are sent together without waiting.
    """

    def __init__(self) -> None:
        self.cls: type | None = None
        self.root = ""
        self.parameters: dict[str, Any] = {}
        self.step_key: str | None = None
        self.arms: dict[str, list[Any]] = {}  # arm -> [object, step]

    def reset(
        self,
        cls: Any,
        root: str,
        parameters: dict[str, Any] | None = None,
        step_key: str | None = None,
    ) -> bool:
        """Drop every arm of an earlier search; take this search's class, folder, parameters.

        ``parameters`` maps names to object references: fetched once here, passed
        to every arm's ``setup`` as keyword arguments.
        """
        import ray

        for arm_id in list(self.arms):
            self.drop(arm_id)
        self.cls, self.root, self.step_key = cls, root, step_key
        self.parameters = {k: ray.get(v) for k, v in (parameters or {}).items()}
        return True

    def step(
        self, arm_id: str, config: dict[str, Any] | None = None, checkpoint: str | None = None
    ) -> dict[str, Any]:
        """Train the arm one epoch; with ``config`` build it first (from ``checkpoint``)."""
        if config is not None:
            self.drop(arm_id)
            assert self.cls is not None
            folder = os.path.join(self.root, arm_id)
            if isinstance(self.cls, type):
                obj = _make(self.cls, config, folder, self.parameters)
                if checkpoint:
                    obj.load_checkpoint(checkpoint)
                    if hasattr(obj, "_iteration"):
                        obj._iteration = _checkpoint_step(checkpoint)
            else:
                obj = FunctionArm(self.cls, config, checkpoint, self.parameters, folder)
                obj.arm_id, obj.step_key = arm_id, self.step_key
            self.arms[arm_id] = [obj, _checkpoint_step(checkpoint)]
        entry = self.arms[arm_id]
        started = time.perf_counter()
        path = None
        if isinstance(entry[0], FunctionArm):
            got = entry[0].step()
            if got is None:  # the function returned: the arm is complete
                return {"result": None, "step": entry[1], "seconds": 0.0, "done": True}
            result, path = got
        else:
            result = entry[0].step()
        seconds = time.perf_counter() - started
        if not isinstance(result, dict):
            raise TypeError(
                f"{type(entry[0]).__name__}.step() must return a dict of metrics, got "
                f"{type(result).__name__}"
            )
        entry[1] = entry[0].steps if isinstance(entry[0], FunctionArm) else entry[1] + 1
        if hasattr(entry[0], "_iteration"):
            entry[0]._iteration = entry[1]
        kept = {k: v for k, v in result.items() if _scalar(v)}
        return {
            "result": kept,
            "step": entry[1],
            "seconds": seconds,
            "done": bool(result.get("done", False)),
            "checkpoint": path,
        }

    def save(self, arm_id: str) -> str | None:
        """Write the arm's checkpoint (atomically) and delete its older ones; returns the path.

        A function arm wrote its checkpoints when it reported: its latest is returned.
        """
        obj, step = self.arms[arm_id]
        if isinstance(obj, FunctionArm):
            return obj.last_checkpoint
        return _persist(os.path.join(self.root, arm_id), step, obj.save_checkpoint)

    def drop(self, arm_id: str) -> None:
        """Forget the arm here (its checkpoint on disk stays)."""
        entry = self.arms.pop(arm_id, None)
        if entry is not None and callable(getattr(entry[0], "cleanup", None)):
            entry[0].cleanup()

    def held(self) -> list[str]:
        """The arms this worker holds in memory."""
        return list(self.arms)

    def warm(self, keras: bool) -> bool:
        """Import what arms need before the first arm comes (Keras, when asked)."""
        if keras:
            from bandit_tune.runtime import import_keras_lean

            import_keras_lean()
            import keras as _  # noqa: F401
        return True

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function(*args)`` here (the tuner records its search space in a warm worker)."""
        return function(*args)


def _scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, str)) or (
        type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0
    )


# -- the pool: kept across the searches of one process ---------------------------------
_POOL: dict[str, Any] = {"job": None, "workers": {}}


def _workers(count: int, cpus: float, gpus: float) -> list[Any]:
    """``count`` live workers of this resource shape, reusing those of earlier searches."""
    import ray

    job = ray.get_runtime_context().get_job_id()
    if _POOL["job"] != job:  # Ray was restarted: the old actors are gone
        _POOL["job"], _POOL["workers"] = job, {}
    shelf = _POOL["workers"].setdefault((cpus, gpus), [])
    remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=0)(ArmWorker)
    while len(shelf) < count:
        shelf.append(remote.remote())
    return shelf[:count]


def start_workers(count: int, cpus: float, gpus: float, keras: bool = False) -> list[Any]:
    """Start (or reuse) ``count`` workers now and let them import what arms need.

    Called by a tuner as soon as Ray is up, so the workers' imports overlap what
    the driver does before the first arm (recording the search space).
    """
    workers = _workers(count, cpus, gpus)
    for worker in workers:
        worker.warm.remote(keras)
    return workers


def warm_worker(cpus: float, gpus: float) -> Any:
    """A worker an earlier search of this process left alive (``None``: none, or no Ray)."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    if _POOL["job"] != ray.get_runtime_context().get_job_id():
        return None
    shelf = _POOL["workers"].get((cpus, gpus)) or []
    return shelf[0] if shelf else None


def _replace(worker: Any, cpus: float, gpus: float) -> Any:
    """A new worker in place of a lost one."""
    import ray

    shelf = _POOL["workers"].get((cpus, gpus), [])
    remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=0)(ArmWorker)
    fresh = remote.remote()
    for i, w in enumerate(shelf):
        if w is worker:
            shelf[i] = fresh
    return fresh


def shutdown_pool() -> None:
    """End the pool's workers now (they otherwise live until Ray shuts down)."""
    try:
        import ray
    except ImportError:  # pragma: no cover
        return
    for shelf in _POOL["workers"].values():
        for worker in shelf:
            try:
                ray.kill(worker)
            except Exception:  # noqa: BLE001 - already gone
                pass
    _POOL["workers"] = {}


@dataclass
class PoolResult:
    """What :func:`run_arms` found.

    Attributes:
        best_arm: the arm with the best reported value (first objective).
        best_config: its configuration.
        best_score: its best value, as reported.
        arms: one row per arm: ``arm``, ``config``, ``state``, ``epochs``, ``best``,
            ``last``, ``error``.
        results: every arm's reported metrics, epoch by epoch.
        decisions: every arm's ``(step, score, decision)`` history (score as the
            policy saw it: higher is better).
        epochs: epochs trained (results reported), replays after a resume included.
        seconds: wall seconds of this call.
        workers: worker actors the search used.
        path: the project folder (state, checkpoints).
        stop_reason: why a budget ended the search (``None``: the policy finished).
    """

    best_arm: str | None
    best_config: dict[str, Any] | None
    best_score: float
    arms: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    decisions: dict[str, list[tuple[int, Any, str]]] = field(default_factory=dict)
    epochs: int = 0
    seconds: float = 0.0
    workers: int = 0
    path: str = ""
    stop_reason: str | None = None

    def dataframe(self) -> Any:
        """The arms as a pandas DataFrame, best first."""
        import pandas as pd

        rows = [
            {
                "arm": r["arm"],
                **r["config"],
                **{k: v for k, v in r.items() if k not in ("arm", "config")},
            }
            for r in self.arms
        ]
        return pd.DataFrame(rows)


def run_arms(
    trainable: type,
    configs: Sequence[dict[str, Any]],
    policy: ArmPolicy,
    *,
    metric: str | Sequence[str],
    mode: str | Sequence[str] = "max",
    cpus_per_arm: float = 1.0,
    gpus_per_arm: float = 0.0,
    max_concurrent: int | None = None,
    directory: str = "bandit_tune_results",
    project_name: str = "arms",
    overwrite: bool = False,
    max_failures: int = 1,
    keep_paused: int = 4,
    max_total_epochs: int | None = None,
    budget: str | float | None = None,
    address: str | None = None,
    parameters: dict[str, Any] | None = None,
) -> PoolResult:
    """Run ``configs`` as arms of ``policy`` on long-lived Ray workers; return the best.

    Args:
        trainable: the arm class (see the module: ``setup``, ``step``,
            ``save_checkpoint``, ``load_checkpoint``; a ``ray.tune.Trainable``
            subclass works).
        configs: the configurations, in the order new arms take them.
        policy: any :class:`~bandit_tune.policies.ArmPolicy`.
        metric: the metric ``step()`` returns that the policy judges (several for
            a multi-objective policy).
        mode: ``"max"`` or ``"min"`` (one per metric).
        cpus_per_arm: CPUs each worker reserves (fractions pack several on a CPU).
        gpus_per_arm: GPUs each worker reserves (fractions share a GPU).
        max_concurrent: workers (slots); default: as many as the resources fit.
        directory: where the project folder goes.
        project_name: the project folder's name (state and checkpoints).
        overwrite: start afresh instead of resuming the project's unfinished
            search (or reloading its finished one).
        max_failures: times an arm is placed again after its step raised or its
            worker died; then it ends with its error recorded.
        keep_paused: paused arms a worker keeps in memory (older ones are dropped
            there and load from their checkpoint when resumed).
        max_total_epochs: stop once this many epochs were trained.
        budget: a wall-clock limit (``"90s"``, ``"10m"`` or seconds).
        address: a Ray cluster to join (default: a local Ray on 127.0.0.1).
        parameters: large objects every arm needs (the training data): put into
            Ray's object store once, fetched once per worker and passed to
            ``setup(config, **parameters)`` (Ray Tune's ``tune.with_parameters``).

    Raises:
        TypeError, ValueError: a bad argument, before anything starts.
        RuntimeError: every one of the first arms failed (the first error is shown).
        KeyboardInterrupt: after saving the state; run the same call to resume.
    """
    _check_trainable(trainable, parameters if isinstance(parameters, dict) else {})
    if isinstance(configs, (str, bytes, dict)) or not isinstance(configs, Sequence):
        raise TypeError(
            f"configs must be a list of configuration dicts, got {type(configs).__name__}"
        )
    configs = list(configs)
    bad = next((i for i, c in enumerate(configs) if not isinstance(c, dict)), None)
    if not configs or bad is not None:
        raise ValueError(
            "configs must be a non-empty list of dicts"
            + (f"; item {bad} is a {type(configs[bad]).__name__}" if bad is not None else "")
        )
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ValueError(f"metric must be a metric name (or several), got {metric!r}")
    modes: Any = mode if isinstance(mode, str) else list(mode)
    if len(metrics) > 1 and (isinstance(modes, str) or len(modes) != len(metrics)):
        raise ValueError(f"give one mode per metric ({len(metrics)}), got {mode!r}")
    check_directions(policy, modes)
    for label, value, zero in (
        ("cpus_per_arm", cpus_per_arm, False),
        ("gpus_per_arm", gpus_per_arm, True),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (value >= 0 if zero else value > 0)
            or not math.isfinite(value)
        ):
            raise ValueError(
                f"{label} must be a {'non-negative' if zero else 'positive'} "
                f"number of devices, got {value!r}"
            )
    for label, value in (
        ("max_concurrent", max_concurrent),
        ("max_total_epochs", max_total_epochs),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{label} must be a positive integer or None, got {value!r}")
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 0:
        raise ValueError(f"max_failures must be an integer >= 0, got {max_failures!r}")
    if isinstance(keep_paused, bool) or not isinstance(keep_paused, int) or keep_paused < 0:
        raise ValueError(f"keep_paused must be an integer >= 0, got {keep_paused!r}")
    if parameters is not None and (
        not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters)
    ):
        raise TypeError(
            f"parameters must be a dict of keyword arguments for setup, got {parameters!r:.80}"
        )
    from bandit_tune.budget import Budget, parse_budget
    from bandit_tune.project import STATE_FILE, Project, read_state

    seconds = None if budget is None else parse_budget(budget)
    project = Project(directory, project_name)
    if overwrite:
        project.refuse_foreign_overwrite()
    with project:
        if overwrite:
            project.clear()
        state_path = os.path.join(project.path, STATE_FILE)
        saved = read_state(state_path) if os.path.exists(state_path) else None
        runner = Runner(
            policy,
            mode=modes,
            metric=metrics[0],
            budget=None
            if seconds is None and max_total_epochs is None
            else Budget(
                seconds=seconds,
                max_total_epochs=max_total_epochs,
                started=time.monotonic(),
                clock=time.monotonic,
            ),
        )
        search = PoolSearch(
            trainable,
            configs,
            runner,
            metrics,
            float(cpus_per_arm),
            float(gpus_per_arm),
            max_concurrent,
            project.path,
            max_failures,
            keep_paused,
        )
        runner.extra_state = search.extra_state
        search.parameters = dict(parameters or {})
        if saved is not None:
            search.restore(saved)
            if saved.get("extra", {}).get("finished"):
                return search.result(0.0)
        return search.run(address)


class PoolSearch:
    """The loop between a :class:`~bandit_tune.driver.Runner` and the pool's workers.

    :func:`run_arms` makes one per call; ``BanditTuner(backend="pool")`` drives its
    own runner (its scheduler's) through one. New arms take ``configs`` in order
    (:attr:`next_config` is the position a snapshot keeps).
    """

    def __init__(
        self,
        cls: Any,
        configs: list[dict[str, Any]],
        runner: Runner,
        metrics: list[str],
        cpus: float,
        gpus: float,
        max_concurrent: int | None,
        path: str,
        max_failures: int,
        keep_paused: int,
        step_key: str | None = None,
    ) -> None:
        self.cls, self.configs, self.metrics = cls, configs, metrics
        self.cpus, self.gpus, self.max_concurrent = cpus, gpus, max_concurrent
        self.path, self.arms_dir = path, os.path.join(path, "arms")
        self.max_failures, self.keep = max_failures, keep_paused
        self.step_key = step_key
        self.runner = runner
        runner.state_path = os.path.join(path, "state.json")
        runner.root = path
        self.next_config = 0
        self.finished = False
        #: Arms that ended with an error: their last traceback lines.
        self.errors: dict[str, str] = {}
        self.epochs = 0
        self.succeeded = False
        #: Keyword arguments for every arm's ``setup`` (or function), put into Ray once.
        self.parameters: dict[str, Any] = {}
        self.parameter_refs: dict[str, Any] = {}
        self.workers: list[Any] = []
        self.fingerprint = {
            "n_configs": len(configs),
            "policy": type(runner.policy).__name__,
            "metric": metrics,
            "class": getattr(cls, "__name__", type(cls).__name__),
        }

    def position(self) -> dict[str, Any]:
        """What a snapshot keeps of this loop: the next configuration, the errors."""
        return {"next_config": self.next_config, "errors": self.errors}

    def set_position(self, extra: dict[str, Any]) -> None:
        """Take up :meth:`position` from a snapshot's ``extra``."""
        self.next_config = int(extra.get("next_config", 0))
        self.errors = dict(extra.get("errors") or {})

    def extra_state(self) -> dict[str, Any]:
        """:func:`run_arms`' part of the snapshot."""
        return {
            **self.position(),
            "finished": self.finished,
            "fingerprint": self.fingerprint,
        }

    def restore(self, state: dict[str, Any]) -> None:
        extra = state.get("extra", {})
        if extra.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"the project {self.path} holds another search ({extra.get('fingerprint')}, "
                f"this one is {self.fingerprint}); pass overwrite=True to start afresh, or "
                "another project_name"
            )
        try:
            self.runner.restore(state)
        except (ValueError, KeyError) as exc:
            raise ValueError(
                f"cannot resume the search in {self.path}: {exc}; pass "
                "overwrite=True to start afresh"
            ) from exc
        self.set_position(extra)
        self.finished = bool(extra.get("finished"))

    # -- the loop ----------------------------------------------------------------------
    def run(self, address: str | None) -> PoolResult:
        import ray

        from bandit_tune.runtime import ensure_ray

        started = time.perf_counter()
        resources = ensure_ray(address)
        slots = self.max_concurrent or max(1, int(resources.get("CPU", 1) / self.cpus + 1e-9))
        if self.gpus:
            slots = min(slots, max(1, int(resources.get("GPU", 0) / self.gpus + 1e-9)))
        self.runner.slots = slots
        os.makedirs(self.arms_dir, exist_ok=True)
        workers = _workers(slots, self.cpus, self.gpus)
        self.cls_ref = ray.put(self.cls)
        self.parameter_refs = {k: ray.put(v) for k, v in self.parameters.items()}
        ray.get(
            [
                w.reset.remote(self.cls_ref, self.arms_dir, self.parameter_refs, self.step_key)
                for w in workers
            ]
        )
        self.workers = list(workers)
        self.free = collections.deque(range(slots))
        self.held: list[collections.OrderedDict[str, None]] = [
            collections.OrderedDict() for _ in range(slots)
        ]
        self.where: dict[str, int] = {}  # arm -> worker holding its object
        self.saving: dict[str, Any] = {}  # arm -> its checkpoint write in flight
        self.pending: dict[Any, tuple[str, int, str]] = {}  # ref -> (kind, worker, arm)
        self.running: dict[str, int] = {}
        self.runner.snapshot(force=True)
        try:
            self._loop(ray)
        except KeyboardInterrupt:
            self.runner.interrupt()
            raise KeyboardInterrupt(
                f"search interrupted; its state is saved in {self.path}: run the same call "
                "again to resume it"
            ) from None
        except BaseException:
            self.runner.snapshot(force=True)
            raise
        self.finished = True
        self.runner.snapshot(force=True)
        return self.result(time.perf_counter() - started)

    def _loop(self, ray: Any) -> None:
        runner = self.runner
        self._fill()
        while self.pending:
            ready, _ = ray.wait(list(self.pending), num_returns=1)
            ref = ready[0]
            kind, w, arm_id = self.pending.pop(ref)
            try:
                payload = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                self._lost(w, arm_id, exc, kind)
                self._fill()
                continue
            except ray.exceptions.RayTaskError as exc:
                if kind == "save":
                    self.saving.pop(arm_id, None)
                    self._failed(w, arm_id, exc)
                else:
                    self._failed(w, arm_id, exc)
                self._fill()
                continue
            if kind == "save":
                if self.saving.get(arm_id) is ref:
                    del self.saving[arm_id]
                arm = runner.arms.get(arm_id)
                if arm is not None:
                    arm.checkpoint = payload
                continue
            self._result(w, arm_id, payload)
            self._fill()
        runner.snapshot(force=True)

    def _value(self, arm_id: str, result: dict[str, Any]) -> Any:
        missing = [m for m in self.metrics if m not in result]
        if missing:
            name = getattr(self.cls, "__name__", "the trainable")
            what = f"{name}.step() returned" if isinstance(self.cls, type) else f"{name} reported"
            raise ValueError(
                f"{what} no {missing[0]!r} (arm {arm_id}); it reported {sorted(result)}. "
                "Report the metric the search judges, or pass metric= one of those"
            )
        values = [float(result[m]) for m in self.metrics]
        return values[0] if len(values) == 1 else values

    def _result(self, w: int, arm_id: str, payload: dict[str, Any]) -> None:
        runner = self.runner
        result = payload["result"]
        arm = runner.arms[arm_id]
        if result is None:  # a function arm returned: nothing more to report
            decision = None
            self._end(runner.arm_ended(arm_id))
        else:
            self.succeeded = True
            self.epochs += 1
            result.setdefault("time_this_iter_s", payload["seconds"])
            result["driver_time"] = time.time()  # when the driver saw it (overhead analysis)
            value = self._value(arm_id, result)
            decision, ended = runner.report(
                arm_id,
                payload["step"],
                value,
                result=result,
                seconds=payload["seconds"],
                checkpoint=payload.get("checkpoint"),
                in_flight=len(self.running) - 1,
            )
            self._end(ended)
        if payload["done"] and arm.state is ArmState.RUNNING:
            self._end(runner.arm_ended(arm_id))
        if arm.state is ArmState.RUNNING and decision in (None, Decision.CONTINUE):
            self._launch(w, arm_id)  # goes on where it is
            return
        del self.running[arm_id]
        if arm.state is ArmState.PAUSED:
            ref = self.workers[w].save.remote(arm_id)
            self.pending[ref] = ("save", w, arm_id)
            self.saving[arm_id] = ref
            self.held[w][arm_id] = None
            while len(self.held[w]) > self.keep:
                old, _ = self.held[w].popitem(last=False)
                self.where.pop(old, None)
                self.workers[w].drop.remote(old)
        else:
            self.where.pop(arm_id, None)
            self.workers[w].drop.remote(arm_id)
        self.free.append(w)

    def _launch(self, w: int, arm_id: str) -> None:
        worker = self.workers[w]
        if self.where.get(arm_id) == w:
            self.held[w].pop(arm_id, None)
            ref = worker.step.remote(arm_id)
        else:
            old = self.where.pop(arm_id, None)
            if old is not None:
                self.held[old].pop(arm_id, None)
                self.workers[old].drop.remote(arm_id)
            checkpoint = self.saving.get(arm_id)  # Ray waits for the write it names
            if checkpoint is None:
                checkpoint = latest_checkpoint(os.path.join(self.arms_dir, arm_id))
            ref = worker.step.remote(arm_id, self.runner.arms[arm_id].config, checkpoint)
        self.where[arm_id] = w
        self.running[arm_id] = w
        self.pending[ref] = ("step", w, arm_id)

    def _fill(self) -> None:
        runner = self.runner
        while self.free:
            w = self.free[0]
            if runner.wake:
                self.free.popleft()
                self._launch(w, runner.wake.popleft())
                continue
            more = self.next_config < len(self.configs)
            action, arm_id = runner.next_arm(len(self.running), more, prefer=list(self.held[w]))
            self._end(runner.take_ended())
            if action == RESUME and arm_id is not None:
                self.free.popleft()
                self._launch(w, arm_id)
            elif action == NEW:
                i = self.next_config
                self.next_config += 1
                arm_id = f"arm_{i:05d}"
                self.free.popleft()
                self._end(runner.add_arm(arm_id, self.configs[i]))
                self._launch(w, arm_id)
            elif not self.running and runner.arms.paused:
                arm_id = runner.settle()
                self._end(runner.take_ended())
                if arm_id is None:
                    return
                self.free.popleft()
                self._launch(w, arm_id)
            else:
                return

    def _end(self, arm_ids: list[str]) -> None:
        """Arms the runner ended while paused: their workers forget them."""
        for arm_id in arm_ids:
            w = self.where.pop(arm_id, None)
            if w is not None and arm_id not in self.running:
                self.held[w].pop(arm_id, None)
                self.workers[w].drop.remote(arm_id)

    def _failed(self, w: int, arm_id: str, exc: BaseException) -> None:
        """The arm's step (or save) raised: place it again, or end it with its error."""
        runner = self.runner
        text = str(exc).strip().splitlines()
        self.errors[arm_id] = "\n".join(text[-20:])
        self.where.pop(arm_id, None)
        self.held[w].pop(arm_id, None)
        if self.running.pop(arm_id, None) is not None:
            self.free.append(w)
        self.workers[w].drop.remote(arm_id)
        arm = runner.arms.get(arm_id)
        if arm is None:
            return
        retry = arm.failures < self.max_failures and arm.state is not ArmState.STOPPED
        self._end(runner.arm_failed(arm_id, retry=retry))
        if not self.succeeded and len(self.errors) >= 3 and not retry:
            raise RuntimeError(
                f"the first {len(self.errors)} arms all failed; the first error "
                f"({next(iter(self.errors))}):\n{next(iter(self.errors.values()))}"
            )

    def _lost(self, w: int, arm_id: str, exc: BaseException, kind: str) -> None:
        """The worker died: a new one takes its place; its arms resume from checkpoints."""
        for held in list(self.held[w]):
            self.where.pop(held, None)
        self.held[w].clear()
        dead = self.workers[w]
        if kind == "save":
            self.saving.pop(arm_id, None)
        self.workers[w] = _replace(dead, self.cpus, self.gpus)
        import ray

        ray.get(
            self.workers[w].reset.remote(
                self.cls_ref, self.arms_dir, self.parameter_refs, self.step_key
            )
        )
        for ref, (k, x, other) in list(self.pending.items()):
            if x == w:  # every other call to the dead worker fails too
                del self.pending[ref]
                if k == "save":
                    self.saving.pop(other, None)
        if kind == "step" or arm_id in self.running:
            arm = self.runner.arms.get(arm_id)
            self.running.pop(arm_id, None)
            self.where.pop(arm_id, None)
            if arm is not None:
                # a lost worker is not the arm's fault: placed again a few times
                retry = arm.failures < max(self.max_failures, 3)
                if not retry:
                    self.errors[arm_id] = f"its worker died: {exc}"
                self._end(self.runner.arm_failed(arm_id, retry=retry))
        if w not in self.free:
            self.free.append(w)

    # -- what was found ------------------------------------------------------------------
    def result(self, seconds: float) -> PoolResult:
        runner = self.runner
        first = self.metrics[0]
        maximize = (runner.mode if isinstance(runner.mode, str) else runner.mode[0]) == "max"
        rows = []
        best: tuple[float, str] | None = None
        for arm in runner.arms:
            values = [float(r[first]) for r in arm.results if first in r]
            finite = [v for v in values if math.isfinite(v)]
            top = (max(finite) if maximize else min(finite)) if finite else math.nan
            rows.append(
                {
                    "arm": arm.arm_id,
                    "config": dict(arm.config),
                    "state": arm.state.value,
                    "epochs": arm.step,
                    "best": top,
                    "last": values[-1] if values else math.nan,
                    "error": self.errors.get(arm.arm_id),
                }
            )
            if finite:
                key = top if maximize else -top
                if best is None or key > best[0]:
                    best = (key, arm.arm_id)
        rows.sort(key=lambda r: (math.isnan(r["best"]), -r["best"] if maximize else r["best"]))
        best_arm = best[1] if best else None
        return PoolResult(
            best_arm=best_arm,
            best_config=dict(runner.arms[best_arm].config) if best_arm else None,
            best_score=(best[0] if maximize else -best[0]) if best else math.nan,
            arms=rows,
            results=runner.arms.results(),
            decisions={k: [tuple(d) for d in v] for k, v in runner.arms.decisions().items()},
            epochs=self.epochs,
            seconds=seconds,
            workers=len(getattr(self, "workers", [])),
            path=self.path,
            stop_reason=None if runner.budget is None else runner.budget.reason,
        )
