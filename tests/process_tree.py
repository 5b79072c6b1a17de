"""The processes below one process, read from /proc: what a test checks is gone once a run has ended."""

from __future__ import annotations

from pathlib import Path


def _parents() -> dict[int, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return found


def descendants(root: int) -> dict[int, int]:
    """Every process below `root`, with its depth: 1 for astevo's warm workers, 3 for a training's inner process."""
    parents = _parents()
    depth = {root: 0}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in depth and pid not in depth:
                depth[pid] = depth[parent] + 1
                grew = True
    del depth[root]
    return depth


def alive(pids: set[int] | list[int]) -> list[int]:
    """Those of `pids` still running (a zombie has ended; only its parent's wait is missing)."""
    found = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append(pid)
    return found
