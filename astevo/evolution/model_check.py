"""A resumed run must use the language model file it started with, or it would not end as it would have."""

from __future__ import annotations

import hashlib
from pathlib import Path

from astevo.errors import AstevoError
from astevo.store.run_store import RunStore


def check_model(store: RunStore, model: Path | None) -> None:
    """Refuse a model file that is missing or differs from the one the run recorded."""
    recorded = store.meta().get("model")
    if recorded and (model is None or not model.is_file() or file_hash(model) != recorded["sha256"]):
        raise AstevoError(
            f"run {store.folder} was made with the model {recorded['path']} (sha256 "
            f"{recorded['sha256'][:12]}...), and {model} is missing or differs; restore that file to resume"
        )


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
