"""Proposals for one block outside a run (`astevo mutate`, tools/bench_served.py): the LLM variation judged by an
evaluator's fast checks, as evolution judges them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.base import Evaluator, Size
from astevo.evaluation.checks import BlockCheck
from astevo.settings import FitnessSettings
from astevo.variation.base import Proposal

if TYPE_CHECKING:
    from astevo.variation.llm_mutation import LLMVariation  # imports torch: only once proposals are made


class BlockProposals:
    """`count` proposals in a row for block `name`, each judged by the fast checks under `fitness`."""

    def __init__(
        self,
        model_file: ModelFile,
        name: str,
        count: int,
        variation: LLMVariation,
        fitness: FitnessSettings,
        evaluator: Evaluator,
    ) -> None:
        self.model_file, self.name, self.count, self.variation = model_file, name, count, variation
        self.check = BlockCheck(evaluator, fitness, model_file, name)

    def parent_size(self) -> Size:
        """The unchanged file's size, which each proposal's size is weighed against."""
        measured = self.check.parent_size()
        if measured is None:
            raise AstevoError(f"{self.model_file.origin} fails the fast checks; run `astevo eval` on it to see why")
        return measured

    def __iter__(self) -> Iterator[Proposal]:
        yield from self.variation.proposals(self.model_file, self.name, self.count, self.check)
