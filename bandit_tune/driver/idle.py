"""Idle workers a backend keeps for the next search, released when another backend starts.

The pool keeps its Ray actors alive between searches; a Ray Tune run started
afterwards needs those CPUs. The pool registers how to end its workers here, and
the Ray Tune adapter releases whatever is registered, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable

_RELEASERS: list[Callable[[], None]] = []


def on_release(release: Callable[[], None]) -> None:
    """Register ``release``: it ends idle workers kept for a later search (once per function)."""
    if release not in _RELEASERS:
        _RELEASERS.append(release)


def release_idle_workers() -> None:
    """End every registered backend's idle workers (nothing when none was started)."""
    for release in list(_RELEASERS):
        release()
