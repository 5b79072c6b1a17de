"""The generation loop: GE's baseline with NSGA-II parents, SPEA2 elites, LLM mutation, EoT and AST crossover.

Every random draw of an offspring comes from a generator seeded with (run seed, generation,
slot), and selection reads only what the store holds, so a run resumed after a kill makes
exactly the offspring it would have made. Each offspring is stored as soon as the model
has proposed it and again as soon as it is evaluated; a stored step is never repeated, and an
evaluation still running when the run stopped is started again on resume.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from astevo.code.blocks import ModelFile
from astevo.code.canonical import block_hashes, canonical_hash
from astevo.code.imports import with_block
from astevo.code.validity import child_problem
from astevo.data.prepared import data_shape
from astevo.errors import AstevoError
from astevo.evaluation.base import Evaluation, EvaluationRequest, EvaluationResult, Evaluator, Size
from astevo.evaluation.checks import BlockCheck
from astevo.evolution import selection
from astevo.evolution.block_choice import choose_block
from astevo.evolution.budget import exhausted, trainings_left, trainings_spent
from astevo.evolution.data_check import check_data
from astevo.evolution.model_check import check_model
from astevo.evolution.noise import learns_nothing, run_noise
from astevo.evolution.racing import as_it_stood, needs_another_training
from astevo.settings import BEST_OF_N, INTENTS
from astevo.store.records import DISCARDED, PENDING, Individual, Training
from astevo.store.run_store import RunStore
from astevo.variation.base import Variation
from astevo.variation.crossover import crossover
from astevo.variation.prompts import Exemplar


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

    Pipelined (the default), each offspring's evaluation starts as soon as it is proposed, and the
    variation proposes the next while it runs. Breeding reads only what is settled in slot order:
    within a generation, parents, exemplars and selection come from the generation before, and
    "already proposed" means proposed earlier in slot order, so a run makes the same offspring
    whatever the number of slots or the executor, and whenever evaluations finish.
    """

    def __init__(
        self,
        store: RunStore,
        variation: Variation,
        evaluator: Evaluator,
        *,
        on_progress: OnProgress | None = None,
        pipelined: bool = True,
        force: bool = False,
    ) -> None:
        store.claim()
        check_model(store, variation.identity)
        check_data(store)
        self.store, self.variation, self.evaluator = store, variation, evaluator
        self.on_progress = on_progress or (lambda progress: None)
        self.pipelined, self.force = pipelined, force  # force: go on with a seed that learns nothing
        self.config = store.config()
        self._verdicts: dict[int, Evaluation] = {}  # fast-check verdicts of this process's proposals, by individual
        self._block_hashes: dict[int, dict[str, str]] = {}  # each stored individual's blocks, hashed once
        self._running: dict[int, Future[EvaluationResult]] = {}  # evaluations started, by individual
        self._noise_running: dict[int, Future[EvaluationResult]] = {}  # the seed's further trainings, by seed

    @property
    def total(self) -> int:
        """Individuals the run will hold; trainings, with an evaluation budget."""
        return self.config.evaluations or 1 + self.config.population * self.config.generations

    def _exhausted(self) -> bool:
        return exhausted(self.store, self.config)

    def run(self) -> list[Individual]:
        """Carry the run to its end (from wherever it stopped); returns the final population."""
        origin = self._seed_individual()
        if self.pipelined:  # the seed trains while generation 0 is proposed; mutations measure its size themselves
            self._start(origin)
            if self.store.population(0) is None:
                for training_seed in self._noise_seeds(origin):
                    self._noise_running[training_seed] = self.evaluator.submit(
                        self._seeded_request(origin, training_seed)
                    )
        else:
            origin = self._settled_seed(origin)
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
            running = self._noise_running.pop(training_seed, None)
            self._record_training(origin, training_seed, running)
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

    def _race(self, population: list[Individual], offspring: list[Individual]) -> None:
        """Train the children that would enter the elites or the front again, a round at a time, until each mean is
        told apart from every rival or reaches the cap (see racing.py); a round's trainings run in every slot at
        once and are stored in slot order."""
        seed = self.store.at(0, 0)
        racing = self.config.race_trainings > 1 and self.config.variation != BEST_OF_N  # best-of-n never selects
        std = run_noise(self.store, seed).std if seed is not None and racing else None
        if std is None:
            return
        contenders = [child for child in offspring if child.valid and child.reused_from is None]
        for round_number in range(1, self.config.race_trainings):  # failed trainings count towards the cap too
            entrants = self._race_entrants(population, offspring, contenders, round_number, std)
            if not entrants:
                return
            seed_of_round = self.config.fitness.budget.training_seed + round_number
            running = {
                child.id: self.evaluator.submit(self._seeded_request(child, seed_of_round))
                for child in entrants
                if len(self.store.trainings(child.id)) < round_number  # not stored before a resume
            }
            for child in entrants:  # stored in slot order, whichever finished first
                if child.id in running:
                    self._record_training(child, seed_of_round, running[child.id])

    def _race_entrants(
        self,
        population: list[Individual],
        offspring: list[Individual],
        contenders: list[Individual],
        round_number: int,
        std: float,
    ) -> list[Individual]:
        """The contenders that get a training in this round, decided on the trainings earlier rounds stored (a run
        resumed mid-round has more), in slot order, as many as the budget allows."""
        further = {child.id: self.store.trainings(child.id) for child in contenders}
        stood = {
            child.id: as_it_stood(self.store.individual(child.id), further[child.id], round_number - 1)
            for child in contenders
        }
        pool = [
            *(self.store.individual(i.id) for i in population),
            *(stood.get(i.id) or self.store.individual(i.id) for i in offspring),
        ]
        cost, cap = self.config.cost, self.config.race_trainings
        kept = {i.id for i in selection.survivors(pool, self.config.population, cost)} | {
            i.id for i in selection.pareto_front(pool, cost)
        }
        entrants = [
            stood[child.id]
            for child in contenders
            if len(further[child.id]) >= round_number - 1  # raced in every earlier round
            and child.id in kept
            and needs_another_training(stood[child.id], pool, cost, std, cap)
        ]
        stored_since = sum(max(len(trainings) - (round_number - 1), 0) for trainings in further.values())
        left = trainings_left(self.store, self.config, stored_since)
        return entrants if left is None else entrants[:left]

    def _record_training(
        self, individual: Individual, training_seed: int, running: Future[EvaluationResult] | None = None
    ) -> None:
        """Wait for (or start and wait for) one more training of the individual, and store it."""
        result = (running or self.evaluator.submit(self._seeded_request(individual, training_seed))).result()
        evaluation = result.evaluation
        metrics = evaluation.metrics if evaluation.valid else {"error": evaluation.problem}
        self.store.record_training(Training(individual.id, training_seed, metrics, result.seconds))

    def _noise_seeds(self, origin: Individual) -> list[int]:
        """The training seeds of the seed's further trainings that are not stored yet."""
        first = self.config.fitness.budget.training_seed
        done = {training.training_seed for training in self.store.trainings(origin.id)}
        return [first + n for n in range(1, self.config.noise_seeds) if first + n not in done]

    def _seeded_request(self, individual: Individual, training_seed: int) -> EvaluationRequest:
        fitness = self.config.fitness
        settings = dataclasses.replace(fitness, budget=dataclasses.replace(fitness.budget, training_seed=training_seed))
        return EvaluationRequest(f"{individual.id}:training-seed-{training_seed}", individual.code, settings)

    def _seed_individual(self) -> Individual:
        """Individual #1: the seed model file as it is, stored (evaluated or not)."""
        found = self.store.at(0, 0)
        if found is None:
            source = self.store.meta()["seed_source"]
            added = self.store.add(
                generation=0,
                slot=0,
                parents=(),
                operator="seed",
                blocks=(),
                intent=None,
                source=source,
                code_hash=canonical_hash(source),
                exchanges=[],
                rng_seed=str(self.config.random_seed),
                propose_seconds=0.0,
            )
            found = self.store.individual(added)
        return found

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
        seed_only = generation == 0 or self.config.variation == BEST_OF_N
        for slot in range(1, size + 1):
            individual = self.store.at(generation, slot)
            if individual is None:
                if self._exhausted():  # decided from the store alone, so a resumed run stops at the same slot
                    break
                seed = self.store.at(0, 0) if seed_only else None
                pair = (seed, seed) if seed is not None else (parents[2 * slot - 2], parents[2 * slot - 1])
                individual = self._breed(generation, slot, pair, population)
            if self.pipelined:
                self._start(individual)
            else:
                individual = self._settle(individual, generation)
            offspring.append(individual)
        if generation == 0 and self.pipelined:
            population = [self._settled_seed(population[0])]
        offspring = [self._settle(individual, generation) for individual in offspring]  # in slot order
        self._race(population, offspring)
        population = [self.store.individual(i.id) for i in population]  # with the means racing left
        offspring = [self.store.individual(i.id) for i in offspring]
        survivors = selection.survivors([*population, *offspring], size, self.config.cost)
        self.store.finish_generation(generation, [i.id for i in survivors])
        return survivors

    def _breed(
        self, generation: int, slot: int, pair: tuple[Individual, Individual], population: list[Individual]
    ) -> Individual:
        rng_seed = f"{self.config.random_seed}:{generation}:{slot}"
        rng = random.Random(rng_seed)
        first, second = pair
        if (
            generation > 0
            and self.config.variation != BEST_OF_N
            and rng.random() < self.config.crossover_rate
            and first.code_hash != second.code_hash
        ):
            child = self._cross(generation, slot, first, second, rng, rng_seed)
            if child is not None:
                return child
        return self._mutate(generation, slot, first, population, rng, rng_seed)

    def _cross(
        self, generation: int, slot: int, first: Individual, second: Individual, rng: random.Random, rng_seed: str
    ) -> Individual | None:
        """A crossover child, or None when it would repeat code already evaluated (the slot then mutates instead)."""
        started = time.perf_counter()
        ancestor = self.store.individual(self._common_ancestor(first, second))
        result = crossover(
            ModelFile(first.code, f"#{first.id}"),
            ModelFile(second.code, f"#{second.id}"),
            ModelFile(ancestor.code, f"#{ancestor.id}"),
            self.config.blocks,
            rng,
        )
        code_hash = canonical_hash(result.child.source) if result.child else None
        if code_hash is not None and self.store.proposed_with_hash(code_hash) is not None:
            return None  # e.g. each block taken from the parent that kept the ancestor's version
        intent = ", ".join(f"{name} from {origin}" for name, origin in result.origins.items() if origin != "first")
        added = self.store.add(
            generation=generation,
            slot=slot,
            parents=(first.id, second.id),
            operator="crossover",
            blocks=result.changed_blocks,
            intent=intent or None,
            source=result.child.source if result.child else None,
            code_hash=code_hash,
            exchanges=[],
            rng_seed=rng_seed,
            propose_seconds=time.perf_counter() - started,
            discarded=result.reason,
        )
        return self.store.individual(added)

    def _mutate(
        self,
        generation: int,
        slot: int,
        parent: Individual,
        population: list[Individual],
        rng: random.Random,
        rng_seed: str,
    ) -> Individual:
        parent_file = ModelFile(parent.code, f"#{parent.id}")
        intent = self.config.mutation.intent or rng.choice(INTENTS)
        meta = self.store.meta()
        block = choose_block(
            parent_file, self.config.blocks, intent, rng, meta.get("block_parameters"), meta.get("model_parameters")
        )
        evolving = generation > 0 and self.config.variation != BEST_OF_N
        exemplar = _exemplar(self.store, population) if evolving and rng.random() < self.config.eot_rate else None
        size = (
            Size(parent.parameters, parent.macs) if parent.parameters is not None and parent.macs is not None else None
        )
        check = BlockCheck(
            self.evaluator, self.config.fitness, parent_file, block, parent_size=size, known=self._versions_of(block)
        )
        proposal = self.variation.mutate(parent_file, block, intent, rng, exemplar, check)
        source: str | None = None
        discarded: str | None = (
            f"no answer passed the fast checks ({proposal.error})"
            if proposal.exchanges
            else f"the variation offers no edit of {block}"  # the random baseline at a block without spots
        )
        if proposal.source is not None:
            try:
                source = with_block(parent_file, block, proposal.source)
            except AstevoError as error:  # the operator's checks should have caught it; the run goes on
                discarded = f"the new {block} does not fit the file: {error}"
            else:
                discarded = child_problem(source, self.config.blocks)  # e.g. a name only an untried branch uses
                source = None if discarded else source
        added = self.store.add(
            generation=generation,
            slot=slot,
            parents=(parent.id,),
            operator=proposal.operator,
            blocks=(block,),
            intent=proposal.intent,
            source=source,
            code_hash=canonical_hash(source) if source else None,
            exchanges=[dataclasses.asdict(e) for e in proposal.exchanges],
            rng_seed=rng_seed,
            propose_seconds=proposal.seconds,
            discarded=discarded,
        )
        verdict = check.verdict(source) if source else None
        if verdict is not None:
            self._verdicts[added] = verdict
        return self.store.individual(added)

    def _versions_of(self, block: str) -> frozenset[str]:
        """Every version of `block` the run holds, proposed before this point in (generation, slot) order, so a
        resumed run sees exactly the versions the uninterrupted run saw."""
        for listed in self.store.individuals(with_text=False):
            if listed.id not in self._block_hashes and listed.status != DISCARDED:
                self._block_hashes[listed.id] = block_hashes(self.store.individual(listed.id).code)
        return frozenset(hashes[block] for hashes in self._block_hashes.values() if block in hashes)

    def _settle(self, individual: Individual, generation: int) -> Individual:
        """Evaluate a pending individual (reusing an earlier evaluation of the same code) and report progress."""
        if individual.status == PENDING:
            self._evaluate(individual)
            individual = self.store.individual(individual.id)
        self._report(generation, individual)
        return individual

    def _start(self, individual: Individual) -> None:
        """Start a pending individual's evaluation, unless an individual proposed earlier has the same code: its
        result is then reused once it is settled."""
        if individual.status != PENDING:
            return
        earlier = self.store.proposed_with_hash(individual.code_hash or canonical_hash(individual.code))
        if earlier is None or earlier.id == individual.id:
            self._running[individual.id] = self.evaluator.submit(self._request(individual))

    def _evaluate(self, individual: Individual) -> None:
        running = self._running.pop(individual.id, None)
        if running is None:
            earlier = self.store.evaluated_with_hash(individual.code_hash or canonical_hash(individual.code))
            if earlier is not None and earlier.id != individual.id:
                self.store.record_evaluation(individual.id, list(earlier.stages), earlier.metrics, 0.0, earlier.id)
                return
            running = self.evaluator.submit(self._request(individual))
        result = running.result()
        record = result.evaluation.to_record()
        self.store.record_evaluation(
            individual.id, record["stages"], record["metrics"], result.seconds, cached=result.evaluation.cached
        )

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

    def _common_ancestor(self, first: Individual, second: Individual) -> int:
        """The most recent individual both descend from (the seed at the latest)."""
        return max(self._ancestors(first.id) & self._ancestors(second.id))

    def _ancestors(self, individual: int) -> set[int]:
        found, frontier = set(), [individual]
        while frontier:
            current = frontier.pop()
            if current not in found:
                found.add(current)
                frontier.extend(self.store.individual(current).parents)
        return found

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


def _exemplar(store: RunStore, population: list[Individual]) -> Exemplar | None:
    """Evolution of Thought: the elite whose one-block change gained most accuracy over its parent."""
    best: tuple[float, Exemplar] | None = None
    for elite in population:
        if elite.operator not in ("mutate", "eot") or not elite.blocks:
            continue
        parent = store.individual(elite.parents[0])
        if not (parent.valid and elite.valid):
            continue
        gain = _measured(elite, "val_accuracy") - _measured(parent, "val_accuracy")
        if gain > 0 and (best is None or gain > best[0]):
            changed = elite.blocks[0]
            best = (
                gain,
                Exemplar(
                    block=changed,
                    before=ModelFile(parent.code).block(changed).source,
                    after=ModelFile(elite.code).block(changed).source,
                    accuracy_change=gain,
                    parameter_change=int(_measured(elite, "parameters") - _measured(parent, "parameters")),
                ),
            )
    return best[1] if best else None


def _measured(individual: Individual, metric: str) -> float:
    return float(individual.metrics[metric])
