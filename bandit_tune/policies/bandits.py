"""Classic bandit arm selection over learning curves: UCB, Thompson sampling, epsilon-greedy.

Each arm is a slot machine whose payout is the validation score it will end
with after ``max_t`` epochs. A *pull* trains an arm ``pull`` more epochs. The
policies first pull each of the ``n_arms`` arms once, then — whenever a worker
is free — pull the paused arm whose index is highest and pause the rest. An arm
at a pull boundary keeps its worker when its own index is still the highest, so
a clear leader is trained without a pause and resume in between.

The reward estimate is an extrapolation of the arm's learning curve: the mean
of its last two scores plus its recent gain per epoch, decayed geometrically
over the epochs it has left (learning curves flatten), so a steeply rising arm
is valued above a flat one with the same score today. Its uncertainty shrinks
as the arm nears ``max_t``: the spread of the predictions across arms times
``sqrt(epochs left / max_t)``, plus the arm's own epoch-to-epoch noise.

* :class:`UCB` pulls the highest ``prediction + c * uncertainty`` (optimism).
* :class:`ThompsonSampling` pulls the highest draw from
  ``Normal(prediction, uncertainty)`` (seeded, so replays are reproducible).
* :class:`EpsilonGreedy` pulls a random paused arm with probability ``epsilon``,
  else the highest prediction.

They shine when a few arms lead from the start (they then finish good models
sooner than Hyperband, which spends its budget evenly across brackets); Hyperband
is the safer choice when learning curves cross late or the pool is large.
Choosing costs O(paused arms); keep ``n_arms`` to hundreds, not millions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from bandit_tune.policies._rungs import arm_state
from bandit_tune.policies.base import ArmPolicy, ArmState, Decision, check_state

_RUNNING, _PAUSED, _DONE = ArmState.RUNNING, ArmState.PAUSED, ArmState.STOPPED


class CurveBandit(ArmPolicy):
    """Base of the bandit policies: pulls, the curve extrapolation and the bookkeeping.

    Background: Lattimore and Szepesvári, "Bandit Algorithms", 2020,
    https://tor-lattimore.com/downloads/book/book.pdf

    Subclasses implement :meth:`index`. See the module docstring for the reward.

    Args:
        max_t: epochs an arm trains at most.
        n_arms: arms pulled once before the policy starts choosing among them.
        pull: epochs per pull (default ``max(1, max_t // 9)``).
        budget: total epochs after which every arm stops (``None``: until every
            arm reached ``max_t`` or the runner stops).
        seed: seed of the policy's random choices.
    """

    def __init__(
        self,
        max_t: int,
        n_arms: int = 27,
        pull: int | None = None,
        budget: int | None = None,
        seed: int = 0,
    ) -> None:
        pull = max(1, max_t // 9) if pull is None and isinstance(max_t, int) else pull
        for name, value in (("max_t", max_t), ("n_arms", n_arms), ("pull", pull)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if budget is not None and (
            isinstance(budget, bool) or not isinstance(budget, int) or budget < 1
        ):
            raise ValueError(f"budget must be a positive number of epochs or None, got {budget!r}")
        self.max_t, self.n_arms, self.pull, self.budget, self.seed = (
            max_t,
            n_arms,
            min(pull, max_t),
            budget,
            seed,
        )
        self._rng = random.Random(seed)
        self._arms: dict[str, dict[str, Any]] = {}
        self._exploring = True
        self._spent = 0
        self._pulls = 0
        self._to_stop: list[str] = []

    # -- the estimate ---------------------------------------------------------
    def prediction(self, arm_id: str) -> float:
        """The arm's extrapolated score at ``max_t``."""
        scores = self._arms[arm_id]["scores"]
        last = sum(scores[-2:]) / len(scores[-2:])
        window = min(3, len(scores) - 1)
        gain = max(0.0, (scores[-1] - scores[-1 - window]) / window) if window > 0 else 0.0
        left = self.max_t - len(scores)
        decay = 0.8
        return last + gain * decay * (1 - decay**left) / (1 - decay)

    def uncertainty(self, arm_id: str, spread: float) -> float:
        """How far the arm's final score may lie from :meth:`prediction`."""
        scores = self._arms[arm_id]["scores"]
        diffs = [b - a for a, b in zip(scores[-5:], scores[-4:])]
        noise = 0.0
        if len(diffs) > 1:
            mean = sum(diffs) / len(diffs)
            noise = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / 2)
        left = (self.max_t - len(scores)) / self.max_t
        return spread * math.sqrt(left) + noise

    def index(self, arm_id: str, spread: float) -> float:
        """The value the policy maximises when it picks an arm to pull."""
        raise NotImplementedError

    # -- hooks ----------------------------------------------------------------
    def on_arm_added(self, arm_id: str, config: dict[str, Any]) -> None:
        """Register the arm; it runs its first pull."""
        if arm_id in self._arms:
            raise ValueError(f"{type(self).__name__}: arm {arm_id!r} was added twice")
        self._arms[arm_id] = {"scores": [], "state": _RUNNING, "pulls": 0}
        if len(self._arms) >= self.n_arms:
            self._exploring = False

    def on_result(self, arm_id: str, step: int, score: float) -> Decision:
        """Continue within a pull; at its end keep the worker only if still the best arm."""
        arm = self._arms.get(arm_id)
        if arm is None:
            raise KeyError(f"{type(self).__name__}: arm {arm_id!r} was never added")
        if arm["state"] == _DONE:
            return Decision.STOP
        arm["state"] = _RUNNING
        self._spent += 1
        if not math.isfinite(score):
            arm["state"] = _DONE
            return Decision.STOP
        arm["scores"].append(score)
        if self.budget is not None and self._spent >= self.budget:
            self._stop_all()
            return Decision.STOP
        if step >= self.max_t:
            arm["state"] = _DONE
            return Decision.STOP
        if step % self.pull != 0:
            return Decision.CONTINUE
        arm["pulls"] += 1
        self._pulls += 1
        if self._exploring:
            arm["state"] = _PAUSED
            return Decision.PAUSE
        paused = [a for a, r in self._arms.items() if r["state"] == _PAUSED]
        if not paused:
            return Decision.CONTINUE
        best = self._pick(paused + [arm_id])
        if best == arm_id:
            return Decision.CONTINUE
        arm["state"] = _PAUSED
        return Decision.PAUSE

    def on_arm_finished(self, arm_id: str) -> None:
        """The arm ended outside the policy's control."""
        if arm_id in self._arms:
            self._arms[arm_id]["state"] = _DONE

    def choose_arm_to_resume(self, paused: Sequence[str]) -> str | None:
        """While exploring start new arms; then resume the paused arm with the highest index."""
        if self._exploring:
            return None
        mine = [a for a in paused if self._arms.get(a, {}).get("state") == _PAUSED]
        if not mine:
            return None
        arm_id = self._pick(mine)
        self._arms[arm_id]["state"] = _RUNNING
        return arm_id

    def accepts_new_arm(self) -> bool:
        """Only ``n_arms`` arms make up the pool."""
        return len(self._arms) < self.n_arms

    def on_no_new_arms(self) -> None:
        """No more new arms: start choosing among the arms at hand."""
        self._exploring = False

    def arms_to_stop(self) -> list[str]:
        """Paused arms given up when the budget ran out."""
        stopped, self._to_stop = self._to_stop, []
        return stopped

    def decision_steps(self) -> list[int]:
        """Pull boundaries, where an arm may pause."""
        return sorted({*range(self.pull, self.max_t, self.pull), self.max_t})

    def state_dict(self) -> dict[str, Any]:
        """JSON-able state: every arm's scores and state, counters and the random state."""
        state = super().state_dict()
        rng = self._rng.getstate()
        state.update(
            params=[self.max_t, self.n_arms, self.pull, self.budget, self.seed],
            arms={
                a: dict(r, scores=list(r["scores"]), state=r["state"].value)
                for a, r in self._arms.items()
            },
            exploring=self._exploring,
            spent=self._spent,
            pulls=self._pulls,
            to_stop=list(self._to_stop),
            rng=[rng[0], list(rng[1]), rng[2]],
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output of the same policy with the same parameters."""
        check_state(self, state)
        params = [self.max_t, self.n_arms, self.pull, self.budget, self.seed]
        if list(state["params"]) != params:
            raise ValueError(
                f"{type(self).__name__}: saved (max_t, n_arms, pull, budget, seed)="
                f"{state['params']} differ from {params}"
            )
        self._arms = {
            a: dict(r, scores=list(r["scores"]), state=arm_state(r["state"]))
            for a, r in state["arms"].items()
        }
        self._exploring = state["exploring"]
        self._spent, self._pulls = state["spent"], state["pulls"]
        self._to_stop = list(state["to_stop"])
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))

    # -- internals --------------------------------------------------------------
    def _spread(self) -> float:
        values = [self.prediction(a) for a, r in self._arms.items() if r["scores"]]
        if len(values) < 2:
            return 1e-3
        mean = sum(values) / len(values)
        return max(1e-3, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)))

    def _pick(self, candidates: list[str]) -> str:
        spread = self._spread()
        best, best_value = candidates[0], -math.inf
        for arm_id in candidates:  # ties go to the first candidate
            value = self.index(arm_id, spread)
            if value > best_value:
                best, best_value = arm_id, value
        return best

    def _stop_all(self) -> None:
        for arm_id, arm in self._arms.items():
            if arm["state"] == _PAUSED:
                self._to_stop.append(arm_id)
            arm["state"] = _DONE


class UCB(CurveBandit):
    """Upper confidence bound on the final score: pull the most optimistic arm.

    Paper: Auer et al., "Finite-time Analysis of the Multiarmed Bandit Problem",
    Machine Learning 2002, https://doi.org/10.1023/A:1013689704352

    Index: ``prediction + c * uncertainty`` (the bandit's "optimism in the face of
    uncertainty", Auer et al. 2002, on extrapolated learning curves). A larger
    ``c`` explores more.

    Args:
        c: weight of the uncertainty (>= 0).
        **kwargs: see :class:`CurveBandit`.

    Example::

        >>> from bandit_tune.policies import UCB
        >>> UCB(max_t=27, n_arms=20, c=1.0).decision_steps()
        [3, 6, 9, 12, 15, 18, 21, 24, 27]
    """

    def __init__(self, max_t: int, c: float = 1.0, **kwargs: Any) -> None:
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not c >= 0:
            raise ValueError(f"c must be a number >= 0, got {c!r}")
        super().__init__(max_t, **kwargs)
        self.c = float(c)

    def index(self, arm_id: str, spread: float) -> float:
        """Optimistic final score."""
        return self.prediction(arm_id) + self.c * self.uncertainty(arm_id, spread)


class ThompsonSampling(CurveBandit):
    """Thompson sampling on the final score: pull the arm with the highest random draw.

    Paper: Russo et al., "A Tutorial on Thompson Sampling", 2018,
    https://arxiv.org/abs/1707.02038

    Index: a draw from ``Normal(prediction, uncertainty)`` (Thompson 1933); each
    arm is pulled with the probability that it is the best one. Seeded by ``seed``.

    Example::

        >>> from bandit_tune.policies import ThompsonSampling
        >>> policy = ThompsonSampling(max_t=27, n_arms=20, seed=1)
    """

    def index(self, arm_id: str, spread: float) -> float:
        """A sampled final score."""
        return self._rng.gauss(self.prediction(arm_id), self.uncertainty(arm_id, spread))


class EpsilonGreedy(CurveBandit):
    """Epsilon-greedy: pull a random arm with probability ``epsilon``, else the best prediction.

    The simplest bandit (Sutton and Barto, section 2.2); a baseline for the others.

    Args:
        epsilon: probability of a random pull, in [0, 1].
        **kwargs: see :class:`CurveBandit`.

    Example::

        >>> from bandit_tune.policies import EpsilonGreedy
        >>> policy = EpsilonGreedy(max_t=27, n_arms=20, epsilon=0.1, seed=1)
    """

    def __init__(self, max_t: int, epsilon: float = 0.1, **kwargs: Any) -> None:
        if (
            isinstance(epsilon, bool)
            or not isinstance(epsilon, (int, float))
            or not (0 <= epsilon <= 1)
        ):
            raise ValueError(f"epsilon must be a probability in [0, 1], got {epsilon!r}")
        super().__init__(max_t, **kwargs)
        self.epsilon = float(epsilon)

    def index(self, arm_id: str, spread: float) -> float:
        """The predicted final score."""
        return self.prediction(arm_id)

    def _pick(self, candidates: list[str]) -> str:
        if self._rng.random() < self.epsilon:
            return candidates[self._rng.randrange(len(candidates))]
        return super()._pick(candidates)
