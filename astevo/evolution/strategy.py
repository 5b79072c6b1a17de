"""How a run uses what it measures: GE's evolution, or best-of-n sampling (the baseline that asks whether evolving
helps at all). The loop, the breeder, racing and the machine's measuring ask the run's strategy, so the baseline
is one object instead of a test of the variation's name wherever the two differ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from astevo.settings import BEST_OF_N, EvolveConfig


class Strategy(Protocol):
    @property
    def races(self) -> bool:
        """Whether children that selection cannot tell apart get further trainings."""
        ...

    def evolves(self, generation: int) -> bool:
        """Whether the generation breeds from selected parents, with crossover and Evolution of Thought's exemplars;
        else every child is a mutation of the seed."""
        ...


@dataclass(frozen=True)
class Evolving:
    """GE: generation 0 mutates the seed; later ones breed from NSGA-II parents; close children are raced."""

    race_trainings: int

    @property
    def races(self) -> bool:
        return self.race_trainings > 1

    def evolves(self, generation: int) -> bool:
        return generation > 0


class BestOfN:
    """Every child a mutation of the seed, none raced: selection only picks the best of them at the end."""

    races = False

    def evolves(self, generation: int) -> bool:
        return False


def strategy_of(config: EvolveConfig) -> Strategy:
    return BestOfN() if config.variation == BEST_OF_N else Evolving(config.race_trainings)
