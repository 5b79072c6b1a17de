"""The run's disk fills up mid-run, or turns read-only mid-run: each time one line, a documented exit status, the
database intact, no process left, and `--resume` finishes the run from a copy of its folder on a good disk, with
the genealogy of the same run uninterrupted.

The full disk is a real tmpfs of a few hundred kilobytes; the one that turns read-only is a real ext4 file system
on a loop device, mounted with errors=remount-ro and sent an error through ext4's own trigger (as a failing disk
would). Both are mounted in a mount namespace of their own (`unshare`), so nothing outside the test sees them and
they go away with the process.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astevo.cli.disk_space import run_need, space_warnings
from astevo.cli.storage_faults import STORAGE_EXIT, storage_problem
from astevo.paths import default_seed_path
from astevo.store.run_store import RunStore
from tests.cli_process import user_environment
from tests.fault_runs import fault_run_flags, intact, resumed_to_its_end

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]

DISK_KB = 300  # room for the new run and its first few individuals (SQLite's WAL takes most), not the whole run


def _private_mounts() -> list[str]:
    """A command prefix that runs its command in a mount namespace of its own, where it may mount a tmpfs."""
    if shutil.which("unshare") is None:
        pytest.fail("this test needs util-linux's unshare")
    return ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--mount", "--map-root-user"]


def _on_a_small_disk(tmp_path: Path) -> subprocess.CompletedProcess:
    """`astevo evolve` with its run folder on a tmpfs of DISK_KB; the folder is copied out before the disk goes."""
    namespace = _private_mounts()
    script = (
        f'mount -t tmpfs -o size={DISK_KB}k tmpfs "$1" && cd "$1" && "$3" -m astevo.cli evolve --run run '
        f'{" ".join(fault_run_flags(tmp_path))}; status=$?; cp -a "$1/run" "$2/run"; exit $status'
    )
    disk = tmp_path / "disk"
    disk.mkdir()
    return subprocess.run(
        [*namespace, "sh", "-c", script, "sh", str(disk), str(tmp_path), sys.executable],
        capture_output=True,
        text=True,
        timeout=600,
        env={**{k: v for k, v in os.environ.items() if k != "ASTEVO_DATA"}, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )


TURNS_READ_ONLY = """
mount -o loop,errors=remount-ro "$2/disk.img" "$1" && cd "$1" || exit 90
"$3" -m astevo.cli evolve --run run $4 &
evolving=$!
until "$3" -c "$EVALUATED_SO_FAR"; do kill -0 $evolving 2>/dev/null || exit 93; sleep 0.2; done
echo 1 > "/sys/fs/ext4/$(basename "$(findmnt -n -o SOURCE "$1")")/trigger_fs_error" || { kill $evolving; exit 92; }
wait $evolving; status=$?
cp -a "$1/run" "$2/run"; exit $status
"""
EVALUATED_SO_FAR = """
import sqlite3, sys
try:
    connection = sqlite3.connect("file:run/run.sqlite?mode=ro", uri=True)
    evaluated = connection.execute("select count(*) from individuals where status = 'evaluated'").fetchone()[0]
except sqlite3.Error:  # the run has not made its database yet
    evaluated = 0
