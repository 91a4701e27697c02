"""The Ray Tune adapter: a policy as a ``TrialScheduler``, the gated searcher, Ray's start.

- :mod:`~bandit_tune.ray_tune.scheduler`: :class:`BanditScheduler`, any arm policy
  as a Ray Tune scheduler (it translates Ray's trial events for the runner).
- :mod:`~bandit_tune.ray_tune.searchers`: new arms only when the runner wants one.
- :mod:`~bandit_tune.ray_tune.cluster`: starting or joining Ray (Ray core only;
  the pool and the arms' workers use it too).
- :mod:`~bandit_tune.ray_tune.runtime`: settings around ``tuner.fit()``.
- :mod:`~bandit_tune.ray_tune.replay_on_ray`: recorded curves replayed through Ray Tune.

Never Keras, never the pool. Nothing is imported here, so that
``bandit_tune.ray_tune.cluster`` loads without Ray Tune.
"""
