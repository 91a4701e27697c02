"""Define-by-run hyperparameters with keras-tuner's API, Ray Tune domains and grids.

``build_model(hp)`` declares each hyperparameter and gets its value in one call,
as in keras-tuner. Calling it once on a recording :class:`HyperParameters`
yields the search space; :func:`record_space` also visits every branch of a
``conditional_scope`` so conditional parameters are found too.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_SAMPLINGS = ("linear", "log", "reverse_log")


@dataclass(frozen=True)
class Condition:
    """A parameter is active only while ``parent`` takes one of ``values``."""

    parent: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class HyperParameter:
    """One declared hyperparameter.

    ``kind`` is one of ``"int"``, ``"float"``, ``"choice"``, ``"boolean"``,
    ``"fixed"``; the other fields are those of keras-tuner's declaration.
    """

    name: str
    kind: str
    min_value: Any = None
    max_value: Any = None
    step: Any = None
    sampling: str = "linear"
    values: tuple[Any, ...] = ()
    ordered: bool | None = None
    default: Any = None
    conditions: tuple[Condition, ...] = field(default=())

    def grid(self) -> list[Any]:
        """Every value of a discrete parameter, in order; raise for a continuous Float."""
        if self.kind in ("choice",):
            return list(self.values)
        if self.kind == "boolean":
            return [False, True]
        if self.kind == "fixed":
            return [self.default]
        if self.kind == "float" and self.step is None:
            raise ValueError(
                f"Float {self.name!r} ({self.min_value}..{self.max_value}) is continuous and "
                "cannot be enumerated for a grid; give it a step (hp.Float(..., step=0.1)) or "
                "declare it as hp.Choice(name, values=[...])"
            )
        step = 1 if self.step is None else self.step
        out: list[Any] = []
        if self.sampling == "linear":
            count = int(math.floor((self.max_value - self.min_value) / step + 1e-9)) + 1
            out = [self.min_value + i * step for i in range(count)]
        else:  # log: step is the multiplicative factor, as in keras-tuner
            if step <= 1:
                raise ValueError(
                    f"{self.kind.title()} {self.name!r} with sampling='log' needs step > 1 "
                    f"(a multiplicative factor) to enumerate a grid, got step={step}"
                )
            value = self.min_value
            while value <= self.max_value * (1 + 1e-9):
                out.append(value)
                value = value * step
        if self.kind == "float":
            out = [float(round(v, 12)) for v in out]
        return out

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one value with ``rng``, honouring sampling and step."""
        if self.kind in ("choice", "boolean", "fixed") or self.step is not None:
            values = self.grid()
            return values[int(rng.integers(len(values)))]
        low, high = self.min_value, self.max_value
        if self.kind == "int":
            if self.sampling == "linear":
                return int(rng.integers(low, high + 1))
            return int(
                min(high, math.floor(math.exp(rng.uniform(math.log(low), math.log(high + 1)))))
            )
        if self.sampling == "linear":
            return float(rng.uniform(low, high))
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
        return float(high + low - value) if self.sampling == "reverse_log" else float(value)

    def to_ray(self) -> Any:
        """The equivalent Ray Tune search domain (log sampling and steps preserved)."""
        from ray import tune

        if self.kind == "fixed":
            return self.default
        if self.kind in ("choice", "boolean") or self.step is not None:
            return tune.choice(self.grid())
        if self.kind == "int":
            if self.sampling == "linear":
                return tune.randint(self.min_value, self.max_value + 1)
            return tune.lograndint(self.min_value, self.max_value + 1)
        if self.sampling == "linear":
            return tune.uniform(self.min_value, self.max_value)
        return tune.loguniform(self.min_value, self.max_value)


