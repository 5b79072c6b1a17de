"""What the commands that read a model file share: the file argument, defaulting to the bundled seed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from astevo.code.blocks import ModelFile
from astevo.paths import default_seed_path

SeedArgument = Annotated[
    Path | None, typer.Argument(help="Model file (default: the bundled ExquisiteNetV2 seed).", show_default=False)
]


def read_model(path: Path | None) -> ModelFile:
    return ModelFile.read(path or default_seed_path())
