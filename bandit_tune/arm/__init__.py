"""One arm's training: the only part of the library that imports Keras or TensorFlow.

Training an arm and its folds (:mod:`~bandit_tune.arm.train`,
:mod:`~bandit_tune.arm.cv`), the per-epoch report and checkpoints
(:mod:`~bandit_tune.arm.checkpoints`, :mod:`~bandit_tune.arm.report`), model state
and reuse, inputs and fit checks, keras-tuner's ``HyperModel``
(:mod:`~bandit_tune.arm.hypermodel`), recording a search space in a helper process
(:mod:`~bandit_tune.arm.recording`) and a worker's set-up
(:mod:`~bandit_tune.arm.setup`). Nothing is imported here: Keras loads only where
an arm trains.
"""
