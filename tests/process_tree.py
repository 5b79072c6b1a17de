"""The processes below one process, read from /proc: what a test checks is gone once a run has ended."""

from __future__ import annotations

import os
from pathlib import Path


def parents() -> dict[int, int]:
    """Every process's parent."""
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
    parent_of = parents()
    depth = {root: 0}
    grew = True
    while grew:
        grew = False
        for pid, parent in parent_of.items():
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


def age(pid: int) -> float:
    """Seconds since the process started (0 when it is gone)."""
    try:
        started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    return uptime - started / os.sysconf("SC_CLK_TCK")
