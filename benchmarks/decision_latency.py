"""Decision latency per result vs number of arms: bandit_tune's policies and Ray's ASHA.

Each policy first receives one result per arm at its bottom rung (``n`` arms),
then the time of further results at that rung is measured (median and p99 in
microseconds). Ray's ``AsyncHyperBandScheduler`` is timed through its bracket
object (``_Bracket.on_result``), which is where it recomputes a percentile.

    python benchmarks/decision_latency.py [--arms 1000 10000 100000 1000000]

Also printed: the memory of one policy's state with 1,000,000 arms at the bottom
rung (tracemalloc), and the replay time of 10,000 arms x 52 epochs through ASHA.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bandit_tune import simulate
from bandit_tune.policies import (
    ASHA,
    PASHA,
    AdaptiveASHA,
    CurveEnsemble,
    CurveFit,
    FreezeThaw,
    Hyperband,
    MedianStopping,
    SuccessiveHalving,
)


def time_policy(make, n_arms: int, probes: int = 2000) -> tuple[float, float]:
    policy = make()
    rng = np.random.default_rng(0)
    scores = rng.uniform(size=n_arms + probes)
    # two hyperparameters per arm (a policy that models configurations reads them)
    lrs, units = 10 ** rng.uniform(-4, -1, n_arms + probes), rng.integers(1, 9, n_arms + probes)
    for i in range(n_arms + probes):
        policy.on_arm_added(f"a{i}", {"learning_rate": lrs[i], "units": 32 * int(units[i])})
    for i in range(n_arms):
        policy.on_result(f"a{i}", 1, float(scores[i]))
    samples = []
    for i in range(n_arms, n_arms + probes):
        start = time.perf_counter_ns()
        policy.on_result(f"a{i}", 1, float(scores[i]))
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * len(samples))]


def time_ray_asha(n_arms: int, probes: int = 200) -> tuple[float, float] | None:
    try:
        from ray.tune.schedulers.async_hyperband import _Bracket
    except ImportError:
        return None

    class _Trial:  # the only attribute the bracket reads
        __slots__ = ("trial_id",)

        def __init__(self, trial_id: str) -> None:
            self.trial_id = trial_id

    bracket = _Bracket(min_t=1, max_t=27, reduction_factor=3, s=0)
    rng = np.random.default_rng(0)
    bottom = dict(bracket._rungs)[1]  # fill the bottom rung directly: O(n) setup, not O(n^2)
    bottom.update((f"a{i}", float(v)) for i, v in enumerate(rng.uniform(size=n_arms)))
    samples = []
    for i in range(probes):
        trial = _Trial(f"p{i}")
        start = time.perf_counter_ns()
        bracket.on_result(trial, 1, float(rng.uniform()))
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * len(samples))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arms", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--memory-arms", type=int, default=1_000_000)
    args = parser.parse_args()
    makers = {
        "ASHA": lambda: ASHA(27, 3),
        "ASHA(stopping)": lambda: ASHA(27, 3, mode="stopping"),
        "AdaptiveASHA": lambda: AdaptiveASHA(27, 3),
        "SuccessiveHalving": lambda: SuccessiveHalving(27, 3, n_arms=10**7),
        "Hyperband": lambda: Hyperband(27, 3),
        "MedianStopping": lambda: MedianStopping(27),
        "PASHA": lambda: PASHA(27, 3),
        "CurveEnsemble": lambda: CurveEnsemble(27, 3),
        "FreezeThaw": lambda: FreezeThaw(27, 3),
    }
    curve_fit()
    replay()
    memory(args.memory_arms)
    print(f"{'policy':<20}{'arms':>10}{'median us':>12}{'p99 us':>10}")
    for n in args.arms:
        for name, make in makers.items():
            median, p99 = time_policy(make, n)
            print(f"{name:<20}{n:>10}{median:>12.2f}{p99:>10.2f}")
        ray = time_ray_asha(n)
        if ray is not None:
            print(f"{'Ray ASHAScheduler':<20}{n:>10}{ray[0]:>12.2f}{ray[1]:>10.2f}")


def curve_fit(probes: int = 20_000) -> None:
    """Microseconds of one CurveFit update and of one prediction at max_t (9 points)."""
    fit = CurveFit()
    for t in range(1, 10):
        fit.add(t, 0.9 - 0.5 / t)
    adds, predictions = [], []
    for _ in range(probes):
        probe = CurveFit()
        start = time.perf_counter_ns()
        probe.add(1, 0.5)
        adds.append((time.perf_counter_ns() - start) / 1000)
        start = time.perf_counter_ns()
        fit.predict(27)
        predictions.append((time.perf_counter_ns() - start) / 1000)
    print(
        f"CurveFit (any number of arms): add {statistics.median(adds):.2f} us, "
        f"predict at max_t {statistics.median(predictions):.2f} us (medians)"
    )


def replay() -> None:
    """Seconds of one core to replay 10,000 arms x 52 epochs through ASHA (2 workers)."""
    rng = np.random.default_rng(1)
    curves = np.cumsum(rng.uniform(0, 0.05, size=(10_000, 52)), axis=1)
    start = time.process_time()
    result = simulate(ASHA(52, 3), curves, n_workers=8)
    seconds = time.process_time() - start
    print(
        f"replay: 10,000 arms x 52 epochs through ASHA: {seconds:.2f} s CPU, "
        f"{result.epochs_used} epochs replayed"
    )


def memory(n_arms: int) -> None:
    """Bytes of ASHA's and Hyperband's state with ``n_arms`` arms past their first rung."""
    import tracemalloc

    for name, make in (("ASHA", lambda: ASHA(27, 3)), ("Hyperband", lambda: Hyperband(27, 3))):
        rng = np.random.default_rng(0)
        scores = rng.uniform(size=n_arms)
        tracemalloc.start()
        policy = make()
        for i in range(n_arms):
            arm = f"a{i}"
            policy.on_arm_added(arm, {})
            policy.on_result(arm, 1, float(scores[i]))
        current, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"memory: {name} with {n_arms:,} arms: {current / 2**20:.0f} MiB")
        del policy


if __name__ == "__main__":
    main()
