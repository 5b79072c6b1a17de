"""A run killed with SIGKILL at random moments and resumed ends exactly as an uninterrupted run.

Both runs are real processes with real sandboxed evaluations and real training on a slice of
Fashion-MNIST; the scripted variation stands in for the LLM so the test is about the loop.
tests/fixtures/genealogy.json is the genealogy this version gives: a change that alters it must say
why (and rewrite it with `python -m tests.record_genealogy`). tests/fixtures/pre_layout_run holds a
run made by astevo 0.1, stopped with an individual in evaluation.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from astevo.cli import app
from astevo.store.run_store import RunStore

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_INDIVIDUALS = 1 + 2 * 3  # the seed, then population 2 for 3 generations (tests/scripted_evolution.py)
PRE_LAYOUT = Path(__file__).parent / "fixtures" / "pre_layout_run"
RECORDED = Path(__file__).parent / "fixtures" / "genealogy.json"
ROW_FIELDS = ("generation", "slot", "parents", "operator", "blocks", "code_hash", "status", "reused_from",
              "val_accuracy", "parameters")  # fmt: skip
ACCURACY_TOLERANCE = 0.02  # 7 of the 360 validation images

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]


def _start(
    folder: Path, resume: bool = False, options: tuple[str, ...] = (), temporary: Path | None = None
) -> subprocess.Popen:
    command = [sys.executable, "-m", "tests.scripted_evolution", str(folder), *options] + (
        ["--resume"] if resume else []
    )
    environment = {**os.environ, "XDG_CACHE_HOME": str(folder.parent / "cache")}
    if temporary is not None:  # where the sandboxes' working folders go
        environment["TMPDIR"] = str(temporary)
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=environment
    )


def _finish(process: subprocess.Popen) -> None:
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]


def genealogy(folder: Path) -> list[tuple]:
    """Everything a run decided: who was made from whom, how, with which code and which measured result, and
    every further training (the seed's, which measured the run's noise, and racing's)."""
    with RunStore.open(folder) as store:
        rows = [
            (
                i.generation,
                i.slot,
                i.parents,
                i.operator,
                i.blocks,
                i.code_hash,
                i.status,
                i.reused_from,
                i.metrics.get("val_accuracy"),
                i.metrics.get("parameters"),
            )
            for i in store.individuals()
        ]
        populations = [store.population(g) for g in store.finished_generations()]
        finished = "finished" in store.meta()
        further = [(t.individual, t.training_seed, t.metrics.get("val_accuracy")) for t in store.trainings()]
    return [rows, populations, finished, further]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> list[tuple]:
    folder = tmp_path_factory.mktemp("reference") / "run"
    _finish(_start(folder))
    return genealogy(folder)


def test_uninterrupted_run_is_complete(reference):
    rows, populations, finished, further = reference
    assert finished
    assert len(rows) == EXPECTED_INDIVIDUALS
    assert [(r[0], r[1]) for r in rows] == [(0, 0)] + [(g, s) for g in range(3) for s in (1, 2)]
    assert all(r[6] in ("evaluated", "discarded") for r in rows)
    assert rows[0][3] == "seed" and rows[0][8] is not None
    assert len(populations) == 3 and all(1 <= len(p) <= 2 for p in populations)
    noise = [(seed, accuracy) for individual, seed, accuracy in further if individual == 1]
    assert [seed for seed, _ in noise] == [1, 2] and all(accuracy is not None for _, accuracy in noise)
    assert any(individual != 1 for individual, _, _ in further), "no child was raced: the kill tests need one"


def test_kill_9_at_random_moments_then_resume_gives_the_genealogy_of_an_uninterrupted_run(tmp_path, reference):
    """Same seed and settings, same genealogy: also when the run was killed three times on the way, with
    evaluations in flight in both slots (they are redone on resume, and nothing is recorded twice). One slot
    is the same loop with fewer evaluations in flight, so it is not run apart."""
    folder, temporary = tmp_path / "run", tmp_path / "tmp"
    temporary.mkdir()
    options = ("--workers", "2")
    delays = random.Random(2026 + 2).sample(range(3, 12), 3)  # a whole run takes about 25 s on 2 cores
    process = _start(folder, options=options, temporary=temporary)
    for delay in delays:
        time.sleep(delay)
        if process.poll() is not None:
            break
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        resume = (folder / "run.sqlite").exists()  # else killed before the run was created: start it again
        process = _start(folder, resume=resume, options=options, temporary=temporary)
    _finish(process)
    assert genealogy(folder) == reference
    assert list(temporary.glob("astevo-sandbox-*")) == []  # the killed runs' sandbox folders were removed


@pytest.mark.parametrize(
    "options",
    [("--workers", "auto", "--clock-jumps"), ("--ray",)],
    ids=["auto-slots-clock-jumps", "ray-cluster"],
)
def test_slots_executors_pipelining_warm_workers_and_the_clock_change_nothing_a_run_decides(
    tmp_path, reference, options
):
    """Slots chosen from this machine's timings (the kill test above runs two) lose no validity and change no
    result, nor does the wall clock jumping back two hours and then forward a day on the way (what `show` and
    the report print of the run's times is all it changes); nor do Ray tasks on a local cluster. (Evaluating each
    child before the next is proposed, as astevo 0.3 did, decides the same too: tests/test_racing.py. Cold
    sandboxes give the same results as warm ones: tests/test_sandbox.py runs its corpus both ways, and
    tests/test_executors.py checks the evaluation cache does not tell them apart.)"""
    folder = tmp_path / "run"
    _finish(_start(folder, options=options))
    assert genealogy(folder) == reference
    with RunStore.open(folder) as store:
        chosen = store.meta().get("slots")
    assert (chosen is not None) == ("auto" in options)  # the choice is stored, for a resume to keep
    if chosen is not None:
        assert chosen["threads"] == 1 and 1 <= chosen["slots"] <= (os.cpu_count() or 1)  # the settings' threads win
    if "--clock-jumps" in options:
        with sqlite3.connect(folder / "run.sqlite") as db:
            created = [row[0] for row in db.execute("SELECT created FROM individuals ORDER BY id")]
        assert any(later < earlier - 3600 for earlier, later in itertools.pairwise(created))  # the clock went back
        with RunStore.open(folder) as store:
            meta = store.meta()
        assert meta["finished"] - meta["started"] > 20 * 3600  # and forward, both while the run went on
        for command in ("show", "report"):
            shown = CliRunner().invoke(app, [command, str(folder)])
            assert shown.exit_code == 0, shown.output


def test_the_same_seed_and_settings_give_the_recorded_genealogy(reference):
    """Every decision exactly as recorded; a measured accuracy within a few validation images of it, since
    another CPU's kernels (AMD EPYC against the recording machine's, say) round differently."""
    got, recorded = json.loads(json.dumps(reference)), json.loads(RECORDED.read_text())
    (rows, populations, finished, further), (rows_then, populations_then, finished_then, further_then) = got, recorded
    assert (populations, finished) == (populations_then, finished_then)
    accuracy = ROW_FIELDS.index("val_accuracy")
    assert [row[:accuracy] + row[accuracy + 1 :] for row in rows] == [
        row[:accuracy] + row[accuracy + 1 :] for row in rows_then
    ]
    assert [t[:2] for t in further] == [t[:2] for t in further_then]
    measured = [row[accuracy] for row in rows] + [t[2] for t in further]
    measured_then = [row[accuracy] for row in rows_then] + [t[2] for t in further_then]
    assert measured == pytest.approx(measured_then, abs=ACCURACY_TOLERANCE)


def test_a_run_stopped_by_astevo_0_1_opens_and_resumes_keeping_everything_it_stored(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(PRE_LAYOUT / "run.sqlite", folder / "run.sqlite")
    runner = CliRunner()
    for command in (["show", str(folder)], ["diff", str(folder), "2"], ["report", str(folder)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
    assert (folder / "report" / "report.html").is_file()
    stored, _, _, _ = genealogy(folder)
    done = [row for row in stored if row[6] != "pending"]
    assert 1 < len(done) < EXPECTED_INDIVIDUALS
    _finish(_start(folder, resume=True))
    rows, populations, finished, _ = genealogy(folder)
    assert finished and len(rows) == EXPECTED_INDIVIDUALS and len(populations) == 3
    assert [row for row in rows if (row[0], row[1]) in {(r[0], r[1]) for r in done}] == done  # nothing redone
