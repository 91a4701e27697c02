"""Where an arm reports to: Ray Tune's session, or the pool's (``BanditTuner(backend="pool")``).

The arm trainables (:func:`bandit_tune.arm.train.train_arm`, the cross-validated one and
the Keras callback that reports each epoch) call these instead of ``ray.tune``'s
functions, so the same code runs as a Ray Tune trial and as a function arm on the
pool's long-lived workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def _pool_arm() -> Any:
    from bandit_tune.pool.worker import current_arm

    return current_arm()


def report(metrics: dict[str, Any], checkpoint: str | None = None) -> None:
    """Report one epoch's metrics (and a checkpoint folder) to whoever runs the arm.

    ``checkpoint`` is a local folder: Ray Tune copies it into its storage, the pool
    into the project's folder, before this returns.
    """
    arm = _pool_arm()
    if arm is not None:
        arm.report(metrics, checkpoint)
        return
    from ray import tune

    if checkpoint is None:
        tune.report(metrics)
    else:
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(checkpoint))


@contextlib.contextmanager
def checkpoint_directory(resume_from: str | None = None) -> Iterator[str | None]:
    """The local folder of the checkpoint the arm starts from, or ``None``.

    The runner's own (a paused or exploited arm) comes first; else ``resume_from``,
    the folder an interrupted search's snapshot names. Ray Tune's checkpoints in
    remote storage are fetched for the block. The pool's arms never import Ray Tune.
    """
    arm = _pool_arm()
    if arm is not None:
        yield arm.start_checkpoint or resume_from
        return
    from ray import tune

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        if resume_from is None:
            yield None
        else:
            with local_folder(resume_from) as directory:  # maybe in remote storage
                yield directory
        return
    with checkpoint.as_directory() as directory:
        yield directory


@contextlib.contextmanager
def local_folder(path: str) -> Iterator[str]:
    """A checkpoint's folder on this machine: a local path as it is, a URI fetched for the block.

    Only a checkpoint in remote storage (``storage_path="s3://..."``, Ray Tune's)
    needs Ray Tune; a local one is read where it is.
    """
    if "://" not in path:
        yield path
        return
    from ray.tune import Checkpoint

    with Checkpoint(path).as_directory() as directory:
        yield directory


def dropped(exc: BaseException) -> bool:
    """Whether ``exc`` ends an arm the pool's driver let go (not an error of the arm's)."""
    import sys

    worker = sys.modules.get("bandit_tune.pool.worker")
    return worker is not None and isinstance(exc, worker._Stopped)


def arm_key() -> str:
    """A key for the arm in this worker: its trial id, or its arm id on the pool."""
    arm = _pool_arm()
    if arm is not None:
        return str(arm.arm_id)
    from ray import tune

    return str(tune.get_context().get_trial_id() or "")
