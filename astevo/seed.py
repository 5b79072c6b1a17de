"""The bundled seed model, found inside the installed package (no checkout needed)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEFAULT_SEED = "exquisitenetv2.py"


def default_seed_path() -> Path:
    return Path(str(files("astevo.seeds").joinpath(DEFAULT_SEED)))
