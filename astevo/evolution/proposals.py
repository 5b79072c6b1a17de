"""Proposals for one block outside a run (`astevo mutate`, tools/bench_mutate.py): the LLM variation wired to
the local evaluator's fast checks, as evolution wires them."""

from __future__ import annotations

from collections.abc import Iterator

from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.base import Size
from astevo.evaluation.checks import BlockCheck
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.llm.factory import ModelChoice
from astevo.settings import FitnessSettings, MutationSettings
from astevo.variation.base import Proposal


class BlockProposals:
    """`count` proposals in a row for block `name`, each judged by the fast checks under `fitness`."""

    def __init__(
        self,
        model_file: ModelFile,
        name: str,
        count: int,
        settings: MutationSettings,
        fitness: FitnessSettings,
        model: ModelChoice | None = None,
    ) -> None:
        if count < 1:
            raise AstevoError("--n must be at least 1")
        self.model_file, self.name, self.count, self.settings, self.model = model_file, name, count, settings, model
        self.check = BlockCheck(LocalEvaluator(), fitness, model_file, name)

    def parent_size(self) -> Size:
        """The unchanged file's size, which each proposal's size is weighed against."""
        measured = self.check.parent_size()
        if measured is None:
            raise AstevoError(f"{self.model_file.origin} fails the fast checks; run `astevo eval` on it to see why")
        return measured

    def __iter__(self) -> Iterator[Proposal]:
        from astevo.variation.llm_mutation import LLMVariation

        model = self.model or ModelChoice(self.settings)  # a file loads only when proposals are asked
        variation = LLMVariation(model.generator(), self.settings)
        yield from variation.proposals(self.model_file, self.name, self.count, self.check)
