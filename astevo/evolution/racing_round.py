"""A generation's races, run: which children get another training in each round, and storing those trainings.

The decisions are racing.py's pure functions; this module applies them to the run's store, within its budget,
and hands the trainings to the scheduler, a round at a time, so a round's trainings run in every slot at once.
"""

from __future__ import annotations

from astevo.evolution import selection
from astevo.evolution.budget import trainings_left
from astevo.evolution.noise import run_noise
from astevo.evolution.racing import as_it_stood, needs_another_training
from astevo.evolution.scheduler import Scheduler
from astevo.settings import EvolveConfig
from astevo.store.records import Individual
from astevo.store.run_store import RunStore


def race(
    store: RunStore,
    config: EvolveConfig,
    scheduler: Scheduler,
    population: list[Individual],
    offspring: list[Individual],
) -> None:
    """Train the children that would enter the elites or the front again, a round at a time, until each mean is
    told apart from every rival or reaches the cap; a round's trainings are stored in slot order."""
    seed = store.at(0, 0)
    std = run_noise(store, seed).std if seed is not None else None
    if std is None:
        return
    contenders = [child for child in offspring if child.valid and child.reused_from is None]
    for round_number in range(1, config.race_trainings):  # failed trainings count towards the cap too
        entrants = _entrants(store, config, population, offspring, contenders, round_number, std)
        if not entrants:
            return
        seed_of_round = config.fitness.budget.training_seed + round_number
        unstored = [child for child in entrants if len(store.trainings(child.id)) < round_number]  # resumed runs
        for child in unstored:
            scheduler.start_training(child, seed_of_round)
        for child in unstored:  # stored in slot order, whichever finished first
            scheduler.record_training(child, seed_of_round)


def _entrants(
    store: RunStore,
    config: EvolveConfig,
    population: list[Individual],
    offspring: list[Individual],
    contenders: list[Individual],
    round_number: int,
    std: float,
) -> list[Individual]:
    """The contenders that get a training in this round, decided on the trainings earlier rounds stored (a run
    resumed mid-round has more), in slot order, as many as the budget allows."""
    further = {child.id: store.trainings(child.id) for child in contenders}
    stood = {
        child.id: as_it_stood(store.individual(child.id), further[child.id], round_number - 1) for child in contenders
    }
    pool = [
        *(store.individual(i.id) for i in population),
        *(stood.get(i.id) or store.individual(i.id) for i in offspring),
    ]
    cost, cap = config.cost, config.race_trainings
    kept = {i.id for i in selection.survivors(pool, config.population, cost)} | {
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
    left = trainings_left(store, config, stored_since)
    return entrants if left is None else entrants[:left]
