"""The installed command as a user runs it: a real process, with its own cache and no $ASTEVO_DATA."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def astevo(*arguments: str, cwd: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m astevo.cli ARGUMENTS` in `cwd`, with the per-user cache in cwd/cache and a wide terminal."""
    environment = {k: v for k, v in os.environ.items() if k != "ASTEVO_DATA"}
    environment.update({"XDG_CACHE_HOME": str(cwd / "cache"), "COLUMNS": "200", **(extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "astevo.cli", *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )
