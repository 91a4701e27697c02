"""Pure arm policies: decide which arm trains, pauses or stops. No Ray, no TensorFlow.

Every policy implements :class:`ArmPolicy`; the same object runs in
:func:`bandit_tune.replay.simulate` and under :class:`bandit_tune.BanditScheduler` on Ray.
"""

from bandit_tune.policies._rungs import (
    bracket_epochs,
    halving_bracket,
    hyperband_brackets,
)
from bandit_tune.policies.adaptive import AdaptiveASHA, kendall_tau
from bandit_tune.policies.asha import ASHA
from bandit_tune.policies.bandits import UCB, CurveBandit, EpsilonGreedy, ThompsonSampling
from bandit_tune.policies.base import (
    ArmPolicy,
    ArmState,
    Decision,
    Exploit,
    PolicyError,
    call_policy,
    check_policy,
    choose,
    decide,
)
from bandit_tune.policies.curve_model import CurveEnsemble, CurveFit
from bandit_tune.policies.freeze_thaw import FreezeThaw
from bandit_tune.policies.hyperband import Hyperband
from bandit_tune.policies.median import MedianStopping
from bandit_tune.policies.pareto import (
    MOASHA,
    MOHyperband,
    MOSuccessiveHalving,
    hypervolume,
    non_dominated_fronts,
    pareto_order,
)
from bandit_tune.policies.pasha import PASHA
from bandit_tune.policies.pbt import PB2, PopulationBasedTraining
from bandit_tune.policies.successive_halving import SuccessiveHalving
from bandit_tune.policies.topk import TopKAfterWarmup

__all__ = [
    "ASHA",
    "UCB",
    "AdaptiveASHA",
    "ArmPolicy",
    "ArmState",
    "CurveBandit",
    "CurveEnsemble",
    "CurveFit",
    "FreezeThaw",
    "Decision",
    "Exploit",
    "PolicyError",
    "call_policy",
    "choose",
    "decide",
    "EpsilonGreedy",
    "Hyperband",
    "MedianStopping",
    "MOASHA",
    "MOHyperband",
    "MOSuccessiveHalving",
    "PASHA",
    "PB2",
    "PopulationBasedTraining",
    "SuccessiveHalving",
    "ThompsonSampling",
    "TopKAfterWarmup",
    "bracket_epochs",
    "check_policy",
    "halving_bracket",
    "hyperband_brackets",
    "hypervolume",
    "non_dominated_fronts",
    "pareto_order",
    "kendall_tau",
]
