"""End-to-end: every example runs (small settings), sharing the session's Ray."""

import os
import runpy
import sys

import pytest

pytestmark = pytest.mark.ray
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def _run(name, argv, monkeypatch):
    monkeypatch.setattr(sys, "argv", [name, *argv])
    module = runpy.run_path(os.path.join(EXAMPLES, name), run_name="example")
    return module["main"]()


def test_keras_tuner_mnist_example(ray_local, tmp_path, monkeypatch, capsys):
    tuner = _run(
        "keras_tuner_mnist.py",
        ["--data", "digits", "--max-epochs", "3", "--directory", str(tmp_path), "--limit", "500"],
        monkeypatch,
    )
    out = capsys.readouterr().out
    assert "test accuracy of the best model" in out
    assert int(tuner.results_["epochs"].sum()) == tuner.policy.budget
