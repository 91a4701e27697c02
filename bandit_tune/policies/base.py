"""The arm-policy protocol: the plug-in interface every policy implements.

A policy sees only plain values — an arm id, a step (epochs trained so far) and a
score already oriented so that higher is better — and answers with a
:class:`Decision`. It never imports Ray or TensorFlow, so the same object can be
unit-tested, replayed over recorded learning curves (:func:`bandit_tune.replay.simulate`)
and run on a Ray cluster (:class:`bandit_tune.BanditScheduler`).
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class Decision(str, enum.Enum):
    """What an arm does after it reports a result.

    The string values equal Ray Tune's ``TrialScheduler.CONTINUE``/``PAUSE``/``STOP``.
    """

    CONTINUE = "CONTINUE"
    """Keep training the arm."""
    PAUSE = "PAUSE"
    """Checkpoint the arm and free its worker; the arm may be resumed later."""
    STOP = "STOP"
    """The arm is done: either it reached its last step or it lost."""


@dataclass(frozen=True)
class Exploit:
    """A decision that continues an arm from another arm's weights with new hyperparameters.

    Population-based training's exploit-and-explore step: the arm drops what it
    trained, takes the ``donor`` arm's latest checkpoint (weights and optimizer
    state, at the donor's step) and trains on from there with ``config``: the
    donor's configuration with new values for the *mutable* hyperparameters (those
    that can change without rebuilding the model, e.g. the learning rate). Return
    it from :meth:`ArmPolicy.on_result` for the arm that reported, or from
    :meth:`ArmPolicy.exploits` for a paused arm.

    The runner refuses (a :class:`PolicyError` naming the policy, the hook and the
    arm) an exploit of an unknown arm, of the arm itself, of a donor without a
    checkpoint, or one whose ``config`` differs from the donor's in a hyperparameter
    that is not mutable (another architecture).
    """

    donor: str
    """The arm whose latest checkpoint the exploiting arm continues from."""
    config: dict[str, Any] = field(default_factory=dict)
    """The arm's configuration from now on (the donor's, with explored mutable values)."""


class ArmState(str, enum.Enum):
    """Where an arm stands; the runner's arm table and the policies share it."""

    RUNNING = "running"
    """Training, starting on a worker, or waiting to be placed on one."""
    PAUSED = "paused"
    """Checkpointed and off its worker; the policy may resume it."""
    STOPPED = "stopped"
    """Ended for good: completed, stopped by the policy, failed or removed."""


class ArmPolicy:
    """Base class of all arm policies: decides how long each arm is pulled.

    Subclass it and override :meth:`on_result` (the only required hook). The
    runner — :class:`bandit_tune.BanditScheduler` on Ray or
    :func:`bandit_tune.replay.simulate` in replay — calls the hooks in this order:

    1. :meth:`on_arm_added` once per arm, before its first result;
    2. :meth:`on_result` after every reported step of a running arm;
    3. :meth:`on_arm_finished` when an arm ends for a reason the policy did not
       decide (it completed its epochs, stopped itself early, errored or was removed);
    4. :meth:`choose_arm_to_resume` whenever a worker is free;
    5. :meth:`arms_to_stop` after each hook, to collect paused arms the policy gave up on,
       and :meth:`accepts_new_arm` before a new arm starts;
    6. :meth:`on_no_new_arms` when no arm is running and no new arm can start,
       so that a policy waiting for more arms can settle with the ones it has.

    Example — stop every arm whose score after two epochs is negative::

        from bandit_tune.policies import ArmPolicy, Decision

        class StopNegative(ArmPolicy):
            def on_result(self, arm_id, step, score):
                if step == 2 and score < 0:
                    return Decision.STOP
                return Decision.CONTINUE
    """

    #: Version of the :meth:`state_dict` layout; bump it when the layout changes.
    state_version: int = 1
    #: Whether :meth:`on_result` takes a tuple of scores, one per objective (each
    #: higher-is-better): a multi-objective policy. Single-objective policies get floats.
    multi_objective: bool = False

    def on_arm_added(self, arm_id: str, config: dict[str, Any]) -> None:
        """Register a new arm with its hyperparameter ``config``."""

    def on_result(self, arm_id: str, step: int, score: float) -> Decision:
        """Decide what ``arm_id`` does after reaching ``step`` with ``score`` (higher is better).

        ``score`` may be NaN or infinite (a diverged model); built-in policies treat
        such an arm as the worst and stop it.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement on_result")

    def on_arm_finished(self, arm_id: str) -> None:
        """Forget about ``arm_id``: it completed, stopped itself, errored or was removed."""

    def choose_arm_to_resume(self, paused: Sequence[str]) -> str | None:
        """Pick a paused arm to resume on a free worker, or ``None`` to start a new arm.

        ``paused`` lists the arms the runner holds paused, in pause order: a
        read-only live sequence (O(1) ``in`` and ``len``; copy it with ``list``
        to keep it past the call). Returning an arm that is not in it is an error.
        """
        return None

    def arms_to_stop(self) -> list[str]:
        """Return (and forget) paused arms that will never be resumed; the runner ends them."""
        return []

    def accepts_new_arm(self) -> bool:
        """Whether the runner may start another new arm (default: always).

        A policy with a fixed pool or a finite plan returns ``False`` once it is
        full; the search then ends when the arms it has are done.
        """
        return True

    def exploits(self) -> dict[str, Exploit]:
        """Return (and forget) exploits for paused arms: ``{arm_id: Exploit(donor, config)}``.

        A synchronous population-based policy decides for every arm of a
        generation when the last one reports; the arms that paused at the boundary
        take their exploit here and continue from the donor's checkpoint when
        resumed. Called by the runner after each hook, like :meth:`arms_to_stop`.
        """
        return {}

    #: Hyperparameters an :class:`Exploit` may change (``None``: the policy exploits
    #: nothing). Any other difference between an exploit's config and its donor's
    #: is refused: weights move only between arms of one architecture.
    mutable_keys: frozenset[str] | None = None

    def on_no_new_arms(self) -> None:
        """No arm is running and no new arm can start: settle with the arms at hand.

        A synchronous policy that waits for a rung to fill promotes among the arms
        that reached it; afterwards the runner asks :meth:`choose_arm_to_resume`
        again and ends every paused arm that is still not chosen.
        """

    def decision_steps(self) -> Sequence[int] | None:
        """Steps after which this policy may return PAUSE or STOP (``None``: any step).

        Trainables checkpoint only at these steps (and at the end), which is where a
        paused arm resumes from.
        """
        return None

    def state_dict(self) -> dict[str, Any]:
        """Return the policy's state as plain JSON-able data, with a ``version`` key."""
        return {"version": self.state_version, "policy": type(self).__name__}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by :meth:`state_dict` of the same policy class."""
        check_state(self, state)


def check_state(policy: ArmPolicy, state: dict[str, Any]) -> None:
    """Raise ``ValueError`` unless ``state`` was saved by ``policy``'s class and version."""
    if not isinstance(state, dict):
        raise ValueError(
            f"{type(policy).__name__}.load_state_dict expects a dict from state_dict(), "
            f"got {type(state).__name__}"
        )
    name = state.get("policy")
    if name is not None and name != type(policy).__name__:
        raise ValueError(f"state was saved by {name}, cannot load it into {type(policy).__name__}")
    version = state.get("version")
    if version != policy.state_version:
        raise ValueError(
            f"{type(policy).__name__} state version {version!r} is not supported; "
            f"expected {policy.state_version}"
        )


