"""One new individual of a generation, as a record: GE's crossover of two parents, else a mutation of the first.

Every draw comes from the generator seeded with (run seed, generation, slot), and what the breeder reads of the
run (versions proposed so far, the elites' measured changes) is settled in slot order, so a resumed run breeds
exactly what the uninterrupted run bred.
"""

from __future__ import annotations

import dataclasses
import random
import time

from astevo.code.blocks import ModelFile
from astevo.code.canonical import block_hashes, canonical_hash
from astevo.code.imports import with_block
from astevo.code.validity import child_problem
from astevo.errors import AstevoError
from astevo.evaluation.base import Evaluation, Evaluator, Size
from astevo.evaluation.checks import BlockCheck
from astevo.evolution.block_choice import mutation_site
from astevo.evolution.noise import Noise, run_noise
from astevo.evolution.racing import trainings
from astevo.evolution.strategy import strategy_of
from astevo.settings import EvolveConfig
from astevo.store.records import DISCARDED, Individual, NewIndividual
from astevo.store.run_store import RunStore
from astevo.variation.base import Variation
from astevo.variation.crossover import crossover
from astevo.variation.edit_outcomes import EditOutcome, edit_label, edit_outcomes
from astevo.variation.prompts import Exemplar

Pair = tuple[Individual, Individual]
MUTATIONS = ("mutate", "eot")  # the operators of one-block changes, whose measured gain is their edit's


@dataclasses.dataclass(frozen=True)
class Bred:
    """A new individual, and the fast checks' verdict on its code, which its training need not repeat."""

    new: NewIndividual
    verdict: Evaluation | None = None


