"""Record a hypermodel's search space in a helper process while Ray starts.

Recording calls ``build_model(hp)``, so it needs Keras: ~8 s of import on a
2-core laptop, on the path to the first epoch. In a thread of the user's process
it competed with Ray's start for the interpreter; in this helper it runs beside
it, imports Keras without its optional integrations
(:func:`bandit_tune.arm.setup.import_keras_lean`) and leaves the user's process
free of TensorFlow until the user asks for a model. Whatever goes wrong here
(an unpicklable hypermodel, an error in ``build_model``) makes the tuner record
in its own process instead, where the error is raised as it is.

    python -m bandit_tune.arm.recording PAYLOAD RESULT
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any


def _record_and_check(
    hypermodel: Any, sample: Any, mutable: Any = (), clear: bool = True
) -> tuple[Any, str | None]:
    """The space and the fit check's problem; ``clear=False`` keeps Keras' session.

    A pool worker passes ``clear=False``: ``keras.backend.clear_session`` runs a full
    garbage collection (~0.2 s in a worker's heap, twice), and the worker's arms
    clear the session themselves now and then.
    """
    from bandit_tune.arm.fit_check import check_fit
    from bandit_tune.arm.hypermodel import check_mutable, record_hypermodel

    space = record_hypermodel(hypermodel, sample, clear=clear)
    problem = check_mutable(hypermodel, space, mutable) if mutable else None
    return space, problem or check_fit(hypermodel, space, sample, clear=clear)


def _record_in_worker(hypermodel: Any, sample: Any, mutable: Any = ()) -> tuple[Any, str | None]:
    return _record_and_check(hypermodel, sample, mutable, clear=False)


class SpaceRecording:
    """Record ``hypermodel``'s space in a helper process; :meth:`result` returns it.

    When Keras is imported in this process already, the space is recorded in a
    thread here instead, begun by :meth:`start_here` (without it, :meth:`result`
    records it then).
    With ``sample`` (:func:`bandit_tune.arm.fit_check.sample` of the data) the helper
    also tries one model on it; :meth:`result` returns ``(space, problem)``.
    ``mutable``: hyperparameters that must not change the model's variables
    (population-based training's), checked by :func:`bandit_tune.arm.hypermodel.check_mutable`.
    """

    def __init__(self, hypermodel: Any, sample: Any = None, mutable: Any = ()) -> None:
        self.hypermodel = hypermodel
        self.sample = sample
        self.mutable = list(mutable)
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: Any = None
        self._directory = tempfile.mkdtemp(prefix="bandit_tune_space_")
        self._result = os.path.join(self._directory, "space.pkl")
        # Keras is loaded here already: recording costs a fraction of a second, in a
        # thread of this process that start_here begins
        self._here = "keras" in sys.modules
        if self._here:
            return
        try:
            from ray import cloudpickle

            payload = pickle.dumps(
                {
                    "path": list(sys.path),
                    "hypermodel": cloudpickle.dumps(hypermodel),
                    "sample": sample,
                    "mutable": self.mutable,
                }
            )
        except Exception:  # noqa: BLE001 — recorded in this process instead
            return
        source = os.path.join(self._directory, "payload.pkl")
        with open(source, "wb") as f:
            f.write(payload)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bandit_tune.arm.recording", source, self._result],
                stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError:
            self._process = None

    def start_here(self) -> None:
        """Begin recording in a thread of this process, when Keras is imported here.

        Call it once nothing else will set environment variables until
        :meth:`result` (after Ray's start: ``ray.init`` adds some): the thread's
        TensorFlow calls ``getenv``, and glibc's ``setenv`` in another thread
        meanwhile can crash the process (a segfault in ``getenv``, seen in a
        driver). A helper process, when there is one, is running already.
        """
        if self._here and self._thread is None:
            self._thread = _Background(
                _record_and_check, self.hypermodel, self.sample, self.mutable
            )

    def result(self) -> tuple[Any, str | None]:
        """The recorded :class:`~bandit_tune.SearchSpace` and what does not fit in the data.

        Recorded in this process if the helper failed (an error in ``build_model``
        is then raised as it is).
        """
        try:
            if self._thread is not None:
                return self._thread.result()  # type: ignore[no-any-return]
            if self._process is not None and self._process.wait() == 0:
                with open(self._result, "rb") as f:
                    return pickle.load(f)  # type: ignore[no-any-return]
            return _record_and_check(self.hypermodel, self.sample, self.mutable)
        finally:
            import shutil

            shutil.rmtree(self._directory, ignore_errors=True)

    def cancel(self) -> None:
        """Stop the helper (the search failed before it needed the space)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


class WorkerRecording:
    """Record the space in a pool worker that has Keras imported already (a fraction of a second).

    The same answer as :class:`SpaceRecording`; if the worker fails, the space is
    recorded in this process, where an error in ``build_model`` is raised as it is.
    """

    def __init__(self, worker: Any, hypermodel: Any, sample: Any = None, mutable: Any = ()) -> None:
        self.hypermodel, self.sample, self.mutable = hypermodel, sample, list(mutable)
        self._ref = worker.call.remote(_record_in_worker, hypermodel, sample, self.mutable)

    def start_here(self) -> None:
        """Nothing to begin: the worker records it (see :meth:`SpaceRecording.start_here`)."""

    def result(self) -> tuple[Any, str | None]:
        """See :meth:`SpaceRecording.result`."""
        import ray

        try:
            return ray.get(self._ref)  # type: ignore[no-any-return]
        except Exception:  # noqa: BLE001 — recorded here, where the error is raised as it is
            return _record_and_check(self.hypermodel, self.sample, self.mutable)

    def cancel(self) -> None:
        """Nothing to stop: the worker goes on serving arms."""


class _Background:
    """Run ``function(*args)`` in a thread; :meth:`result` waits and returns or re-raises."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        import threading

        self._value: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = function(*args)
            except BaseException as exc:  # noqa: BLE001 — handed to the caller
                self._error = exc

        self._thread = threading.Thread(target=run, name="bandit_tune-background", daemon=True)
        self._thread.start()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def main(argv: list[str]) -> int:
    """Helper process: read the payload, record the space, write it; 0 on success."""
    source, target = argv
    with open(source, "rb") as f:
        payload = pickle.load(f)
    for entry in reversed(payload["path"]):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    from bandit_tune.arm.setup import import_keras_lean

    import_keras_lean()  # before the hypermodel: unpickling it may import Keras
    recorded = _record_and_check(
        pickle.loads(payload["hypermodel"]), payload.get("sample"), payload.get("mutable") or ()
    )
    partial = target + ".partial"
    with open(partial, "wb") as f:
        pickle.dump(recorded, f)
    os.replace(partial, target)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception:  # noqa: BLE001 — the tuner records in its own process and reports
        sys.exit(1)
