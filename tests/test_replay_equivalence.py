"""The same runner in replay and on Ray: the same decisions, budgets included.

Every built-in policy replays the same recorded curves through
:func:`bandit_tune.replay.simulate` (virtual workers) and through
:func:`bandit_tune.ray_tune.replay_on_ray.replay_on_ray` (real Ray Tune trials that report the
curves and checkpoint at the policy's decision steps), with one worker and with
two: without a budget, with an epoch budget and with a wall-clock budget on the
recorded epoch seconds. The decision sequences must be equal, step for step.
"""

import os

import numpy as np
import pytest

from bandit_tune import simulate
from bandit_tune.policies import (
    ASHA,
    UCB,
    AdaptiveASHA,
    EpsilonGreedy,
    Hyperband,
    MedianStopping,
    SuccessiveHalving,
    ThompsonSampling,
)
from bandit_tune.ray_tune.replay_on_ray import replay_on_ray
from bandit_tune.replay.simulate import Simulation

pytestmark = pytest.mark.ray

MAX_T = 9

POLICIES = {
    "hyperband": lambda budget: Hyperband(MAX_T, 3, max_total_epochs=budget),
    "successive_halving": lambda budget: SuccessiveHalving(MAX_T, 3),
    "asha": lambda budget: ASHA(MAX_T, 3),
    "asha_stopping": lambda budget: ASHA(MAX_T, 3, mode="stopping"),
    "adaptive_asha": lambda budget: AdaptiveASHA(MAX_T, 3),
    "median_stopping": lambda budget: MedianStopping(MAX_T),
    "ucb": lambda budget: UCB(MAX_T, n_arms=5),
    "thompson": lambda budget: ThompsonSampling(MAX_T, n_arms=5, seed=3),
    "epsilon_greedy": lambda budget: EpsilonGreedy(MAX_T, n_arms=5, seed=3),
}

# (name, epoch budget, wall-clock budget in recorded seconds)
BUDGETS = [("none", None, None), ("epochs", 30, None), ("seconds", None, 24.0)]


def _budget(name, budget):
    """``(epoch budget, seconds budget, the policy's planned epochs)`` of a case."""
    _, epochs, seconds_budget = budget
    plan = epochs or 200
    if name == "hyperband" and seconds_budget is None and epochs is None:
        plan = None  # Hyperband's own cycle of brackets
    return epochs, seconds_budget, plan


def _curves():
    rng = np.random.default_rng(7)
    arms = 9
    curves = np.cumsum(rng.uniform(0, 0.1, size=(arms, MAX_T)), axis=1)
    curves += rng.uniform(0, 0.3, size=(arms, 1))
    seconds = rng.uniform(0.5, 1.5, size=(arms, MAX_T)).round(3)
    return curves, seconds


# CI runs every policy without a budget, and each budget (the runner's own code, the
# same for every policy) with a synchronous and an asynchronous policy, here and with
# two workers below; BANDIT_TUNE_EQUIVALENCE=all runs every policy with every budget
# (27 Ray runs with one worker, 27 with two: about 15 minutes on two cores)
EVERY = os.environ.get("BANDIT_TUNE_EQUIVALENCE") == "all"
CASES = [(name, BUDGETS[0]) for name in sorted(POLICIES)] + [
    (name, budget) for budget in BUDGETS[1:] for name in sorted(POLICIES)
]
ONE_WORKER = (
    CASES
    if EVERY
    else CASES[: len(POLICIES)]
    + [
        ("hyperband", BUDGETS[1]),
        ("asha", BUDGETS[2]),
    ]
)


@pytest.mark.parametrize(
    "name, budget", ONE_WORKER, ids=[f"{name}-{budget[0]}" for name, budget in ONE_WORKER]
)
def test_replay_and_ray_make_the_same_decisions(ray_local, tmp_path, name, budget):
    epochs, seconds_budget, plan = _budget(name, budget)
    curves, seconds = _curves()
    simulated = simulate(
        POLICIES[name](plan),
        curves,
        n_workers=1,
        budget=epochs,
        seconds=seconds,
        time_budget=seconds_budget,
    )
    on_ray = replay_on_ray(
        POLICIES[name](plan),
        curves,
        str(tmp_path),
        max_total_epochs=epochs,
        time_budget=seconds_budget,
        seconds=seconds,
    )
    expected = [(a, s, pytest.approx(v), d) for a, s, v, d in simulated.decisions]
    assert on_ray == expected
    if epochs is not None:
        assert simulated.epochs_used <= epochs
    if seconds_budget is not None:
        # the budget stops when less than a mean epoch is left: one long epoch may overrun
        assert simulated.seconds <= seconds_budget + float(seconds.max())


# -- two workers ---------------------------------------------------------------------
# Two Ray trials run at once, so which result reaches the driver first is Ray's
# timing. The test fixes it: each report waits at a turnstile (a Ray actor) until the
# driver has done exactly what the simulator did before that result (the same arms
# added, results decided, arms resumed, ended or settled, and as many arms running),
# then goes. The decisions must then be the simulator's; a driver that does anything
# the simulator did not (a different arm resumed, an arm stopped) fails at once.

