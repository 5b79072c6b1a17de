"""Where astevo finds its own files and keeps the user's: the bundled seed model file and the per-user cache."""

from __future__ import annotations

import os
import shutil
from importlib.resources import files
from pathlib import Path

DEFAULT_SEED = "exquisitenetv2.py"


def default_seed_path() -> Path:
    """The bundled seed model file, inside the installed package (no checkout needed)."""
    return Path(str(files("astevo.seeds").joinpath(DEFAULT_SEED)))


def user_cache_root() -> Path:
    """The per-user folder, following XDG, that holds data sets and evaluation results."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "astevo"


def data_cache_dir() -> Path:
    """Searched last for data sets (tools/fetch_cifar10.py unpacks here)."""
    return user_cache_root() / "data"


def evaluation_cache_dir() -> Path:
    return user_cache_root() / "evaluations"


def image_cache_dir() -> Path:
    """Image folders decoded once into arrays, one subfolder per folder state and side."""
    return user_cache_root() / "images"


def remove_if_abandoned(folder: Path, owner: str) -> None:
    """Remove a folder that a process named after its pid (`owner`) while it filled it, once that process is gone:
    a crash or SIGKILL left it, and nothing will finish it. Only this user's folders are touched."""
    try:
        mine = folder.lstat().st_uid == os.getuid()
    except OSError:
        return
    if mine and owner.isascii() and owner.isdigit() and not _process_exists(int(owner)):
        shutil.rmtree(folder, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such process; no such pid at all
        return False
    except PermissionError:  # another user's process
        return True
    return True
