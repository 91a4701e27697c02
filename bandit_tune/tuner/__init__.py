"""The keras-tuner / scikit-learn facade: :class:`~bandit_tune.tuner.search.BanditTuner`.

The tuner classes keras-tuner users know (:mod:`~bandit_tune.tuner.tuners`), the
read-only oracle view (:mod:`~bandit_tune.tuner.oracle`), the results table, its
diagnosis and plots (:mod:`~bandit_tune.tuner.results`) and the progress line
(:mod:`~bandit_tune.tuner.progress`). Nothing is imported here: the names load from
``bandit_tune`` on first use.
"""
