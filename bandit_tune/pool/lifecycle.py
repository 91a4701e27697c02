"""The pool itself: the worker actors of this process, kept across its searches.

Idle workers are kept for the next search of the process (it then starts at once),
but only for :data:`IDLE_TIMEOUT_S` seconds (``run_arms(idle_timeout=)``): after that
they end and give their CPUs and GPUs back to whatever else runs on Ray (a plain
``ray.tune.Tuner``, another user's job). A Ray Tune run the library starts ends them
at once.
"""

from __future__ import annotations

import threading
from typing import Any

from bandit_tune.driver.idle import on_release
from bandit_tune.pool.worker import ArmWorker

_POOL: dict[str, Any] = {"job": None, "workers": {}, "busy": False, "timer": None}
_LOCK = threading.Lock()

#: Seconds idle workers wait for the next search of the process before they end.
IDLE_TIMEOUT_S = 60.0


def _cancel_idle_timer() -> None:
    timer, _POOL["timer"] = _POOL["timer"], None
    if timer is not None:
        timer.cancel()


def taken() -> None:
    """A search takes the pool's workers: they are not idle (no idle timeout runs)."""
    with _LOCK:
        _cancel_idle_timer()
        _POOL["busy"] = True


def keep_idle(seconds: float | None = IDLE_TIMEOUT_S) -> None:
    """The search ended: its workers wait ``seconds`` for the next one, then end.

    ``None`` keeps them until :func:`shutdown_pool` or Ray's end.
    """
    with _LOCK:
        _cancel_idle_timer()
        _POOL["busy"] = False
        if seconds is None or not _POOL["workers"]:
            return
        timer = threading.Timer(float(seconds), _end_idle)
        timer.daemon = True
        _POOL["timer"] = timer
        timer.start()


def _end_idle() -> None:
    with _LOCK:
        if _POOL["busy"] or _POOL["timer"] is not threading.current_thread():
            return  # a search took the workers meanwhile
        shelves, _POOL["workers"], _POOL["timer"] = _POOL["workers"], {}, None
    for shelf in shelves.values():
        _kill(shelf)


def _kill(workers: list[Any]) -> None:
    import ray

    for worker in workers:
        try:
            ray.kill(worker)
        except Exception:  # noqa: BLE001 - already gone
            pass


#: Seconds to wait for the resources the pool's new workers need, held by others.
PLACEMENT_WAIT_S = 60.0


def _wait_for_room(count: int, cpus: float, gpus: float) -> None:
    """Wait until ``count`` more workers of this shape fit; raise saying who holds them."""
    import time

    import ray

    deadline = time.monotonic() + PLACEMENT_WAIT_S
    while True:
        free = ray.available_resources()
        if free.get("CPU", 0.0) + 1e-9 >= count * cpus and (
            not gpus or free.get("GPU", 0.0) + 1e-9 >= count * gpus
        ):
            return
        if time.monotonic() > deadline:
            total = ray.cluster_resources()
            raise RuntimeError(
                f"the pool needs {count} more worker(s) of {cpus:g} CPU"
                + (f" and {gpus:g} GPU" if gpus else "")
                + f", but only {free.get('CPU', 0.0):g} of {total.get('CPU', 0.0):g} CPUs"
                + (f" and {free.get('GPU', 0.0):g} GPUs" if gpus else "")
                + f" were free for {PLACEMENT_WAIT_S:g} s: other actors or tasks of this Ray "
                "hold them. End them (or call bandit_tune.pool.shutdown_pool() if an earlier "
                "pool holds them), or ask for fewer with max_concurrent="
            )
        time.sleep(0.2)


def _workers(count: int, cpus: float, gpus: float) -> list[Any]:
    """``count`` live workers of this resource shape, reusing those of earlier searches.

    Workers of another shape, and this shape's beyond ``count``, are ended first:
    idle, they would hold the CPUs and GPUs the new ones need.
    """
    import ray

    taken()
    job = ray.get_runtime_context().get_job_id()
    if _POOL["job"] != job:  # Ray was restarted: the old actors are gone
        _POOL["job"], _POOL["workers"] = job, {}
    for shape in [k for k in _POOL["workers"] if k != (cpus, gpus)]:
        _kill(_POOL["workers"].pop(shape))
    shelf = _POOL["workers"].setdefault((cpus, gpus), [])
    if len(shelf) > count:
        _kill(shelf[count:])
        del shelf[count:]
    if len(shelf) < count:
        _wait_for_room(count - len(shelf), cpus, gpus)
    remote = ray.remote(num_cpus=cpus, num_gpus=gpus, max_restarts=0)(ArmWorker)
    while len(shelf) < count:
        shelf.append(remote.remote())
    return shelf


def start_workers(count: int, cpus: float, gpus: float, setup: Any = None) -> list[Any]:
    """Start (or reuse) ``count`` workers now and let them prepare for arms (``setup()``).

    Called by a tuner as soon as Ray is up, so the workers' imports overlap what
    the driver does before the first arm (recording the search space).
    """
    workers = _workers(count, cpus, gpus)
    for worker in workers:
        worker.warm.remote(setup)
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
    if shelf:
        taken()  # the search that asks uses it: it must not end meanwhile
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


def discard(worker: Any, cpus: float, gpus: float) -> None:
    """End one worker and take it off the pool (a replacement Ray never placed)."""
    shelf = _POOL["workers"].get((cpus, gpus), [])
    if any(w is worker for w in shelf):
        shelf[:] = [w for w in shelf if w is not worker]
    _kill([worker])


def shutdown_pool() -> None:
    """End the pool's workers now, freeing their CPUs and GPUs.

    They otherwise live until Ray shuts down, for the next search of the process;
    a search through Ray Tune (``backend="tune"``) calls this first.
    """
    import sys

    with _LOCK:
        _cancel_idle_timer()
        shelves, _POOL["workers"] = _POOL["workers"], {}
    if "ray" not in sys.modules:
        return
    for shelf in shelves.values():
        _kill(shelf)


on_release(shutdown_pool)  # a Ray Tune run started later takes their CPUs
