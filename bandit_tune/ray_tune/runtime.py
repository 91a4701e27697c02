"""Ray Tune run-time settings around ``tuner.fit()``: idle workers, Ctrl-C, stopping actors."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def tune_actors_on_idle_workers() -> Iterator[None]:
    """Let Ray Tune's trial actors take the workers Ray starts with, while in the block.

    Ray starts one worker per CPU with Ray itself, but gives an actor only a worker
    of the same runtime environment, and Tune puts ``PL_DISABLE_FORK=1`` into the
    runtime environment of every trial actor: the first arms waited for workers of
    their own (~2 s to start on a 2-core laptop) while those Ray started stayed idle.
    Here that variable is left out of Tune's actor environment; a local Ray's
    workers have it from :data:`WORKER_ENV`. Tune's table is put back afterwards.
    """
    try:
        from ray.tune.execution import class_cache
    except ImportError:  # another Ray Tune layout: nothing to change
        yield
        return
    defaults = getattr(class_cache, "DEFAULT_ENV_VARS", None)
    if not isinstance(defaults, dict):
        yield
        return
    kept = dict(defaults)
    defaults.clear()
    try:
        yield
    finally:
        defaults.clear()
        defaults.update(kept)


@contextlib.contextmanager
def interruptible(scheduler: Any) -> Any:
    """Make Ctrl-C (SIGINT) during ``tuner.fit()`` stop the search at once, resumably.

    Ray Tune's own handler ends the run gracefully: it stops every trial, so the
    interrupted arms would look finished and never resume. Instead, the search's
    state is snapshot and frozen at the interrupt (between two scheduler hooks,
    never in the middle of one) and ``KeyboardInterrupt`` propagates, as keras-tuner
    and Ray users expect. Only in the main thread (where signals arrive).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if scheduler.busy:
            scheduler.interrupt_requested = True  # raised as the hook returns
            return
        scheduler.runner.interrupt()
        raise KeyboardInterrupt

    key = "TUNE_DISABLE_SIGINT_HANDLER"
    before_env = os.environ.get(key)
    os.environ[key] = "1"
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
        if before_env is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before_env


def stop_trial_actors(trials: Any) -> None:
    """Kill the Ray actors of ``trials`` (after an interrupt: nothing trains on)."""
    import ray

    for trial in trials:
        actor = getattr(getattr(trial, "temporary_state", None), "ray_actor", None)
        if actor is None:
            continue
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 — already gone
            pass
