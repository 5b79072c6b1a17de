"""A run whose evaluations all come from the cross-run cache says so, instead of reporting 0 s evaluations."""
from __future__ import annotations

from pathlib import Path

import pytest

from astevo import evolve
from astevo.blocks import ModelFile
from astevo.config import EvolveConfig, apply
from astevo.fitness import Evaluation, StageResult
from astevo.run_view import run_figures
from astevo.store import EVALUATED, RunStore
from tests.run_builder import PASSED
from tests.scripted_evolution import SEED, SETTINGS
from tests.scripted_variation import ScriptedVariation


def from_cache(*_: object, **__: object) -> Evaluation:
    """What astevo.fitness.evaluate returns for code an earlier run measured with the same settings."""
    metrics = {"val_accuracy": 0.7, "parameters": 518_126, "macs": 1_703_864}
    return Evaluation(tuple(StageResult(**stage) for stage in PASSED), metrics, cached=True)


def test_evaluations_from_the_cache_are_recorded_and_counted_apart(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = evolve.start_run(tmp_path / "run", apply(EvolveConfig(), SETTINGS), ModelFile.read(SEED), None)
    monkeypatch.setattr(evolve, "evaluate", from_cache)
    with store:
        evolve.Evolution(store, ScriptedVariation()).run()
    with RunStore.open(tmp_path / "run") as store:
        evaluated = [i for i in store.individuals() if i.status == EVALUATED and i.reused_from is None]
        figures = run_figures(store.individuals())
    assert evaluated and all(i.cached for i in evaluated)
    assert (figures.evaluations, figures.from_cache, figures.seconds_per_evaluation) == (0, len(evaluated), None)
