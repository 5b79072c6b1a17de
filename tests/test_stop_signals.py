"""SIGTERM and SIGHUP (systemd, `timeout`, Slurm, `docker stop`) stop a run the way Ctrl-C does: one line that
says how to go on, an exit status that names the signal, and a run that resumes to its end."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astevo.cli.stop_signals import Stopped, StopSignals
from tests.cli_process import astevo, small_validation


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


def stored_individuals(run: Path) -> int:
    try:
        with sqlite3.connect(f"file:{run / 'run.sqlite'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM individuals").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
@pytest.mark.needs_data
def test_sigterm_stops_a_run_with_a_word_and_it_resumes_to_its_end(tmp_path: Path) -> None:
    run = tmp_path / "run"
    environment = {k: v for k, v in os.environ.items() if k != "ASTEVO_DATA"}
    environment.update({"XDG_CACHE_HOME": str(tmp_path / "cache"), "COLUMNS": "200"})
    process = subprocess.Popen(
        [sys.executable, "-m", "astevo.cli", "evolve", "--run", str(run), "--variation", "random", "--population",
         "2", "--generations", "2", "--limit-train", "256", "--epochs", "1", "--workers", "1", "--force",
         *small_validation(tmp_path)],
        cwd=tmp_path, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while stored_individuals(run) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before it could be stopped"
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"stopped by SIGTERM; nothing evaluated is lost. Continue with: astevo evolve --run {run} --resume --force"
    )
    with sqlite3.connect(run / "run.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    resumed = astevo("evolve", "--run", str(run), "--resume", "--force", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert stored_individuals(run) == 1 + 2 * 2
