"""The run's noise: how much one short training's validation accuracy varies with the training seed alone.

Measured on the seed model at the start of every run (`noise_seeds` trainings of the same code).
One evaluation of any individual carries that standard deviation; two single evaluations differ
by chance with a standard error of sqrt(2) times it, and a difference inside two of those standard
errors reads as "within noise", never as an improvement.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from astevo.store.records import Individual, measured_accuracies
from astevo.store.run_store import RunStore


@dataclass(frozen=True)
class Noise:
    accuracies: tuple[float, ...]  # the seed's validation accuracy (0..1), one per training seed, its own first

    @property
    def std(self) -> float | None:
        """One training's standard deviation (0..1), once at least two trainings are in."""
        return statistics.stdev(self.accuracies) if len(self.accuracies) >= 2 else None

    @property
    def margin(self) -> float | None:
        """The smallest difference between two single evaluations (0..1) that is not within noise."""
        return None if self.std is None else 2 * math.sqrt(2) * self.std

    def within(self, difference: float, trainings: tuple[int, int] = (1, 1)) -> bool | None:
        """Whether a difference between two means of so many trainings is inside the noise; None when unmeasured."""
        if self.std is None:
            return None
        return abs(difference) < 2 * self.std * math.sqrt(1 / trainings[0] + 1 / trainings[1])

    def gained(self, difference: float, trainings: tuple[int, int] = (1, 1)) -> bool:
        """Whether a difference is a gain beyond the noise; while the noise is unmeasured, any positive one."""
        return difference > 0 and not self.within(difference, trainings)


CHANCE_MARGIN = 0.03  # a seed whose mean validation accuracy is within 3 points of chance learns nothing


def learns_nothing(noise: Noise, classes: int) -> str | None:
    """Why the seed's trainings show that the budget teaches it nothing, or None once they show it learns.

    At chance, or with a spread of exactly zero (every training scored the same), every accuracy of the
    run is the same lottery and no difference can be told from noise: a run on it is a random walk.
    """
    if noise.std is None:
        return None
    chance = 1 / classes
    mean = statistics.fmean(noise.accuracies)
    shown = ", ".join(f"{value * 100:.2f}%" for value in noise.accuracies)
    if mean <= chance + CHANCE_MARGIN:
        return (
            f"the seed learns nothing at this budget: its validation accuracy over {len(noise.accuracies)} training "
            f"seeds was {shown}, within {CHANCE_MARGIN * 100:.0f} points of chance ({chance * 100:.2f}% for {classes} "
            "classes)"
        )
    if noise.std == 0:
        return (
            f"the seed scored {shown} over {len(noise.accuracies)} training seeds, the same every time: the budget "
            "cannot tell models apart"
        )
    return None


def run_noise(store: RunStore, seed: Individual) -> Noise:
    """The seed's validation accuracies so far: its evaluation, then its further trainings that succeeded."""
    return Noise(tuple(measured_accuracies(seed.metrics, [t.metrics for t in store.trainings(seed.id)])))