TWO_WORKERS = (
    CASES
    if EVERY
    else [
        ("hyperband", BUDGETS[0]),
        ("asha", BUDGETS[0]),
        ("thompson", BUDGETS[0]),
        ("asha", BUDGETS[1]),
        ("hyperband", BUDGETS[2]),
    ]
)


def _name(runner, arm_id):
    return f"arm_{int(runner.arms[arm_id].config['_arm']):05d}"


class _CallLog:
    """What the runner did, call by call: the calls that changed the arm table."""

    def __init__(self, runner):
        self.runner = runner
        self.events: list[tuple] = []
        self.in_flight: list[int] = []  # per result: the other arms running
        for method in ("add_arm", "report", "arm_ended", "next_arm", "settle"):
            setattr(runner, method, self._wrap(method, getattr(runner, method)))

    def _table(self):
        runner = self.runner
        return tuple(
            sorted((_name(runner, arm.arm_id), arm.state.value, arm.step) for arm in runner.arms)
        )

    def _wrap(self, method, call):
        def logged(*args, **kwargs):
            before = self._table()
            out = call(*args, **kwargs)
            after = self._table()
            if method == "report":
                if out[0] is None:
                    return out  # a repeated step: nothing happened
                self.in_flight.append(kwargs.get("in_flight", 0))
                self.events.append(("report", _name(self.runner, args[0]), args[1], after))
            elif method == "add_arm":
                self.events.append(("add", _name(self.runner, args[0]), after))
            elif after != before:
                self.events.append((method, after))
            return out

        return logged


@pytest.mark.parametrize(
    "name, budget", TWO_WORKERS, ids=[f"{name}-{budget[0]}" for name, budget in TWO_WORKERS]
)
def test_two_workers_make_the_simulators_decisions_in_its_order(ray_local, tmp_path, name, budget):
    import threading
    import time

    import ray

    epochs, seconds_budget, plan = _budget(name, budget)
    curves, seconds = _curves()
    simulation = Simulation(
        POLICIES[name](plan),
        curves,
        n_workers=2,
        budget=epochs,
        seconds=seconds,
        time_budget=seconds_budget,
    )
    expected_log = _CallLog(simulation.runner)
    simulated = simulation.run()
    expected = expected_log.events
    reports = [i for i, event in enumerate(expected) if event[0] == "report"]
    order = {(event[1], event[2]): k for k, event in enumerate(expected[i] for i in reports)}
    assert len({event[1] for event in expected if event[0] == "add"}) > 2  # slots were reused

    @ray.remote(num_cpus=0)
    class Turnstile:
        def __init__(self):
            self.released = -1

        def release(self, k):
            self.released = k

        def get(self):
            return self.released

    turnstile = Turnstile.options(name=f"turnstile-{name}-{budget[0]}").remote()

    def before_report(arm, epoch):  # in the worker: wait for this result's turn
        import time as wall

        k = order.get((f"arm_{arm:05d}", epoch))
        waited = 0.0
        while k is not None and ray.get(turnstile.get.remote()) < k and waited < 60:
            wall.sleep(0.005)
            waited += 0.005

    state = {"log": None, "scheduler": None, "diverged": None, "done": False}

    def watch():  # in the driver: release result k once the driver did what replay did
        released = -1
        while not state["done"]:
            time.sleep(0.002)
            log = state["log"]
            if log is None:
                continue
            events = list(log.events)
            if events != expected[: len(events)]:
                state["diverged"] = events
                ray.get(turnstile.release.remote(len(reports)))
                return
            k = released + 1
            if k >= len(reports) or len(events) != reports[k]:
                continue
            if epochs is not None or seconds_budget is not None:
                scheduler = state["scheduler"]
                running = sum(t.status == "RUNNING" for t in list(scheduler._trials.values()))
                if running != expected_log.in_flight[k] + 1:
                    continue
            ray.get(turnstile.release.remote(k))
            released = k

    def on_scheduler(scheduler):
        state["scheduler"] = scheduler
        state["log"] = _CallLog(scheduler.runner)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        on_ray = replay_on_ray(
            POLICIES[name](plan),
            curves,
            str(tmp_path),
            max_total_epochs=epochs,
            time_budget=seconds_budget,
            seconds=seconds,
            n_workers=2,
            before_report=before_report,
            on_scheduler=on_scheduler,
        )
    finally:
        state["done"] = True
        watcher.join()
        ray.kill(turnstile)
    assert state["diverged"] is None, _first_difference(state["diverged"], expected)
    assert on_ray == [(a, s, pytest.approx(v), d) for a, s, v, d in simulated.decisions]


def _first_difference(got, expected):
    for i, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return f"call {i}: Ray's driver did {a}, the simulator {b}"
    return f"Ray's driver did more: {got[len(expected) :]}"
