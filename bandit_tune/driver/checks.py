"""Argument checks shared by every entry point: one message shape, naming the value.

Pure; the tuner, :func:`bandit_tune.run_arms`, the simulator and the replay all
take their integers, numbers and flags through these, so the same bad value gets
the same answer everywhere.
"""

from __future__ import annotations

import math
from typing import Any


def integer(label: str, value: Any, minimum: int = 1, optional: bool = False) -> Any:
    """``value`` if it is an integer >= ``minimum`` (or ``None`` when ``optional``).

    >>> integer("max_trials", 3), integer("max_failures", 0, minimum=0)
    (3, 0)
    >>> integer("max_trials", True)
    Traceback (most recent call last):
    ...
    ValueError: max_trials must be an integer >= 1, got True
    """
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        allowed = " or None" if optional else ""
        raise ValueError(f"{label} must be an integer >= {minimum}{allowed}, got {value!r}")
    return value


def number(label: str, value: Any, positive: bool = False, optional: bool = False) -> Any:
    """``value`` if it is a finite number (> 0 with ``positive``; ``None`` when ``optional``).

    >>> number("target_score", 0.9), number("time_budget", None, optional=True)
    (0.9, None)
    """
    if optional and value is None:
        return None
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > 0 or not positive)
    )
    if not ok:
        what = "a positive" if positive else "a finite"
        allowed = " or None" if optional else ""
        raise ValueError(f"{label} must be {what} number{allowed}, got {value!r}")
    return value


def flag(label: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False``.

    >>> flag("overwrite", False)
    False
    """
    if not isinstance(value, bool):
        raise ValueError(f"{label} must be True or False, got {value!r}")
    return value


def devices(label: str, value: Any, zero: bool) -> float:
    """A CPU or GPU count per arm as Ray takes it: a fraction below 1 packs arms on a device.

    Ray reserves fractions of one device (``0.25``: four arms share a GPU) but only
    whole devices above one, and counts in steps of 1/10,000.

    >>> devices("cpus_per_arm", 0.5, zero=False), devices("gpus_per_arm", 0, zero=True)
    (0.5, 0.0)
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{label} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not zero):
        least = ">= 0" if zero else "> 0"
        raise ValueError(f"{label} must be {least}, got {value!r}")
    if value > 1 and value != int(value):
        raise ValueError(
            f"{label}={value!r}: above 1 it must be a whole number (Ray reserves a fraction "
            "of one device, to pack several arms on it, or whole devices)"
        )
    if 0 < value < 1e-4:
        raise ValueError(f"{label}={value!r} is below Ray's smallest share, 0.0001")
    return float(value) if value < 1 else int(value)
