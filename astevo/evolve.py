"""The generation loop: GE's baseline with NSGA-II parents, SPEA2 elites, LLM mutation, EoT and AST crossover.

Every random draw of an offspring comes from a generator seeded with (run seed, generation,
slot), and selection reads only what the store holds, so a run resumed after a kill makes
exactly the offspring it would have made. Each offspring is stored as soon as the model
has proposed it and again as soon as it is evaluated; a stored step is never repeated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import random
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Protocol

import astevo
from astevo import selection
from astevo.blocks import ModelFile
from astevo.cache import EvaluationCache
from astevo.canonical import canonical_hash
from astevo.config import EvolveConfig
from astevo.crossover import child_problem, crossover
from astevo.data_sources import dataset_geometry
from astevo.errors import AstevoError
from astevo.evolvable import evolvable_blocks
from astevo.fitness import evaluate
from astevo.inspection import inspect_model
from astevo.operators import Proposal
from astevo.prompts import Exemplar
from astevo.store import PENDING, Individual, RunStore


class Variation(Protocol):
    def mutate(self, model_file: ModelFile, name: str, rng: random.Random, exemplar: Exemplar | None) -> Proposal: ...


@dataclass(frozen=True)
class Progress:
    """What the run has done so far, after each stored step."""

    generation: int
    generations: int
    done: int  # offspring (and the seed) proposed and evaluated or discarded
    total: int
    valid: int
    best: Individual | None  # best validation accuracy at or below the seed's cost
    latest: Individual | None


OnProgress = Callable[[Progress], None]


def start_run(folder: Path, config: EvolveConfig, seed: ModelFile, model_path: Path | None) -> RunStore:
    """A new run: settings checked, the blocks to evolve fixed from one build of the seed, all recorded."""
    config.check()
    num_classes, channels, _ = dataset_geometry(config.fitness.dataset)
    anatomy = inspect_model(seed, num_classes, channels)
    config = dataclasses.replace(config, blocks=evolvable_blocks(seed, anatomy, config.blocks))
    if model_path is not None:  # resolved once: a resume may not pick another file from $ASTEVO_MODEL
        config = dataclasses.replace(config, mutation=dataclasses.replace(config.mutation, model=str(model_path.resolve())))
    return RunStore.create(folder, {
        "config": config.to_record(),
        "seed_file": seed.origin,
        "seed_source": seed.source,
        "versions": _versions(),
        "model": {"path": str(model_path.resolve()), "sha256": _file_hash(model_path)} if model_path else None,
        "started": time.time(),
    })


class Evolution:
    def __init__(self, store: RunStore, variation: Variation, *, cache: EvaluationCache | None = None,
                 on_progress: OnProgress | None = None) -> None:
        store.claim()
        self.store, self.variation, self.cache = store, variation, cache
        self.on_progress = on_progress or (lambda progress: None)
        self.config = EvolveConfig.from_record(store.meta()["config"])

    @property
    def total(self) -> int:
        return 1 + self.config.population * self.config.generations

    def run(self) -> list[Individual]:
        """Carry the run to its end (from wherever it stopped); returns the final population."""
        seed = self._seed()
        if not seed.valid:
            raise AstevoError(f"the seed model fails the fitness cascade ({seed.reason}); fix it (or the settings), "
                              f"then start a new run (delete {self.store.folder} or choose another --run)")
        population = [seed]
        for generation in range(self.config.generations):
            population = self._generation(generation, population)
        self.store.set_meta("finished", time.time())
        return population

    def _seed(self) -> Individual:
        found = self.store.at(0, 0)
        if found is None:
            source = self.store.meta()["seed_source"]
            self.store.add(generation=0, slot=0, parents=(), operator="seed", blocks=(), intent=None, source=source,
                           code_hash=canonical_hash(source), exchanges=[], rng_seed=str(self.config.seed),
                           propose_seconds=0.0)
            found = self.store.at(0, 0)
        return self._settle(found, 0)

    def _generation(self, generation: int, population: list[Individual]) -> list[Individual]:
        stored = self.store.population(generation)
        if stored is not None:
            return [self.store.individual(i) for i in stored]
        size = self.config.population
        parents = [] if generation == 0 else selection.parents(
            population, 2 * size, self.config.cost, f"{self.config.seed}:{generation}:parents")
        offspring = []
        for slot in range(1, size + 1):
            pair = (population[0], population[0]) if generation == 0 else (parents[2 * slot - 2], parents[2 * slot - 1])
            individual = self.store.at(generation, slot) or self._breed(generation, slot, pair, population)
            offspring.append(self._settle(individual, generation))
        survivors = selection.survivors([*population, *offspring], size, self.config.cost)
        self.store.finish_generation(generation, [i.id for i in survivors])
        return survivors

    def _breed(self, generation: int, slot: int, pair: tuple[Individual, Individual],
               population: list[Individual]) -> Individual:
        rng_seed = f"{self.config.seed}:{generation}:{slot}"
        rng = random.Random(rng_seed)
        first, second = pair
        if generation > 0 and rng.random() < self.config.crossover_rate and first.code_hash != second.code_hash:
            child = self._cross(generation, slot, first, second, rng, rng_seed)
            if child is not None:
                return child
        return self._mutate(generation, slot, first, population, rng, rng_seed)

    def _cross(self, generation: int, slot: int, first: Individual, second: Individual, rng: random.Random,
               rng_seed: str) -> Individual | None:
        """A crossover child, or None when it would repeat code already evaluated (the slot then mutates instead)."""
        started = time.perf_counter()
        ancestor = self.store.individual(self._common_ancestor(first, second))
        result = crossover(ModelFile(first.source, f"#{first.id}"), ModelFile(second.source, f"#{second.id}"),
                           ModelFile(ancestor.source, f"#{ancestor.id}"), self.config.blocks, rng)
        code_hash = canonical_hash(result.child.source) if result.child else None
        if code_hash is not None and self.store.evaluated_with_hash(code_hash) is not None:
            return None  # e.g. each block taken from the parent that kept the ancestor's version
        intent = ", ".join(f"{name} from {origin}" for name, origin in result.origins.items() if origin != "first")
        added = self.store.add(
            generation=generation, slot=slot, parents=(first.id, second.id), operator="crossover",
            blocks=result.changed_blocks, intent=intent or None, source=result.child.source if result.child else None,
            code_hash=code_hash, exchanges=[], rng_seed=rng_seed, propose_seconds=time.perf_counter() - started,
            discarded=result.reason,
        )
        return self.store.individual(added)

    def _mutate(self, generation: int, slot: int, parent: Individual, population: list[Individual],
                rng: random.Random, rng_seed: str) -> Individual:
        block = rng.choice(self.config.blocks)
        exemplar = _exemplar(self.store, population) if generation > 0 and rng.random() < self.config.eot_rate else None
        parent_file = ModelFile(parent.source, f"#{parent.id}")
        proposal = self.variation.mutate(parent_file, block, rng, exemplar)
        source, discarded = None, f"no answer passed the fast checks ({proposal.error})"
        if proposal.accepted:
            try:
                source = parent_file.replace(block, proposal.source).source
            except AstevoError as error:  # the operator's checks should have caught it; the run goes on
                discarded = f"the new {block} does not fit the file: {error}"
            else:
                discarded = child_problem(source, self.config.blocks)  # e.g. a name only an untried branch uses
                source = None if discarded else source
        added = self.store.add(
            generation=generation, slot=slot, parents=(parent.id,), operator=proposal.operator, blocks=(block,),
            intent=proposal.intent, source=source, code_hash=canonical_hash(source) if source else None,
            exchanges=[dataclasses.asdict(e) for e in proposal.exchanges], rng_seed=rng_seed,
            propose_seconds=proposal.seconds, discarded=discarded,
        )
        return self.store.individual(added)

    def _settle(self, individual: Individual, generation: int) -> Individual:
        """Evaluate a pending individual (reusing an earlier evaluation of the same code) and report progress."""
        if individual.status == PENDING:
            self._evaluate(individual)
            individual = self.store.individual(individual.id)
        self._report(generation, individual)
        return individual

    def _evaluate(self, individual: Individual) -> None:
        earlier = self.store.evaluated_with_hash(individual.code_hash)
        if earlier is not None and earlier.id != individual.id:
            self.store.record_evaluation(individual.id, list(earlier.stages), earlier.metrics, 0.0, earlier.id)
            return
        reference, rewritten = None, ()
        if individual.operator in ("mutate", "eot"):
            reference = ModelFile(self.store.individual(individual.parents[0]).source, "parent")
            rewritten = individual.blocks
        started = time.perf_counter()
        evaluation = evaluate(individual.source, self.config.fitness, reference=reference, rewritten=rewritten,
                              cache=self.cache)
        record = evaluation.to_record()
        self.store.record_evaluation(individual.id, record["stages"], record["metrics"], time.perf_counter() - started,
                                     cached=evaluation.cached)

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
        self.on_progress(Progress(
            generation=generation, generations=self.config.generations, done=len(settled), total=self.total,
            valid=sum(i.valid for i in settled), best=selection.best_within_seed_cost(everyone, self.config.cost), latest=latest,
        ))


def _exemplar(store: RunStore, population: list[Individual]) -> Exemplar | None:
    """Evolution of Thought: the elite whose one-block change gained most accuracy over its parent."""
    best: tuple[float, Exemplar] | None = None
    for elite in population:
        if elite.operator not in ("mutate", "eot") or not elite.blocks:
            continue
        parent = store.individual(elite.parents[0])
        if not parent.valid:
            continue
        gain = elite.val_accuracy - parent.val_accuracy
        if gain > 0 and (best is None or gain > best[0]):
            changed = elite.blocks[0]
            best = (gain, Exemplar(
                block=changed,
                before=ModelFile(parent.source).block(changed).source,
                after=ModelFile(elite.source).block(changed).source,
                accuracy_change=gain,
                parameter_change=elite.parameters - parent.parameters,
            ))
    return best[1] if best else None


def check_model(store: RunStore, model: Path) -> None:
    """A resumed run must use the model file it started with, or it would not end as it would have."""
    recorded = store.meta().get("model")
    if recorded and (not model.is_file() or _file_hash(model) != recorded["sha256"]):
        raise AstevoError(f"run {store.folder} was made with the model {recorded['path']} (sha256 "
                          f"{recorded['sha256'][:12]}...), and {model} is missing or differs; restore that file to resume")


def _versions() -> dict[str, str]:
    versions = {"astevo": astevo.__version__, "python": platform.python_version()}
    for package in ("torch", "llama_cpp_python", "llguidance", "libcst", "deap", "fvcore"):
        try:
            versions[package] = metadata.version(package.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
