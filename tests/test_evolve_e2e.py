"""The main job end to end, as a user runs it: `astevo evolve` with the bundled tiny GGUF on a slice of
Fashion-MNIST, then `show`, `diff`, `export`, `report` and `final` on the run it leaves. (The default code
model's end-to-end run is README's main command: tests/test_readme_commands.py.)"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from astevo.code.blocks import ModelFile
from astevo.llm.gguf import resolve_model
from astevo.store.run_store import RunStore
from tests.cli_process import astevo, small_validation
from tests.conftest import TINY_MODEL

pytestmark = [pytest.mark.slow, pytest.mark.needs_model, pytest.mark.needs_data]

POPULATION, GENERATIONS = 2, 2


@pytest.fixture(scope="module")
def evolved(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    home = tmp_path_factory.mktemp("e2e")
    result = astevo(
        "evolve",
        "--population",
        str(POPULATION),
        "--generations",
        str(GENERATIONS),
        "--limit-train",
        "512",
        "--run",
        "run",
        "--no-cache",
        "--force",  # 512 images teach the seed little; the pipeline is under test, not the budget
        "--workers",
        "1",
        *small_validation(home),
        cwd=home,
    )
    return home, result


def test_evolve_runs_to_the_end_and_records_every_individual(evolved):
    home, result = evolved
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Pareto front" in result.stdout and "run database:" in result.stdout
    assert "noise: the seed's validation accuracy over 3 training seeds was" in result.stdout
    with RunStore.open(home / "run") as store:
        meta, individuals = store.meta(), store.individuals()
        further = store.trainings()
        assert store.finished_generations() == list(range(GENERATIONS))
    assert "finished" in meta
    assert meta["slots"] is None  # --workers 1; README's main command tests the default, auto
    assert "SE" not in meta["config"]["blocks"] and "SE_LN" in meta["config"]["blocks"]
    model = resolve_model(None).path
    assert meta["model"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert len(individuals) == 1 + POPULATION * GENERATIONS
    seed, offspring = individuals[0], individuals[1:]
    assert seed.operator == "seed" and seed.valid and 0.0 < seed.val_accuracy <= 1.0
    raced = [t for t in further if t.individual != seed.id]
    generation_of = {i.id: i.generation for i in individuals}
    rounds = {(generation_of[t.individual], t.training_seed) for t in raced}
    assert f"{len(further) - len(raced)} of the seed for the noise, {len(raced)} racing in {len(rounds)} rounds" in (
        " ".join(result.stdout.split())  # the console wraps long lines
    )
    assert all(i.status in ("evaluated", "discarded") for i in offspring)
    # what each kind of edit did in generation 0 is shown to generation 1's proposals, once anything was measured
    measured = any(c.generation == 0 and c.valid and c.exchanges and c.exchanges[-1].get("edit") for c in offspring)
    for child in offspring:
        if child.generation == 1 and child.operator in ("mutate", "eot") and child.exchanges:
            assert ("Measured so far in this run" in child.exchanges[0]["prompt"]) == measured
    for child in offspring:
        if child.operator in ("mutate", "eot"):  # the real model was asked, and what it said is on record
            assert child.exchanges and child.exchanges[0]["prompt"] and child.blocks[0] in child.exchanges[0]["prompt"]
            assert "trained from scratch for only" in child.exchanges[0]["prompt"]  # the model is told the fitness
        if child.source is not None:
            changed = [
                name
                for name, block in ModelFile(child.source).blocks.items()
                if block.source != ModelFile(seed.source).blocks[name].source
            ]
            assert changed and set(changed) <= set(meta["config"]["blocks"])
    assert any(child.valid for child in offspring), [child.reason for child in offspring]


def test_show_diff_export_and_report_work_on_the_run(evolved, tmp_path):
    home, _ = evolved
    with RunStore.open(home / "run") as store:
        child = next(i for i in store.individuals() if i.valid and i.operator != "seed")
    shown = astevo("show", "run", cwd=home)
    assert shown.returncode == 0 and f"{child.id}" in shown.stdout
    assert "% ±" in shown.stdout and "are within noise" in shown.stdout
    diff = astevo("diff", "run", str(child.id), cwd=home)
    assert diff.returncode == 0, diff.stderr
    assert re.search(
        r"val accuracy \d+\.\d+% ±\d+\.\d+ \((unchanged|[+-]\d+\.\d+ points, (within|beyond) noise)\)", diff.stdout
    ), diff.stdout
    assert child.blocks[0] in diff.stdout and "@@" in diff.stdout
    exported = tmp_path / "model.py"
    assert astevo("export", "run", str(child.id), "-o", str(exported), cwd=home).returncode == 0
    assert ModelFile.read(exported).source.count("class ExquisiteNetV2") == 1
    checked = astevo("eval", str(exported), "--no-train", "--no-cache", cwd=home)
    assert checked.returncode == 0, checked.stdout
    report = astevo("report", "run", cwd=home)
    assert report.returncode == 0, report.stderr
    assert (home / "run" / "report" / "report.html").is_file()


def test_final_reports_test_accuracy_for_the_seed_and_the_front(evolved):
    home, _ = evolved
    result = astevo("final", "run", "--seeds", "1", "--epochs", "0.01", cwd=home)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    with RunStore.open(home / "run") as store:
        finals = store.finals()
    assert finals and all(0.0 <= r.metrics["test_accuracy"] <= 1.0 for r in finals)
    assert 1 in {r.individual for r in finals}  # the seed is always retrained for comparison
    assert "seed" in result.stdout


@pytest.mark.parametrize("variation", ["random", "best-of-n"])
def test_each_baseline_runs_end_to_end_on_its_evaluation_budget(tmp_path, variation):
    result = astevo(
        "evolve",
        "--variation",
        variation,
        "--evaluations",
        "5",
        "--population",
        "2",
        "--limit-train",
        "256",
        "--epochs",
        "1",
        "--run",
        "run",
        "--no-cache",
        "--force",
        "--workers",
        "1",  # the run above tests --workers auto
        *small_validation(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    named = "" if variation == "random" else f" by {TINY_MODEL}"
    assert f"({variation} variation{named})" in result.stdout
    assert "5 of the budget of 5 trainings spent" in result.stdout
    with RunStore.open(tmp_path / "run") as store:
        meta, individuals = store.meta(), store.individuals()
    assert (meta["model"] is None) == (variation == "random")  # the baseline never loads a model
    offspring = [i for i in individuals if i.operator != "seed"]
    assert offspring and all(i.parents == (individuals[0].id,) for i in offspring)
    for child in offspring:
        asked = child.exchanges[0]["prompt"]
        assert asked.startswith("a uniform draw from") == (variation == "random")
