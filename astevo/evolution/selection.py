"""Multi-objective selection with DEAP: parents by NSGA-II and its crowded tournament, elites by SPEA2.

Objectives: validation accuracy (up) and a cost, parameters or multiply-adds (down). DEAP's
operators work on objects with a `fitness`; `Scored` wraps a stored individual for them.
DEAP's tournament draws from Python's global `random`, so every call runs under a seed of
its own and restores the global state after: selection is reproducible on resume.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from deap import base, tools

from astevo.errors import AstevoError
from astevo.store.records import Individual

COSTS = ("parameters", "macs")


class _Fitness(base.Fitness):
    weights = (1.0, -1.0)  # accuracy up, cost down


class Scored:
    def __init__(self, individual: Individual, cost: str) -> None:
        self.individual = individual
        self.fitness = _Fitness((individual.val_accuracy, individual.metrics[cost]))


def check_cost(cost: str) -> None:
    if cost not in COSTS:
        raise AstevoError(f"unknown cost objective {cost!r}; choose one of: {', '.join(COSTS)}")


def scored(individuals: Sequence[Individual], cost: str) -> list[Scored]:
    """The valid individuals, one per distinct code (the first evaluated), ready for DEAP."""
    check_cost(cost)
    seen: set[str | None] = set()
    unique = []
    for individual in sorted(individuals, key=lambda i: i.id):
        if individual.valid and individual.code_hash not in seen:
            seen.add(individual.code_hash)
            unique.append(Scored(individual, cost))
    return unique


def pareto_front(individuals: Sequence[Individual], cost: str = "parameters") -> list[Individual]:
    """The non-dominated valid individuals, cheapest first."""
    candidates = scored(individuals, cost)
    if not candidates:
        return []
    front = tools.sortNondominated(candidates, len(candidates), first_front_only=True)[0]
    return sorted((s.individual for s in front), key=lambda i: (i.metrics[cost], -i.val_accuracy, i.id))


def best_within_seed_cost(individuals: list[Individual], cost: str) -> Individual | None:
    """The most accurate valid individual no costlier than the seed: GE's "better at equal size"."""
    seed = next((i for i in individuals if i.operator == "seed"), None)
    if seed is None or not seed.valid:
        return None
    fitting = [i for i in individuals if i.valid and i.metrics[cost] <= seed.metrics[cost]]
    return max(fitting, key=lambda i: (i.val_accuracy, -i.metrics[cost], -i.id))


def survivors(individuals: Sequence[Individual], size: int, cost: str) -> list[Individual]:
    """SPEA2's environmental selection: the elites that form the next population.

    DEAP's SPEA2 measures density on the raw objective values, where a cost in the hundreds
    of thousands would drown accuracy; each objective is divided by its spread first, which
    leaves every dominance relation as it was.
    """
    candidates = scored(individuals, cost)
    if len(candidates) <= size:
        return [s.individual for s in candidates]
    spreads = [max(values) - min(values) or 1.0 for values in zip(*(s.fitness.values for s in candidates), strict=True)]
    for entrant in candidates:
        entrant.fitness.values = tuple(
            value / spread for value, spread in zip(entrant.fitness.values, spreads, strict=True)
        )
    with _seeded(f"survivors:{min(s.individual.id for s in candidates)}:{len(candidates)}"):
        chosen = tools.selSPEA2(candidates, size)
    return sorted((s.individual for s in chosen), key=lambda i: i.id)


def parents(population: Sequence[Individual], count: int, cost: str, seed: str) -> list[Individual]:
    """`count` parents by NSGA-II ranking and crowded binary tournaments (selTournamentDCD)."""
    candidates = scored(population, cost)
    if not candidates:
        raise AstevoError("no valid individual is left to breed from: every candidate failed the fitness cascade")
    with _seeded(seed):
        ranked = tools.selNSGA2(candidates, len(candidates))  # sets crowding distances
        # selTournamentDCD runs its tournaments in rounds of four entrants: repeat the ranked
        # individuals to fill whole rounds, so each takes part at least once.
        pool = (ranked * 4)[: 4 * -(-len(ranked) // 4)]
        chosen: list[Scored] = []
        while len(chosen) < count:
            chosen.extend(tools.selTournamentDCD(pool, len(pool)))
    return [s.individual for s in chosen[:count]]


@contextmanager
def _seeded(seed: str) -> Iterator[None]:
    saved = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(saved)
