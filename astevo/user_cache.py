"""The per-user folder astevo keeps data and evaluation results in, following XDG."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "astevo"
