"""The variation seam: what a mutation operator gives the evolution loop, and what it is judged by.

An operator returns a Proposal that carries every prompt and answer, so the run record shows
exactly what the model was asked and said, including resamples and repairs.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from astevo.code.blocks import ModelFile
from astevo.evaluation.base import Size, VariantsMeasured
from astevo.llm.identity import ModelIdentity
from astevo.variation.edit_outcomes import EditOutcome
from astevo.variation.prompts import Exemplar


class Check(Protocol):
    """The fast checks of a parent's block, and what they measure: how a variation learns what its edits do."""

    def __call__(self, block_source: str) -> str | None:
        """Why the file with this version of the block fails the fast checks; None when it passes."""
        ...

    def size(self, block_source: str) -> Size | None:
        """The size measured for a version that passed `__call__`."""
        ...

    def parent_size(self) -> Size | None:
        """The unchanged file's size; None when it cannot be measured (then no answer is held to it)."""
        ...

    @property
    def known(self) -> frozenset[str]:
        """Canonical hashes of versions of the block that already exist (in the run): an answer equal to one
        is a copy."""
        ...

    def measure(self, versions: Sequence[tuple[str, bool]]) -> VariantsMeasured:
        """Versions of the block built without training (and run on a batch when the flag says so)."""
        ...


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
    edit: str | None = None  # what kind of edit was asked for: a spot's group, or a size edit's kind
    parameters: int | None = None  # the child's size, when the answer passed the fast checks
    macs: int | None = None


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
    def identity(self) -> ModelIdentity | None:
        """The model proposals depend on (a resumed run must use the same one); None when none."""
        ...

    def mutate(
        self,
        model_file: ModelFile,
        name: str,
        intent: str,
        rng: random.Random,
        exemplar: Exemplar | None,
        check: Check,
        outcomes: Sequence[EditOutcome] = (),
    ) -> Proposal:
        """One proposal that depends only on its arguments, so that resuming a run repeats it exactly. `exemplar`
        is Evolution of Thought's elite change, `outcomes` what each kind of edit has done in the run so far."""
        ...
