"""The working folders of sandboxed children: one fresh folder per child, and the sweep of those a killed astevo
left behind. Each is held by a lock its owner keeps open, which the kernel drops however the owner dies, so a
folder whose lock no process holds is abandoned, whatever pid namespace made it."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

WORKDIR_PREFIX = "astevo-sandbox-"  # then the pid of the astevo that made the folder, and a random part
_MAKING_PREFIX = "astevo-making-"  # a working folder's name until its lock is held


@contextlib.contextmanager
def working_folder() -> Iterator[str]:
    """A fresh working folder for one child, removed afterwards. This process keeps the folder itself locked (the
    kernel drops the lock when the process dies, however it dies, and the child cannot touch it); it is made under
    another name and renamed only once locked, so the sweep below never sees it unlocked while its owner lives."""
    making = Path(tempfile.mkdtemp(prefix=_MAKING_PREFIX))
    held = os.open(making, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        folder = making.with_name(f"{WORKDIR_PREFIX}{os.getpid()}-{making.name.removeprefix(_MAKING_PREFIX)}")
        os.rename(making, folder)
        try:
            yield str(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    finally:
        os.close(held)


@functools.cache
def remove_abandoned_workdirs() -> None:
    """Once per process: remove the working folders that an astevo killed mid-task (SIGKILL, the out-of-memory
    killer) could not remove itself: those whose lock no process holds. A lock, unlike a pid, also holds across
    pid namespaces (containers that share /tmp)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}[0-9]*-*"):  # not an older astevo's, unlocked
        try:
            owner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:  # gone meanwhile, or another user's
            continue
        try:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a live owner holds it
            continue
        finally:
            os.close(owner)
        shutil.rmtree(folder, ignore_errors=True)
