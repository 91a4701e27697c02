"""Keras callbacks that break an arm: SIGKILL its worker once mid-epoch, or raise."""

import os
import signal

import keras


class KillOnce(keras.callbacks.Callback):
    """At batch 2 of ``epoch`` (1-based): write the arm's id to ``marker``, SIGKILL the worker."""

    def __init__(self, marker, epoch):
        super().__init__()
        self.marker, self.epoch, self.current = marker, epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == 2 and not os.path.exists(self.marker):
            from ray import tune

            with open(self.marker, "w") as f:
                f.write(tune.get_context().get_trial_id())
            os.kill(os.getpid(), signal.SIGKILL)


class MissingModule(keras.callbacks.Callback):
    """Fails every arm as a module the workers cannot import would."""

    def on_train_begin(self, logs=None):
        raise ModuleNotFoundError("No module named 'only_on_the_driver'")


class ScrambleWeightsAt(keras.callbacks.Callback):
    """At the start of ``epoch`` (1-based), overwrite every weight with noise: the score drops."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            import numpy as np

            rng = np.random.default_rng(0)
            self.model.set_weights(
                [rng.normal(0, 5, size=w.shape).astype(w.dtype) for w in self.model.get_weights()]
            )
            self.model.stop_training = False


class RecordPlacement(keras.callbacks.Callback):
    """Appends a JSON line to ``path`` after every epoch: the arm's Ray resources, GPU ids,
    node, process, when this fit began and when the epoch ended (a paused or stopped
    arm's fit never reaches ``on_train_end``)."""

    def __init__(self, path):
        super().__init__()
        self.path, self.row = path, {}

    def on_train_begin(self, logs=None):
        import time

        import ray

        context = ray.get_runtime_context()
        self.row = {
            "pid": os.getpid(),
            "node": context.get_node_id(),
            "resources": context.get_assigned_resources(),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "begin": time.time(),
        }

    def on_epoch_end(self, epoch, logs=None):
        import json
        import time

        with open(self.path, "a") as f:
            f.write(json.dumps({**self.row, "end": time.time()}) + "\n")


class SlowEpochs(keras.callbacks.Callback):
    """Sleeps ``seconds`` after every epoch: a fast search leaves a fault test time to act."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs=None):
        import time

        time.sleep(self.seconds)
