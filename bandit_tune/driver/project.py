"""The project folder ``directory/project_name``: its name, its owner, its files.

A search keeps everything it writes in one folder. This module decides what that
folder may be and who may use it, with no Ray or TensorFlow import:

- :func:`check_project_name` refuses a ``project_name`` that escapes ``directory``
  (``"."``, ``".."``, ``"../x"``, ``"a/b"``, an absolute path), before anything is
  created or deleted;
- :class:`Project` marks the folder as bandit_tune's (a ``.bandit_tune`` file),
  locks it for one driver at a time (an OS file lock, released by the OS when its
  process dies, so a killed driver never leaves a lock that blocks), and clears
  it for ``overwrite=True`` only when the folder is recognisably bandit_tune's;
- :func:`write_json` writes a file atomically (temp file, fsync, rename) and
  :func:`read_state` reads a snapshot back, naming the file and the way out when
  it is damaged.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import warnings
from typing import Any

MARKER_FILE = ".bandit_tune"
"""Written into every project folder this library creates: how ``overwrite`` knows it."""
LOCK_FILE = ".bandit_tune.lock"
"""The project's lock file; it holds the pid and host of the driver that locks it."""
STATE_FILE = "state.json"
"""The search's snapshot: what a resumed search starts from."""
ARMS_FILE = "arms.json"
"""Per-arm results and decisions, for ``bandit-tune report`` and plots."""
_OWN_FILES = (MARKER_FILE, STATE_FILE, ARMS_FILE)


class ProjectLockedError(RuntimeError):
    """Another live driver holds the project folder's lock."""


def check_project_name(name: Any) -> str:
    """Return ``name`` if it names one folder inside ``directory``; raise ``ValueError`` if not.

    >>> check_project_name("digits")
    'digits'
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"project_name must be a non-empty string, got {name!r}")
    separators = {"/", "\\", os.sep} | ({os.altsep} if os.altsep else set())
    bad = None
    if os.path.isabs(name) or name.startswith(("/", "\\")):
        bad = "is an absolute path"
    elif any(s in name for s in separators):
        bad = "contains a path separator"
    elif name.strip() in (".", ".."):
        bad = f"is {name.strip()!r}"
    elif "\0" in name:
        bad = "contains a NUL character"
    elif os.path.splitdrive(name)[0]:
        bad = "names a drive"
    if bad is not None:
        raise ValueError(
            f"project_name={name!r} {bad}: it must name one folder inside directory "
            "(for example project_name='digits'); put the parent folders in directory="
        )
    return name


def is_own_folder(path: str) -> bool:
    """Whether ``path`` is a project folder bandit_tune wrote (its marker, state or arms file)."""
    return any(os.path.isfile(os.path.join(path, f)) for f in _OWN_FILES)


def write_json(path: str, payload: Any) -> None:
    """Write ``payload`` as JSON to ``path`` atomically: a reader sees the old or the new file.

    The data goes to a temporary file in the same folder, is flushed to disk
    (fsync), and replaces ``path`` in one rename, so a driver killed mid-write
    never leaves a truncated file behind.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(payload, f, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_state(path: str) -> dict[str, Any]:
    """Read a snapshot written by :func:`write_json`; a damaged one raises a ``ValueError``."""
    try:
        with open(path) as f:
            payload = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(
            f"the search's snapshot {path} is damaged ({exc}); the search cannot resume from "
            "it. Pass overwrite=True to start afresh, or restore the file from a backup"
        ) from exc
    if not isinstance(payload, dict):
        raise ValueError(
            f"the search's snapshot {path} is damaged (it holds a {type(payload).__name__}, "
            "not a search state); pass overwrite=True to start afresh"
        )
    return payload


def _lock(fd: int) -> bool:
    """Take an exclusive lock on ``fd`` without waiting; False when another process holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    return True


def _unlock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_UN)


def _describe(holder: str) -> str:
    try:
        info = json.loads(holder)
        return (
            f"pid {info.get('pid')} on host {info.get('host')!r}, "
            f"started {info.get('started', '?')}"
        )
    except (json.JSONDecodeError, AttributeError):
        return holder.strip() or "an unknown process"


class Project:
    """The folder ``directory/project_name`` of one search, locked while the search runs.

    >>> import tempfile
    >>> with Project(tempfile.mkdtemp(), "digits") as project:
    ...     os.path.isfile(os.path.join(project.path, ".bandit_tune"))
    True
    """

    def __init__(self, directory: str, name: str) -> None:
        self.directory = os.path.abspath(directory)
        self.name = check_project_name(name)
        self._fd: int | None = None

    @property
    def path(self) -> str:
        """``directory/project_name``."""
        return os.path.join(self.directory, self.name)

    @property
    def locked(self) -> bool:
        """Whether this object holds the folder's lock."""
        return self._fd is not None

    def refuse_foreign_overwrite(self) -> None:
        """Raise before ``overwrite=True`` would delete a folder bandit_tune did not write."""
        path = self.path
        if os.path.islink(path):
            raise ValueError(
                f"overwrite=True refuses to delete {path}: it is a symbolic link, not a "
                "project folder bandit_tune wrote"
            )
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(f"{path} exists and is a file, not a project folder")
        if os.path.isdir(path) and os.listdir(path) and not is_own_folder(path):
            raise ValueError(
                f"overwrite=True refuses to delete {path}: it holds files that bandit_tune did "
                f"not write (no {MARKER_FILE}, {STATE_FILE} or {ARMS_FILE}). Choose another "
                "project_name or directory, or delete the folder yourself"
            )

    def acquire(self) -> None:
        """Create the folder (with its marker) and lock it; fail at once if a live driver has it.

        The lock is an OS file lock on :data:`LOCK_FILE`, which the OS releases when
        its process dies. A lock file that still names a driver although nobody
        holds the lock was left by a driver that was killed: it is taken over, with
        a warning that says whose it was.
        """
        if self._fd is not None:
            return
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        marker = os.path.join(self.path, MARKER_FILE)
        if not os.path.exists(marker):
            write_json(marker, {"library": "bandit_tune", "created": time.time()})
        fd = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
        if not _lock(fd):
            holder = os.pread(fd, 4096, 0).decode(errors="replace")
            os.close(fd)
            raise ProjectLockedError(
                f"project {self.path} is in use by another search ({_describe(holder)}). Two "
                "drivers on one project would mix their arms; wait for it to end, or use "
                "another project_name"
            )
        left = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if left:
            warnings.warn(
                f"taking over the lock of project {self.path}: the search that held it "
                f"({_describe(left)}) ended without releasing it (it was killed)",
                stacklevel=3,
            )
        holder = json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        ).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder, 0)
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        """Empty the lock file (a clean end) and release the lock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            _unlock(fd)
        finally:
            os.close(fd)

    def clear(self) -> None:
        """Delete what earlier searches wrote in the folder, keeping the lock held.

        Only for a folder this library wrote (see :meth:`refuse_foreign_overwrite`);
        called with the lock held, so no other driver is using it.
        """
        if self._fd is None:
            raise RuntimeError("clear() needs the project's lock; call acquire() first")
        for entry in os.listdir(self.path):
            if entry in (LOCK_FILE, MARKER_FILE):
                continue
            where = os.path.join(self.path, entry)
            if os.path.isdir(where) and not os.path.islink(where):
                shutil.rmtree(where)
            else:
                os.unlink(where)

    def __enter__(self) -> Project:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def load_arms(project_dir: str) -> dict[str, Any]:
    """Read the ``arms.json`` a tuner wrote into ``project_dir``."""
    import json
    import os

    path = os.path.join(project_dir, "arms.json")
    if not os.path.exists(path):
        state = os.path.join(project_dir, "state.json")
        if os.path.exists(state):
            # a search killed before it wrote arms.json: its snapshot holds every result
            payload = read_state(state)
            metric, mode = (payload.get("metric") or [None, "max"])[:2]
            policy = payload.get("policy") or {}
            rungs = list(payload.get("rungs") or [])
            return {
                "objective": [metric, mode],
                "results": payload.get("results", {}),
                "decisions": payload.get("history", {}),
                "policy": policy,
                "rungs": rungs,
                "interrupted": "state.json",
            }
        raise FileNotFoundError(
            f"{project_dir!r} holds no bandit_tune search (no arms.json or state.json); give "
            "the directory/project_name folder of a search"
        )
    with open(path) as f:
        return json.load(f)


def _foreign(path: str) -> bool:
    """Whether ``path`` is a non-empty folder (or a file) that this library did not write."""
    if not os.path.exists(path):
        return False
    return not os.path.isdir(path) or (bool(os.listdir(path)) and not is_own_folder(path))


def _holds_results(path: str) -> bool:
    """Whether a project folder holds anything beyond this library's marker and lock."""
    return any(entry not in (LOCK_FILE, MARKER_FILE) for entry in os.listdir(path))


