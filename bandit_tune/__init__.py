"""bandit_tune: tune Keras models by treating each configuration as a slot-machine arm.

Light names (policies, the search space, the simulator) import at once; the Ray
and Keras parts load on first use, so ``import bandit_tune`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import TYPE_CHECKING, Any

from bandit_tune.objective import Objective
from bandit_tune.policies import PB2, ArmPolicy, Decision, Exploit, PopulationBasedTraining
from bandit_tune.replay.compare import Comparison, compare
from bandit_tune.replay.curves import Curves, as_curves, load_curves
from bandit_tune.replay.simulate import PolicyError, SimulationResult, simulate
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
    "BanditScheduler": "bandit_tune.ray_tune.scheduler",
    "HyperModel": "bandit_tune.arm.hypermodel",
    "BanditTuner": "bandit_tune.tuner.search",
    "Hyperband": "bandit_tune.tuner.tuners",
    "SuccessiveHalving": "bandit_tune.tuner.tuners",
    "ASHA": "bandit_tune.tuner.tuners",
    "RandomSearch": "bandit_tune.tuner.tuners",
    "BayesianOptimization": "bandit_tune.tuner.tuners",
    "GridSearch": "bandit_tune.tuner.tuners",
    "run_arms": "bandit_tune.pool",
    "PoolResult": "bandit_tune.pool",
}

if TYPE_CHECKING:  # pragma: no cover
    from bandit_tune.arm.hypermodel import HyperModel
    from bandit_tune.pool import PoolResult, run_arms
    from bandit_tune.ray_tune.scheduler import BanditScheduler
    from bandit_tune.tuner.search import BanditTuner
    from bandit_tune.tuner.tuners import (
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


#: Where each module of the flat layout (before the folders by import rule) now is:
#: ``import bandit_tune.proposers`` and the like keep working, loaded on first use.
_MOVED = {
    "budget": "driver.budget",
    "project": "driver.project",
    "lineage": "driver.lineage",
    "simulate": "replay.simulate",
    "curves": "replay.curves",
    "compare": "replay.compare",
    "proposers": "replay.proposers",
    "scheduler": "ray_tune.scheduler",
    "searchers": "ray_tune.searchers",
    "runtime": "ray_tune.cluster",
    "cv": "arm.cv",
    "callbacks": "arm.callbacks",
    "checks": "arm.checks",
    "fit_check": "arm.fit_check",
    "hypermodel": "arm.hypermodel",
    "inputs": "arm.inputs",
    "model_reuse": "arm.model_reuse",
    "model_state": "arm.model_state",
    "keras": "arm.checkpoints",
    "session": "arm.report",
    "search": "tuner.search",
    "tuners": "tuner.tuners",
    "oracle": "tuner.oracle",
    "progress": "tuner.progress",
    "results": "tuner.results",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``bandit_tune.<old name>`` as the module it moved to (the same module object)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        prefix, _, name = fullname.partition(".")
        if prefix != "bandit_tune" or name not in _MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> Any:
        module = importlib.import_module(f"bandit_tune.{_MOVED[spec.name.partition('.')[2]]}")
        spec.loader_state = module.__spec__  # importlib sets the old name's spec on it next
        return module

    def exec_module(self, module: Any) -> None:
        """The module ran already under its own name: give it back its own spec."""
        module.__spec__ = module.__spec__.loader_state


sys.meta_path.append(_MovedModules())
# the replay modules are loaded already; registered directly, so that importing one
# by its old name never rebinds the function of the same name on this package
for _old in ("simulate", "compare", "curves"):
    sys.modules[f"bandit_tune.{_old}"] = sys.modules[f"bandit_tune.{_MOVED[_old]}"]


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
