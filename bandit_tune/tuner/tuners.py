"""keras-tuner's tuner classes, each a :class:`~bandit_tune.tuner.search.BanditTuner` with a policy.

``Hyperband``, ``SuccessiveHalving`` and ``ASHA`` run the bandit policy of the
same name; ``RandomSearch``, ``GridSearch`` and ``BayesianOptimization`` choose
arms as keras-tuner does and take any policy to stop weak ones early.
"""

from __future__ import annotations

from typing import Any

from bandit_tune import policies
from bandit_tune.arm.hypermodel import record_hypermodel
from bandit_tune.policies.base import ArmPolicy
from bandit_tune.space import SearchSpace
from bandit_tune.tuner.search import BanditTuner


class Hyperband(BanditTuner):
    """keras-tuner's ``Hyperband`` constructor, run as Li et al.'s Hyperband on Ray Tune.

    This is the tuner (keras-tuner's name, it trains a hypermodel); the arm policy it
    runs is :class:`bandit_tune.policies.Hyperband`, which any tuner or a plain Ray
    Tune run can take as ``policy=``.

    ``hyperband_iterations`` passes over all brackets (default 1). Arms train at
    most ``max_epochs``; promoted arms resume from their checkpoint, so the
    epochs trained in all equal ``policy.budget * hyperband_iterations``.

    Example::

        tuner = bandit_tune.Hyperband(build_model, objective="val_accuracy",
                                      max_epochs=27, factor=3, directory="d", project_name="p")
        tuner.search(x, y, validation_split=0.2)
    """

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = "val_loss",
        max_epochs: int = 100,
        factor: float = 3,
        hyperband_iterations: int = 1,
        seed: int | None = None,
        min_epochs: int = 1,
        **kwargs: Any,
    ) -> None:
        if not isinstance(hyperband_iterations, int) or hyperband_iterations < 1:
            raise ValueError(
                f"hyperband_iterations must be an integer >= 1, got {hyperband_iterations!r}"
            )
        policy = (
            policies.MOHyperband(max_epochs, factor, min_epochs)
            if _several(objective)
            else policies.Hyperband(max_epochs, factor, min_epochs)
        )
        if len(policy.plan()) == 1:
            import warnings

            warnings.warn(
                f"Hyperband(max_epochs={max_epochs}, factor={factor}) has a single bracket "
                f"with no rung below max_epochs: every arm trains {max_epochs} epoch(s) and none "
                f"is stopped early. Give max_epochs >= factor * min_epochs "
                f"(e.g. {int(factor) ** 2 * min_epochs}), or use RandomSearch",
                UserWarning,
                stacklevel=2,
            )
        self.hyperband_iterations = hyperband_iterations  # read by BanditTuner's budget plan
        if kwargs.get("budget") is None and kwargs.get("max_total_epochs") is None:
            # without a budget, one pass per iteration; with one, BanditTuner plans brackets
            kwargs.setdefault("max_trials", policy.n_arms * hyperband_iterations)
        super().__init__(
            hypermodel,
            policy=policy,
            objective=objective,
            max_epochs=max_epochs,
            seed=seed,
            **kwargs,
        )
        self.factor = factor


class SuccessiveHalving(BanditTuner):
    """Synchronous successive halving (one bracket of ``max_trials`` arms) on Ray Tune.

    This is the tuner (it trains a hypermodel); the arm policy it runs is
    :class:`bandit_tune.policies.SuccessiveHalving`.
    """

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = "val_loss",
        max_epochs: int = 27,
        factor: float = 3,
        max_trials: int | None = None,
        min_epochs: int = 1,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        policy = (
            policies.MOSuccessiveHalving(max_epochs, factor, min_epochs, n_arms=max_trials)
            if _several(objective)
            else policies.SuccessiveHalving(max_epochs, factor, min_epochs, n_arms=max_trials)
        )
        super().__init__(
            hypermodel,
            policy=policy,
            objective=objective,
            max_epochs=max_epochs,
            max_trials=max_trials or policy.n_arms,
            seed=seed,
            **kwargs,
        )
        self.factor = factor


class ASHA(BanditTuner):
    """Asynchronous successive halving (promotion variant) on Ray Tune.

    This is the tuner (it trains a hypermodel); the arm policy it runs is
    :class:`bandit_tune.policies.ASHA`.
    """

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = "val_loss",
        max_epochs: int = 27,
        factor: float = 3,
        max_trials: int | None = None,
        min_epochs: int = 1,
        mode: str = "promotion",
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if _several(objective):
            if mode != "promotion":
                raise ValueError(
                    "a multi-objective ASHA promotes by Pareto rank (mode='promotion'); "
                    f"mode={mode!r} has no multi-objective form"
                )
            policy: policies.ArmPolicy = policies.MOASHA(max_epochs, factor, min_epochs)
        else:
            policy = policies.ASHA(max_epochs, factor, min_epochs, mode=mode)
        if max_trials is None:
            max_trials = policies.Hyperband(max_epochs, factor, min_epochs).n_arms
        super().__init__(
            hypermodel,
            policy=policy,
            objective=objective,
            max_epochs=max_epochs,
            max_trials=max_trials,
            seed=seed,
            **kwargs,
        )
        self.factor = factor


