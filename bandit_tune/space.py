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
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

_SAMPLINGS = ("linear", "log", "reverse_log")
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Condition:
    """A parameter is active only while ``parent`` takes one of ``values``.

    keras-tuner's ``conditions.Parent``: :attr:`name` is the parent's name.
    """

    parent: str
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        """The parent hyperparameter's name (keras-tuner's attribute)."""
        return self.parent

    def is_active(self, values: dict[str, Any]) -> bool:
        """Whether the parent's value in ``values`` is one of :attr:`values`."""
        return self.parent in values and values[self.parent] in self.values

    def get_config(self) -> dict[str, Any]:
        """A JSON-ready description (see :meth:`from_config`)."""
        return {"name": self.parent, "values": list(self.values)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Condition:
        """The condition :meth:`get_config` described."""
        if "class_name" in config:  # keras-tuner's serialized form
            config = config["config"]
        return cls(str(config["name"]), tuple(config["values"]))


def _as_conditions(conditions: Any) -> tuple[Condition, ...]:
    if not conditions:
        return ()
    if isinstance(conditions, (Condition, dict)):
        conditions = [conditions]
    return tuple(c if isinstance(c, Condition) else Condition.from_config(c) for c in conditions)


def _prob_to_index(prob: float, n: int) -> int:
    return min(int(math.floor(prob * n)), n - 1)


def _index_to_prob(index: float, n: int) -> float:
    return (index + 0.5) / n


def _plain_number(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class HyperParameter:
    """One declared hyperparameter: keras-tuner's ``HyperParameter`` base class.

    A hyperparameter is identified by its :attr:`name` and :attr:`conditions`.
    Subclasses: :class:`Int`, :class:`Float`, :class:`Choice`, :class:`Boolean`,
    :class:`Fixed`. Each gives :attr:`values` (every value, or 10 evenly spread
    ones for a continuous range), :meth:`random_sample`, :meth:`prob_to_value`
    and :meth:`value_to_prob` (the value at a cumulative probability in
    ``[0, 1)`` and back, as keras-tuner's oracles use them), and
    :meth:`get_config` / :meth:`from_config`.
    """

    #: ``"int"``, ``"float"``, ``"choice"``, ``"boolean"`` or ``"fixed"``.
    kind: ClassVar[str] = ""
    min_value: Any = None
    max_value: Any = None
    step: Any = None
    sampling: str = "linear"
    ordered: bool | None = None

    def __init__(self, name: str, default: Any = None, conditions: Any = None) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a hyperparameter's name must be a non-empty string, got {name!r}")
        self.name = name
        self._default = _plain_number(default)
        self.conditions = _as_conditions(conditions)

    @property
    def default(self) -> Any:
        """The value a declaration returns before a search sets one."""
        return self._default

    @property
    def values(self) -> tuple[Any, ...]:
        """Every value the hyperparameter can take (10 evenly spread for a continuous range)."""
        raise NotImplementedError

    def random_sample(self, seed: int | None = None) -> Any:
        """A random value (the same for the same ``seed``)."""
        return self.prob_to_value(random.Random(seed).random())

    def prob_to_value(self, prob: float) -> Any:
        """The value at cumulative probability ``prob`` in ``[0, 1)``."""
        raise NotImplementedError

    def value_to_prob(self, value: Any) -> float:
        """The cumulative probability in ``[0, 1)`` of ``value`` (the centre of its cell)."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (JSON-ready); :meth:`from_config` takes them back."""
        return {
            "name": self.name,
            "default": self._default,
            "conditions": [c.get_config() for c in self.conditions],
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HyperParameter:
        """The hyperparameter :meth:`get_config` described."""
        return cls(**dict(config))

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.name))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "conditions")
        return f"{type(self).__name__}({args})"

    # -- what the searchers use ------------------------------------------------------
    def grid(self) -> list[Any]:
        """Every value of a discrete parameter, in order; raise for a continuous Float."""
        return list(self.values)

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one value with ``rng``, honouring sampling and step."""
        values = self.grid()
        return values[int(rng.integers(len(values)))]

    def to_ray(self) -> Any:
        """The equivalent Ray Tune search domain (log sampling and steps preserved)."""
        from ray import tune

        return tune.choice(self.grid())

class _Numerical(HyperParameter):
    def __init__(
        self,
        name: str,
        min_value: Any,
        max_value: Any,
        step: Any = None,
        sampling: str = "linear",
        default: Any = None,
        conditions: Any = None,
    ) -> None:
        super().__init__(name, default, conditions)
        label = type(self).__name__
        if sampling not in _SAMPLINGS:
            raise ValueError(
                f"{label} {name!r}: sampling must be one of {_SAMPLINGS}, got {sampling!r}"
            )
        if min_value > max_value:
            raise ValueError(
                f"{label} {name!r}: min_value={min_value} is greater than max_value={max_value}"
            )
        if sampling != "linear" and min_value <= 0:
            raise ValueError(
                f"{label} {name!r}: sampling={sampling!r} needs min_value > 0, got {min_value}; "
                "use sampling='linear' or a positive lower bound"
            )
        self.min_value, self.max_value = min_value, max_value
        self.step, self.sampling = step, sampling
        if default is not None and not (min_value <= default <= max_value):
            raise ValueError(
                f"{label} {name!r}: default={default} is outside [{min_value}, {max_value}]"
            )

    @property
    def default(self) -> Any:
        """The value a declaration returns before a search sets one."""
        return self.min_value if self._default is None else self._default

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (JSON-ready)."""
        config = super().get_config()
        config.update(
            min_value=self.min_value,
            max_value=self.max_value,
            step=self.step,
            sampling=self.sampling,
        )
        return config

    # keras-tuner's projections of [0, 1) onto the range
    def _from_prob(self, prob: float, high: float) -> float:
        low = self.min_value
        if self.sampling == "linear":
            return low + prob * (high - low)
        if self.sampling == "log":
            return low * math.pow(high / low, prob)
        return high + low - low * math.pow(high / low, 1 - prob)

    def _to_prob(self, value: float, high: float) -> float:
        low = self.min_value
        if high == low:
            return 0.5
        if self.sampling == "linear":
            return (value - low) / (high - low)
        if self.sampling == "log":
            return math.log(value / low) / math.log(high / low)
        return 1.0 - math.log((high + low - value) / low) / math.log(high / low)

    def _n_steps(self) -> int:
        if self.sampling == "linear":
            return int(math.floor((self.max_value - self.min_value) / self.step + _TOLERANCE)) + 1
        return int(math.log(self.max_value / self.min_value, self.step) + _TOLERANCE) + 1

    def _stepped(self, index: int) -> Any:
        low, high = self.min_value, self.max_value
        if self.sampling == "linear":
            return low + index * self.step
        if self.sampling == "log":
            return low * self.step**index
        return high + low - low * self.step**index

    def _stepped_index(self, value: Any) -> float:
        low, high = self.min_value, self.max_value
        if self.sampling == "linear":
            return (value - low) // self.step
        if self.sampling == "log":
            return round(math.log(value / low, self.step))
        return round(math.log((high - value + low) / low, self.step))

    def _check_log_step(self) -> None:
        if self.sampling != "linear" and self.step is not None and self.step <= 1:
            raise ValueError(
                f"{type(self).__name__} {self.name!r} with sampling={self.sampling!r} needs "
                f"step > 1 (a multiplicative factor), got step={self.step}"
            )


