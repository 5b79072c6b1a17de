"""A run's evaluation budget: every training counts, so methods compared on one budget pay for re-evaluations.

The count is read from the store alone and counts a training when it is decided, not when it ends,
so a resumed run stops at exactly the slot the uninterrupted run stopped at.
"""

from __future__ import annotations

from astevo.settings import EvolveConfig
from astevo.store.records import DISCARDED
from astevo.store.run_store import RunStore


def trainings_spent(store: RunStore, config: EvolveConfig) -> int:
    """Each distinct code proposed and not discarded (a mutation that failed the fast checks costs none), the
    seed's noise trainings, and racing's further trainings."""
    codes = {i.code_hash for i in store.individuals(with_text=False) if i.status != DISCARDED}
    seed = store.at(0, 0)
    racing = [t for t in store.trainings() if seed is None or t.individual != seed.id]
    return len(codes) + config.noise_seeds - 1 + len(racing)


def trainings_left(store: RunStore, config: EvolveConfig, stored_since: int = 0) -> int | None:
    """How many more trainings the budget allows (None: no budget), counted as it stood `stored_since` stored
    trainings ago: a resumed run repeats a decision that came before them."""
    if config.evaluations <= 0:
        return None
    return max(config.evaluations - trainings_spent(store, config) + stored_since, 0)


def exhausted(store: RunStore, config: EvolveConfig) -> bool:
    return trainings_left(store, config) == 0


def planned_individuals(config: EvolveConfig) -> int:
    """How many individuals the run will hold at most: one per training of the budget, else the seed and every
    generation's offspring."""
    return config.evaluations or 1 + config.population * config.generations
