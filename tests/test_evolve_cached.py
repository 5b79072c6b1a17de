"""The evolution loop through its evaluator seam: a scripted evaluator stands in for the sandboxed one.

A run whose evaluations all come from the cross-run cache says so, instead of reporting 0 s evaluations;
and the fast checks run once per accepted mutation, their verdict carried to its training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest

from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.base import Evaluation, EvaluationRequest, EvaluationResult, StageResult, finished
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evaluation.executors.sequential import SequentialEvaluator
from astevo.evolution.loop import Evolution
from astevo.evolution.run_setup import PlannedRun, create_run, plan_run
from astevo.settings import EvolveConfig, apply
from astevo.store.records import EVALUATED
from astevo.store.run_store import RunStore
from astevo.views.run_view import run_figures
from tests.run_builder import PASSED
from tests.scripted_evolution import SEED, SETTINGS
from tests.scripted_variation import ScriptedVariation

METRICS = {"val_accuracy": 0.7, "parameters": 518_126, "macs": 1_703_864}


class ScriptedEvaluator:
    """Passes everything; a training request answers as the cache would for code an earlier run measured."""

    def __init__(self) -> None:
        self.requests: list[EvaluationRequest] = []

    def evaluate(self, requests: Sequence[EvaluationRequest]) -> Iterator[EvaluationResult]:
        for request in requests:
            self.requests.append(request)
            stages = PASSED if request.settings.train else PASSED[:5]
            evaluation = Evaluation(tuple(StageResult(**s) for s in stages), METRICS, cached=request.settings.train)
            yield EvaluationResult(request.request_id, evaluation, 0.0)

    def submit(self, request: EvaluationRequest) -> Future[EvaluationResult]:
        return finished(next(self.evaluate([request])))


def planned() -> PlannedRun:
    return plan_run(apply(EvolveConfig(), SETTINGS), ModelFile.read(SEED), None, LocalEvaluator())


@pytest.mark.slow
def test_evaluations_from_the_cache_are_recorded_and_counted_apart(tmp_path: Path) -> None:
    store = create_run(tmp_path / "run", planned())
    with store:
        Evolution(store, ScriptedVariation(), ScriptedEvaluator(), force=True).run()
    with RunStore.open(tmp_path / "run") as store:
        evaluated = [i for i in store.individuals() if i.status == EVALUATED and i.reused_from is None]
        figures = run_figures(store.individuals())
    assert evaluated and all(i.cached for i in evaluated)
    assert (figures.evaluations, figures.from_cache, figures.seconds_per_evaluation) == (0, len(evaluated), None)


@pytest.mark.slow
def test_an_accepted_mutation_is_trained_with_the_verdict_of_its_checks(tmp_path: Path) -> None:
    evaluator = ScriptedEvaluator()
    store = create_run(tmp_path / "run", planned())
    with store:
        Evolution(store, ScriptedVariation(), evaluator, force=True).run()
        mutants = {i.source: i for i in store.individuals() if i.operator in ("mutate", "eot") and i.source}
        parents = {i.id: store.individual(i.parents[0]).source for i in mutants.values()}
    checks = [r for r in evaluator.requests if not r.settings.train]
    first = 0  # each individual's evaluation; racing's further trainings use the next seeds
    trainings = {
        r.source: r for r in evaluator.requests if r.settings.train and r.settings.budget.training_seed == first
    }
    assert mutants and checks
    for source, individual in mutants.items():
        if individual.reused_from is None:
            training = trainings[source]
            assert training.checked is not None and training.checked.valid  # not checked a second time
            assert training.reference == parents[individual.id]
            assert training.rewritten == individual.blocks
    assert {r.source for r in checks} >= set(mutants)  # each mutant was checked under the run's own settings
    assert all(r.settings.limit_train == SETTINGS["fitness"]["limit_train"] for r in checks)


@pytest.mark.slow
@pytest.mark.parametrize("sequential", [False, True], ids=["pipelined", "sequential"])
def test_a_seed_that_fails_the_cascade_stops_the_run_with_the_reason(tmp_path: Path, sequential: bool) -> None:
    """The seed trains while generation 0 is proposed; its failure ends the run as soon as it is known, with no
    offspring evaluated. Evaluated one at a time, it is known before any offspring is proposed."""
    seed = ModelFile.read(SEED)
    broken = seed.source.replace("        return self.fc(x)\n", "        return self.fc(x)[:, :1]\n", 1)
    assert broken != seed.source
    planned = plan_run(apply(EvolveConfig(), SETTINGS), ModelFile(broken, "broken.py"), None, LocalEvaluator())
    store = create_run(tmp_path / "run", planned)
    evaluator = LocalEvaluator()
    with store, pytest.raises(AstevoError, match=r"the seed model fails the fitness cascade \(probe: "):
        Evolution(
            store, ScriptedVariation(), SequentialEvaluator(evaluator) if sequential else evaluator, force=True
        ).run()
    evaluator.close()
    with RunStore.open(tmp_path / "run") as store:
        offspring = [i for i in store.individuals() if i.operator != "seed"]
    assert len(offspring) == 0 if sequential else len(offspring) <= 2
    assert all(i.status != EVALUATED for i in offspring)
