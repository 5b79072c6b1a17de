"""Racing: a candidate that would enter the elites or the front is trained again until it is told apart.

One training's accuracy is as noisy as the differences selection ranks, so a candidate that
selection would keep is re-trained with further training seeds, one at a time, until the interval of
its mean separates from every member it could dominate or knock out (those of equal or larger
cost), or it has been trained `cap` times. Selection then ranks means. The noise is the run's own
(one training's standard deviation, measured on the seed), so two means with n and m trainings
are apart when they differ by more than two standard errors of their difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from astevo.store.records import Individual


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


def needs_another_training(candidate: Individual, pool: Sequence[Individual], cost: str, std: float, cap: int) -> bool:
    """Whether racing trains the candidate once more: under the cap, and not yet apart from every rival."""
    return trainings(candidate) < cap and not all(
        apart(candidate, rival, std) for rival in rivals(candidate, pool, cost)
    )
