"""bandit_tune: tune Keras models by treating each configuration as a slot-machine arm.

Light names (policies, the search space, the simulator) import at once; the Ray
and Keras parts load on first use, so ``import bandit_tune`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bandit_tune.compare import Comparison, compare
from bandit_tune.curves import Curves, as_curves, load_curves
from bandit_tune.policies import PB2, ArmPolicy, Decision, Exploit, PopulationBasedTraining
from bandit_tune.simulate import PolicyError, SimulationResult, simulate
from bandit_tune.space import (
    Boolean,
    Choice,
    Fixed,
    Float,
    HyperParameter,
    HyperParameters,
    Int,
    SearchSpace,
    record_space,
)

__version__ = "0.1.0"

_LAZY = {
    "BanditScheduler": "bandit_tune.scheduler",
    "HyperModel": "bandit_tune.hypermodel",
    "BanditTuner": "bandit_tune.search",
    "Hyperband": "bandit_tune.tuners",
    "SuccessiveHalving": "bandit_tune.tuners",
    "ASHA": "bandit_tune.tuners",
    "Objective": "bandit_tune.search",
    "RandomSearch": "bandit_tune.tuners",
    "BayesianOptimization": "bandit_tune.tuners",
    "GridSearch": "bandit_tune.tuners",
    "run_arms": "bandit_tune.pool",
    "PoolResult": "bandit_tune.pool",
}

if TYPE_CHECKING:  # pragma: no cover
    from bandit_tune.hypermodel import HyperModel
    from bandit_tune.pool import PoolResult, run_arms
    from bandit_tune.scheduler import BanditScheduler
    from bandit_tune.search import BanditTuner, Objective
    from bandit_tune.tuners import (
        ASHA,
        BayesianOptimization,
        GridSearch,
        Hyperband,
        RandomSearch,
        SuccessiveHalving,
    )


#: keras-tuner names bandit_tune does not have, with the way instead.
_KERAS_TUNER_ONLY = {
    "SklearnTuner": "bandit_tune tunes Keras models; for scikit-learn estimators use "
    "sklearn.model_selection.HalvingGridSearchCV",
    "Tuner": "use BanditTuner(hypermodel, policy=...) with any arm policy",
    "Oracle": "arms come from the tuner class and its policy; write an ArmPolicy "
    "(docs/writing-a-policy.md)",
    "oracles": "arms come from the tuner class and its policy; write an ArmPolicy "
    "(docs/writing-a-policy.md)",
    "applications": "write the model in build_model(hp) (HyperResNet and the other "
    "keras-tuner applications are not included)",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        if name in _KERAS_TUNER_ONLY:
            raise AttributeError(
                f"bandit_tune has no {name} (keras-tuner's): {_KERAS_TUNER_ONLY[name]}; "
                "see docs/migrating-from-keras-tuner.md"
            )
        raise AttributeError(f"module 'bandit_tune' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ASHA",
    "ArmPolicy",
    "BanditScheduler",
    "BanditTuner",
    "BayesianOptimization",
    "Boolean",
    "Choice",
    "Comparison",
    "Curves",
    "Decision",
    "Exploit",
    "Fixed",
    "Float",
    "GridSearch",
    "HyperModel",
    "HyperParameter",
    "HyperParameters",
    "Hyperband",
    "Int",
    "Objective",
    "PB2",
    "PolicyError",
    "PoolResult",
    "PopulationBasedTraining",
    "RandomSearch",
    "SearchSpace",
    "SimulationResult",
    "SuccessiveHalving",
    "as_curves",
    "compare",
    "load_curves",
    "record_space",
    "run_arms",
    "simulate",
]
