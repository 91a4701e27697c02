"""What runs in a pool worker: the arms it holds and steps (classes and functions).

:class:`ArmWorker` is the Ray actor; an arm is an object of the user's class
(stepped one epoch per call) or a :class:`FunctionArm` (a function trainable in a
thread, stepped through :func:`report`). Checkpoints are written here,
atomically, into the project's ``arms/<arm>/checkpoint_<step>`` folders.
"""

from __future__ import annotations

import copy
import os
import queue
import shutil
import sys
import threading
import time
from typing import Any

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
    # a subclass of Ray Tune's Trainable was defined with Ray Tune loaded: the pool
    # itself never imports it
    Trainable = getattr(sys.modules.get("ray.tune"), "Trainable", None)  # noqa: N806
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


def checkpoint_step(path: str | None) -> int:
    """The step a pool checkpoint folder (``checkpoint_<step>``) was written at (0: unknown)."""
    if not path:
        return 0
    name = os.path.basename(os.path.normpath(path))
    return int(name[len(_CHECKPOINT) :]) if name.startswith(_CHECKPOINT) else 0


def latest_checkpoint(folder: str, at_most: int | None = None) -> str | None:
    """The newest complete checkpoint in an arm's folder (``None``: it has none).

    ``at_most``: the newest at or before this step. A resumed driver knows an
    arm's results up to the step its snapshot holds; a checkpoint the worker
    wrote after that would skip the decisions of the steps in between.
    """
    steps = [(s, p) for s, p in _checkpoints(folder) if at_most is None or s <= at_most]
    return steps[-1][1] if steps else None


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

    The call returns when the arm may train on: at once between the steps where
    the policy may pause or stop it (its ``decision_steps()``: the driver decides
    meanwhile), else when the policy lets it. An arm that is stopped (or dropped
    while paused) never returns from it.
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


#: Checkpoints kept per arm: the newest, and the one before it (the driver's
#: snapshot may still name it when a killed driver is resumed).
KEEP_CHECKPOINTS = 2


