"""The driver layer: the arm table, the runner that owns the run loop, the snapshot.

No Ray and no TensorFlow import here: the simulator and the Ray scheduler both
drive the same :class:`Runner`, so a policy replayed on recorded curves makes the
decisions it makes on a cluster, budgets and resumes included.
"""

from bandit_tune.driver.arms import Arm, ArmTable, PausedView, plain_config
from bandit_tune.driver.runner import NEW, RESUME, WAIT, RecordedClock, Runner
from bandit_tune.policies.base import ArmState

__all__ = [
    "NEW",
    "RESUME",
    "WAIT",
    "Arm",
    "ArmState",
    "ArmTable",
    "PausedView",
    "RecordedClock",
    "Runner",
    "plain_config",
]
