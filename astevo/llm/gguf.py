"""Which GGUF model to use: `--model` (a name or a path), then $ASTEVO_MODEL, then the first named model installed.

Nothing here downloads: named models are files that pip packages ship (`astevo[coder]`, `astevo[tiny]`),
found on disk without importing heavy modules (see `astevo.llm.catalogue`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from astevo.errors import AstevoError
from astevo.llm.catalogue import NAMED_MODELS, Announce, NamedModel, named_model

GGUF_MAGIC = b"GGUF"
MODEL_ENV = "ASTEVO_MODEL"
HOW_TO_GET_ONE = (
    "install the code model with `pip install 'astevo[coder]'` (or the tiny ones with `pip install 'astevo[tiny]'`) "
    "or pass --model PATH.gguf"
)


@dataclass(frozen=True)
class ModelInfo:
    """A checked GGUF file and where astevo found it (shown to the user, stored with runs)."""

    name: str
    path: Path
    size_mb: float
    source: str
    pinned_sha256: str | None = None  # known without hashing: a named model checked against its pin
    named: bool = False  # found by its name (a run then stores the name, which finds it on any machine)

    @cached_property
    def sha256(self) -> str:
        """The file's hash, what a resumed run checks; computed once when astevo pins none."""
        return self.pinned_sha256 or file_hash(self.path)


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checked_model(
    path: Path, source: str, name: str | None = None, pinned_sha256: str | None = None, named: bool = False
) -> ModelInfo:
    """A ModelInfo for `path` once it is known to be a readable GGUF file."""
    where = f"{path} (from {source})"
    if not path.exists():
        raise AstevoError(f"model file {where} does not exist: {HOW_TO_GET_ONE}")
    if path.is_dir():
        raise AstevoError(f"model path {where} is a folder, not a .gguf file: {HOW_TO_GET_ONE}")
    try:
        with path.open("rb") as stream:
            magic = stream.read(len(GGUF_MAGIC))
        size = path.stat().st_size
    except OSError as error:
        raise AstevoError(f"cannot read model file {where}: {error.strerror}") from error
    if magic != GGUF_MAGIC:
        raise AstevoError(f"model file {where} is not a GGUF file: {HOW_TO_GET_ONE}")
    return ModelInfo(name or path.stem, path, size / 2**20, source, pinned_sha256, named)


def named_info(model: NamedModel, announce: Announce | None = None) -> ModelInfo | None:
    """The named model's file, made ready (chunks joined) if need be; None when it is not installed."""
    path = model.origin.file(model.name, announce)
    if path is None:
        return None
    return checked_model(path, model.origin.description, model.name, model.origin.pinned_sha256, named=True)


def bundled_models(announce: Announce | None = None) -> list[ModelInfo]:
    """The named models installed here, default first."""
    return [info for model in NAMED_MODELS if (info := named_info(model, announce)) is not None]


def resolve_model(spec: str | os.PathLike[str] | None = None, announce: Announce | None = None) -> ModelInfo:
    """The model to use: an explicit name or path, else $ASTEVO_MODEL, else the first named model installed."""
    if spec is not None:
        return _from_spec(os.fspath(spec), "--model", announce)
    from_env = os.environ.get(MODEL_ENV)
    if from_env:
        return _from_spec(from_env, f"${MODEL_ENV}", announce)
    for model in NAMED_MODELS:
        if model.origin.available() and (info := named_info(model, announce)) is not None:
            return info
    raise AstevoError(f"no local model found (no --model, no ${MODEL_ENV}): {HOW_TO_GET_ONE}")


def _from_spec(spec: str, given_by: str, announce: Announce | None) -> ModelInfo:
    named = named_model(spec)
    if named is not None:
        info = named_info(named, announce)
        if info is None:
            raise AstevoError(f"model {named.name} (from {given_by}) is not installed: install it with {named.install}")
        return info
    path = Path(spec)
    if not path.exists() and path.suffix != ".gguf" and len(path.parts) == 1:
        names = ", ".join(model.name for model in NAMED_MODELS)
        raise AstevoError(f"{given_by} {spec!r} is neither a model name ({names}) nor a .gguf file")
    return checked_model(path, given_by)
