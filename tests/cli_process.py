"""The installed command as a user runs it: a real process, with its own cache and no $ASTEVO_DATA."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def astevo(*arguments: str, cwd: Path, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m astevo.cli ARGUMENTS` in `cwd`, with the per-user cache in cwd/cache and a wide terminal."""
    return subprocess.run(
        [sys.executable, "-m", "astevo.cli", *arguments],
        cwd=cwd,
        env=user_environment(cwd, extra),
        capture_output=True,
        text=True,
        timeout=1200,
    )


def user_environment(cwd: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """A user's environment for astevo started in `cwd`: its own per-user cache, a wide terminal, no $ASTEVO_DATA."""
    environment = {k: v for k, v in os.environ.items() if k != "ASTEVO_DATA"}
    environment.update({"XDG_CACHE_HOME": str(cwd / "cache"), "COLUMNS": "200", **(extra or {})})
    return environment


def small_validation(folder: Path) -> list[str]:
    """`--config` for a run that validates on 2% of the training images (1,200 of Fashion-MNIST's instead of
    6,000): at the tests' tiny budgets validation is most of an evaluation, and what they check does not depend
    on it."""
    config = folder / "small-validation.toml"
    config.write_text("[fitness]\nval_fraction = 0.02\n")
    return ["--config", str(config)]
