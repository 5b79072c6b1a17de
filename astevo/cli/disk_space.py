"""Free space checked when a run starts: a run that will not fit is said at once, not found when the disk fills.

The need is estimated from the seed: every individual stores its whole model file, and a mutation also the
prompts and answers of its model calls (each prompt holds a block of the file and the instructions); SQLite's
pages and write-ahead log take about as much again. Each evaluation and further training leaves one small
record in the evaluation cache.
"""

from __future__ import annotations

import shutil
from pathlib import Path

CALLS_PER_CHILD = 3  # model calls a proposal takes on average (tools/bench_mutate.py: 2.8 to 3.0)
PROMPT_BYTES = 6_000  # one recorded call: the prompt, the answer and its verdict
SQLITE_FACTOR = 2  # pages, indexes and the write-ahead log
BASE_BYTES = 100_000  # the empty database with its meta (the seed's file, the settings)
CACHE_RECORD_BYTES = 4_000  # one evaluation's stages and metrics, as JSON, in a file of its own


def run_need(seed_source: str, individuals: int) -> int:
    per_individual = len(seed_source.encode("utf-8")) + CALLS_PER_CHILD * PROMPT_BYTES
    return BASE_BYTES + SQLITE_FACTOR * individuals * per_individual


def space_warnings(run: Path, cache: Path | None, seed_source: str, individuals: int, trainings: int) -> list[str]:
    """One line per disk (the run's, the cache's) that has less room than this run will need."""
    needs = [(run, "the run", run_need(seed_source, individuals))]
    if cache is not None:
        needs.append((cache, "the evaluation cache", trainings * CACHE_RECORD_BYTES))
    lines = []
    for folder, what, need in needs:
        free = shutil.disk_usage(_existing(folder)).free
        if free < need:
            lines.append(
                f"warning: the disk holding {what} ({folder}) has {_size(free)} free, and this run needs about "
                f"{_size(need)} ({individuals} individuals); free space or choose another folder, or the run will "
                "stop when the disk fills (nothing stored is lost then)"
            )
    return lines


def _existing(folder: Path) -> Path:
    """The folder, or the nearest folder above it that exists (a new run's folder is made later)."""
    for candidate in (folder, *folder.absolute().parents):
        if candidate.exists():
            return candidate
    return Path("/")


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.0f} KB"
