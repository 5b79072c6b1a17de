"""The evaluations a run has in flight, and their results stored in the order the run asks for them.

An evaluation starts as soon as its individual exists; its result is stored only when the loop settles that
individual, in slot order, so the genealogy does not depend on which slot finished first. Code an earlier
individual already has is not trained again: its result is reused once that one is settled.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import Future

from astevo.code.canonical import canonical_hash
from astevo.evaluation.base import Evaluation, EvaluationRequest, EvaluationResult, Evaluator
from astevo.evolution.data_check import DataGuard
from astevo.settings import EvolveConfig
from astevo.store.records import PENDING, Individual, Training
from astevo.store.run_store import RunStore


class Scheduler:
    def __init__(self, store: RunStore, config: EvolveConfig, evaluator: Evaluator) -> None:
        self.store, self.config, self.evaluator = store, config, evaluator
        self._data = DataGuard(store)
        self._verdicts: dict[int, Evaluation] = {}  # fast-check verdicts of this process's proposals, by individual
        self._running: dict[int, Future[EvaluationResult]] = {}  # first evaluations started, by individual
        self._trainings: dict[tuple[int, int], Future[EvaluationResult]] = {}  # further trainings, by (id, seed)

    def checked(self, individual: int, verdict: Evaluation) -> None:
        """The fast checks' verdict on the individual's code, which its evaluation need not repeat."""
        self._verdicts[individual] = verdict

    def start(self, individual: Individual) -> None:
        """Start a pending individual's evaluation, unless an individual proposed earlier has the same code: its
        result is then reused once it is settled."""
        if individual.status != PENDING:
            return
        earlier = self.store.proposed_with_hash(individual.code_hash or canonical_hash(individual.code))
        if earlier is None or earlier.id == individual.id:
            self._running[individual.id] = self.evaluator.submit(self._request(individual))

    def evaluate(self, individual: Individual) -> None:
        """Wait for (or start and wait for) a pending individual's evaluation, and store it."""
        running = self._running.pop(individual.id, None)
        if running is None:
            earlier = self.store.evaluated_with_hash(individual.code_hash or canonical_hash(individual.code))
            if earlier is not None and earlier.id != individual.id:
                self.store.record_evaluation(individual.id, list(earlier.stages), earlier.metrics, 0.0, earlier.id)
                return
            running = self.evaluator.submit(self._request(individual))
        result = running.result()
        self._blameless(result.evaluation)
        record = result.evaluation.to_record()
        self.store.record_evaluation(
            individual.id, record["stages"], record["metrics"], result.seconds, cached=result.evaluation.cached
        )

    def finished(self, individual: Individual, training_seeds: list[int]) -> bool:
        """Whether the individual's evaluation and these further trainings have all ended, so that storing them
        waits for nothing."""
        first = self._running.get(individual.id)
        trainings = [self._trainings.get((individual.id, seed)) for seed in training_seeds]
        return (first is None or first.done()) and all(t is not None and t.done() for t in trainings)

    def start_training(self, individual: Individual, training_seed: int) -> None:
        """Start one more training of the individual with another training seed (the seed's noise, racing)."""
        key = (individual.id, training_seed)
        self._trainings[key] = self.evaluator.submit(self._seeded_request(individual, training_seed))

    def record_training(self, individual: Individual, training_seed: int) -> None:
        """Wait for (or start and wait for) that training, and store it."""
        running = self._trainings.pop((individual.id, training_seed), None)
        result = (running or self.evaluator.submit(self._seeded_request(individual, training_seed))).result()
        evaluation = result.evaluation
        self._blameless(evaluation)
        metrics = evaluation.metrics if evaluation.valid else {"error": evaluation.problem}
        self.store.record_training(Training(individual.id, training_seed, metrics, result.seconds))

    def _blameless(self, evaluation: Evaluation) -> None:
        """A failure is stored as the candidate's only while the data it trains on is as the run found it."""
        if not evaluation.valid:
            self._data.check()

    def _seeded_request(self, individual: Individual, training_seed: int) -> EvaluationRequest:
        fitness = self.config.fitness
        settings = dataclasses.replace(fitness, budget=dataclasses.replace(fitness.budget, training_seed=training_seed))
        return EvaluationRequest(f"{individual.id}:training-seed-{training_seed}", individual.code, settings)

    def _request(self, individual: Individual) -> EvaluationRequest:
        reference: str | None = None
        rewritten: tuple[str, ...] = ()
        if individual.operator in ("mutate", "eot"):
            reference = self.store.individual(individual.parents[0]).code
            rewritten = individual.blocks
        return EvaluationRequest(
            str(individual.id),
            individual.code,
            self.config.fitness,
            reference=reference,
            rewritten=rewritten,
            checked=self._verdicts.pop(individual.id, None),
        )