def _checkpoints(folder: str) -> list[tuple[int, str]]:
    """``(step, path)`` of an arm's complete checkpoints, oldest first."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    steps = [
        (int(n[len(_CHECKPOINT) :]), os.path.join(folder, n))
        for n in names
        if n.startswith(_CHECKPOINT) and n[len(_CHECKPOINT) :].isdigit()
    ]
    return sorted(steps)


def _persist(folder: str, step: int, write: Any) -> str:
    """Write checkpoint ``step`` of an arm atomically (``write(partial)``); keep the last two."""
    os.makedirs(folder, exist_ok=True)
    final = os.path.join(folder, f"{_CHECKPOINT}{step:06d}")
    partial = final + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    os.makedirs(partial)
    write(partial)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(partial, final)
    for _, path in _checkpoints(folder)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(path, ignore_errors=True)
    return final


class FunctionArm:
    """A function trainable run in a thread and stepped through :func:`report`.

    As Ray Tune runs a function trainable: each :meth:`step` lets the function
    run to its next ``report`` and returns what it reported; a paused arm is a
    thread waiting inside ``report``, so resuming it on the same worker goes on
    with the model in memory.

    A step may let the function run ahead (``ahead``): it trains that many more
    epochs without waiting in ``report``, while the driver decides on the epoch it
    was given; their results wait here for the next steps. The driver grants it
    only up to the next step where its policy may pause or stop the arm.
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
        self.steps = checkpoint_step(checkpoint)
        #: The newest checkpoint among the results handed to the driver.
        self.last_checkpoint: str | None = checkpoint
        # ("result", metrics, checkpoint, step, seconds) | ("error", exc) | ("end",)
        self._out: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._turn = threading.Condition()
        self._produced = 0  # results the function reported
        self._allowed = 0  # results it may report before it waits for the driver
        self._taken = 0  # results the driver asked for
        self._since = 0.0
        self._stop = False
        self._thread: threading.Thread | None = None
        #: The arm's id (what the function's ``trial id`` is under Ray Tune).
        self.arm_id = ""
        #: The metric holding the arm's own epoch count (``None``: count the reports).
        self.step_key: str | None = None

    def _main(self) -> None:
        _SESSION.arm = self
        self._since = time.perf_counter()
        try:
            self.fn(copy.deepcopy(self.config), **self.parameters)
        except _Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of step()
            self._out.put(("error", exc))
            return
        self._out.put(("end",))

    def report(self, metrics: dict[str, Any], checkpoint: Any) -> None:
        """In the arm's thread: hand over one epoch's result; wait unless it may run ahead."""
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
        seconds = time.perf_counter() - self._since  # this epoch's, reports and waits apart
        with self._turn:
            self._produced += 1
            self._out.put(("result", dict(metrics), path, self.steps, seconds))
            while not self._stop and self._produced >= self._allowed:
                self._turn.wait()
        if self._stop:
            raise _Stopped
        self._since = time.perf_counter()

    def step(self, ahead: int = 0) -> tuple[dict[str, Any], str | None, int, float] | None:
        """Run the function to its next report: ``(metrics, checkpoint, step, seconds)``.

        ``None`` at its end. ``ahead``: epochs the function may train past this one
        before it waits for the next step.
        """
        with self._turn:
            self._taken += 1
            self._allowed = max(self._allowed, self._taken + max(0, int(ahead)))
            self._turn.notify_all()
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, daemon=True)
            self._thread.start()
        item = self._out.get()
        if item[0] == "error":
            raise item[1]
        if item[0] == "end":
            return None
        _, metrics, path, step, seconds = item
        if path is not None:
            self.last_checkpoint = path
        return metrics, path, step, seconds

    def waiting(self) -> bool:
        """Whether the function has reported every epoch it may: it trains no further now."""
        with self._turn:
            return self._thread is not None and self._produced >= self._allowed

    def cleanup(self) -> None:
        """End the thread (it leaves ``report`` with an exception it does not see)."""
        with self._turn:
            self._stop = True
            self._turn.notify_all()


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
        self.save_at: set[int] = set()
        self.arms: dict[str, list[Any]] = {}  # arm -> [object, step]

    def reset(
        self,
        cls: Any,
        root: str,
        parameters: dict[str, Any] | None = None,
        step_key: str | None = None,
        save_at: list[int] | None = None,
    ) -> bool:
        """Drop every arm of an earlier search; take this search's class, folder, parameters.

        ``parameters`` maps names to object references: fetched once here, passed
        to every arm's ``setup`` as keyword arguments. ``save_at``: steps after
        which an arm class writes its checkpoint (a population-based policy's
        donors need one at each of its decision steps).
        """
        import ray

        for arm_id in list(self.arms):
            self.drop(arm_id)
        import sys

        kept = getattr(sys.modules.get("bandit_tune.arm.train"), "_PAUSED_MODELS", None)
        if kept is not None:
            kept.clear()  # models of an earlier search's arms (arm ids repeat across searches)
        self.cls, self.root, self.step_key = cls, root, step_key
        self.save_at = set(save_at or ())
        self.parameters = {k: ray.get(v) for k, v in (parameters or {}).items()}
        return True

    def step(
        self,
        arm_id: str,
        config: dict[str, Any] | None = None,
        checkpoint: str | None = None,
        ahead: int = 0,
    ) -> dict[str, Any]:
        """Train the arm one epoch; with ``config`` build it first (from ``checkpoint``).

        ``ahead``: epochs a function arm may train past this one meanwhile (see
        :class:`FunctionArm`); an arm class trains one epoch per call.
        """
        if config is not None:
            self.drop(arm_id)
            assert self.cls is not None
            folder = os.path.join(self.root, arm_id)
            if isinstance(self.cls, type):
                obj = _make(self.cls, config, folder, self.parameters)
                if checkpoint:
                    obj.load_checkpoint(checkpoint)
                    if hasattr(obj, "_iteration"):
                        obj._iteration = checkpoint_step(checkpoint)
            else:
                obj = FunctionArm(self.cls, config, checkpoint, self.parameters, folder)
                obj.arm_id, obj.step_key = arm_id, self.step_key
            self.arms[arm_id] = [obj, checkpoint_step(checkpoint)]
        entry = self.arms[arm_id]
        started = time.perf_counter()
        path = None
        if isinstance(entry[0], FunctionArm):
            got = entry[0].step(ahead)
            if got is None:  # the function returned: the arm is complete
                return {"result": None, "step": entry[1], "seconds": 0.0, "done": True}
            result, path, entry[1], seconds = got
        else:
            result = entry[0].step()
            seconds = time.perf_counter() - started
            entry[1] += 1
        if not isinstance(result, dict):
            raise TypeError(
                f"{type(entry[0]).__name__}.step() must return a dict of metrics, got "
                f"{type(result).__name__}"
            )
        if hasattr(entry[0], "_iteration"):
            entry[0]._iteration = entry[1]
        if path is None and entry[1] in self.save_at and not isinstance(entry[0], FunctionArm):
            path = _persist(os.path.join(self.root, arm_id), entry[1], entry[0].save_checkpoint)
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
        folder = os.path.join(self.root, arm_id)
        written = dict(_checkpoints(folder)).get(step)
        if written is not None and step in self.save_at:
            return written  # written at this step already (or an exploit's copy since)
        return _persist(folder, step, obj.save_checkpoint)

    def drop(self, arm_id: str) -> None:
        """Forget the arm here (its checkpoint on disk stays)."""
        entry = self.arms.pop(arm_id, None)
        if entry is not None and callable(getattr(entry[0], "cleanup", None)):
            entry[0].cleanup()

    def held(self) -> list[str]:
        """The arms this worker holds in memory."""
        return list(self.arms)

    def warm(self, setup: Any = None) -> bool:
        """Prepare for the first arm before it comes: run ``setup()`` here (e.g. import Keras)."""
        if setup is not None:
            setup()
        return True

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function(*args)`` here (the tuner records its search space in a warm worker)."""
        return function(*args)


def _scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, str)) or (
        type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0
    )