_HOOK_ARITY = {
    "on_arm_added": 2,
    "on_result": 3,
    "on_arm_finished": 1,
    "choose_arm_to_resume": 1,
}


def check_policy(policy: object) -> None:
    """Raise ``TypeError`` unless ``policy`` has :class:`ArmPolicy`'s hooks with usable signatures.

    Checked before any training starts, so a custom policy with a wrong
    signature fails at once, naming the hook and the expected parameters.
    """
    on_result = getattr(policy, "on_result", None)
    if not callable(on_result):
        raise TypeError(
            f"policy must be an ArmPolicy with on_result(arm_id, step, score), "
            f"got {type(policy).__name__}"
        )
    expected = {
        "on_arm_added": "(arm_id, config)",
        "on_result": "(arm_id, step, score)",
        "on_arm_finished": "(arm_id)",
        "choose_arm_to_resume": "(paused)",
    }
    for hook, arity in _HOOK_ARITY.items():
        method = getattr(policy, hook, None)
        if method is None:
            raise TypeError(
                f"{type(policy).__name__} has no {hook}{expected[hook]}; subclass ArmPolicy"
            )
        try:
            inspect.signature(method).bind(*([None] * arity))
        except TypeError:
            raise TypeError(
                f"{type(policy).__name__}.{hook} must accept {expected[hook]}, "
                f"its signature is {hook}{inspect.signature(method)}"
            ) from None
        except ValueError:  # no signature available (a builtin): trust it
            continue


class PolicyError(RuntimeError):
    """A policy broke the protocol: bad return value, exception, or an invalid choice."""


def call_policy(policy: ArmPolicy, hook: str, arm_id: str | None, *args: Any) -> Any:
    """Call ``policy.<hook>(*args)``, turning any exception into a :class:`PolicyError`.

    The message names the policy class, the hook and the arm, so a user-written
    policy that fails is easy to find.
    """
    try:
        return getattr(policy, hook)(*args)
    except Exception as exc:  # noqa: BLE001 — re-raised with context
        where = f" for arm {arm_id!r}" if arm_id is not None else ""
        raise PolicyError(
            f"{type(policy).__name__}.{hook} raised {type(exc).__name__}{where}: {exc}"
        ) from exc


def decide(policy: ArmPolicy, arm_id: str, step: int, score: float) -> Decision | Exploit:
    """Ask ``policy.on_result``; check the answer is a :class:`Decision` or an :class:`Exploit`."""
    decision = call_policy(policy, "on_result", arm_id, arm_id, step, score)
    if isinstance(decision, (Decision, Exploit)):
        return decision
    if isinstance(decision, str) and decision in Decision.__members__:
        return Decision(decision)
    raise PolicyError(
        f"{type(policy).__name__}.on_result returned {decision!r} for arm {arm_id!r}; "
        "expected bandit_tune.Decision.CONTINUE, PAUSE or STOP (or an Exploit)"
    )


def choose(policy: ArmPolicy, paused: Sequence[str], paused_set: Any) -> str | None:
    """Ask ``policy.choose_arm_to_resume`` and check the answer is a paused arm or None."""
    arm_id = call_policy(policy, "choose_arm_to_resume", None, paused)
    if arm_id is not None and arm_id not in paused_set:
        raise PolicyError(
            f"{type(policy).__name__}.choose_arm_to_resume returned {arm_id!r}, which is "
            f"not a paused arm; return one of the {len(paused)} paused arms or None"
        )
    return arm_id
