"""Racing: a candidate that would enter the elites or the front is trained again until it is told apart.

One training's accuracy is as noisy as the differences selection ranks, so a candidate that
selection would keep is re-trained with further training seeds, one more per round, until the
interval of its mean separates from every member it could dominate or knock out (those of equal or
larger cost), or it has been trained `cap` times. Selection then ranks means. The noise is the run's
own (one training's standard deviation, measured on the seed), so two means with n and m trainings
are apart when they differ by more than two standard errors of their difference.

Every candidate still racing gets its next training in the same round, decided on what the round
started from, so a round's trainings run side by side in every evaluation slot.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from astevo.store.records import Individual, Training, measured_accuracies


def trainings(individual: Individual) -> int:
    """How many trainings the individual's validation accuracy is the mean of."""
    return int(individual.metrics.get("trainings", 1))


def apart(first: Individual, second: Individual, std: float) -> bool:
    """Whether the two means differ by more than two standard errors of their difference."""
    assert first.val_accuracy is not None and second.val_accuracy is not None
    error = std * math.sqrt(1 / trainings(first) + 1 / trainings(second))
    return abs(first.val_accuracy - second.val_accuracy) > 2 * error


def rivals(candidate: Individual, pool: Sequence[Individual], cost: str) -> list[Individual]:
    """The valid members the candidate could dominate or knock out: those that cost as much or more."""
    return [
        member
        for member in pool
        if member.id != candidate.id and member.valid and member.metrics[cost] >= candidate.metrics[cost]
    ]


def as_it_stood(individual: Individual, further: Sequence[Training], count: int) -> Individual:
    """The individual with only its first `count` further trainings counted: what a racing round decides on. A run
    resumed in the middle of a round has stored some of that round's trainings, and must not see them."""
    values = measured_accuracies(individual.metrics, [training.metrics for training in further[:count]])
    if not values:
        return individual
    mean = sum(values) / len(values)  # as the store computes it, to the last bit
    metrics = {**individual.metrics, "val_accuracy": mean, "trainings": len(values)}
    return dataclasses.replace(individual, metrics=metrics)


def needs_another_training(candidate: Individual, pool: Sequence[Individual], cost: str, std: float, cap: int) -> bool:
    """Whether racing trains the candidate once more: under the cap, and not yet apart from every rival."""
    return trainings(candidate) < cap and not all(
        apart(candidate, rival, std) for rival in rivals(candidate, pool, cost)
    )