class RandomSearch(BanditTuner):
    """keras-tuner's ``RandomSearch``: ``max_trials`` random arms, optionally with a policy.

    Without a policy every arm trains ``epochs`` (from :meth:`search`) or
    ``max_epochs``, honouring Keras callbacks such as EarlyStopping.
    """

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = "val_loss",
        max_trials: int = 10,
        seed: int | None = None,
        policy: ArmPolicy | None = None,
        max_epochs: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hypermodel,
            policy=policy,
            objective=objective,
            max_epochs=max_epochs,
            max_trials=max_trials,
            seed=seed,
            **kwargs,
        )


class GridSearch(BanditTuner):
    """Every combination of a discrete space (keras-tuner's ``GridSearch``).

    With ``policy=SuccessiveHalving(max_t, n_arms=<grid size>)`` it behaves like
    scikit-learn's ``HalvingGridSearchCV``: every combination starts at rung 0.
    ``max_trials`` caps the number of combinations tried, in grid order.
    """

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = "val_loss",
        max_trials: int | None = None,
        seed: int | None = None,
        policy: ArmPolicy | None = None,
        max_epochs: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            hypermodel,
            policy=policy,
            objective=objective,
            max_epochs=max_epochs,
            max_trials=max_trials,
            seed=seed,
            **kwargs,
        )

    def n_arms(self) -> int:
        """Grid size (capped by ``max_trials``), known once the space is recorded."""
        space = getattr(self, "space_", None) or record_hypermodel(self.hypermodel)
        size = space.grid_size()
        return min(size, self.max_trials) if self.max_trials else size

    def _configs(self, space: SearchSpace) -> list[dict[str, Any]]:
        grid = space.grid()
        return grid[: self.max_trials] if self.max_trials else grid


class BayesianOptimization(BanditTuner):
    """Sequential model-based search: Optuna's TPE proposes each new arm.

    keras-tuner's constructor names; the model is Optuna's Tree-structured Parzen
    Estimator (through Ray Tune's ``OptunaSearch``), fit on the results of the
    arms so far. The first ``num_initial_points`` arms are random. With
    ``policy=Hyperband(...)`` or ``ASHA(...)`` it is BOHB-style search. The same
    ``seed`` proposes the same first configurations.
    """

    def __init__(
        self,
        hypermodel: Any,
        objective: Any = "val_loss",
        max_trials: int = 10,
        num_initial_points: int | None = None,
        seed: int | None = None,
        policy: ArmPolicy | None = None,
        max_epochs: int = 10,
        **kwargs: Any,
    ) -> None:
        for name in ("alpha", "beta"):  # keras-tuner's Gaussian-process knobs: not used by TPE
            kwargs.pop(name, None)
        super().__init__(
            hypermodel,
            policy=policy,
            objective=objective,
            max_epochs=max_epochs,
            max_trials=max_trials,
            seed=seed,
            **kwargs,
        )
        if num_initial_points is not None and (
            not isinstance(num_initial_points, int) or num_initial_points < 1
        ):
            raise ValueError(
                f"num_initial_points must be an integer >= 1 or None, got {num_initial_points!r}"
            )
        self.num_initial_points = num_initial_points

    def _configs(self, space: SearchSpace) -> list[dict[str, Any]]:
        return []  # proposed one at a time by the model

    def make_searcher(self, space: SearchSpace) -> Any:
        """Ray Tune's ``OptunaSearch`` with a seeded TPE sampler over ``space``."""
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        startup = self.num_initial_points or max(2, min(10, self.n_arms() // 3))
        sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=startup)
        # Fixed parameters are constants, not distributions: the arm's hp supplies them.
        domains = {k: v for k, v in space.to_ray().items() if space.params[k].kind != "fixed"}
        several = len(self.objectives) > 1  # then TPE is multi-objective (Optuna's MOTPE)
        return OptunaSearch(
            space=OptunaSearch.convert_search_space(domains),
            metric=[o.name for o in self.objectives] if several else self.objective.name,
            mode=[o.direction for o in self.objectives] if several else self.objective.direction,
            sampler=sampler,
        )

    def _searcher(self, configs: list[dict[str, Any]], scheduler: Any) -> Any:
        from bandit_tune.ray_tune.searchers import GatedSearcher

        return GatedSearcher(self.make_searcher(self.space_), scheduler, self.n_arms())


__all__ = [
    "ASHA",
    "BayesianOptimization",
    "GridSearch",
    "Hyperband",
    "RandomSearch",
    "SuccessiveHalving",
]


def _several(objective: Any) -> bool:
    """Whether ``objective`` names several objectives (the tuner then uses the MO policy)."""
    return isinstance(objective, (list, tuple)) and len(objective) > 1
