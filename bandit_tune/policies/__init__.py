"""Pure arm policies: decide which arm trains, pauses or stops. No Ray, no TensorFlow.

Every policy implements :class:`ArmPolicy`; the same object runs in
:func:`bandit_tune.simulate` and under :class:`bandit_tune.BanditScheduler` on Ray.
"""

from bandit_tune.policies._rungs import (
    bracket_epochs,
    halving_bracket,
    hyperband_brackets,
)
from bandit_tune.policies.asha import ASHA
from bandit_tune.policies.base import ArmPolicy, Decision, check_policy
from bandit_tune.policies.hyperband import Hyperband
from bandit_tune.policies.successive_halving import SuccessiveHalving

__all__ = [
    "ASHA",
    "ArmPolicy",
    "Decision",
    "Hyperband",
    "SuccessiveHalving",
    "bracket_epochs",
    "check_policy",
    "halving_bracket",
    "hyperband_brackets",
]
