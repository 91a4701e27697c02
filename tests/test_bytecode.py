"""Arm packages without compiled bytecode are named before every worker compiles them."""

import sys

import pytest

from bandit_tune.ray_tune import cluster as runtime


def _package(root, name):
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("value = 1\n")
    return package


def test_a_package_without_bytecode_is_named_when_python_will_not_write_it(
    tmp_path, monkeypatch
):
    _package(tmp_path, "uncompiled_arm_pkg")
    compiled = _package(tmp_path, "compiled_arm_pkg")
    import py_compile

    py_compile.compile(str(compiled / "__init__.py"), doraise=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(runtime, "_ARM_PACKAGES", ("uncompiled_arm_pkg", "compiled_arm_pkg"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert runtime.uncompiled_packages() == ["uncompiled_arm_pkg"]

    monkeypatch.setattr(runtime, "_warned_uncompiled", [])
    with pytest.warns(UserWarning, match="uncompiled_arm_pkg has no compiled bytecode") as seen:
        runtime.warn_if_uncompiled()
    assert "compileall" in str(seen[0].message) and str(tmp_path) in str(seen[0].message)
    runtime.warn_if_uncompiled()  # once per process


def test_python_that_will_write_bytecode_is_not_warned_about(tmp_path, monkeypatch):
    _package(tmp_path, "writable_arm_pkg")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(runtime, "_ARM_PACKAGES", ("writable_arm_pkg", "no_such_arm_pkg"))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    assert runtime.uncompiled_packages() == []
