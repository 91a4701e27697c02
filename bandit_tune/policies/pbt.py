"""Population-based training (Jaderberg et al. 2017) as an arm policy.

A fixed population of arms trains side by side. Every ``perturbation_interval``
epochs an arm in the bottom quantile of the population (by its latest score)
*exploits* an arm of the top quantile — it continues from that arm's checkpoint,
weights and optimizer state — and *explores*: each mutable hyperparameter is
resampled (with ``resample_probability``) or perturbed (a number times one of
``perturbation_factors``, a list value moved to a neighbour). So the population
discovers schedules (a learning rate that falls, a dropout that rises) that no
fixed configuration has. The decision is an :class:`~bandit_tune.policies.base.Exploit`;
the runner copies the checkpoint and restarts the arm, on any backend.

Pure Python and NumPy: the same object is unit-tested here and runs a Keras
search (``RandomSearch(..., policy=PopulationBasedTraining(...))``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bandit_tune.policies.base import ArmPolicy, Decision, Exploit, check_state


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_mutation(name: str, spec: Any) -> None:
    if spec is None:
        return
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ValueError(f"hyperparam_mutations[{name!r}] is an empty list of values")
        return
    if type(spec).__name__ == "Fixed":
        raise ValueError(
            f"hyperparam_mutations[{name!r}] is a Fixed hyperparameter; it cannot change"
        )
    if hasattr(spec, "sample") or callable(spec):
        return
    raise ValueError(
        f"hyperparam_mutations[{name!r}] must be a list of values, a hyperparameter "
        f"(bandit_tune.space.Float/Int/Choice/Boolean), a function rng -> value, or None "
        f"(its range in the search space); got {spec!r}"
    )


class PopulationBasedTraining(ArmPolicy):
    """Population-based training: weak arms take a strong arm's weights and perturbed values.

    Paper: Jaderberg et al., "Population Based Training of Neural Networks",
    2017, https://arxiv.org/abs/1711.09846

    Args:
        max_t: epochs each arm trains in all (exploits included).
        hyperparam_mutations: the hyperparameters that may change during training,
            each with where new values come from: a list of values (a perturbation
            moves to a neighbour), a hyperparameter of the space
            (``bandit_tune.space.Float``/``Int``/``Choice``/``Boolean``: a number is
            multiplied by a perturbation factor and kept in its bounds), a function
            ``rng -> value`` (resampling only; a number is still perturbed by the
            factors), or ``None``: its range in the tuner's search space. Only
            hyperparameters that leave the model's variables as they are may be
            named (learning rate, weight decay, dropout rate, batch size, loss
            weights, augmentation strength); a tuner checks this before training.
        population_size: arms that train together (the search starts this many).
        perturbation_interval: epochs between two exploit/explore steps of an arm;
            arms checkpoint at its multiples. Must be smaller than ``max_t``.
        quantile_fraction: the share of the population that is "bottom" (exploits)
            and "top" (donors); at most 0.5.
        resample_probability: the chance that a mutable value is drawn anew instead
            of perturbed.
        perturbation_factors: the factors a numeric value is multiplied by (one
            chosen at random per value).
        custom_explore_fn: ``config -> config`` applied after the built-in explore
            step (as Ray Tune's PBT); its mutable values must stay in their ranges
            and it may not change any other hyperparameter.
        synch: synchronous PBT: every arm waits at each interval until the whole
            population reached it, then the bottom quantile exploits at once. The
            default (asynchronous) decides for each arm when it reaches the interval,
            among the latest scores of the others.
        seed: makes the donors and the explored values reproducible.

    Example::

        from bandit_tune import RandomSearch
        from bandit_tune.policies import PopulationBasedTraining

        pbt = PopulationBasedTraining(
            max_t=24, population_size=8, perturbation_interval=4,
            hyperparam_mutations={"learning_rate": None}, seed=0,
        )
        tuner = RandomSearch(build_model, objective="val_accuracy", max_trials=8,
                             max_epochs=24, policy=pbt)
    """

    state_version = 1

    def __init__(
        self,
        max_t: int,
        hyperparam_mutations: dict[str, Any],
        population_size: int = 8,
        perturbation_interval: int = 4,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: Sequence[float] = (1.2, 0.8),
        custom_explore_fn: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        synch: bool = False,
        seed: int | None = None,
    ) -> None:
        if not isinstance(max_t, (int, np.integer)) or isinstance(max_t, bool) or max_t < 2:
            raise ValueError(f"max_t must be an integer >= 2, got {max_t!r}")
        if (
            not isinstance(perturbation_interval, (int, np.integer))
            or isinstance(perturbation_interval, bool)
            or perturbation_interval < 1
        ):
            raise ValueError(
                f"perturbation_interval must be a positive integer, got {perturbation_interval!r}"
            )
        if perturbation_interval >= max_t:
            raise ValueError(
                f"perturbation_interval={perturbation_interval} is not shorter than "
                f"max_t={max_t}: no arm would ever exploit another; use an interval below "
                "max_t (e.g. max_t // 4)"
            )
        if not isinstance(population_size, (int, np.integer)) or population_size < 2:
            raise ValueError(f"population_size must be an integer >= 2, got {population_size!r}")
        if not 0 < quantile_fraction <= 0.5:
            raise ValueError(f"quantile_fraction must be in (0, 0.5], got {quantile_fraction!r}")
        if not 0 <= resample_probability <= 1:
            raise ValueError(
                f"resample_probability must be in [0, 1], got {resample_probability!r}"
            )
        factors = list(perturbation_factors)
        if not factors or not all(_is_number(f) and f > 0 for f in factors):
            raise ValueError(
                f"perturbation_factors must be positive numbers, got {perturbation_factors!r}"
            )
        if not isinstance(hyperparam_mutations, dict) or not hyperparam_mutations:
            raise ValueError(
                "hyperparam_mutations must name at least one hyperparameter that may change "
                "during training, e.g. {'learning_rate': None} (None: its range in the space)"
            )
        for name, spec in hyperparam_mutations.items():
            _check_mutation(name, spec)
        if custom_explore_fn is not None and not callable(custom_explore_fn):
            raise ValueError("custom_explore_fn must be a function config -> config")
        self.max_t = int(max_t)
        self.mutations: dict[str, Any] = dict(hyperparam_mutations)
        self.population_size = int(population_size)
        #: Arms the search starts (a tuner's default ``max_trials``).
        self.n_arms = self.population_size
        self.perturbation_interval = int(perturbation_interval)
        self.quantile_fraction = float(quantile_fraction)
        self.resample_probability = float(resample_probability)
        self.perturbation_factors = [float(f) for f in factors]
        self.custom_explore_fn = custom_explore_fn
        self.synch = bool(synch)
        self.seed = seed
        self.mutable_keys = frozenset(self.mutations)
        self._config: dict[str, dict[str, Any]] = {}
        self._step: dict[str, int] = {}
        self._score: dict[str, float] = {}
        self._live: dict[str, None] = {}
        self._paused: dict[str, None] = {}
        self._waiting: dict[str, None] = {}  # synch: paused at the generation's boundary
        self._pending: dict[str, Exploit] = {}
        self._added = 0
        self._draws = 0
        self._full = False  # no more arms will come (on_no_new_arms)
        self.exploit_count = 0

    # -- the search space -------------------------------------------------------------------
    def with_space(self, params: dict[str, Any]) -> PopulationBasedTraining:
        """Fill the mutations given as ``None`` from the search space's hyperparameters.

        Raises ``ValueError`` for a mutation the space does not declare.
        """
        for name, spec in self.mutations.items():
            if name not in params:
                raise ValueError(
                    f"hyperparam_mutations names {name!r}, which build_model does not declare; "
                    f"the space has {sorted(params)}"
                )
            if spec is None:
                _check_mutation(name, params[name])
                self.mutations[name] = params[name]
        return self

    def check_config(self, config: dict[str, Any], explored: dict[str, Any]) -> None:
        """Raise ``ValueError`` unless ``explored`` (an explore of ``config``) is valid.

        Its mutable values must lie in their ranges, and no other hyperparameter may
        differ from ``config`` (that would change the architecture).
        """
        if not isinstance(explored, dict):
            raise ValueError(f"custom_explore_fn returned {type(explored).__name__}, not a dict")
        for key in set(config) | set(explored):
            if key not in self.mutations and config.get(key) != explored.get(key):
                raise ValueError(
                    f"custom_explore_fn changed {key!r} ({config.get(key)!r} -> "
                    f"{explored.get(key)!r}), which is not in hyperparam_mutations; only "
                    f"{sorted(self.mutations)} may change during training"
                )
        for key, spec in self.mutations.items():
            if key in explored and not _inside(spec, explored[key]):
                raise ValueError(
                    f"custom_explore_fn set {key!r} to {explored[key]!r}, outside its range "
                    f"{_describe(spec)}"
                )

    def explore(self, config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """A new configuration: ``config`` with each mutable value resampled or perturbed."""
        new = self._explore(config, rng)
        if self.custom_explore_fn is not None:
            explored = self.custom_explore_fn(dict(new))
            self.check_config(new, explored)
            new = dict(explored)
        return new

    def _explore(self, config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """The built-in explore step (before ``custom_explore_fn``)."""
        new = dict(config)
        for key, spec in self.mutations.items():
            value = config.get(key)
            if spec is None:
                raise ValueError(
                    f"hyperparam_mutations[{key!r}] is None and no search space filled it; "
                    "give it a list of values or a hyperparameter"
                )
            if value is None or rng.random() < self.resample_probability:
                new[key] = _plain(_sample(spec, rng))
            else:
                new[key] = _plain(self._perturb(spec, value, rng))
        return new

    def _perturb(self, spec: Any, value: Any, rng: np.random.Generator) -> Any:
        choices = _choices(spec)
        if choices is not None:
            if value not in choices:
                return _sample(spec, rng)
            index = choices.index(value) + (1 if rng.random() < 0.5 else -1)
            return choices[min(max(index, 0), len(choices) - 1)]
        if not _is_number(value):
            return _sample(spec, rng)
        factor = self.perturbation_factors[int(rng.integers(len(self.perturbation_factors)))]
        new = value * factor
        low, high = getattr(spec, "min_value", None), getattr(spec, "max_value", None)
        if low is not None and high is not None:
            new = min(max(new, low), high)
        if isinstance(value, (int, np.integer)) or type(spec).__name__ == "Int":
            new = int(round(new))
            if low is not None and high is not None:
                new = int(min(max(new, low), high))
        return float(new) if isinstance(new, (float, np.floating)) else new

    # -- the protocol ----------------------------------------------------------------------
    def on_arm_added(self, arm_id: str, config: dict[str, Any]) -> None:
        """Register a member of the population."""
        self._added += 1
        self._config[arm_id] = dict(config)
        self._step[arm_id] = 0
        self._live[arm_id] = None

    def accepts_new_arm(self) -> bool:
        """New arms until the population is complete."""
        return self._added < self.population_size

    def decision_steps(self) -> list[int]:
        """Every multiple of the perturbation interval below ``max_t``, and ``max_t``."""
        interval = self.perturbation_interval
        return [*range(interval, self.max_t, interval), self.max_t]

    def on_result(self, arm_id: str, step: int, score: float) -> Decision | Exploit:
        """Exploit and explore at the interval (bottom quantile), else train on."""
        self._step[arm_id] = step
        self._score[arm_id] = score if math.isfinite(score) else -math.inf
        if step >= self.max_t:
            self._finish(arm_id)
            return Decision.STOP
        if step % self.perturbation_interval:
            return Decision.CONTINUE
        if self.synch:
            return self._synchronous(arm_id, step)
        exploit = self._exploit_or_none(arm_id, self._ranked())
        if exploit is not None:
            return exploit
        if self._others_wait(arm_id, step):
            self._paused[arm_id] = None  # give the worker to an arm that is behind
            return Decision.PAUSE
        return Decision.CONTINUE

    def _others_wait(self, arm_id: str, step: int) -> bool:
        if self._added < self.population_size and not self._full:
            return True
        return any(self._step[a] < step for a in self._paused if a != arm_id)

    def _synchronous(self, arm_id: str, step: int) -> Decision | Exploit:
        self._waiting[arm_id] = None
        if not self._generation_complete():
            self._paused[arm_id] = None
            return Decision.PAUSE
        return self._release(arm_id)

    def _generation_complete(self) -> bool:
        if self._added < self.population_size and not self._full:
            return False
        return all(a in self._waiting for a in self._live)

    def _release(self, last: str | None) -> Decision | Exploit:
        """The whole generation reached the boundary: the bottom quantile exploits the top."""
        ranked = self._ranked()
        decision: Decision | Exploit = Decision.CONTINUE
        for arm_id in list(self._waiting):
            exploit = self._exploit_or_none(arm_id, ranked)
            if arm_id == last:
                decision = exploit if exploit is not None else Decision.CONTINUE
            elif exploit is not None:
                self._pending[arm_id] = exploit
        self._waiting.clear()
        return decision

    def _architecture(self, arm_id: str) -> str:
        """The arm's fixed (not mutable) values: weights move only between equal ones."""
        return self._fixed_values(self._config[arm_id])

    def _fixed_values(self, config: dict[str, Any]) -> str:
        return repr(sorted((k, repr(v)) for k, v in config.items() if k not in self.mutations))

    def check_population(self, configs: Sequence[dict[str, Any]]) -> list[str]:
        """Check the configurations the population will start from; returns warnings.

        Arms exploit only arms with the same values outside ``hyperparam_mutations``.
        Raises ``ValueError`` when no two of the first ``population_size`` share them
        (no arm could ever exploit another); warns when some arm shares them with none.
        """
        population = list(configs)[: self.population_size]
        groups: dict[str, int] = {}
        for config in population:
            key = self._fixed_values(config)
            groups[key] = groups.get(key, 0) + 1
        fixed = sorted({k for c in population for k in c if k not in self.mutations})
        varying = [k for k in fixed if len({repr(c.get(k)) for c in population}) > 1]
        way = (
            "add them to hyperparam_mutations if they leave the model's variables alone, "
            "or fix them (hyperparameters= with hp.Fixed)"
        )
        if len(population) > 1 and max(groups.values()) < 2:
            raise ValueError(
                f"{type(self).__name__}: no two arms of the population share their values of "
                f"{varying}, which are not in hyperparam_mutations, so no arm could ever "
                f"exploit another (weights move only between arms with equal values of the "
                f"hyperparameters that do not change); {way}"
            )
        alone = sum(1 for n in groups.values() if n == 1)
        if alone:
            return [
                f"{type(self).__name__}: {alone} of {len(population)} arms share their values "
                f"of {varying} (not in hyperparam_mutations) with no other arm and will never "
                f"exploit or be exploited; {way}"
            ]
        return []

    def _ranked(self) -> list[str]:
        """Live arms with a checkpoint, worst first (ties: the later-added first)."""
        order = {a: i for i, a in enumerate(self._config)}
        arms = [a for a in self._live if self._step[a] >= self.perturbation_interval]
        return sorted(arms, key=lambda a: (self._score[a], -order[a]))

    def _exploit_or_none(self, arm_id: str, ranked: list[str]) -> Exploit | None:
        if arm_id not in ranked:
            return None
        # ranked among the arms of its architecture (all of them when only mutable
        # values differ); quantiles of fewer than half the population say little
        mine = self._architecture(arm_id)
        ranked = [a for a in ranked if self._architecture(a) == mine]
        if len(ranked) < max(2, math.ceil(self.population_size / 2)):
            return None
        n = max(1, math.ceil(len(ranked) * self.quantile_fraction))
        n = min(n, len(ranked) // 2)
        bottom, top = ranked[:n], ranked[-n:]
        if arm_id not in bottom or self._score[top[-1]] <= self._score[arm_id]:
            return None
        rng = np.random.default_rng([self.seed if self.seed is not None else 0, self._draws])
        self._draws += 1
        donor = top[int(rng.integers(len(top)))]
        config = self.explore(self._config[donor], rng)
        self._config[arm_id] = config
        self._step[arm_id] = self._checkpoint_step(donor)
        self._score[arm_id] = self._score[donor]
        self.exploit_count += 1
        return Exploit(donor, config)

    def _checkpoint_step(self, arm_id: str) -> int:
        """The step of ``arm_id``'s latest checkpoint (the last interval it reached)."""
        step = self._step[arm_id]
        if step >= self.max_t:
            return self.max_t
        return (step // self.perturbation_interval) * self.perturbation_interval

    def exploits(self) -> dict[str, Exploit]:
        """The exploits decided for paused arms of a synchronous generation."""
        pending, self._pending = self._pending, {}
        return pending

    def choose_arm_to_resume(self, paused: Sequence[str]) -> str | None:
        """New arms first while the population fills; then the paused arm furthest behind."""
        if self._added < self.population_size and not self._full:
            return None
        candidates = [a for a in paused if a in self._paused]
        if self.synch:
            candidates = [a for a in candidates if a not in self._waiting]
        if not candidates:
            return None
        arm_id = min(candidates, key=lambda a: self._step[a])
        del self._paused[arm_id]
        return arm_id

    def on_arm_finished(self, arm_id: str) -> None:
        """An arm ended (finished, failed): the population goes on without it."""
        self._finish(arm_id)
        if self.synch and self._waiting and self._generation_complete():
            self._release(None)

    def on_no_new_arms(self) -> None:
        """No more arms will come: a synchronous generation settles with the arms it has."""
        self._full = True
        if self.synch and self._waiting and self._generation_complete():
            self._release(None)

    def _finish(self, arm_id: str) -> None:
        self._live.pop(arm_id, None)
        self._paused.pop(arm_id, None)
        self._waiting.pop(arm_id, None)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (plain JSON): configs, steps, scores, waiting arms."""
        return {
            **super().state_dict(),
            "config": self._config,
            "step": self._step,
            "score": {a: (s if math.isfinite(s) else None) for a, s in self._score.items()},
            "live": list(self._live),
            "paused": list(self._paused),
            "waiting": list(self._waiting),
            "pending": {a: [e.donor, e.config] for a, e in self._pending.items()},
            "added": self._added,
            "draws": self._draws,
            "full": self._full,
            "exploit_count": self.exploit_count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        check_state(self, state)
        self._config = {a: dict(c) for a, c in state["config"].items()}
        self._step = {a: int(s) for a, s in state["step"].items()}
        self._score = {a: (-math.inf if s is None else float(s)) for a, s in state["score"].items()}
        self._live = dict.fromkeys(state["live"])
        self._paused = dict.fromkeys(state["paused"])
        self._waiting = dict.fromkeys(state["waiting"])
        self._pending = {a: Exploit(d, dict(c)) for a, (d, c) in state["pending"].items()}
        self._added = int(state["added"])
        self._draws = int(state["draws"])
        self._full = bool(state["full"])
        self.exploit_count = int(state["exploit_count"])


def _choices(spec: Any) -> list[Any] | None:
    if isinstance(spec, (list, tuple)):
        return list(spec)
    name = type(spec).__name__
    if name in ("Choice", "Boolean"):
        return list(spec.values)
    return None


def _sample(spec: Any, rng: np.random.Generator) -> Any:
    choices = _choices(spec)
    if choices is not None:
        return choices[int(rng.integers(len(choices)))]
    if hasattr(spec, "sample"):
        return spec.sample(rng)
    return spec(rng)


def _inside(spec: Any, value: Any) -> bool:
    choices = _choices(spec)
    if choices is not None:
        return value in choices
    low, high = getattr(spec, "min_value", None), getattr(spec, "max_value", None)
    if low is not None and high is not None:
        return _is_number(value) and low <= value <= high
    return True


def _describe(spec: Any) -> str:
    choices = _choices(spec)
    if choices is not None:
        return str(choices)
    low, high = getattr(spec, "min_value", None), getattr(spec, "max_value", None)
    if low is not None:
        return f"[{low}, {high}]"
    return repr(spec)


def _unit(spec: Any, value: Any) -> float | None:
    """``value`` of a bounded numeric hyperparameter mapped to [0, 1] (log-scaled if log)."""
    low, high = getattr(spec, "min_value", None), getattr(spec, "max_value", None)
    if low is None or high is None or high <= low or not _is_number(value):
        return None
    if getattr(spec, "sampling", "linear") == "log":
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (float(value) - low) / (high - low)


def _from_unit(spec: Any, u: float) -> Any:
    low, high = spec.min_value, spec.max_value
    if getattr(spec, "sampling", "linear") == "log":
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
    else:
        value = low + u * (high - low)
    value = min(max(value, low), high)
    if type(spec).__name__ == "Int":
        return int(min(max(round(value), low), high))
    return float(value)


class PB2(PopulationBasedTraining):
    """Population-based bandits (Parker-Holder et al., 2020): PBT exploring with a GP bandit.

    Paper: Parker-Holder et al., "Provably Efficient Online Hyperparameter
    Optimization with Population-Based Bandits", NeurIPS 2020,
    https://arxiv.org/abs/2002.02518

    Exploit as :class:`PopulationBasedTraining`. Explore differs for the bounded
    numeric mutations (``Float``/``Int`` hyperparameters of the space): instead of a
    random perturbation, PB2 fits a Gaussian process to what every arm gained in
    score over its last interval, as a function of the time and its mutable values,
    and picks the values with the highest upper confidence bound at the current
    time (``kappa``: how much the bound counts uncertainty). A time-varying model,
    so values that helped early do not dominate late. Until ``2 * dimensions + 2``
    gains are known, and for list or choice mutations, it explores as PBT does.

    Only the last ``window`` gains are kept, so a decision costs the same late in a
    long search as early (one ``window`` x ``window`` solve per exploit).

    Args:
        kappa: weight of the GP's standard deviation in the bound.
        window: gains the model is fitted to (the most recent).
        candidates: random points the bound is maximised over.

    The other arguments are :class:`PopulationBasedTraining`'s.
    """

    def __init__(
        self,
        *args: Any,
        kappa: float = 2.0,
        window: int = 64,
        candidates: int = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not kappa >= 0:
            raise ValueError(f"kappa must be >= 0, got {kappa!r}")
        if window < 4 or candidates < 1:
            raise ValueError("window must be >= 4 and candidates >= 1")
        self.kappa, self.window, self.candidates = float(kappa), int(window), int(candidates)
        self._previous: dict[str, float] = {}
        self._gains: list[list[float]] = []  # [step, u_1..u_d, gain]

    def _numeric(self) -> list[str]:
        return [
            k
            for k, spec in self.mutations.items()
            if _unit(spec, getattr(spec, "min_value", None)) is not None
        ]

    def on_result(self, arm_id: str, step: int, score: float) -> Decision | Exploit:
        """Record the arm's gain over its last interval, then decide as PBT."""
        if step % self.perturbation_interval == 0 and step < self.max_t:
            previous = self._previous.get(arm_id)
            units = [_unit(self.mutations[k], self._config[arm_id].get(k)) for k in self._numeric()]
            if previous is not None and math.isfinite(score) and None not in units:
                self._gains.append([float(step), *[float(u) for u in units], score - previous])
                del self._gains[: -self.window]
            if math.isfinite(score):
                self._previous[arm_id] = score
        decision = super().on_result(arm_id, step, score)
        if isinstance(decision, Exploit):
            self._previous[arm_id] = self._score[decision.donor]
        return decision

    def exploits(self) -> dict[str, Exploit]:
        """As PBT; each exploiting arm's next gain counts from its donor's score."""
        pending = super().exploits()
        for arm_id, exploit in pending.items():
            self._previous[arm_id] = self._score[exploit.donor]
        return pending

    def _explore(self, config: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
        """PBT's explore, with the bounded numeric values chosen by the GP's upper bound."""
        new = super()._explore(config, rng)
        names = self._numeric()
        if not names or len(self._gains) < 2 * len(names) + 2:
            return new
        data = np.asarray(self._gains, dtype=float)
        x = data[:, :-1].copy()
        x[:, 0] /= self.max_t
        y = data[:, -1]
        y = (y - y.mean()) / (y.std() if y.std() > 0 else 1.0)
        now = max(self._step.values(), default=0) / self.max_t
        points = np.column_stack(
            [np.full(self.candidates, now), rng.random((self.candidates, len(names)))]
        )
        mean, std = _gp(x, y, points)
        best = points[int(np.argmax(mean + self.kappa * std))]
        for name, u in zip(names, best[1:]):
            new[name] = _plain(_from_unit(self.mutations[name], float(u)))
        return new

    def state_dict(self) -> dict[str, Any]:
        """PBT's state with the recorded gains."""
        return {**super().state_dict(), "previous": self._previous, "gains": self._gains}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s output."""
        super().load_state_dict(state)
        self._previous = {a: float(v) for a, v in state["previous"].items()}
        self._gains = [list(map(float, g)) for g in state["gains"]]


def _gp(x: np.ndarray, y: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of a GP (squared-exponential kernel) at ``points``."""
    scale, noise = 0.3, 0.1

    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
        return np.exp(-0.5 * d / scale**2)

    k = kernel(x, x) + noise * np.eye(len(x))
    chol = np.linalg.cholesky(k)
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
    cross = kernel(points, x)
    mean = cross @ alpha
    v = np.linalg.solve(chol, cross.T)
    var = np.clip(1.0 - (v**2).sum(axis=0), 1e-12, None)
    return mean, np.sqrt(var)
