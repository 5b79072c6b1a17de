"""The variation seam: what a mutation operator gives the evolution loop, and what it is judged by.

An operator returns a Proposal that carries every prompt and answer, so the run record shows
exactly what the model was asked and said, including resamples and repairs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from astevo.code.blocks import ModelFile
from astevo.variation.prompts import Exemplar

Check = Callable[[str], "str | None"]  # a block's new source -> why it fails the fast checks, or None


@dataclass(frozen=True)
class Exchange:
    """One call to the model: why it was made, what it was shown and what it wrote."""

    purpose: str  # "propose" or "repair"
    prompt: str
    answer: str
    temperature: float
    seed: int
    tokens: int
    seconds: float
    finish: str
    verdict: str | None  # why the answer was not accepted, or None


@dataclass(frozen=True)
class Proposal:
    block: str
    operator: str  # "mutate" or "eot"
    intent: str | None
    persona: str | None
    source: str | None
    exchanges: tuple[Exchange, ...] = field(default_factory=tuple)

    @property
    def accepted(self) -> bool:
        return self.source is not None

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.exchanges)

    @property
    def error(self) -> str | None:
        return None if self.accepted or not self.exchanges else self.exchanges[-1].verdict


class Variation(Protocol):
    """A mutation operator: a new version of one block of a parent, judged by `check` before it is returned."""

    @property
    def model_path(self) -> Path | None:
        """The model file proposals depend on (a resumed run must use the same one); None when none."""
        ...

    def mutate(
        self, model_file: ModelFile, name: str, rng: random.Random, exemplar: Exemplar | None, check: Check
    ) -> Proposal:
        """One proposal that depends only on its arguments, so that resuming a run repeats it exactly."""
        ...
