"""Built-in policies by name (as the command line and ``policy="asha"`` take them)."""

from __future__ import annotations

from bandit_tune.policies.adaptive import AdaptiveASHA
from bandit_tune.policies.asha import ASHA
from bandit_tune.policies.bandits import UCB, EpsilonGreedy, ThompsonSampling
from bandit_tune.policies.base import ArmPolicy, Decision
from bandit_tune.policies.curve_model import CurveEnsemble
from bandit_tune.policies.freeze_thaw import FreezeThaw
from bandit_tune.policies.hyperband import Hyperband
from bandit_tune.policies.median import MedianStopping
from bandit_tune.policies.pasha import PASHA
from bandit_tune.policies.successive_halving import SuccessiveHalving

POLICY_NAMES = (
    "hyperband",
    "successive_halving",
    "asha",
    "asha_stopping",
    "adaptive_asha",
    "pasha",
    "curve_ensemble",
    "freeze_thaw",
    "median_stopping",
    "ucb",
    "thompson",
    "epsilon_greedy",
)


def policy_by_name(name: str, max_epochs: int, eta: float = 3) -> ArmPolicy:
    """Build a built-in policy from its name (as the command line takes it)."""
    key = name.strip().lower().replace("-", "_")
    if key == "hyperband":
        return Hyperband(max_epochs, eta)
    if key == "successive_halving":
        return SuccessiveHalving(max_epochs, eta)
    if key in ("asha", "asha_stopping"):
        return ASHA(max_epochs, eta, mode="stopping" if key.endswith("stopping") else "promotion")
    if key == "adaptive_asha":
        return AdaptiveASHA(max_epochs, eta)
    if key == "pasha":
        return PASHA(max_epochs, eta)
    if key == "curve_ensemble":
        return CurveEnsemble(max_epochs, eta)
    if key == "freeze_thaw":
        return FreezeThaw(max_epochs, eta)
    if key == "median_stopping":
        return MedianStopping(max_epochs)
    bandits = {
        "ucb": UCB,
        "thompson": ThompsonSampling,
        "epsilon_greedy": EpsilonGreedy,
    }
    if key in bandits:
        return bandits[key](max_epochs)
    raise ValueError(
        f"unknown policy {name!r}; choose one of {', '.join(POLICY_NAMES)} or pass an ArmPolicy"
    )


class TrainToEnd(ArmPolicy):
    """Every arm trains to ``max_epochs`` (keras-tuner's RandomSearch behaviour).

    The stand-in when a tuner has no policy: Keras callbacks such as
    ``EarlyStopping`` still end arms early.
    """

    multi_objective = True  # it reads no score: any number of objectives

    def on_result(self, arm_id: str, step: int, score: float) -> Decision:
        """Always continue."""
        return Decision.CONTINUE

    def decision_steps(self) -> list[int]:
        """No step decides anything: arms checkpoint only at their end."""
        return []


__all__ = ["POLICY_NAMES", "TrainToEnd", "policy_by_name"]
