"""Racing and noise in the loop: the stop rule on known values, then whole runs through a scripted evaluator whose
accuracies have a known spread over training seeds (the point is the loop, not training)."""

from __future__ import annotations

import hashlib
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from astevo.code.blocks import ModelFile
from astevo.evaluation.base import Evaluation, EvaluationRequest, EvaluationResult, StageResult, finished
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evaluation.executors.sequential import SequentialEvaluator
from astevo.evolution import racing
from astevo.evolution.loop import Evolution
from astevo.evolution.noise import run_noise
from astevo.evolution.run_setup import create_run, plan_run
from astevo.settings import EvolveConfig, apply
from astevo.store.records import EVALUATED, Individual, Training
from astevo.store.run_store import RunStore
from tests.run_builder import PASSED
from tests.scripted_evolution import SEED, SETTINGS
from tests.scripted_variation import ScriptedVariation

SPREAD = (0.0, 0.02, -0.02, 0.01, -0.01, 0.015)  # accuracy offset per training seed: std 0.02 over seeds 0-2


def individual(identity: int, accuracy: float, trainings: int = 1, parameters: int = 100) -> Individual:
    metrics = {"val_accuracy": accuracy, "parameters": parameters, "macs": parameters, "trainings": trainings}
    stages = tuple(PASSED)
    return Individual(identity, 1, identity, (), "mutate", (), None, "", "h", (), "", EVALUATED, None, stages,
                      metrics, None, 0.0, 0.0)  # fmt: skip


def test_two_means_are_apart_beyond_two_standard_errors_of_their_difference() -> None:
    assert racing.apart(individual(1, 0.80), individual(2, 0.86), std=0.02)  # margin 5.66 points
    assert not racing.apart(individual(1, 0.80), individual(2, 0.85), std=0.02)
    assert racing.apart(individual(1, 0.80, 3), individual(2, 0.84, 3), std=0.02)  # margin 3.27 points


def test_a_candidate_races_until_apart_from_every_rival_of_equal_or_larger_cost_or_the_cap() -> None:
    candidate = individual(1, 0.80, parameters=100)
    close_and_bigger, close_and_smaller = individual(2, 0.81, parameters=200), individual(3, 0.81, parameters=50)
    far_and_bigger = individual(4, 0.95, parameters=300)
    assert racing.rivals(candidate, [candidate, close_and_bigger, close_and_smaller], "parameters") == [
        close_and_bigger
    ]
    assert racing.needs_another_training(candidate, [candidate, close_and_bigger], "parameters", 0.02, cap=3)
    assert not racing.needs_another_training(candidate, [candidate, close_and_smaller], "parameters", 0.02, cap=3)
    assert not racing.needs_another_training(candidate, [candidate, far_and_bigger], "parameters", 0.02, cap=3)
    capped = individual(1, 0.80, trainings=3)
    assert not racing.needs_another_training(capped, [capped, close_and_bigger], "parameters", 0.02, cap=3)


def test_a_round_decides_on_the_trainings_of_earlier_rounds_alone() -> None:
    """A run resumed mid-round has stored some of the round's trainings; the round's decision must not see them."""
    child = individual(1, 0.80)
    further = [Training(1, 1, {"val_accuracy": 0.90}, 1.0), Training(1, 2, {"error": "diverged"}, 1.0)]
    assert racing.as_it_stood(child, further, 0) == child
    after_one = racing.as_it_stood(child, further, 1)
    assert after_one.val_accuracy == pytest.approx(0.85) and racing.trainings(after_one) == 2
    assert racing.as_it_stood(child, further, 2).metrics == after_one.metrics  # a failed training adds no value


class SpreadEvaluator:
    """Passes everything; a training's accuracy is a value fixed by the code plus SPREAD[training seed]."""

    def __init__(self) -> None:
        self.trainings: list[tuple[str, int]] = []

    def evaluate(self, requests: Sequence[EvaluationRequest]) -> Iterator[EvaluationResult]:
        for request in requests:
            stages = PASSED if request.settings.train else PASSED[:5]
            digest = hashlib.sha256(request.source.encode()).digest()
            metrics = {"parameters": 518_230, "macs": 1_700_000}
            if request.settings.train:
                seed = request.settings.budget.training_seed
                self.trainings.append((request.source, seed))
                metrics["val_accuracy"] = 0.80 + digest[0] / 255 * 0.03 + SPREAD[seed]
            yield EvaluationResult(
                request.request_id, Evaluation(tuple(StageResult(**s) for s in stages), metrics), 1.0
            )

    def submit(self, request: EvaluationRequest) -> Future[EvaluationResult]:
        return finished(next(self.evaluate([request])))


