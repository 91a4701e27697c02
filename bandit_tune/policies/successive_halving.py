"""Synchronous successive halving (Jamieson & Talwalkar, AISTATS 2016)."""

from __future__ import annotations

from bandit_tune.policies._rungs import check_ladder, halving_bracket
from bandit_tune.policies._synchronous import SynchronousHalving


class SuccessiveHalving(SynchronousHalving):
    """Successive halving: train ``n`` arms a little, keep the top ``1/eta``, repeat.

    This is the arm policy; :class:`bandit_tune.SuccessiveHalving` is the tuner that
    runs it on a hypermodel. Paper: Jamieson and Talwalkar, "Non-stochastic Best Arm
    Identification and Hyperparameter Optimization", AISTATS 2016,
    https://arxiv.org/abs/1502.07943

    Synchronous: an arm that reaches a rung pauses until all arms of its bracket
    have reached it (or left); then exactly ``floor(n / eta**(i+1))`` of the best
    are resumed and the others stop. By default the bracket is Hyperband's most
    aggressive one — ``eta**s_max`` arms, first rung near ``min_t``, top rung
    exactly ``max_t`` — as in scikit-learn's ``HalvingGridSearchCV`` with
    ``n_arms`` set to the grid size. Arms beyond ``n_arms`` fill a fresh bracket of
    the same shape.

    Args:
        max_t: epochs of the top rung.
        eta: reduction factor (>= 2).
        min_t: the least epochs before the first decision.
        n_arms: arms in a bracket (default ``eta**s_max``); fewer arms give fewer rungs.

    Example::

        >>> from bandit_tune.policies import SuccessiveHalving
        >>> SuccessiveHalving(max_t=27, eta=3).plan()
        [[(27, 1), (9, 3), (3, 9), (1, 27)]]
        >>> SuccessiveHalving(max_t=27, eta=3, n_arms=4).plan()
        [[(4, 9), (1, 27)]]
    """

    def __init__(
        self, max_t: int, eta: float = 3, min_t: int = 1, n_arms: int | None = None
    ) -> None:
        check_ladder(max_t, eta, min_t)
        self.max_t, self.eta, self.min_t, self.n_arms_per_bracket = max_t, eta, min_t, n_arms
        super().__init__([halving_bracket(max_t, eta, min_t, n_arms)])
