"""Which policy should I use? Replay them all on recorded learning curves, in seconds.

The curves ship with bandit_tune: 256 Keras MLPs trained 27 epochs each on
scikit-learn's digits (recorded by benchmarks/record_curves.py). No Ray, no
TensorFlow: every policy sees the same curves, seeds and workers.

    python examples/compare_policies.py [--seeds 5] [--workers 2] [--plot compare.png]
"""

import argparse

import bandit_tune
from bandit_tune.policies import (
    ASHA,
    PASHA,
    UCB,
    AdaptiveASHA,
    CurveEnsemble,
    EpsilonGreedy,
    FreezeThaw,
    Hyperband,
    MedianStopping,
    SuccessiveHalving,
    ThompsonSampling,
)
from bandit_tune.replay.proposers import TPEProposer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plot", default="compare.png")
    args = parser.parse_args()

    curves = bandit_tune.load_curves("digits_mlp")
    R = curves.max_t
    print(f"{len(curves)} recorded arms x {R} epochs; best score reached: {curves.best():.4f}")
    policies = {
        "hyperband": lambda: Hyperband(R, 3),
        "successive_halving": lambda: SuccessiveHalving(R, 3),
        "asha": lambda: ASHA(R, 3),
        "asha_stopping": lambda: ASHA(R, 3, mode="stopping"),
        "adaptive_asha": lambda: AdaptiveASHA(R, 3),
        "median_stopping": lambda: MedianStopping(R, grace_period=3),
        "ucb": lambda: UCB(R, n_arms=60),
        "thompson": lambda: ThompsonSampling(R, n_arms=60, seed=0),
        "epsilon_greedy": lambda: EpsilonGreedy(R, n_arms=60, seed=0),
        "pasha": lambda: PASHA(R, 3),
        "curve_ensemble": lambda: CurveEnsemble(R, 3),
        # one Gaussian process over (configuration, epochs) ranks the rungs
        "freeze_thaw": lambda: FreezeThaw(R, 3),
        # a policy and a proposer that picks which recorded arm starts next (BOHB-style)
        "hyperband+tpe": (lambda: Hyperband(R, 3), TPEProposer),
    }
    result = bandit_tune.compare(policies, curves, seeds=range(args.seeds), n_workers=args.workers)
    table = result.table[["regret@2R", "regret@5R", "regret@10R", "regret@20R", "mean_rank"]]
    print(table.sort_values("mean_rank").round(4).to_string())
    print(f"anytime regret plot: {result.plot(args.plot)}")
    return result


if __name__ == "__main__":
    main()
