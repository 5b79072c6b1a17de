"""SIGTERM and SIGHUP (systemd, `timeout`, Slurm, `docker stop`) stop a run the way Ctrl-C does: one line that
says how to go on, an exit status that names the signal, and a run that resumes to its end."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from astevo.cli.stop_signals import Stopped, StopSignals
from astevo.data.sources import FASHION_MNIST_FILES, FASHION_MNIST_SYSTEM_DIR
from tests.cli_process import astevo, small_validation, user_environment
from tests.fault_runs import fault_run_flags, intact, none_left, resumed_to_its_end, stored_individuals
from tests.process_tree import age, alive, descendants, parents


@pytest.mark.parametrize(
    ("number", "said"),
    [(signal.SIGTERM, "stopped by SIGTERM"), (signal.SIGHUP, "stopped by SIGHUP"), (signal.SIGINT, "interrupted")],
)
def test_a_stop_signal_raises_where_the_run_is_and_is_remembered(number: signal.Signals, said: str) -> None:
    before = signal.getsignal(number)
    stop = StopSignals()
    assert stop.exit_code is None
    with pytest.raises(Stopped), stop.installed():
        os.kill(os.getpid(), number)
        time.sleep(5)  # the handler raises before this ends
    assert stop.exit_code == 128 + number and stop.said() == said
    assert signal.getsignal(number) == before


@pytest.mark.slow
@pytest.mark.needs_data
def test_sigterm_stops_a_run_with_a_word_and_it_resumes_to_its_end(tmp_path: Path, uninterrupted_fault_run) -> None:
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "astevo.cli", "evolve", "--run", str(run), *fault_run_flags(tmp_path)],
        cwd=tmp_path, env=user_environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = _watched_until(process, lambda: stored_individuals(run) >= 2)
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"stopped by SIGTERM; nothing evaluated is lost. Continue with: astevo evolve --run {run} --resume --force"
    )
    intact(run)
    none_left(seen)
    assert resumed_to_its_end(run, tmp_path) == uninterrupted_fault_run


def _watched_until(process: subprocess.Popen, ready: Callable[[], bool]) -> set[int]:
    """Wait (at most five minutes) until `ready()` or the process ends; every process seen below it meanwhile."""
    seen: set[int] = set()
    deadline = time.monotonic() + 300
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        seen |= set(descendants(process.pid))
        time.sleep(0.2)
    return seen | set(descendants(process.pid))


TO_WARM_WORKERS = (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL)
READY = 8.0  # seconds after which a warm worker has surely imported torch: the signals stop idle, ready workers


@pytest.mark.slow
@pytest.mark.needs_data
def test_a_killed_training_trains_again_stopped_warm_workers_are_replaced_and_a_second_evolve_refused(
    tmp_path: Path,
) -> None:
    """What the kernel's out-of-memory killer does to a training (SIGKILL), and warm workers sent SIGTERM, SIGHUP
    and SIGKILL (the out-of-memory killer again): the run goes on to its end with every evaluation valid, and
    leaves no process behind. A second `astevo evolve` on the run meanwhile is refused in one line."""
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "astevo.cli", "evolve", "--run", str(run), "--variation", "random", "--population",
         "2", "--generations", "2", "--limit-train", "2000", "--epochs", "1", "--workers", "1", "--force",
         "--no-cache", *small_validation(tmp_path)],
        cwd=tmp_path, env=user_environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while stored_individuals(run) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    second = astevo("evolve", "--run", str(run), "--resume", "--force", cwd=tmp_path)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert second.stderr.strip().splitlines()[-1] == (
        f"error: run {run} is in use by another astevo process; wait for it to end"
    )
    seen: set[int] = set()
    killed = None
    stopped: dict[int, signal.Signals] = {}  # warm worker -> the signal it was sent
    while process.poll() is None and time.monotonic() < deadline and len(stopped) < len(TO_WARM_WORKERS):
        below = descendants(process.pid)
        seen |= set(below)
        for pid, depth in below.items():
            if killed is None and depth >= 3 and age(pid) > 1.0:  # a training under way
                os.kill(pid, signal.SIGKILL)
                killed = pid
        busy = set(parents().get(pid) for pid in below)  # a worker with a child is running a candidate
        ready = [
            pid
            for pid, depth in below.items()
            if depth == 1 and pid not in stopped and pid not in busy and age(pid) > READY
        ]
        if killed is not None and ready:  # an idle worker's end costs no candidate: the pool replaces it
            stopped[ready[0]] = TO_WARM_WORKERS[len(stopped)]
            os.kill(ready[0], stopped[ready[0]])
        time.sleep(0.05)
    assert killed is not None, "no training was seen to kill"
    assert list(stopped.values()) == list(TO_WARM_WORKERS), "the run ended before every warm worker was stopped"
    while process.poll() is None and time.monotonic() < deadline:
        seen |= set(descendants(process.pid))
        time.sleep(0.2)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    with sqlite3.connect(run / "run.sqlite") as db:
        rows = db.execute("SELECT status, reason FROM individuals ORDER BY id").fetchall()
    assert len(rows) == 1 + 2 * 2 and rows[0] == ("evaluated", None)  # the seed trained again after its kill
    assert all(status in ("evaluated", "discarded") for status, _ in rows)
    assert not any("signal 9" in (reason or "") for _, reason in rows)
    deadline = time.monotonic() + 10  # warm workers leave when their control socket closes
    while alive(seen) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(seen), "a process of the run outlived it"


@pytest.mark.slow
@pytest.mark.needs_data
def test_data_files_changed_mid_run_stop_it_before_any_failure_is_blamed_on_a_candidate(
    tmp_path: Path, uninterrupted_fault_run
) -> None:
    data = tmp_path / "data" / "fashion-mnist"
    shutil.copytree(FASHION_MNIST_SYSTEM_DIR, data)
    images = data / FASHION_MNIST_FILES["train_images"]
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "astevo.cli", "evolve", "--data", str(data.parent), "--run", str(run),
         *fault_run_flags(tmp_path)],
        cwd=tmp_path, env=user_environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = _watched_until(process, lambda: stored_individuals(run) >= 1)
    assert process.poll() is None, "the run ended before its data could be changed"
    images.write_bytes(images.read_bytes()[:100])  # truncated, as a full disk or a careless copy leaves it
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 66, stderr[-2000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"error: the data in {data} changed while the run was going: {images.name} (changed); restore it; nothing "
        f"evaluated is lost. Once it is back, continue with: astevo evolve --run {run} --resume --force"
    )
    intact(run)
    with sqlite3.connect(run / "run.sqlite") as db:
        failed = db.execute("SELECT count(*) FROM individuals WHERE reason IS NOT NULL").fetchone()[0]
    assert failed == 0  # no candidate was blamed for the missing data
    none_left(seen)

    shutil.copy2(FASHION_MNIST_SYSTEM_DIR / images.name, images)
    assert resumed_to_its_end(run, tmp_path) == uninterrupted_fault_run  # the same data again, the same run