def _check_int(name: str, label: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"Int {name!r}: {label} must be an int, got {value!r}")
    if not math.isfinite(value) or int(value) != value:
        raise ValueError(f"Int {name!r}: {label} must be an int, got {value!r}")
    return int(value)


class Int(_Numerical):
    """An integer in ``[min_value, max_value]``, both included (keras-tuner's ``Int``).

    ``step`` is the distance between values (a factor with ``sampling="log"``);
    with linear sampling it defaults to 1, as in keras-tuner.
    """

    kind = "int"

    def __init__(
        self,
        name: str,
        min_value: int,
        max_value: int,
        step: int | None = None,
        sampling: str = "linear",
        default: int | None = None,
        conditions: Any = None,
    ) -> None:
        low = _check_int(name, "min_value", min_value)
        high = _check_int(name, "max_value", max_value)
        if step is not None:
            if isinstance(step, bool) or not isinstance(step, (int, float, np.number)):
                raise ValueError(f"Int {name!r}: step must be a positive int or None, got {step!r}")
            step = _check_int(name, "step", step)
            if step < 1:
                raise ValueError(f"Int {name!r}: step must be a positive int or None, got {step!r}")
        elif sampling == "linear":
            step = 1
        if default is not None:
            default = _check_int(name, "default", default)
        super().__init__(name, low, high, step, sampling, default, conditions)
        self._check_log_step()

    @property
    def values(self) -> tuple[Any, ...]:
        """Every value (10 evenly spread for a continuous range)."""
        if self.step is None:
            return tuple(sorted({self.prob_to_value(i * 0.1 + 0.05) for i in range(10)}))
        return tuple(int(self._stepped(i)) for i in range(self._n_steps()))

    def prob_to_value(self, prob: float) -> int:
        """The value at cumulative probability ``prob`` in ``[0, 1)``."""
        if self.step is None:
            return min(self.max_value, int(self._from_prob(prob, self.max_value + 1)))
        return int(self._stepped(_prob_to_index(prob, self._n_steps())))

    def value_to_prob(self, value: Any) -> float:
        """The cumulative probability of ``value`` (the centre of its cell)."""
        if self.step is None:
            return self._to_prob(value + 0.5, self.max_value + 1)
        return _index_to_prob(self._stepped_index(value), self._n_steps())

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one value with ``rng``, honouring sampling and step."""
        low, high = self.min_value, self.max_value
        if self.sampling == "linear" and self.step == 1:
            return int(rng.integers(low, high + 1))
        if self.step is None:  # log or reverse_log, continuous
            value = math.exp(rng.uniform(math.log(low), math.log(high + 1)))
            if self.sampling == "reverse_log":
                value = high + 1 + low - value
            return int(min(high, math.floor(value)))
        return super().sample(rng)

    def to_ray(self) -> Any:
        """The equivalent Ray Tune search domain."""
        from ray import tune

        if self.sampling == "linear" and self.step == 1:
            return tune.randint(self.min_value, self.max_value + 1)
        if self.step is None:
            return tune.lograndint(self.min_value, self.max_value + 1)
        return tune.choice(self.grid())


class Float(_Numerical):
    """A float in ``[min_value, max_value]`` (keras-tuner's ``Float``).

    Continuous without ``step``; with it, the values ``min_value + k * step``
    (``min_value * step**k`` with ``sampling="log"``).
    """

    kind = "float"

    def __init__(
        self,
        name: str,
        min_value: float,
        max_value: float,
        step: float | None = None,
        sampling: str = "linear",
        default: float | None = None,
        conditions: Any = None,
    ) -> None:
        for label, v in (("min_value", min_value), ("max_value", max_value)):
            if (
                isinstance(v, bool)
                or not isinstance(v, (int, float, np.number))
                or not math.isfinite(v)
            ):
                raise TypeError(f"Float {name!r}: {label} must be a finite number, got {v!r}")
        if step is not None and (
            isinstance(step, bool) or not isinstance(step, (int, float, np.number)) or step <= 0
        ):
            raise ValueError(
                f"Float {name!r}: step must be a positive number or None, got {step!r}"
            )
        super().__init__(
            name,
            float(min_value),
            float(max_value),
            None if step is None else _plain_number(step),
            sampling,
            None if default is None else float(default),
            conditions,
        )
        self._check_log_step()

    @property
    def values(self) -> tuple[Any, ...]:
        """Every value (10 evenly spread for a continuous range)."""
        if self.step is None:
            return tuple(self.prob_to_value(i * 0.1 + 0.05) for i in range(10))
        return tuple(float(round(self._stepped(i), 12)) for i in range(self._n_steps()))

    def grid(self) -> list[Any]:
        """Every value, in order (raises for a continuous range)."""
        if self.step is None:
            raise ValueError(
                f"Float {self.name!r} ({self.min_value}..{self.max_value}) is continuous and "
                "cannot be enumerated for a grid; give it a step (hp.Float(..., step=0.1)) or "
                "declare it as hp.Choice(name, values=[...])"
            )
        return list(self.values)

    def prob_to_value(self, prob: float) -> float:
        """The value at cumulative probability ``prob`` in ``[0, 1)``."""
        if self.step is None:
            return float(self._from_prob(prob, self.max_value))
        return float(round(self._stepped(_prob_to_index(prob, self._n_steps())), 12))

    def value_to_prob(self, value: Any) -> float:
        """The cumulative probability of ``value`` (the centre of its cell)."""
        if self.step is None:
            return self._to_prob(value, self.max_value)
        return _index_to_prob(self._stepped_index(value), self._n_steps())

    def sample(self, rng: np.random.Generator) -> Any:
        """Draw one value with ``rng``, honouring sampling and step."""
        if self.step is not None:
            return super().sample(rng)
        low, high = self.min_value, self.max_value
        if self.sampling == "linear":
            return float(rng.uniform(low, high))
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
        return float(high + low - value) if self.sampling == "reverse_log" else float(value)

    def to_ray(self) -> Any:
        """The equivalent Ray Tune search domain."""
        from ray import tune

        if self.step is not None:
            return tune.choice(self.grid())
        if self.sampling == "linear":
            return tune.uniform(self.min_value, self.max_value)
        return tune.loguniform(self.min_value, self.max_value)


class Choice(HyperParameter):
    """One of ``values`` (ints, floats, strings or bools) (keras-tuner's ``Choice``).

    ``ordered`` defaults to True for numbers and must be False for others.
    """

    kind = "choice"

    def __init__(
        self,
        name: str,
        values: Sequence[Any],
        ordered: bool | None = None,
        default: Any = None,
        conditions: Any = None,
    ) -> None:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
            raise ValueError(f"Choice {name!r}: values must be a non-empty list, got {values!r}")
        values = tuple(_plain_number(v) for v in values)
        if not values:
            raise ValueError(f"Choice {name!r}: values must be a non-empty list, got {values!r}")
        if not all(isinstance(v, (int, float, str, bool)) for v in values):
            raise TypeError(
                f"Choice {name!r}: values must be ints, floats, strings or bools, "
                f"got {list(values)!r}"
            )
        kinds = {
            bool if isinstance(v, bool) else str if isinstance(v, str) else float for v in values
        }
        if len(kinds) > 1:
            raise TypeError(
                f"Choice {name!r} can contain only one type of value (numbers, strings or "
                f"bools), got {list(values)!r}"
            )
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"Choice {name!r}: values contain duplicates: {list(values)!r}")
        default = _plain_number(default)
        if default is not None and default not in values:
            raise ValueError(f"Choice {name!r}: default {default!r} is not one of {list(values)!r}")
        numeric = kinds == {float}
        if ordered and not numeric:
            raise ValueError(
                f"Choice {name!r}: ordered=True needs numeric values, got {list(values)!r}"
            )
        super().__init__(name, default, conditions)
        self._values = values
        self.ordered = numeric if ordered is None else bool(ordered)

    @property
    def values(self) -> tuple[Any, ...]:
        """Every value (10 evenly spread for a continuous range)."""
        return self._values

    @property
    def default(self) -> Any:
        """The value a declaration returns before a search sets one."""
        return self._values[0] if self._default is None else self._default

    def prob_to_value(self, prob: float) -> Any:
        """The value at cumulative probability ``prob`` in ``[0, 1)``."""
        return self._values[_prob_to_index(prob, len(self._values))]

    def value_to_prob(self, value: Any) -> float:
        """The cumulative probability of ``value`` (the centre of its cell)."""
        return _index_to_prob(self._values.index(value), len(self._values))

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (JSON-ready)."""
        config = super().get_config()
        config.update(values=list(self._values), ordered=self.ordered)
        return config


class Boolean(HyperParameter):
    """True or False (keras-tuner's ``Boolean``); the default is False."""

    kind = "boolean"

    def __init__(self, name: str, default: bool = False, conditions: Any = None) -> None:
        if not isinstance(default, (bool, np.bool_)):
            raise ValueError(f"Boolean {name!r}: default must be True or False, got {default!r}")
        super().__init__(name, bool(default), conditions)

    @property
    def values(self) -> tuple[Any, ...]:
        """Every value (10 evenly spread for a continuous range)."""
        return (True, False)

    def grid(self) -> list[Any]:
        """Every value, in order (raises for a continuous range)."""
        return [False, True]

    def prob_to_value(self, prob: float) -> bool:
        """The value at cumulative probability ``prob`` in ``[0, 1)``."""
        return bool(prob >= 0.5)

    def value_to_prob(self, value: Any) -> float:
        """The cumulative probability of ``value`` (the centre of its cell)."""
        return 0.75 if value else 0.25


class Fixed(HyperParameter):
    """A constant (keras-tuner's ``Fixed``): an int, float, string, bool or None."""

    kind = "fixed"

    def __init__(self, name: str, value: Any, conditions: Any = None) -> None:
        value = _plain_number(value)
        if value is not None and not isinstance(value, (int, float, str, bool)):
            raise ValueError(
                f"Fixed {name!r}: value must be an int, float, string, bool or None, got {value!r}"
            )
        super().__init__(name, value, conditions)
        self.value = value

    @property
    def values(self) -> tuple[Any, ...]:
        """Every value (10 evenly spread for a continuous range)."""
        return (self.value,)

    def prob_to_value(self, prob: float) -> Any:
        """The value at cumulative probability ``prob`` in ``[0, 1)``."""
        return self.value

    def value_to_prob(self, value: Any) -> float:
        """The cumulative probability of ``value`` (the centre of its cell)."""
        return 0.5

    def get_config(self) -> dict[str, Any]:
        """The constructor's arguments (JSON-ready)."""
        config = super().get_config()
        config["value"] = config.pop("default")
        return config

    def to_ray(self) -> Any:
        """The equivalent Ray Tune search domain."""
        return self.value


HYPERPARAMETER_CLASSES: dict[str, type[HyperParameter]] = {
    c.__name__: c for c in (Int, Float, Choice, Boolean, Fixed)
}


def deserialize(config: dict[str, Any]) -> HyperParameter:
    """A hyperparameter from ``{"class_name": ..., "config": ...}`` (keras-tuner's form)."""
    name = config.get("class_name")
    if name not in HYPERPARAMETER_CLASSES:
        raise ValueError(
            f"unknown hyperparameter class {name!r}; one of {sorted(HYPERPARAMETER_CLASSES)}"
        )
    return HYPERPARAMETER_CLASSES[name].from_config(config["config"])


class HyperParameters:
    """keras-tuner's container: the search space and the current values.

    ``build_model(hp)`` declares each hyperparameter and gets its value in one
    call (``hp.Int``, ``hp.Float``, ``hp.Choice``, ``hp.Boolean``, ``hp.Fixed``).
    While the space is recorded each declaration adds to :attr:`space` and
    returns its default; while an arm trains, :attr:`values` holds the arm's
    values and each declaration returns its own. A declaration inside a
    ``conditional_scope`` whose condition does not hold returns ``None`` and its
    name is left out of :attr:`values` (only active values are there).

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
        #: name -> value of each active hyperparameter (a plain dict: it may be set).
        self.values: dict[str, Any] = dict(values or {})
        self._hps: dict[str, list[HyperParameter]] = {}
        self._space: list[HyperParameter] = []
        self._conditions: list[Condition] = []
        self._name_scopes: list[str] = []
        #: The condition lists of the conditional scopes entered while active / inactive.
        self.active_scopes: list[list[Condition]] = []
        self.inactive_scopes: list[list[Condition]] = []
        # names declared before the model was built (a tuner's hyperparameters=):
        # their declaration wins over build_model's, as in keras-tuner
        self._given: set[str] = set()
        self._allow_new = True
        self._tune_new = True

    @property
    def space(self) -> list[HyperParameter]:
        """Every declared hyperparameter, in declaration order."""
        return self._space

    @property
    def params(self) -> dict[str, HyperParameter]:
        """Name -> the first declaration of that name."""
        return {name: hps[0] for name, hps in self._hps.items()}

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
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(
                Int(
                    self._get_name(name),
                    min_value,
                    max_value,
                    step,
                    sampling,
                    default,
                    self._conditions,
                )
            )

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
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(
                Float(
                    self._get_name(name),
                    min_value,
                    max_value,
                    step,
                    sampling,
                    default,
                    self._conditions,
                )
            )

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
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(
                Choice(self._get_name(name), values, ordered, default, self._conditions)
            )

    def Boolean(  # noqa: N802
        self,
        name: str,
        default: bool = False,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> bool | None:
        """Declare a boolean and return its value."""
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(Boolean(self._get_name(name), default, self._conditions))

    def Fixed(  # noqa: N802
        self,
        name: str,
        value: Any,
        parent_name: str | None = None,
        parent_values: Sequence[Any] | None = None,
    ) -> Any:
        """Declare a constant and return it."""
        with self._maybe_conditional_scope(parent_name, parent_values):
            return self._retrieve(Fixed(self._get_name(name), value, self._conditions))

    # -- scopes ---------------------------------------------------------------------
    @contextlib.contextmanager
    def name_scope(self, name: str) -> Iterator[None]:
        """Prefix the names declared inside with ``name/`` (scopes nest)."""
        self._name_scopes.append(str(name))
        try:
            yield
        finally:
            self._name_scopes.pop()

    @contextlib.contextmanager
    def conditional_scope(self, parent_name: str, parent_values: Any) -> Iterator[None]:
        """Make parameters declared inside active only while ``parent_name`` is in the values.

        The code inside runs either way; a declaration whose condition does not
        hold registers the parameter and returns ``None``.
        """
        parent_name = self._get_name(parent_name)
        if parent_name not in self._hps:
            raise ValueError(
                f"conditional_scope: parent {parent_name!r} is not declared yet; declare it "
                f"before the scope (declared: {sorted(self._hps)})"
            )
        if not isinstance(parent_values, (list, tuple, set)):
            parent_values = [parent_values]
        condition = Condition(parent_name, tuple(parent_values))
        self._conditions.append(condition)
        scopes = self.active_scopes if condition.is_active(self.values) else self.inactive_scopes
        scopes.append(list(self._conditions))
        try:
            yield
        finally:
            self._conditions.pop()

    @contextlib.contextmanager
    def _maybe_conditional_scope(
        self, parent_name: str | None, parent_values: Any
    ) -> Iterator[None]:
        if parent_name:
            with self.conditional_scope(parent_name, parent_values):
                yield
        else:
            yield

    # -- values ---------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """The current value of an active hyperparameter.

        Raises ``ValueError`` for a declared one that is inactive and
        ``KeyError`` for an undeclared name.
        """
        name = self._get_name(name)
        if name in self.values:
            return self.values[name]
        if name in self._hps:
            raise ValueError(f"hyperparameter {name!r} is currently inactive")
        raise KeyError(f"hyperparameter {name!r} is not declared (declared: {sorted(self._hps)})")

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
        except (KeyError, ValueError):
            return False
        return True

    def is_active(self, hyperparameter: HyperParameter | str) -> bool:
        """Whether a hyperparameter (or any of a name's declarations) is active now."""
        if isinstance(hyperparameter, HyperParameter):
            return self._conditions_hold(hyperparameter.conditions)
        return any(
            self._conditions_hold(p.conditions) for p in self._hps.get(str(hyperparameter), ())
        )

    # -- the space as a whole ---------------------------------------------------------
    def merge(
        self, hps: HyperParameters | Sequence[HyperParameter], overwrite: bool = True
    ) -> None:
        """Add ``hps``' hyperparameters (a container or a list of them) to this one.

        With ``overwrite`` a hyperparameter of the same name and conditions is
        replaced and its value reset to the new default; without, it is kept.
        """
        params = hps.space if isinstance(hps, HyperParameters) else list(hps)
        for hp in params:
            if not isinstance(hp, HyperParameter):
                raise TypeError(
                    f"merge takes HyperParameters or HyperParameter objects, got {hp!r}"
                )
            known = self._same(hp)
            if known is not None:
                if not overwrite:
                    continue
                self._hps[hp.name][self._hps[hp.name].index(known)] = hp
                self._space[self._space.index(known)] = hp
            else:
                self._hps.setdefault(hp.name, []).append(hp)
                self._space.append(hp)
            if self._conditions_hold(hp.conditions) and (overwrite or hp.name not in self.values):
                self.values[hp.name] = hp.default

    def copy(self) -> HyperParameters:
        """An independent copy (space and values)."""
        return HyperParameters.from_config(self.get_config())

    def get_config(self) -> dict[str, Any]:
        """The space and values, JSON-ready (keras-tuner's layout); see :meth:`from_config`."""
        return {
            "space": [
                {"class_name": type(p).__name__, "config": p.get_config()} for p in self._space
            ],
            "values": dict(self.values),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> HyperParameters:
        """The container :meth:`get_config` described."""
        hps = cls()
        for item in config.get("space", []):
            hp = deserialize(item)
            hps._hps.setdefault(hp.name, []).append(hp)
            hps._space.append(hp)
        hps.values = dict(config.get("values", {}))
        return hps

    def __repr__(self) -> str:
        return f"HyperParameters(values={self.values!r})"

    # -- internals ----------------------------------------------------------------
    def _get_name(self, name: str) -> str:
        if self._name_scopes:
            return "/".join(self._name_scopes) + "/" + str(name)
        return str(name)

    def _conditions_hold(self, conditions: Sequence[Condition]) -> bool:
        return all(c.is_active(self.values) for c in conditions)

    def _same(self, hp: HyperParameter) -> HyperParameter | None:
        for known in self._hps.get(hp.name, ()):
            if known.conditions == hp.conditions:
                return known
        return None

    def _retrieve(self, hp: HyperParameter) -> Any:
        """Register ``hp`` (or find its earlier declaration) and return its value."""
        for condition in hp.conditions:
            if condition.parent == hp.name:
                raise ValueError(
                    f"hyperparameter {hp.name!r} cannot be conditional on itself; give the "
                    "conditional parameter its own name"
                )
        known = self._hps.get(hp.name)
        if known is not None and hp.name not in self._given:
            first = known[0]
            if first.kind != hp.kind:
                raise ValueError(
                    f"hyperparameter {hp.name!r} declared twice with different kinds "
                    f"({first.kind} and {hp.kind}); give each parameter one declaration"
                )
            if _declaration(first) != _declaration(hp):
                raise ValueError(
                    f"hyperparameter {hp.name!r} declared twice with different arguments: first "
                    f"{_describe(first)}, then {_describe(hp)}; the second would be ignored. "
                    "Give each parameter one declaration (or the same arguments each time)"
                )
            if self._same(hp) is None:
                known.append(hp)  # the same parameter under other conditions: active in either
                self._space.append(hp)
        elif known is None:
            if not self._allow_new:
                raise ValueError(
                    f"build_model declared {hp.name!r}, which the tuner's hyperparameters= "
                    f"does not (it declares {sorted(self._given)}) and allow_new_entries=False "
                    "forbids new ones: declare it in hyperparameters, or pass "
                    "allow_new_entries=True"
                )
            if not self._tune_new and hp.kind != "fixed":
                hp = Fixed(hp.name, hp.default, hp.conditions)  # tune_new_entries=False
            self._hps[hp.name] = [hp]
            self._space.append(hp)
        if not self.is_active(hp.name):
            self.values.pop(hp.name, None)  # only active values are kept
            return None
        if hp.name not in self.values:
            self.values[hp.name] = self._hps[hp.name][0].default
        return self.values[hp.name]

    def _declare_given(
        self, given: HyperParameters, allow_new_entries: bool, tune_new_entries: bool
    ) -> None:
        """Take ``given``'s declarations first: build_model's own of those names yield to them."""
        self.merge(given, overwrite=False)
        for hp in given.space:
            if not self._conditions_hold(hp.conditions):
                self.values.pop(hp.name, None)
        self._given |= {hp.name for hp in given.space}
        self._allow_new = allow_new_entries
        self._tune_new = tune_new_entries


def _declaration(hp: HyperParameter) -> tuple[Any, ...]:
    """What a declaration says of its values (its conditions aside)."""
    values = hp.values if hp.kind == "choice" else ()
    return (hp.kind, hp.min_value, hp.max_value, hp.step, hp.sampling, values, hp.default)


def _describe(hp: HyperParameter) -> str:
    if hp.kind == "choice":
        return f"Choice(values={list(hp.values)})"
    if hp.kind == "fixed":
        return f"Fixed(value={hp.default!r})"
    if hp.kind == "boolean":
        return f"Boolean(default={hp.default!r})"
    args = [f"min_value={hp.min_value}", f"max_value={hp.max_value}"]
    if hp.step is not None and not (hp.kind == "int" and hp.step == 1):
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
    parameter appears (at most ``max_calls`` calls). Then with the model at its
    widest (every ``Int`` at its maximum, every ``Boolean`` true, every ordered
    ``Choice`` at its largest value), again while new parameters appear: a
    parameter declared in a loop (``for i in range(hp.Int("num_layers", 1, 3)):
    hp.Int(f"units_{i}", ...)``) is found and tuned, not left at its default. A
    build that fails on such a probe only contributes what it declared before.
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
        for name, param in hp.params.items():
            space.setdefault(name, param)
        parents = {c.parent for p in space.values() for c in p.conditions}
        for parent in parents:
            for value in (
                space[parent].grid() if space[parent].kind != "float" or space[parent].step else []
            ):
                if (parent, repr(value)) not in tried:
                    tried.add((parent, repr(value)))
                    queue.append({**values, parent: value})
    probed: set[str] = set()
    while calls < max_calls:
        probe = _widest(space)
        if repr(sorted(probe.items())) in probed:
            break
        probed.add(repr(sorted(probe.items())))
        hp = HyperParameters(probe)
        try:
            build(hp)
        except Exception:  # noqa: BLE001 — the declarations made before it failed count
            pass
        calls += 1
        new = [name for name in hp.params if name not in space]
        for name in new:
            space[name] = hp.params[name]
        if not new:
            break
    return SearchSpace(space)


def _widest(space: dict[str, HyperParameter]) -> dict[str, Any]:
    """Values that make the model as large as the space allows (see :func:`record_space`)."""
    values: dict[str, Any] = {}
    for param in space.values():
        if param.kind == "int":
            values[param.name] = param.max_value
        elif param.kind == "boolean":
            values[param.name] = True
        elif param.kind == "choice" and param.ordered:
            values[param.name] = max(param.values)
    return values
