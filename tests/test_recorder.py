"""The search space recorded in a helper process; Keras imported without its extras."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

RECORD_SCRIPT = """
import json, sys
import bandit_tune
from bandit_tune.arm.recording import SpaceRecording

def build_model(hp):
    import keras
    units = hp.Int("units", 8, 64, step=8)
    rate = hp.Choice("learning_rate", [1e-2, 1e-3])
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(units),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(rate), loss="sparse_categorical_crossentropy")
    return model

def broken(hp):
    hp.Int("units", 8, 64)
    raise ValueError("broken on purpose")

from bandit_tune.arm.hypermodel import as_hypermodel
space, problem = SpaceRecording(as_hypermodel(build_model)).result()
assert problem is None
tensorflow_here = "tensorflow" in sys.modules
try:
    SpaceRecording(as_hypermodel(broken)).result()
    error = None
except ValueError as exc:
    error = str(exc)
print("OUT " + json.dumps({"params": sorted(space.params), "error": error,
                           "tensorflow_here": tensorflow_here}))
"""


def test_the_space_is_recorded_in_a_helper_and_errors_are_raised_here():
    done = subprocess.run(
        [sys.executable, "-c", RECORD_SCRIPT], capture_output=True, text=True, env=ENV, timeout=300
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("OUT ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-3000:]
    out = json.loads(line.removeprefix("OUT "))
    assert out["params"] == ["learning_rate", "units"]
    assert out["error"] == "broken on purpose"  # re-raised by recording in this process
    assert out["tensorflow_here"] is False  # the helper imported it, not this process


LEAN_SCRIPT = """
import json, sys
from bandit_tune.arm.setup import import_keras_lean
import_keras_lean()
loaded = {name: name in sys.modules for name in ("keras", "sklearn", "matplotlib", "pandas")}
import sklearn, pandas  # still importable afterwards
print("OUT " + json.dumps(loaded))
"""


def test_keras_is_imported_without_its_optional_integrations():
    done = subprocess.run(
        [sys.executable, "-c", LEAN_SCRIPT], capture_output=True, text=True, env=ENV, timeout=300
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("OUT ")), None)
    assert line is not None, done.stdout[-2000:] + done.stderr[-3000:]
    assert json.loads(line.removeprefix("OUT ")) == {
        "keras": True,
        "sklearn": False,
        "matplotlib": False,
        "pandas": False,
    }
