"""The small run the fault tests inject their faults into: random variation, so no model is loaded, and small
enough to take seconds. Run once without a fault (the `uninterrupted_fault_run` fixture), it gives the genealogy
that a run stopped by a fault and resumed must end with."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.cli_process import astevo, small_validation
from tests.process_tree import alive
from tests.test_evolve_resume import genealogy

FAULT_RUN = ("--variation", "random", "--population", "2", "--generations", "3", "--limit-train", "64", "--epochs",
             "1", "--workers", "1", "--no-cache", "--force")  # fmt: skip


def fault_run_flags(folder: Path) -> list[str]:
    """The run's flags, with its validation slice's config file written in `folder`."""
    return [*FAULT_RUN, *small_validation(folder)]


def uninterrupted(folder: Path) -> list[tuple]:
    """The fault run's genealogy when nothing stops it."""
    finished = astevo("evolve", "--run", str(folder / "run"), *fault_run_flags(folder), cwd=folder)
    assert finished.returncode == 0, finished.stderr[-2000:]
    return genealogy(folder / "run")


def resumed_to_its_end(run: Path, cwd: Path) -> list[tuple]:
    """`astevo evolve --resume` of a stopped fault run, and the genealogy it ends with."""
    resumed = astevo("evolve", "--run", str(run), "--resume", "--force", cwd=cwd)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return genealogy(run)


def stored_individuals(run: Path) -> int:
    try:
        with sqlite3.connect(f"file:{run / 'run.sqlite'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM individuals").fetchone()[0])
    except sqlite3.Error:
        return 0


def intact(run: Path) -> None:
    with sqlite3.connect(run / "run.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def none_left(seen: set[int]) -> None:
    """No process of a stopped run outlives it: warm workers leave when their control socket closes."""
    deadline = time.monotonic() + 10
    while alive(seen) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert seen and not alive(seen), "a process of the stopped run outlived it"
