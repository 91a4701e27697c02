"""Rung arithmetic and bookkeeping shared by the successive-halving family.

One convention for every halving policy (documented in ``docs/policies.md``):

* ``s_max`` is the largest ``s`` with ``min_t * eta**s <= max_t``.
* A ladder of ``k`` rungs is anchored at the top: rung ``i`` sits at
  ``round(max_t / eta**(k - 1 - i))`` epochs (never below ``min_t``), so the top
  rung is exactly ``max_t`` also when ``max_t`` is not a power of ``eta``.
* Bracket ``s`` of Hyperband starts ``n = ceil((s_max + 1) / (s + 1) * eta**s)``
  arms and keeps ``floor(n / eta**i)`` of them at rung ``i`` — Algorithm 1 of
  Li et al. (2018) in exact rational arithmetic.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Real
from typing import Any

from bandit_tune.policies.base import ArmState

Rung = tuple[int, int]
"""One rung of a bracket: ``(n_arms, epochs)``."""


class RungArm:
    """A halving policy's record of one arm: its bracket, the rung it heads for, its state.

    ``key`` is its sort key while it waits paused at a rung (ASHA).
    """

    __slots__ = ("bracket", "level", "state", "key")

    def __init__(
        self,
        bracket: int = 0,
        level: int = 0,
        state: ArmState = ArmState.RUNNING,
        key: Any = None,
    ) -> None:
        self.bracket, self.level, self.state, self.key = bracket, level, state, key


def arm_state(value: str) -> ArmState:
    """The :class:`ArmState` a saved policy state names (older states say ``"done"``)."""
    return ArmState.STOPPED if value == "done" else ArmState(value)


def check_ladder(max_t: object, eta: object, min_t: object) -> None:
    """Validate halving parameters, naming the bad value and what is accepted."""
    if isinstance(max_t, bool) or not isinstance(max_t, int) or max_t < 1:
        raise ValueError(f"max_t must be an integer >= 1 (epochs), got {max_t!r}")
    if isinstance(min_t, bool) or not isinstance(min_t, int) or min_t < 1:
        raise ValueError(f"min_t must be an integer >= 1 (epochs), got {min_t!r}")
    if isinstance(eta, bool) or not isinstance(eta, Real) or not math.isfinite(eta) or eta < 2:
        raise ValueError(f"eta must be a number >= 2 (the halving rate), got {eta!r}")
    if min_t > max_t:
        raise ValueError(f"min_t={min_t} is larger than max_t={max_t}; need min_t <= max_t")


def s_max(max_t: int, eta: float, min_t: int = 1) -> int:
    """Return the number of halvings that fit between ``min_t`` and ``max_t``."""
    ratio = Fraction(max_t, min_t)
    f_eta = Fraction(eta)
    s = 0
    while f_eta ** (s + 1) <= ratio:
        s += 1
    return s


def ladder(max_t: int, eta: float, min_t: int, n_rungs: int) -> list[int]:
    """Return ``n_rungs`` strictly increasing rung epochs ending exactly at ``max_t``."""
    f_eta = Fraction(eta)
    steps: list[int] = []
    for i in range(n_rungs):
        step = max(min_t, round(Fraction(max_t) / f_eta ** (n_rungs - 1 - i)))
        if steps and step <= steps[-1]:
            step = steps[-1] + 1
        steps.append(step)
    steps[-1] = max_t
    return steps


def hyperband_brackets(max_t: int, eta: float, min_t: int = 1) -> list[list[Rung]]:
    """Return Hyperband's brackets, most aggressive first, as lists of ``(n_arms, epochs)``."""
    top = s_max(max_t, eta, min_t)
    f_eta = Fraction(eta)
    brackets = []
    for s in range(top, -1, -1):
        n = math.ceil(Fraction(top + 1, s + 1) * f_eta**s)
        counts = [math.floor(n / f_eta**i) for i in range(s + 1)]
        brackets.append(list(zip(counts, ladder(max_t, eta, min_t, s + 1))))
    return brackets


def halving_bracket(
    max_t: int, eta: float, min_t: int = 1, n_arms: int | None = None
) -> list[Rung]:
    """Return one successive-halving bracket; by default Hyperband's most aggressive one.

    With ``n_arms`` the bracket starts that many arms and has as many rungs as
    halvings that leave at least one arm (at most ``s_max + 1``).
    """
    if n_arms is None:
        return hyperband_brackets(max_t, eta, min_t)[0]
    if isinstance(n_arms, bool) or not isinstance(n_arms, int) or n_arms < 1:
        raise ValueError(f"n_arms must be an integer >= 1, got {n_arms!r}")
    f_eta = Fraction(eta)
    counts = []
    for i in range(s_max(max_t, eta, min_t) + 1):
        count = math.floor(n_arms / f_eta**i)
        if count < 1:
            break
        counts.append(count)
    return list(zip(counts, ladder(max_t, eta, min_t, len(counts))))


def bracket_epochs(bracket: list[Rung]) -> int:
    """Epochs a bracket trains in all when promoted arms resume instead of retraining."""
    total, previous = 0, 0
    for n, step in bracket:
        total += n * (step - previous)
        previous = step
    return total


def sort_key(score: float, seq: int) -> tuple[float, int]:
    """Order arms best first; ties go to the arm that reached the rung first."""
    return (-score, seq)


def _shrunk(max_t: int, eta: float, min_t: int, s: int, epochs: int) -> list[Rung] | None:
    """The bracket ``s`` with the most arms (< its plan) whose epochs fit, or ``None``."""
    f_eta = Fraction(eta)
    steps = ladder(max_t, eta, min_t, s + 1)
    least = math.ceil(f_eta**s)  # fewer arms and nobody reaches the top rung
    best = None
    lo, hi = least, max(least, epochs)
    while lo <= hi:
        n = (lo + hi) // 2
        shape = [(math.floor(n / f_eta**i), t) for i, t in enumerate(steps)]
        if bracket_epochs(shape) <= epochs:
            best, lo = shape, n + 1
        else:
            hi = n - 1
    return best


def plan_brackets(
    max_t: int, eta: float, min_t: int, max_total_epochs: int, start: int = 0
) -> list[list[Rung]]:
    """Whole Hyperband brackets whose epochs add up to at most ``max_total_epochs``.

    Brackets are taken in Hyperband's order starting at bracket index ``start``
    (0 is the most aggressive), cycling; a bracket that does not fit is shrunk to
    the most arms that fit (keeping at least one arm at the top rung), else
    skipped. Raises ``ValueError`` when not even one arm can reach ``max_t``.
    """
    if isinstance(max_total_epochs, bool) or not isinstance(max_total_epochs, int):
        raise ValueError(f"max_total_epochs must be an integer, got {max_total_epochs!r}")
    full = hyperband_brackets(max_t, eta, min_t)
    if max_total_epochs < max_t:
        raise ValueError(
            f"a budget of {max_total_epochs} epochs is too small for one arm: an arm trains "
            f"up to max_epochs={max_t} epochs; give at least {max_t} epochs (or lower max_epochs)"
        )
    plan: list[list[Rung]] = []
    left = max_total_epochs
    index = start % len(full)
    misses = 0
    while misses < len(full):
        shape = full[index]
        if bracket_epochs(shape) > left:
            s = len(shape) - 1
            shape = _shrunk(max_t, eta, min_t, s, left)
        if shape is not None and bracket_epochs(shape) <= left:
            plan.append(shape)
            left -= bracket_epochs(shape)
            misses = 0
        else:
            misses += 1
        index = (index + 1) % len(full)
    return plan
