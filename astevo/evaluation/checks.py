"""The fast checks of one block's new versions, through any evaluator: what a variation is judged by."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from astevo.code.blocks import ModelFile
from astevo.code.imports import with_block
from astevo.evaluation.base import Evaluation, EvaluationRequest, Evaluator, Size, VariantsMeasured
from astevo.evaluation.tasks import Variant
from astevo.evaluation.variants import measure_variants
from astevo.settings import FitnessSettings


class BlockCheck:
    """Judges new versions of block `name` of `parent` by the fast stages under the run's own settings.

    Each verdict is kept under the child's exact source, so the evaluation of an accepted child
    carries it instead of running the same checks again, and its measured size can be weighed
    against the parent's.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        settings: FitnessSettings,
        parent: ModelFile,
        name: str,
        parent_size: Size | None = None,
        known: frozenset[str] = frozenset(),
    ) -> None:
        self.evaluator, self.parent, self.name, self.known = evaluator, parent, name, known
        self.settings = dataclasses.replace(settings, train=False)
        self.verdicts: dict[str, Evaluation] = {}
        self._parent_size = parent_size

    def __call__(self, block_source: str) -> str | None:
        """Why the file with this version of the block fails the fast checks; None when it passes."""
        child = with_block(self.parent, self.name, block_source)
        evaluation = self._evaluate(child, f"check:{self.name}:{len(self.verdicts)}", rewritten=(self.name,))
        self.verdicts[child] = evaluation
        return evaluation.problem

    def _evaluate(self, source: str, request_id: str, rewritten: tuple[str, ...]) -> Evaluation:
        request = EvaluationRequest(
            request_id,
            source,
            self.settings,
            reference=self.parent.source if rewritten else None,
            rewritten=rewritten,
        )
        return next(iter(self.evaluator.evaluate([request]))).evaluation

    def verdict(self, child_source: str) -> Evaluation | None:
        """The passing verdict on this child, when it was checked here."""
        found = self.verdicts.get(child_source)
        return found if found is not None and found.valid else None

    def size(self, block_source: str) -> Size | None:
        """The size the fast checks measured for the file with this version of the block, when it passed."""
        found = self.verdict(with_block(self.parent, self.name, block_source))
        return Size.of(found) if found is not None else None

    def parent_size(self) -> Size | None:
        """The parent's size: given by whoever measured it already, else measured here once; None when the
        parent itself fails the fast checks."""
        if self._parent_size is None:
            self._parent_size = Size.of(self._evaluate(self.parent.source, f"check:{self.name}:parent", rewritten=()))
        return self._parent_size

    def measure(self, versions: Sequence[tuple[str, bool]]) -> VariantsMeasured:
        """Versions of the block (with whether to run a batch through each), built on the meta device."""
        variants = [Variant(self.parent.spliced(self.name, source), forward) for source, forward in versions]
        return measure_variants(self.parent, variants, self.settings, self.evaluator)
