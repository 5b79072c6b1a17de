"""Evaluations on disk, keyed by what determines them, shared by every later run.

Training is the expensive part of evolution; the same code under the same settings
must never be trained twice, even across runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from astevo.paths import evaluation_cache_dir


def cache_key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode("utf-8")).hexdigest()


class EvaluationCache:
    """A folder of JSON files, one per key, each written atomically."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or evaluation_cache_dir()
        self.unwritable: str | None = None  # why the first write failed (a full disk, say), for the user to hear

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None  # absent, unreadable or damaged: evaluate again

    def put(self, key: str, record: dict) -> None:
        """Store a record; a cache folder that cannot be written only costs a later re-evaluation."""
        path = self._path(key)
        written: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8"
            ) as tmp:
                written = tmp.name
                json.dump(record, tmp)
            os.replace(tmp.name, path)
        except OSError as error:
            if written is not None:  # a half-written record is never left behind
                Path(written).unlink(missing_ok=True)
            self.unwritable = self.unwritable or f"{self.directory}: {error.strerror or error}"
