"""The public API, listed: a name that disappears (or stops importing) fails here.

Each package's exported names, and the module paths the docs and earlier releases
used (``bandit_tune.proposers``, ``bandit_tune.runtime.ensure_ray``...), which
load the modules they moved to. No Ray, no Keras: only the imports are checked.
"""

import importlib

import pytest

EXPORTED = {
    "bandit_tune": """ASHA ArmPolicy BanditScheduler BanditTuner BayesianOptimization Boolean
        Choice Comparison Curves Decision Exploit Fixed Float GridSearch HyperModel
        HyperParameter HyperParameters Hyperband Int Objective PB2 PolicyError PoolResult
        PopulationBasedTraining RandomSearch SearchSpace SimulationResult SuccessiveHalving
        as_curves compare load_curves record_space run_arms simulate""",
    "bandit_tune.policies": """ASHA AdaptiveASHA ArmPolicy ArmState CurveBandit
        CurveEnsemble CurveFit Decision EpsilonGreedy Exploit FreezeThaw Hyperband MOASHA
        MOHyperband MOSuccessiveHalving MedianStopping PASHA PB2 PolicyError
        PopulationBasedTraining SuccessiveHalving ThompsonSampling TopKAfterWarmup UCB
        bracket_epochs call_policy check_policy choose decide halving_bracket
        hyperband_brackets hypervolume kendall_tau non_dominated_fronts pareto_order""",
    "bandit_tune.driver": "Arm ArmState ArmTable NEW PausedView RESUME RecordedClock Runner "
    "WAIT plain_config",
    "bandit_tune.pool": """ArmWorker FunctionArm PoolResult PoolSearch current_arm
        get_checkpoint latest_checkpoint report run_arms shutdown_pool start_workers
        warm_worker""",
    "bandit_tune.replay": "Comparison Curves SimulationResult as_curves compare load_curves "
    "simulate",
}

#: Module paths of the flat layout, still importable, with a name each must hold.
OLD_PATHS = {
    "bandit_tune.budget": "Budget",
    "bandit_tune.project": "Project",
    "bandit_tune.lineage": "lineage_rows",
    "bandit_tune.simulate": "simulate",
    "bandit_tune.curves": "load_curves",
    "bandit_tune.compare": "compare",
    "bandit_tune.proposers": "GPProposer",
    "bandit_tune.scheduler": "BanditScheduler",
    "bandit_tune.searchers": "GatedSearcher",
    "bandit_tune.runtime": "ensure_ray",
    "bandit_tune.hypermodel": "HyperModel",
    "bandit_tune.search": "BanditTuner",
    "bandit_tune.tuners": "Hyperband",
    "bandit_tune.results": "load_arms",
    "bandit_tune.oracle": "Oracle",
}


@pytest.mark.parametrize("module", sorted(EXPORTED))
def test_every_exported_name_is_still_there_and_imports(module):
    package = importlib.import_module(module)
    expected = set(EXPORTED[module].split())
    missing = expected - set(package.__all__)
    assert not missing, f"{module} lost {sorted(missing)}"
    for name in sorted(expected):
        assert getattr(package, name) is not None, name


@pytest.mark.parametrize("module", sorted(OLD_PATHS))
def test_the_flat_layouts_module_paths_load_the_moved_modules(module):
    loaded = importlib.import_module(module)
    assert hasattr(loaded, OLD_PATHS[module]), module
    assert loaded.__name__ != module  # the module itself, under its new name


def test_importing_an_old_path_never_rebinds_the_function_of_the_same_name():
    import bandit_tune

    importlib.import_module("bandit_tune.simulate")
    importlib.import_module("bandit_tune.compare")
    assert callable(bandit_tune.simulate) and callable(bandit_tune.compare)
    assert not hasattr(bandit_tune.simulate, "__path__")
