"""A run whose disk fills up, or whose folder stops being writable, stops with a word instead of a traceback.

SQLite writes each step in a transaction, so what was stored before the fault is intact; the run goes on
with `--resume` once there is room (or from a copy of the folder on a larger disk).
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

STORAGE_EXIT = 74  # sysexits' EX_IOERR: the run's storage failed, the input was fine


def storage_problem(error: BaseException, folder: Path) -> str | None:
    """What went wrong with the disk, in words, when `error` is a full disk or a folder that cannot be written."""
    if isinstance(error, sqlite3.OperationalError):
        text = str(error)
        if "disk is full" in text:
            return f"the disk holding {folder} is full (SQLite: {text})"
        if "disk I/O error" in text:  # also what a full disk gives while SQLite grows its write-ahead log
            return f"a write to the disk holding {folder} failed (SQLite: {text})"
        if "readonly" in text or "read-only" in text or "unable to open database file" in text:
            return f"{folder} cannot be written any more (SQLite: {text})"
        return None
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the disk holding {error.filename or folder} ({error.strerror})"
    if isinstance(error, OSError) and error.errno == errno.EROFS:
        return f"{error.filename or folder} is on a read-only file system"
    return None


def storage_advice(folder: Path) -> str:
    return (
        f"nothing stored is lost; free space (or make the folder writable, or copy {folder} to a larger disk), "
        f"then continue with: astevo evolve --run {folder} --resume"
    )
