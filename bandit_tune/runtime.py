"""Starting or joining Ray, kept on 127.0.0.1 when the library starts it."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

WORKER_ENV = {
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONWARNINGS": "ignore",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # Ray Tune sets this in each trial actor's runtime environment (for PyTorch
    # Lightning); see tune_actors_on_idle_workers
    "PL_DISABLE_FORK": "1",
}


#: Packages every arm imports: without their compiled bytecode each new Ray worker
#: compiles them from source first (~9 s of CPU per worker on a 2-core laptop).
_ARM_PACKAGES = ("tensorflow", "keras", "ray")
_warned_uncompiled: list[bool] = []


def uncompiled_packages() -> list[str]:
    """The arm packages whose bytecode is neither installed nor ever written here.

    ``pip`` compiles installed packages; ``uv pip install`` does not unless given
    ``--compile-bytecode``, and with ``PYTHONDONTWRITEBYTECODE=1`` (common in
    containers) or a read-only site-packages Python never writes it: then every
    Ray worker compiles TensorFlow, Keras and Ray again before its first epoch.
    """
    import importlib.util
    import sys

    missing = []
    for name in _ARM_PACKAGES:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        origin = getattr(spec, "origin", None) if spec is not None else None
        if not origin or not origin.endswith(".py"):
            continue
        if os.path.exists(importlib.util.cache_from_source(origin)):
            continue
        writable = os.access(os.path.dirname(origin), os.W_OK)
        if sys.dont_write_bytecode or (sys.pycache_prefix is None and not writable):
            missing.append(name)
    return missing


def warn_if_uncompiled() -> None:
    """Warn once per process when arm packages will be compiled again in every worker."""
    if _warned_uncompiled:
        return
    _warned_uncompiled.append(True)
    missing = uncompiled_packages()
    if missing:
        import importlib.util
        import sys
        import warnings

        spec = importlib.util.find_spec(missing[0])
        site = os.path.dirname(os.path.dirname(spec.origin or "")) if spec else "site-packages"
        warnings.warn(
            f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no compiled "
            f"bytecode here and Python will not write it (PYTHONDONTWRITEBYTECODE or a "
            f"read-only folder): every Ray worker compiles them from source before its "
            f"first epoch (~9 s of CPU each on a 2-core laptop). Compile once with "
            f"`{sys.executable} -m compileall -q {site}`, or install with pip or "
            f"`uv pip install --compile-bytecode`",
            stacklevel=3,
        )


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> dict[str, Any]:
    """Start a quiet local Ray bound to 127.0.0.1, or join ``address``; return its resources.

    A Ray already initialised in this process is reused as it is.
    """
    # Ray binds a local instance to the interface address unless this is set before
    # it starts (../shared/MEASURED.md); loopback keeps its ports off the network.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import ray

    if not ray.is_initialized():
        warn_if_uncompiled()
        common = dict(log_to_driver=False, logging_level=logging.WARNING)
        if address:
            try:
                ray.init(address=address, runtime_env={"env_vars": WORKER_ENV}, **common)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConnectionError(
                    f"could not join the Ray cluster at address={address!r}: {exc}. Give "
                    "'auto' (a cluster started on this machine with `ray start`), "
                    "'host:port' of the head's GCS, or 'ray://host:10001', or leave address "
                    "unset to start a local Ray"
                ) from exc
        else:
            # Workers of a local Ray inherit this environment.
            for key, value in WORKER_ENV.items():
                os.environ.setdefault(key, value)
            if os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0":
                # Ray read the variable when it was first imported, maybe before it was
                # set here (``from ray import tune`` in a user's script): without this the
                # raylet, GCS and workers listen on every interface.
                from ray._private import ray_constants

                ray_constants.ENABLE_RAY_CLUSTER = False
            ray.init(
                address="local",
                num_cpus=num_cpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                **common,
            )
    for name in ("ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return ray.cluster_resources()


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


#: Packages Keras imports only for optional integrations (scikit-learn wrappers,
#: plotting, DataFrame inputs): together ~3 s of its ~8 s import on a 2-core laptop.
#: SciPy comes in through TensorFlow's legacy ``tf.keras`` v1 engine only (~0.4 s);
#: Keras 3 recognises SciPy sparse inputs by their module name, with or without it.
_OPTIONAL_FOR_KERAS = ("sklearn", "matplotlib", "pandas", "scipy")


def import_keras_lean() -> None:
    """Import Keras in a helper or worker process without its optional integrations.

    Keras imports scikit-learn, matplotlib and pandas when they are installed, for
    its scikit-learn wrappers, image galleries and DataFrame inputs (TensorFlow's
    legacy ``tf.keras`` v1 engine imports SciPy); an arm needs
    none of them unless its data or code brings them (then they are imported
    already and are left alone). They are hidden during the import only: the
    process can import them normally afterwards. Never called in the user's process.
    """
    import sys

    if "keras" in sys.modules:
        return
    hidden = [name for name in _OPTIONAL_FOR_KERAS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import keras  # noqa: F401
    except ImportError:
        pass  # no Keras here: the caller's own import reports it
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


class Packed:
    """An object pickled in the driver, unpickled in a worker only when asked.

    Ray unpickles a trainable's parameters before the trainable runs; a hypermodel
    or Keras callbacks would import Keras there in full. Packed, they wait for
    :meth:`unpack`, called after :func:`import_keras_lean`.
    """

    def __init__(self, value: Any) -> None:
        from ray import cloudpickle

        self.payload = cloudpickle.dumps(value)

    def unpack(self) -> Any:
        """The object, unpickled in this process."""
        import pickle

        return pickle.loads(self.payload)


def unpack(value: Any) -> Any:
    """``value.unpack()`` for a :class:`Packed` value, else ``value`` itself."""
    return value.unpack() if isinstance(value, Packed) else value


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
