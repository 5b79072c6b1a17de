"""A variation that makes a proposal once: `--workers auto` times the model on the run's own first mutation,
and the run keeps that child instead of paying for the same model call a second time."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from astevo.code.blocks import ModelFile
from astevo.llm.identity import ModelIdentity
from astevo.variation.base import Check, Proposal, Variation
from astevo.variation.edit_outcomes import EditOutcome
from astevo.variation.prompts import Exemplar


@dataclass(frozen=True)
class Draw:
    """The arguments of `Variation.mutate` a proposal depends on, so that equal draws give equal proposals (the
    check's settings aside: the measuring's and the run's differ at most in threads, which change no verdict)."""

    parent: str
    block: str
    intent: str
    rng_state: tuple[Any, ...]
    exemplar: Exemplar | None
    known: frozenset[str]
    outcomes: tuple[EditOutcome, ...]


@dataclass(frozen=True)
class _Kept:
    draw: Draw
    proposal: Proposal
    rng_after: tuple[Any, ...]  # where the proposal left the generator, for a caller that draws on


class ReusingFirstProposal:
    """Passes every call on to `inner`, keeping the first one's proposal; the next call gets it back without a
    model call when it makes the same draw, and after that nothing is kept."""

    def __init__(self, inner: Variation) -> None:
        self.inner = inner
        self._kept: _Kept | None = None
        self._first = True

    @property
    def identity(self) -> ModelIdentity | None:
        return self.inner.identity

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
        if not self._first and self._kept is None:
            return self.inner.mutate(model_file, name, intent, rng, exemplar, check, outcomes)
        draw = Draw(model_file.source, name, intent, rng.getstate(), exemplar, check.known, tuple(outcomes))
        kept, self._kept = self._kept, None  # only the call after the kept one may match: the run's first mutation
        if kept is not None and kept.draw == draw:
            rng.setstate(kept.rng_after)
            return kept.proposal
        proposal = self.inner.mutate(model_file, name, intent, rng, exemplar, check, outcomes)
        if self._first:
            self._first = False
            self._kept = _Kept(draw, proposal, rng.getstate())
        return proposal
