"""Where an arm reports to: Ray Tune's session, or the pool's (``BanditTuner(backend="pool")``).

The arm trainables (:func:`bandit_tune.arm.train_arm`, the cross-validated one and
the Keras callback that reports each epoch) call these instead of ``ray.tune``'s
functions, so the same code runs as a Ray Tune trial and as a function arm on the
pool's long-lived workers.
"""

from __future__ import annotations

from typing import Any


def _pool_arm() -> Any:
    from bandit_tune.pool.worker import current_arm

    return current_arm()


def report(metrics: dict[str, Any], checkpoint: Any = None) -> None:
    """Report one epoch's metrics (and a ``ray.tune.Checkpoint``) to whoever runs the arm."""
    arm = _pool_arm()
    if arm is not None:
        arm.report(metrics, checkpoint)
        return
    from ray import tune

    if checkpoint is None:
        tune.report(metrics)
    else:
        tune.report(metrics, checkpoint=checkpoint)


def get_checkpoint() -> Any:
    """The ``ray.tune.Checkpoint`` the arm starts from, or ``None``."""
    from ray import tune

    arm = _pool_arm()
    if arm is not None:
        return None if arm.start_checkpoint is None else tune.Checkpoint(arm.start_checkpoint)
    return tune.get_checkpoint()


def arm_key() -> str:
    """A key for the arm in this worker: its trial id, or its arm id on the pool."""
    arm = _pool_arm()
    if arm is not None:
        return str(arm.arm_id)
    from ray import tune

    return str(tune.get_context().get_trial_id() or "")