class HyperParameters:
    """keras-tuner compatible container: declare a hyperparameter and get its value.

    Used in two ways: while recording, each call adds a parameter to
    :attr:`space` and returns its default; while training an arm, values are
    preset from the arm's config and each call returns the arm's value.

    Example::

        >>> from bandit_tune import HyperParameters
        >>> hp = HyperParameters()
        >>> hp.Int("units", min_value=32, max_value=512, step=32)
        32
        >>> hp.Choice("learning_rate", values=[1e-2, 1e-3, 1e-4])
        0.01
        >>> sorted(hp.values)
        ['learning_rate', 'units']
    """

    def __init__(self, values: dict[str, Any] | None = None) -> None:
        self.space: dict[str, HyperParameter] = {}
        self.values: dict[str, Any] = dict(values or {})
        self._conditions: list[Condition] = []

    # -- keras-tuner's declarations ---------------------------------------------
    def Int(  # noqa: N802 — keras-tuner's name
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> int | None:
        """Declare an integer in ``[min_value, max_value]`` (inclusive) and return its value."""
        for label, v in (("min_value", min_value), ("max_value", max_value)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"Int {name!r}: {label} must be an int, got {v!r}")
        if step is not None and (
            isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1
        ):
            raise ValueError(f"Int {name!r}: step must be a positive int or None, got {step!r}")
        self._check_range("Int", name, min_value, max_value, sampling)
        hp = HyperParameter(
            name,
            "int",
            int(min_value),
            int(max_value),
            step,
            sampling,
            default=int(min_value) if default is None else int(default),
        )
        return self._declare(hp, parent_name, parent_values)

    def Float(  # noqa: N802
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> float | None:
        """Declare a float in ``[min_value, max_value]`` and return its value."""
        for label, v in (("min_value", min_value), ("max_value", max_value)):
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float, np.number))
                or not math.isfinite(v)
            ):
                raise TypeError(f"Float {name!r}: {label} must be a finite number, got {v!r}")
        if step is not None and (not isinstance(step, (int, float)) or step <= 0):
            raise ValueError(
                f"Float {name!r}: step must be a positive number or None, got {step!r}"
            )
        self._check_range("Float", name, min_value, max_value, sampling)
        hp = HyperParameter(
            name,
            "float",
            float(min_value),
            float(max_value),
            step,
            sampling,
            default=float(min_value) if default is None else float(default),
        )
        return self._declare(hp, parent_name, parent_values)

    def Choice(  # noqa: N802
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> Any:
        """Declare a choice among ``values`` (ints, floats, strings or bools) and return one."""
        values = tuple(values) if values is not None else ()
        if not values:
            raise ValueError(f"Choice {name!r}: values must be a non-empty list, got {values!r}")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"Choice {name!r}: values contain duplicates: {list(values)!r}")
        if not all(isinstance(v, (int, float, str, bool, np.number)) for v in values):
            raise TypeError(
                f"Choice {name!r}: values must be ints, floats, strings or bools, "
                f"got {list(values)!r}"
            )
        if default is not None and default not in values:
            raise ValueError(f"Choice {name!r}: default {default!r} is not one of {list(values)!r}")
        hp = HyperParameter(
            name,
            "choice",
            values=values,
            ordered=ordered,
            default=values[0] if default is None else default,
        )
        return self._declare(hp, parent_name, parent_values)

    def Boolean(  # noqa: N802
        self,
        name: str,
        default: bool = False,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> bool | None:
        """Declare a boolean and return its value."""
        return self._declare(
            HyperParameter(name, "boolean", default=bool(default)), parent_name, parent_values
        )

    def Fixed(  # noqa: N802
        self,
        name: str,
        value: Any,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> Any:
        """Declare a constant and return it."""
        return self._declare(
            HyperParameter(name, "fixed", default=value), parent_name, parent_values
        )

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Make parameters declared inside active only while ``parent_name`` is in the values."""
        if parent_name not in self.space:
            raise ValueError(
                f"conditional_scope: parent {parent_name!r} is not declared yet; declare it "
                f"before the scope (declared: {sorted(self.space)})"
            )
        if not isinstance(parent_values, (list, tuple, set)):
            parent_values = [parent_values]
        self._conditions.append(Condition(parent_name, tuple(parent_values)))
        try:
            yield
        finally:
            self._conditions.pop()

    def get(self, name: str) -> Any:
        """Return the current value of a declared parameter."""
        if name in self.values:
            return self.values[name]
        if name in self.space:
            return self.space[name].default
        raise KeyError(f"hyperparameter {name!r} is not declared (declared: {sorted(self.space)})")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.space or name in self.values

    def is_active(self, hp: HyperParameter) -> bool:
        """Whether every condition of ``hp`` holds for the current values."""
        return all(self.get(c.parent) in c.values for c in hp.conditions)

    # -- internals ----------------------------------------------------------------
    @staticmethod
    def _check_range(kind: str, name: str, low: float, high: float, sampling: str) -> None:
        if sampling not in _SAMPLINGS:
            raise ValueError(
                f"{kind} {name!r}: sampling must be one of {_SAMPLINGS}, got {sampling!r}"
            )
        if low > high:
            raise ValueError(f"{kind} {name!r}: min_value={low} is greater than max_value={high}")
        if sampling != "linear" and low <= 0:
            raise ValueError(
                f"{kind} {name!r}: sampling={sampling!r} needs min_value > 0, got {low}; "
                "use sampling='linear' or a positive lower bound"
            )

    def _declare(self, hp: HyperParameter, parent_name: str | None, parent_values: Any) -> Any:
        conditions = list(self._conditions)
        if parent_name is not None:
            if not isinstance(parent_values, (list, tuple, set)):
                parent_values = [parent_values]
            conditions.append(Condition(parent_name, tuple(parent_values)))
        hp = HyperParameter(**{**hp.__dict__, "conditions": tuple(conditions)})
        known = self.space.get(hp.name)
        if known is not None and known.kind != hp.kind:
            raise ValueError(
                f"hyperparameter {hp.name!r} declared twice with different kinds "
                f"({known.kind} and {hp.kind}); give each parameter one declaration"
            )
        if known is not None and _declaration(known) != _declaration(hp):
            raise ValueError(
                f"hyperparameter {hp.name!r} declared twice with different arguments: first "
                f"{_describe(known)}, then {_describe(hp)}; the second would be ignored. "
                "Give each parameter one declaration (or the same arguments each time)"
            )
        if known is None:
            self.space[hp.name] = hp
        if not self.is_active(self.space[hp.name]):
            return None
        if hp.name not in self.values:
            self.values[hp.name] = hp.default
        return self.values[hp.name]


def _declaration(hp: HyperParameter) -> tuple[Any, ...]:
    """What a declaration says of its values (its conditions aside)."""
    return (hp.kind, hp.min_value, hp.max_value, hp.step, hp.sampling, hp.values, hp.default)


def _describe(hp: HyperParameter) -> str:
    if hp.kind in ("choice",):
        return f"Choice(values={list(hp.values)})"
    if hp.kind == "fixed":
        return f"Fixed(value={hp.default!r})"
    if hp.kind == "boolean":
        return f"Boolean(default={hp.default!r})"
    args = [f"min_value={hp.min_value}", f"max_value={hp.max_value}"]
    if hp.step is not None:
        args.append(f"step={hp.step}")
    if hp.sampling != "linear":
        args.append(f"sampling={hp.sampling!r}")
    return f"{hp.kind.title()}({', '.join(args)})"


class SearchSpace:
    """A recorded search space: an ordered set of :class:`HyperParameter`."""

    def __init__(self, params: dict[str, HyperParameter]) -> None:
        if not params:
            raise ValueError(
                "the search space is empty: build_model(hp) declared no hyperparameter; "
                "declare at least one with hp.Int, hp.Float, hp.Choice or hp.Boolean"
            )
        self.params = dict(params)

    def __len__(self) -> int:
        return len(self.params)

    def __iter__(self) -> Iterator[HyperParameter]:
        return iter(self.params.values())

    def __repr__(self) -> str:
        return f"SearchSpace({list(self.params)})"

    def defaults(self) -> dict[str, Any]:
        """Each parameter's default value."""
        return {p.name: p.default for p in self}

    def sample(self, n: int, seed: int | None = None) -> list[dict[str, Any]]:
        """Draw ``n`` configurations, reproducibly for a given ``seed``."""
        rng = np.random.default_rng(seed)
        return [{p.name: _plain(p.sample(rng)) for p in self} for _ in range(n)]

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of the parameters' values (each must be discrete)."""
        names = [p.name for p in self]
        grids = [p.grid() for p in self]
        return [dict(zip(names, map(_plain, combo))) for combo in itertools.product(*grids)]

    def grid_size(self) -> int:
        """Number of combinations :meth:`grid` yields."""
        return math.prod(len(p.grid()) for p in self)

    def to_ray(self) -> dict[str, Any]:
        """Ray Tune ``param_space`` with the equivalent domains."""
        return {p.name: p.to_ray() for p in self}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def record_space(build: Callable[[HyperParameters], Any], max_calls: int = 64) -> SearchSpace:
    """Record the space ``build(hp)`` declares, visiting each conditional branch.

    ``build`` is called with default values first; then, for every parent of a
    conditional parameter, once per parent value not yet tried, until no new
    parameter appears (at most ``max_calls`` calls).
    """
    space: dict[str, HyperParameter] = {}
    tried: set[tuple[str, Any]] = set()
    queue: list[dict[str, Any]] = [{}]
    calls = 0
    while queue and calls < max_calls:
        values = queue.pop(0)
        hp = HyperParameters(values)
        build(hp)
        calls += 1
        for name, param in hp.space.items():
            space.setdefault(name, param)
        parents = {c.parent for p in space.values() for c in p.conditions}
        for parent in parents:
            for value in (
                space[parent].grid() if space[parent].kind != "float" or space[parent].step else []
            ):
                if (parent, repr(value)) not in tried:
                    tried.add((parent, repr(value)))
                    queue.append({**values, parent: value})
    return SearchSpace(space)
