"""The generation loop: GE's baseline with NSGA-II parents, SPEA2 elites, LLM mutation, EoT and AST crossover.

Every random draw of an offspring comes from a generator seeded with (run seed, generation,
slot), and selection reads only what the store holds, so a run resumed after a kill makes
exactly the offspring it would have made. Each offspring is stored as soon as the model
has proposed it and again as soon as it is evaluated; a stored step is never repeated, and an
evaluation still running when the run stopped is started again on resume.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from astevo.data.prepared import data_shape
from astevo.errors import AstevoError
from astevo.evaluation.base import Evaluator
from astevo.evolution import selection
from astevo.evolution.breeder import Bred, Breeder
from astevo.evolution.budget import exhausted, planned_individuals, trainings_spent
from astevo.evolution.data_check import check_data
from astevo.evolution.model_check import check_model
from astevo.evolution.noise import learns_nothing, run_noise
from astevo.evolution.racing_round import race
from astevo.evolution.scheduler import Scheduler
from astevo.evolution.strategy import strategy_of
from astevo.store.records import PENDING, Individual
from astevo.store.run_store import RunStore
from astevo.variation.base import Variation


@dataclass(frozen=True)
class Progress:
    """What the run has done so far, after each stored step."""

    generation: int
    generations: int | None  # None when the run is sized by its evaluation budget
    done: int  # offspring (and the seed) proposed and evaluated or discarded; trainings spent, with a budget
    total: int
    valid: int
    best: Individual | None  # best validation accuracy at or below the seed's cost
    latest: Individual | None


OnProgress = Callable[[Progress], None]


class Evolution:
    """A run carried forward: variation proposes, the evaluator measures, the store keeps every step.

    Each offspring's evaluation starts as soon as it is proposed, and the variation proposes the next while
    it runs (an evaluator that evaluates as it is handed a request gives the sequential order instead).
    Breeding reads only what is settled in slot order: within a generation, parents, exemplars and
    selection come from the generation before, and "already proposed" means proposed earlier in slot
    order, so a run makes the same offspring whatever the number of slots or the executor, and
    whenever evaluations finish.
    """

    def __init__(
        self,
        store: RunStore,
        variation: Variation,
        evaluator: Evaluator,
        *,
        on_progress: OnProgress | None = None,
        force: bool = False,
    ) -> None:
        store.claim()
        check_model(store, variation.identity)
        check_data(store)
        self.store = store
        self.on_progress = on_progress or (lambda progress: None)
        self.force = force  # go on with a seed that learns nothing
        self.config = store.config()
        self.strategy = strategy_of(self.config)
        self.breeder = Breeder(store, variation, evaluator)
        self.scheduler = Scheduler(store, self.config, evaluator)

    @property
    def total(self) -> int:
        """Individuals the run will hold; trainings, with an evaluation budget."""
        return planned_individuals(self.config)

    def _exhausted(self) -> bool:
        return exhausted(self.store, self.config)

    def run(self) -> list[Individual]:
        """Carry the run to its end (from wherever it stopped); returns the final population."""
        origin = self._seed_individual()
        # the seed trains while generation 0 is proposed; mutations measure its size themselves
        self.scheduler.start(origin)
        if self.store.population(0) is None:
            for training_seed in self._noise_seeds(origin):
                self.scheduler.start_training(origin, training_seed)
        population = [origin]
        for generation in range(self.config.generations):
            if self._exhausted() and self.store.at(generation, 1) is None:  # a started generation is finished
                break
            population = self._generation(generation, population)
        self.store.set_meta("finished", time.time())
        return population

    def _settled_seed(self, origin: Individual) -> Individual:
        """The seed evaluated, then trained with the run's further training seeds: the run's noise."""
        origin = self._settle(origin, 0)
        if not origin.valid:
            raise AstevoError(
                f"the seed model fails the fitness cascade ({origin.reason}); fix it (or the settings), "
                f"then start a new run (delete {self.store.folder} or choose another --run)"
            )
        for training_seed in self._noise_seeds(origin):
            self.scheduler.record_training(origin, training_seed)
        origin = self.store.individual(origin.id)
        problem = learns_nothing(run_noise(self.store, origin), data_shape(self.config.fitness)[0])
        if problem and not self.force:
            budget = self.config.fitness
            raise AstevoError(
                f"{problem}; raise --limit-train (now {budget.limit_train or 'all'} images) or --epochs (now "
                f"{budget.budget.epochs:g}) in a new run, or go on anyway with: astevo evolve --run "
                f"{self.store.folder} --resume --force"
            )
        return origin

    def _noise_seeds(self, origin: Individual) -> list[int]:
        """The training seeds of the seed's further trainings that are not stored yet."""
        first = self.config.fitness.budget.training_seed
        done = {training.training_seed for training in self.store.trainings(origin.id)}
        return [first + n for n in range(1, self.config.noise_seeds) if first + n not in done]

    def _seed_individual(self) -> Individual:
        """Individual #1: the seed model file as it is, stored (evaluated or not)."""
        found = self.store.at(0, 0)
        return found if found is not None else self._born(Bred(self.breeder.seed()))

    def _generation(self, generation: int, population: list[Individual]) -> list[Individual]:
        stored = self.store.population(generation)
        if stored is not None:
            return [self.store.individual(i) for i in stored]
        size = self.config.population
        parents = (
            []
            if generation == 0
            else selection.parents(
                population, 2 * size, self.config.cost, f"{self.config.random_seed}:{generation}:parents"
            )
        )
        offspring = []
        seed_only = not self.strategy.evolves(generation)
        seed_open = generation == 0  # the seed's evaluation and noise are stored once they end, or after the slots
        for slot in range(1, size + 1):
            if seed_open and self.scheduler.finished(population[0], self._noise_seeds(population[0])):
                population, seed_open = [self._settled_seed(population[0])], False  # a seed that fails stops now
            individual = self.store.at(generation, slot)
            if individual is None:
                if self._exhausted():  # decided from the store alone, so a resumed run stops at the same slot
                    break
                seed = self.store.at(0, 0) if seed_only else None
                pair = (seed, seed) if seed is not None else (parents[2 * slot - 2], parents[2 * slot - 1])
                individual = self._born(self.breeder.breed(generation, slot, pair, population))
            self.scheduler.start(individual)
            offspring.append(individual)
        if seed_open:
            population = [self._settled_seed(population[0])]
        offspring = [self._settle(individual, generation) for individual in offspring]  # in slot order
        if self.strategy.races:
            race(self.store, self.config, self.scheduler, population, offspring)
        population = [self.store.individual(i.id) for i in population]  # with the means racing left
        offspring = [self.store.individual(i.id) for i in offspring]
        survivors = selection.survivors([*population, *offspring], size, self.config.cost)
        self.store.finish_generation(generation, [i.id for i in survivors])
        return survivors

    def _born(self, bred: Bred) -> Individual:
        added = self.store.add(bred.new)
        if bred.verdict is not None:
            self.scheduler.checked(added, bred.verdict)
        return self.store.individual(added)

    def _settle(self, individual: Individual, generation: int) -> Individual:
        """Evaluate a pending individual (reusing an earlier evaluation of the same code) and report progress."""
        if individual.status == PENDING:
            self.scheduler.evaluate(individual)
            individual = self.store.individual(individual.id)
        self._report(generation, individual)
        return individual

    def _report(self, generation: int, latest: Individual) -> None:
        everyone = self.store.individuals(with_text=False)
        settled = [i for i in everyone if i.status != PENDING]
        budgeted = self.config.evaluations > 0
        self.on_progress(
            Progress(
                generation=generation,
                generations=None if budgeted else self.config.generations,
                done=trainings_spent(self.store, self.config) if budgeted else len(settled),
                total=self.total,
                valid=sum(i.valid for i in settled),
                best=selection.best_within_seed_cost(everyone, self.config.cost),
                latest=latest,
            )
        )