def open_project(
    directory: str, name: str, overwrite: bool, keep_apart: bool = True
) -> tuple[Project, dict[str, Any] | None]:
    """Lock ``directory/name`` for a search; return it and the snapshot it resumes (or ``None``).

    The one rule for a search's folder, shared by the tuner and
    :func:`bandit_tune.run_arms`: ``overwrite=True`` deletes only a folder this
    library wrote, and only once the lock is held; a folder with a snapshot
    resumes (keras-tuner's convention). With ``keep_apart`` a folder this library
    did not write, or an earlier search's without a snapshot, is left alone and the
    search starts beside it under a timestamped name (see the returned project's
    ``name``).
    """
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create results directory {directory!r}: {exc}") from exc
    if not os.access(directory, os.W_OK):
        raise PermissionError(
            f"results directory {directory!r} is not writable; pass directory= a "
            "folder you can write to"
        )
    project = Project(directory, name)
    if overwrite:
        project.refuse_foreign_overwrite()
    elif keep_apart and _foreign(project.path):
        project = _timestamped(directory, name)
    project.acquire()  # fails at once while another live driver holds the project
    try:
        state_path = os.path.join(project.path, STATE_FILE)
        resume = None
        if overwrite:
            project.clear()
        elif os.path.exists(state_path):
            resume = read_state(state_path)
        elif keep_apart and _holds_results(project.path):
            project.release()
            project = _timestamped(directory, name)
            project.acquire()
    except BaseException:
        project.release()
        raise
    return project, resume


def _timestamped(directory: str, name: str) -> Project:
    return Project(directory, f"{name}_{time.strftime('%Y%m%d-%H%M%S')}")


def check_unchanged(saved: Any, now: dict[str, Any], path: str) -> None:
    """Refuse to resume the search in ``path`` when its fingerprint changed.

    ``saved`` and ``now`` are plain dicts (space, objective, policy, data shapes...);
    a snapshot of an older version without one (``saved`` not a dict) is taken as is.
    """
    if not isinstance(saved, dict):
        return
    changed = [
        f"{key}: was {saved.get(key)}, now {value}"
        for key, value in now.items()
        if saved.get(key) != value
    ]
    if changed:
        raise ValueError(
            f"the search in {path} was started with other settings, so it "
            f"cannot be resumed: {'; '.join(changed)}. Pass overwrite=True to start "
            "afresh (or another project_name), or run it with the settings it had"
        )
