"""GE's mutation operator for evolution and `astevo mutate`: a text-generation backend, prompts and retries."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from astevo.code.blocks import Block, ModelFile
from astevo.errors import AstevoError
from astevo.llm.backend import Generator
from astevo.llm.grammar import body_grammar
from astevo.llm.identity import ModelIdentity
from astevo.llm.scoring import Scorer
from astevo.settings import MutationSettings
from astevo.variation.answerers import ModelAnswers, RankedAnswers
from astevo.variation.base import Check, Proposal
from astevo.variation.edit_outcomes import EditOutcome
from astevo.variation.intents import INTENTS, PERSONAS
from astevo.variation.prompts import Exemplar, system_prompt
from astevo.variation.rewriter import BlockRewriter
from astevo.variation.structural import MeasuredSizes, SizeOptionsSource


def whole_body_grammar(block: Block) -> str:
    """For scope "block": a one-line constructor signature and its super() call are kept verbatim,
    so the model cannot change how callers build the block."""
    fixed = [
        line
        for line in block.source.splitlines()
        if (line.strip().startswith("def __init__(") and line.rstrip().endswith(":"))
        or line.strip() == "super().__init__()"
    ]
    return body_grammar(block.kind, "    ", fixed if block.kind == "class" and len(fixed) == 2 else [])


class LLMVariation:
    """Mutation by a language model passed in; each call gets its own rng, so a resumed run repeats it."""

    def __init__(self, generator: Generator, settings: MutationSettings, objective: str | None = None) -> None:
        """`objective`: what a version is judged by (prompts.training_objective), when it is trained."""
        if settings.scope == "line" and not generator.capabilities.grammar:
            raise AstevoError(
                f"the model backend for {generator.name} cannot constrain its output, which line-scope "
                "edits need; use --scope block"
            )
        self._answers = ModelAnswers(generator)
        if settings.answers == "ranked":
            if not isinstance(generator, Scorer):
                raise AstevoError(
                    f'the model backend for {generator.name} cannot score options, which answers = "ranked" needs; '
                    'use answers = "written" or a model file (--model)'
                )
            self._answers = RankedAnswers(generator, generator)
        self.generator, self.settings, self.objective = generator, settings, objective
        self._measured_sizes = MeasuredSizes()

    @property
    def identity(self) -> ModelIdentity | None:
        return self.generator.identity

    def rewriter(self, rng: random.Random, check: Check) -> BlockRewriter:
        grammar = whole_body_grammar if self.generator.capabilities.body_grammar else None
        return BlockRewriter(
            self._answers,
            rng,
            grammar=grammar,
            check=check,
            max_repairs=self.settings.repairs,
            scope=self.settings.scope,
            objective=self.objective,
        )

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
        """One proposal that depends only on its arguments: resuming a run repeats it exactly."""
        self.generator.restart(system_prompt())
        return self.rewriter(rng, check).mutate(
            model_file.block(name),
            model_file.source,
            intent,
            self._persona(rng),
            exemplar,
            sizes=self._sizes(model_file, name, check),
            outcomes=outcomes,
        )

    def _persona(self, rng: random.Random) -> str:
        """GE's persona: the one the settings fix, else one drawn per proposal, in either scope."""
        return self.settings.persona or rng.choice(PERSONAS)

    def proposals(self, model_file: ModelFile, name: str, count: int, check: Check) -> Iterator[Proposal]:
        """`count` proposals for block `name` in a row, as `astevo mutate` shows them."""
        block = model_file.block(name)
        rng = random.Random(self.settings.random_seed)
        rewriter = self.rewriter(rng, check)
        sizes = self._sizes(model_file, name, check)
        for _ in range(count):
            intent = self.settings.intent or rng.choice(INTENTS)
            yield rewriter.mutate(block, model_file.source, intent, self._persona(rng), sizes=sizes)

    def _sizes(self, model_file: ModelFile, name: str, check: Check) -> SizeOptionsSource | None:
        """The block's size edits for line-scope proposals; a whole new body may change sizes itself, as in GE."""
        return self._measured_sizes.source(model_file, name, check) if self.settings.scope == "line" else None
