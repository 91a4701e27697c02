"""Hyperband (Li, Jamieson, DeSalvo, Rostamizadeh & Talwalkar, JMLR 2018)."""

from __future__ import annotations

from bandit_tune.policies._rungs import (
    bracket_epochs,
    check_ladder,
    hyperband_brackets,
    plan_brackets,
)
from bandit_tune.policies._synchronous import SynchronousHalving


class Hyperband(SynchronousHalving):
    """Hyperband: successive halving over brackets that trade arms for epochs.

    This is the arm policy; :class:`bandit_tune.Hyperband` is keras-tuner's tuner of
    the same name, which runs it on a hypermodel. Paper: Li et al., "Hyperband: A
    Novel Bandit-Based Approach to Hyperparameter Optimization", JMLR 2018,
    https://jmlr.org/papers/v18/16-558.html

    Brackets follow Algorithm 1 of Li et al. (2018) computed exactly: with
    ``s_max`` the number of halvings between ``min_t`` and ``max_t``, bracket
    ``s`` starts ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` arms and keeps
    ``floor(n / eta**i)`` at rung ``i``. The paper's Table 1 prints 27/9/6 arms
    for ``s = 3..1`` at R=81 because it truncates intermediate divisions; we
    follow the algorithm, which gives 34/15/8, as in Ray Tune. Rungs are anchored at the
    top so the last rung is exactly ``max_t`` even when it is not a power of
    ``eta``. Arms fill the brackets in order, most aggressive first, and a new
    pass starts when all are full. Each bracket halves synchronously; promoted
    arms resume before any new arm starts, so few workers still promote within
    the budget.

    Args:
        max_t: epochs of the top rung (``R`` in the paper).
        eta: reduction factor (>= 2).
        min_t: the least epochs before the first decision.
        max_total_epochs: plan whole brackets that train at most this many epochs
            in all (see :func:`bandit_tune.driver.budget.plan_brackets`) and run them once,
            instead of cycling over the full plan.

    Example::

        >>> from bandit_tune.policies import Hyperband
        >>> for bracket in Hyperband(max_t=81, eta=3).plan():
        ...     print(bracket)
        [(81, 1), (27, 3), (9, 9), (3, 27), (1, 81)]
        [(34, 3), (11, 9), (3, 27), (1, 81)]
        [(15, 9), (5, 27), (1, 81)]
        [(8, 27), (2, 81)]
        [(5, 81)]
    """

    def __init__(
        self,
        max_t: int,
        eta: float = 3,
        min_t: int = 1,
        max_total_epochs: int | None = None,
    ) -> None:
        check_ladder(max_t, eta, min_t)
        self.max_t, self.eta, self.min_t = max_t, eta, min_t
        self.max_total_epochs = max_total_epochs
        if max_total_epochs is None:
            super().__init__(hyperband_brackets(max_t, eta, min_t))
        else:
            plan = plan_brackets(max_t, eta, min_t, max_total_epochs)
            super().__init__(plan, cycle=False)

    def planned_for(self, max_total_epochs: int) -> Hyperband:
        """A fresh policy of this kind and settings whose brackets fit ``max_total_epochs``."""
        return Hyperband(self.max_t, self.eta, self.min_t, max_total_epochs=max_total_epochs)

    def replan_epochs(self, epochs_left: int) -> None:
        """Re-plan the unopened brackets to fit ``epochs_left`` more epochs in all.

        Only for a policy built with ``max_total_epochs``; the scheduler calls it
        with what the measured epoch rate says still fits a wall-clock budget.
        """
        room = epochs_left - self.epochs_owed()
        start = len(self._brackets)
        full = len(hyperband_brackets(self.max_t, self.eta, self.min_t))
        try:
            shapes = plan_brackets(self.max_t, self.eta, self.min_t, room, start=start % full)
        except ValueError:
            shapes = []  # not even one more arm fits
        self.replan(shapes)

    def describe(self) -> str:
        """The plan as a small table: each bracket's rungs and epochs, and one pass in all."""
        lines = [f"Hyperband(max_t={self.max_t}, eta={self.eta}, min_t={self.min_t})"]
        for s, bracket in enumerate(self.plan()):
            rungs = "  ".join(f"{n:>3} arms x {t:>3} ep" for n, t in bracket)
            lines.append(f"  bracket {s}: {rungs}   ({bracket_epochs(bracket)} epochs)")
        lines.append(f"  one pass: {self.n_arms} arms, {self.budget} epochs")
        return "\n".join(lines)
