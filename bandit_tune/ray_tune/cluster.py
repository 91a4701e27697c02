"""Starting or joining Ray (core only, no Ray Tune), kept on 127.0.0.1 when the library starts it.

The pool, the Ray Tune adapter and the arms' workers share it: Ray's start, the
workers' environment, and objects unpickled in a worker only when asked.
"""

from __future__ import annotations

import logging
import os
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
    # it starts; loopback keeps its ports off the network.
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
