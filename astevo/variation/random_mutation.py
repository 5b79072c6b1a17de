"""The random baseline (`--variation random`): evolution's own edits, with no model choosing what is written.

It asks whether the language model's choices beat chance: the block, the intent, the spot and
the kind of size edit are chosen exactly as for the model, the fast checks and retries are the
same, and only what the model would write is drawn uniformly from the spot's options instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from astevo.code.blocks import ModelFile
from astevo.llm.identity import ModelIdentity
from astevo.settings import MutationSettings
from astevo.variation.answerers import DrawnAnswers
from astevo.variation.base import Check, Proposal
from astevo.variation.edit_outcomes import EditOutcome
from astevo.variation.prompts import Exemplar
from astevo.variation.rewriter import BlockRewriter
from astevo.variation.structural import MeasuredSizes


class RandomVariation:
    """Line-scope edits drawn uniformly. Of an exemplar only its kind of edit is used (it orders the spots, as
    for the model), and measured outcomes, which only a reader of the prompt could use, not at all: a comparison
    with the model measures what the model makes of what it is shown."""

    def __init__(self, settings: MutationSettings) -> None:
        self.settings = settings
        self._measured_sizes = MeasuredSizes()

    @property
    def identity(self) -> ModelIdentity | None:
        return None

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
        rewriter = BlockRewriter(DrawnAnswers(), rng, check=check, max_repairs=self.settings.repairs)
        sizes = self._measured_sizes.source(model_file, name, check)
        return rewriter.mutate(model_file.block(name), model_file.source, intent, exemplar=exemplar, sizes=sizes)