class TwoSlotSpreadEvaluator(SpreadEvaluator):
    """Trains in two slots, each training taking a moment, and counts the most racing trainings that ran at once."""

    def __init__(self) -> None:
        super().__init__()
        self.seed_source = ModelFile.read(SEED).source
        self.most_racing_at_once = 0
        self._racing_now = 0
        self._lock = threading.Lock()
        self._slots = ThreadPoolExecutor(max_workers=2)

    def submit(self, request: EvaluationRequest) -> Future[EvaluationResult]:
        return self._slots.submit(self._train, request)

    def _train(self, request: EvaluationRequest) -> EvaluationResult:
        racing = request.settings.budget.training_seed > 0 and request.source != self.seed_source
        with self._lock:
            self._racing_now += racing
            self.most_racing_at_once = max(self.most_racing_at_once, self._racing_now)
        time.sleep(0.05)
        with self._lock:
            self._racing_now -= racing
            return next(self.evaluate([request]))


def evolve(
    folder: Path, sequential: bool = False, evaluator: SpreadEvaluator | None = None
) -> tuple[SpreadEvaluator, RunStore]:
    evaluator = evaluator or SpreadEvaluator()
    store = create_run(folder, plan_run(apply(EvolveConfig(), SETTINGS), ModelFile.read(SEED), None, LocalEvaluator()))
    with store:
        Evolution(
            store, ScriptedVariation(), SequentialEvaluator(evaluator) if sequential else evaluator, force=True
        ).run()
    return evaluator, RunStore.open(folder)


@pytest.mark.slow
def test_the_noise_is_measured_on_the_seed_and_children_that_compete_are_raced_on_means(tmp_path: Path) -> None:
    evaluator, store = evolve(tmp_path / "run")
    with store:
        seed = store.at(0, 0)
        assert seed is not None
        noise = run_noise(store, seed)
        assert [t.training_seed for t in store.trainings(seed.id)] == [1, 2]
        assert noise.std == pytest.approx(0.02)
        assert seed.val_accuracy == pytest.approx(statistics.mean(noise.accuracies))
        offspring = [i for i in store.individuals() if i.operator != "seed" and i.valid and i.reused_from is None]
        raced = [i for i in offspring if racing.trainings(i) > 1]
        assert raced, "children 3 points apart at most are never told apart in one training each"
        for child in offspring:
            extra = store.trainings(child.id)
            assert racing.trainings(child) == 1 + len(extra) <= 3
            values = [child.metrics.get("first_val_accuracy", child.val_accuracy)] + [
                t.metrics["val_accuracy"] for t in extra
            ]
            assert child.val_accuracy == pytest.approx(statistics.mean(values))  # selection ranks this mean
    assert len(evaluator.trainings) == len(set(evaluator.trainings))  # no training of the same code and seed twice


@pytest.mark.slow
def test_racing_decides_the_same_pipelined_or_sequential(tmp_path: Path) -> None:
    def decided(folder: Path, sequential: bool) -> list[tuple]:
        _, store = evolve(folder, sequential)
        with store:
            rows = [
                (i.generation, i.slot, i.parents, i.code_hash, i.metrics.get("val_accuracy"))
                for i in store.individuals()
            ]
            return [rows, [store.population(g) for g in store.finished_generations()]]

    assert decided(tmp_path / "a", False) == decided(tmp_path / "b", True)


@pytest.mark.slow
def test_the_children_of_one_round_train_side_by_side(tmp_path: Path) -> None:
    evaluator = TwoSlotSpreadEvaluator()
    evolve(tmp_path / "run", evaluator=evaluator)
    assert evaluator.most_racing_at_once == 2
