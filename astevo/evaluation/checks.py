"""The fast checks of one block's new versions, through any evaluator: what a variation is judged by."""

from __future__ import annotations

import dataclasses

from astevo.code.blocks import ModelFile
from astevo.code.imports import with_block
from astevo.evaluation.base import Evaluation, EvaluationRequest, Evaluator
from astevo.settings import FitnessSettings


class BlockCheck:
    """Judges new versions of block `name` of `parent` by the fast stages under the run's own settings.

    Each verdict is kept under the child's exact source, so the evaluation of an accepted child
    carries it instead of running the same checks again.
    """

    def __init__(self, evaluator: Evaluator, settings: FitnessSettings, parent: ModelFile, name: str) -> None:
        self.evaluator, self.parent, self.name = evaluator, parent, name
        self.settings = dataclasses.replace(settings, train=False)
        self.verdicts: dict[str, Evaluation] = {}

    def __call__(self, block_source: str) -> str | None:
        """Why the file with this version of the block fails the fast checks; None when it passes."""
        child = with_block(self.parent, self.name, block_source)
        request = EvaluationRequest(
            f"check:{self.name}:{len(self.verdicts)}",
            child,
            self.settings,
            reference=self.parent.source,
            rewritten=(self.name,),
        )
        evaluation = next(iter(self.evaluator.evaluate([request]))).evaluation
        self.verdicts[child] = evaluation
        return evaluation.problem

    def verdict(self, child_source: str) -> Evaluation | None:
        """The passing verdict on this child, when it was checked here."""
        found = self.verdicts.get(child_source)
        return found if found is not None and found.valid else None