sys.exit(evaluated < 2)
"""


def _on_a_disk_that_turns_read_only(tmp_path: Path) -> subprocess.CompletedProcess:
    """`astevo evolve` with its run folder on an ext4 disk that fails into read-only once the run has evaluated
    two individuals (of seven); the folder is copied out before the disk goes."""
    missing = [what for what, there in (("root", os.geteuid() == 0), ("mkfs.ext4", shutil.which("mkfs.ext4")),
               ("loop devices", Path("/dev/loop-control").exists())) if not there]  # fmt: skip
    if missing:
        pytest.skip(f"a disk that turns read-only is made with {', '.join(missing)}, which this machine lacks")
    image = tmp_path / "disk.img"
    with image.open("wb") as file:
        file.truncate(32 * 1024 * 1024)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, timeout=60)
    disk = tmp_path / "ext4"
    disk.mkdir()
    arguments = (disk, tmp_path, sys.executable, " ".join(fault_run_flags(tmp_path)))
    turned = subprocess.run(
        [*_private_mounts(), "sh", "-c", TURNS_READ_ONLY, "sh", *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**user_environment(tmp_path), "EVALUATED_SO_FAR": EVALUATED_SO_FAR},
    )
    if turned.returncode == 92:
        pytest.skip("ext4's trigger_fs_error cannot be written here (/sys is read-only)")
    assert turned.returncode not in (90, 93), f"the disk could not be mounted, or the run ended first: {turned}"
    return turned


def _stored(folder: Path) -> list[tuple]:
    with RunStore.open(folder) as store:
        return [(i.id, i.generation, i.slot, i.code_hash, i.status, i.metrics) for i in store.individuals()]


def _astevo_processes() -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and b"astevo" in command and b"pytest" not in command:
            found.add(int(entry.name))
    return found


def test_a_full_disk_stops_the_run_with_a_word_and_a_copy_resumes_to_its_end(tmp_path, uninterrupted_fault_run):
    before = _astevo_processes()
    stopped = _on_a_small_disk(tmp_path)
    assert stopped.returncode == STORAGE_EXIT, stopped.stdout[-2000:] + stopped.stderr[-2000:]
    warned = [line for line in stopped.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and warned[0].startswith("warning: the disk holding the run (run) has ")  # said up front
    assert "this run needs about" in warned[0] and "(7 individuals)" in warned[0]
    said = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1 and "Traceback" not in stopped.stderr, stopped.stderr  # beside the data line, one line
    assert said[0].startswith("error: the disk holding run is full (SQLite: database or disk is full)"), said[0]
    assert "nothing stored is lost" in said[0] and said[0].endswith("astevo evolve --run run --resume --force")
    run = tmp_path / "run"
    assert _stopped_cleanly(run, before), "the run stored nothing before the disk filled"
    assert resumed_to_its_end(run, tmp_path) == uninterrupted_fault_run


def test_a_disk_turned_read_only_mid_run_stops_it_with_a_word_and_a_copy_resumes_to_its_end(
    tmp_path, uninterrupted_fault_run
):
    """What a failing disk does: the kernel remounts it read-only (errors=remount-ro) under the running run."""
    before = _astevo_processes()
    turned = _on_a_disk_that_turns_read_only(tmp_path)
    assert turned.returncode == STORAGE_EXIT, turned.stdout[-2000:] + turned.stderr[-2000:]
    said = [line for line in turned.stderr.splitlines() if line.startswith("error:")]
    assert len(said) == 1 and "Traceback" not in turned.stderr, turned.stderr
    assert said[0].startswith("error: a write to the disk holding run failed (SQLite: disk I/O error)"), said[0]
    assert "make the folder writable, or copy run to a larger disk" in said[0]
    run = tmp_path / "run"
    kept = _stopped_cleanly(run, before)
    assert sum(row[4] == "evaluated" for row in kept) >= 2
    assert resumed_to_its_end(run, tmp_path) == uninterrupted_fault_run


def _stopped_cleanly(run: Path, before: set[int]) -> list[tuple]:
    """What the stopped run stored, once no process of it is left and its database checks out."""
    deadline = time.monotonic() + 10  # warm workers leave when their control socket closes
    while not _astevo_processes() <= before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _astevo_processes() <= before, "a process of the stopped run is still alive"
    intact(run)
    return _stored(run)


def test_free_space_is_weighed_against_what_the_run_will_need(tmp_path):
    seed = default_seed_path().read_text()
    free = shutil.disk_usage(tmp_path).free
    assert space_warnings(tmp_path / "new-run", tmp_path / "cache", seed, 13, 40) == []  # a default run fits
    needed = free // (run_need(seed, 2) - run_need(seed, 1)) + 1  # individuals enough to need more than there is
    warned = space_warnings(tmp_path / "new-run", None, seed, needed, needed)
    assert len(warned) == 1 and warned[0].startswith(f"warning: the disk holding the run ({tmp_path / 'new-run'}) has ")
    assert run_need(seed, needed) > free


FILL_THE_CACHE = """
import sys
from pathlib import Path
from astevo.evaluation.cache import EvaluationCache
folder = Path(sys.argv[1])
cache = EvaluationCache(folder)
record = {"metrics": {"val_accuracy": 0.5}, "padding": "x" * 20_000}
for number in range(40):
    cache.put(f"{number:064x}", record)
print(cache.unwritable)
print(len(list(folder.rglob("*.tmp"))), cache.get(f"{0:064x}") == record, cache.get(f"{39:064x}"))
"""


def test_a_full_cache_disk_costs_only_the_caching_and_leaves_no_half_written_record(tmp_path):
    disk = tmp_path / "cache"
    disk.mkdir()
    script = 'mount -t tmpfs -o size=200k tmpfs "$1" && "$2" -c "$3" "$1"'
    filled = subprocess.run(
        [*_private_mounts(), "sh", "-c", script, "sh", str(disk), sys.executable, FILL_THE_CACHE],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert filled.returncode == 0, filled.stderr[-2000:]  # no error escaped put()
    unwritable, leftovers = filled.stdout.strip().splitlines()
    assert unwritable == f"{disk}: No space left on device"  # what evolve warns about once the run ends
    assert leftovers == "0 True None"  # no .tmp file; the first records kept; the last one absent, not damaged


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (sqlite3.OperationalError("database or disk is full"), "the disk holding /runs/a is full"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "/runs/a cannot be written any more"),
        (sqlite3.OperationalError("unable to open database file"), "/runs/a cannot be written any more"),
        (sqlite3.OperationalError("disk I/O error"), "a write to the disk holding /runs/a failed"),
        (OSError(errno.ENOSPC, "No space left on device", "/runs/a/x"), "no space left on the disk holding /runs/a/x"),
        (OSError(errno.EROFS, "Read-only file system", "/runs/a/x"), "/runs/a/x is on a read-only file system"),
    ],
)
def test_storage_faults_are_told_apart_from_other_errors(error, said):
    assert said in (storage_problem(error, Path("/runs/a")) or "")


def test_other_errors_are_not_storage_faults():
    for error in (sqlite3.OperationalError("no such table: meta"), OSError(errno.EACCES, "denied"), ValueError()):
        assert storage_problem(error, Path("/runs/a")) is None