class Breeder:
    def __init__(self, store: RunStore, variation: Variation, evaluator: Evaluator) -> None:
        self.store, self.variation, self.evaluator = store, variation, evaluator
        self.config: EvolveConfig = store.config()
        self.strategy = strategy_of(self.config)
        self._block_hashes: dict[int, dict[str, str]] = {}  # each stored individual's blocks, hashed once
        self._edits: dict[int, str | None] = {}  # each measured child's kind of edit, read once
        self._outcomes_before: dict[int, tuple[EditOutcome, ...]] = {}  # by generation: what its prompts list

    def seed(self) -> NewIndividual:
        """Individual #1: the seed model file as it is."""
        source = self.store.meta()["seed_source"]
        return NewIndividual(
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

    def breed(self, generation: int, slot: int, pair: Pair, population: list[Individual]) -> Bred:
        rng_seed = draw_seed(self.config, generation, slot)
        rng = random.Random(rng_seed)
        first, second = pair
        if (
            self.strategy.evolves(generation)
            and rng.random() < self.config.crossover_rate
            and first.code_hash != second.code_hash
        ):
            child = self._cross(generation, slot, first, second, rng, rng_seed)
            if child is not None:
                return Bred(child)
        return self._mutate(generation, slot, first, population, rng, rng_seed)

    def _cross(
        self, generation: int, slot: int, first: Individual, second: Individual, rng: random.Random, rng_seed: str
    ) -> NewIndividual | None:
        """A crossover child, or None when it would repeat code already evaluated (the slot then mutates instead)."""
        started = time.perf_counter()
        common = self.store.ancestors(first.id) & self.store.ancestors(second.id)
        ancestor = self.store.individual(max(common))  # the most recent one both descend from: the seed at the latest
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
        return NewIndividual(
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

    def _mutate(
        self,
        generation: int,
        slot: int,
        parent: Individual,
        population: list[Individual],
        rng: random.Random,
        rng_seed: str,
    ) -> Bred:
        parent_file = ModelFile(parent.code, f"#{parent.id}")
        meta = self.store.meta()
        intent, block = mutation_site(
            parent_file, self.config, rng, meta.get("block_parameters"), meta.get("model_parameters")
        )
        evolving = self.strategy.evolves(generation)
        exemplar = _exemplar(self.store, population) if evolving and rng.random() < self.config.eot_rate else None
        # a settled parent's measured size; in generation 0 the checks measure the seed themselves, so that whether
        # it settled before this proposal (a matter of timing) changes nothing
        size = (
            Size(parent.parameters, parent.macs)
            if generation > 0 and parent.parameters is not None and parent.macs is not None
            else None
        )
        check = BlockCheck(
            self.evaluator, self.config.fitness, parent_file, block, parent_size=size, known=self._versions_of(block)
        )
        outcomes = self._outcomes(generation) if evolving else ()
        proposal = self.variation.mutate(parent_file, block, intent, rng, exemplar, check, outcomes)
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
        new = NewIndividual(
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
        return Bred(new, check.verdict(source) if source else None)

    def _outcomes(self, generation: int) -> tuple[EditOutcome, ...]:
        """What each kind of edit has done to its parent's accuracy in the generations before this one: settled
        (racing ends a generation), so a resumed run shows what the uninterrupted run showed."""
        if generation not in self._outcomes_before:
            self._outcomes_before[generation] = self._measure_outcomes(generation)
        return self._outcomes_before[generation]

    def _measure_outcomes(self, generation: int) -> tuple[EditOutcome, ...]:
        listed = {individual.id: individual for individual in self.store.individuals(with_text=False)}
        changes: list[tuple[str, float]] = []
        for child in listed.values():
            if child.generation >= generation or child.operator not in MUTATIONS or not child.valid:
                continue
            parent = listed[child.parents[0]]
            if child.id not in self._edits:
                self._edits[child.id] = _edit_of(self.store.individual(child.id))
            edit = self._edits[child.id]
            if edit is not None and parent.valid:
                label = edit_label(edit, _measured(parent, "parameters"), _measured(child, "parameters"))
                changes.append((label, _measured(child, "val_accuracy") - _measured(parent, "val_accuracy")))
        return edit_outcomes(changes)

    def _versions_of(self, block: str) -> frozenset[str]:
        """Every version of `block` the run holds, proposed before this point in (generation, slot) order, so a
        resumed run sees exactly the versions the uninterrupted run saw."""
        for listed in self.store.individuals(with_text=False):
            if listed.id not in self._block_hashes and listed.status != DISCARDED:
                self._block_hashes[listed.id] = block_hashes(self.store.individual(listed.id).code)
        return frozenset(hashes[block] for hashes in self._block_hashes.values() if block in hashes)


def draw_seed(config: EvolveConfig, generation: int, slot: int) -> str:
    """What seeds every draw of one child: its place in the run, not the order in which slots get to it."""
    return f"{config.random_seed}:{generation}:{slot}"


def _exemplar(store: RunStore, population: list[Individual]) -> Exemplar | None:
    """Evolution of Thought: the elite whose one-block change gained most accuracy over its parent. The prompt
    says the change helped, so a gain inside the run's noise (when measured) is no exemplar."""
    seed = store.at(0, 0)
    noise = run_noise(store, seed) if seed is not None else Noise(())
    best: tuple[float, Exemplar] | None = None
    for elite in population:
        if elite.operator not in MUTATIONS or not elite.blocks:
            continue
        parent = store.individual(elite.parents[0])
        if not (parent.valid and elite.valid):
            continue
        gain = _measured(elite, "val_accuracy") - _measured(parent, "val_accuracy")
        if noise.gained(gain, (trainings(elite), trainings(parent))) and (best is None or gain > best[0]):
            changed = elite.blocks[0]
            best = (
                gain,
                Exemplar(
                    block=changed,
                    before=ModelFile(parent.code).block(changed).source,
                    after=ModelFile(elite.code).block(changed).source,
                    accuracy_change=gain,
                    parameter_change=int(_measured(elite, "parameters") - _measured(parent, "parameters")),
                    edit=_edit_of(elite),
                ),
            )
    return best[1] if best else None


def _edit_of(child: Individual) -> str | None:
    """The kind of edit that made a mutated child: its accepted exchange's."""
    return child.exchanges[-1].get("edit") if child.exchanges else None


def _measured(individual: Individual, metric: str) -> float:
    return float(individual.metrics[metric])
