"""The project folder: names that escape it, overwrite, the lock, atomic snapshots."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import bandit_tune
from bandit_tune.driver.project import (
    LOCK_FILE,
    MARKER_FILE,
    Project,
    ProjectLockedError,
    check_project_name,
    open_project,
    read_state,
    write_json,
)

X = np.zeros((20, 8, 8), dtype="float32")
Y = np.arange(20) % 2


def build(hp):
    import keras

    hp.Int("units", 4, 8, step=4)
    model = keras.Sequential([keras.Input((8, 8)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def tuner(directory, project_name, **kwargs):
    return bandit_tune.RandomSearch(
        build,
        objective="val_loss",
        max_trials=1,
        directory=str(directory),
        project_name=project_name,
        verbose=0,
        **kwargs,
    )


@pytest.mark.parametrize(
    "name, why",
    [
        (".", "is '.'"),
        ("..", "is '..'"),
        ("../sibling", "path separator"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("/tmp/elsewhere", "absolute path"),
        ("", "non-empty string"),
        ("  ", "non-empty string"),
        (3, "non-empty string"),
    ],
)
def test_a_project_name_that_escapes_the_directory_is_refused_at_construction(tmp_path, name, why):
    with pytest.raises(ValueError, match="project_name") as info:
        tuner(tmp_path, name, overwrite=True)
    assert why in str(info.value)


def test_check_project_name_accepts_plain_names():
    for name in ("digits", "run.2", "my project", "..hidden", "a..b"):
        assert check_project_name(name) == name


def _layout(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_overwrite_never_deletes_a_folder_this_library_did_not_write(tmp_path):
    mine = tmp_path / "results" / "thesis"
    mine.mkdir(parents=True)
    (mine / "chapter1.tex").write_text("months of work")
    sibling = tmp_path / "results" / "other"
    sibling.mkdir()
    (sibling / "keep.txt").write_text("keep")
    before = _layout(tmp_path)
    with pytest.raises(ValueError, match="refuses to delete .*thesis.*did not write"):
        tuner(tmp_path / "results", "thesis", overwrite=True).search(X, Y, validation_split=0.25)
    assert _layout(tmp_path) == before
    assert (mine / "chapter1.tex").read_text() == "months of work"


def test_overwrite_refuses_a_symbolic_link(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / MARKER_FILE).write_text("{}")
    (tmp_path / "results").mkdir()
    os.symlink(target, tmp_path / "results" / "p")
    with pytest.raises(ValueError, match="symbolic link"):
        Project(tmp_path / "results", "p").refuse_foreign_overwrite()
    assert (target / MARKER_FILE).exists()


def test_clear_removes_the_projects_files_and_keeps_the_lock(tmp_path):
    with Project(tmp_path, "p") as project:
        for name in ("state.json", "arms.json"):
            (tmp_path / "p" / name).write_text("{}")
        (tmp_path / "p" / "resume1" / "trial").mkdir(parents=True)
        project.refuse_foreign_overwrite()  # its own folder: allowed
        project.clear()
        assert sorted(os.listdir(tmp_path / "p")) == sorted([LOCK_FILE, MARKER_FILE])
    assert (tmp_path / "p").is_dir()


def test_clear_needs_the_lock(tmp_path):
    with pytest.raises(RuntimeError, match="lock"):
        Project(tmp_path, "p").clear()


def test_a_search_without_a_snapshot_is_kept_apart_and_a_foreign_folder_untouched(tmp_path):
    foreign = tmp_path / "p"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    project, resume = open_project(str(tmp_path), "p", overwrite=False)
    try:
        assert project.name.startswith("p_") and project.path != str(foreign)
        assert sorted(os.listdir(foreign)) == ["notes.txt"] and resume is None
    finally:
        project.release()


_HOLDER = """
import sys, time
from bandit_tune.driver.project import Project
project = Project(sys.argv[1], "p")
project.acquire()
print("LOCKED", flush=True)
time.sleep(600)
"""


def _hold_lock(directory):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "LOCKED"
    return holder


def test_a_second_driver_fails_at_once_naming_the_first(tmp_path):
    holder = _hold_lock(tmp_path)
    try:
        started = time.monotonic()
        with pytest.raises(ProjectLockedError) as info:
            tuner(tmp_path, "p").search(X, Y, validation_split=0.25)
        assert time.monotonic() - started < 10
        message = str(info.value)
        assert f"pid {holder.pid} on host {socket.gethostname()!r}" in message
        assert "another project_name" in message
        # overwrite=True does not get past a live driver either
        with pytest.raises(ProjectLockedError):
            tuner(tmp_path, "p", overwrite=True).search(X, Y, validation_split=0.25)
        assert (tmp_path / "p" / MARKER_FILE).exists()
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_driver_is_taken_over_with_a_message(tmp_path):
    holder = _hold_lock(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    project = Project(tmp_path, "p")
    with pytest.warns(UserWarning, match=rf"taking over the lock .*pid {holder.pid} on host"):
        project.acquire()
    try:
        held = json.loads((tmp_path / "p" / LOCK_FILE).read_text())
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
    finally:
        project.release()
    # a clean release leaves an empty lock file: the next driver takes it silently
    assert (tmp_path / "p" / LOCK_FILE).read_text() == ""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with Project(tmp_path, "p"):
            pass


def test_snapshots_are_written_atomically_and_a_damaged_one_says_what_to_do(tmp_path):
    path = str(tmp_path / "state.json")
    write_json(path, {"version": 1, "arms": {}})
    assert read_state(path) == {"version": 1, "arms": {}}
    assert os.listdir(tmp_path) == ["state.json"]  # no temporary file left behind

    class Unserialisable:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_json(path, {"bad": Unserialisable()})
    assert read_state(path) == {"version": 1, "arms": {}}  # the old file is intact
    assert os.listdir(tmp_path) == ["state.json"]

    for damaged in ('{"version": 1, "ar', "", "[1, 2]"):
        (tmp_path / "state.json").write_text(damaged)
        with pytest.raises(ValueError, match=r"state\.json is damaged.*overwrite=True"):
            read_state(path)


def test_a_damaged_snapshot_stops_the_search_before_ray_starts(tmp_path):
    with Project(tmp_path, "p"):
        pass
    (tmp_path / "p" / "state.json").write_text('{"version": 1, "arms": {"a0"')
    with pytest.raises(ValueError, match=r"state\.json is damaged") as info:
        tuner(tmp_path, "p").search(X, Y, validation_split=0.25)
    assert "overwrite=True" in str(info.value)
    # and the lock was released on the way out
    with Project(tmp_path, "p"):
        pass
