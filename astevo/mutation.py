"""One block's proposals from the local model, each judged by the fitness cascade's fast stages.

This is the wiring `astevo mutate` (and later evolution) uses: model file, local LLM,
operator and the fast checks, run as astevo.mutation_settings says.
"""

from __future__ import annotations

import random
from typing import Iterator

from astevo.blocks import Block, ModelFile
from astevo.errors import AstevoError
from astevo.fitness import FitnessSettings, evaluate
from astevo.grammar import body_grammar
from astevo.llm import LocalLLM
from astevo.models import resolve_model
from astevo.mutation_settings import MutationSettings
from astevo.operators import BlockRewriter, Proposal
from astevo.prompts import Exemplar, system_prompt


def fast_check(model_file: ModelFile, name: str, dataset: str):
    """Reason a new version of block `name` fails parse, gate, build or shape probe; None when it passes."""
    settings = FitnessSettings(dataset=dataset, train=False)

    def check(new_source: str) -> str | None:
        child = model_file.replace(name, new_source)
        evaluation = evaluate(child.source, settings, reference=model_file, rewritten=(name,))
        return None if evaluation.valid else f"{evaluation.failure.name}: {evaluation.failure.reason}"

    return check


def whole_body_grammar(block: Block) -> str:
    """For scope "block": a one-line constructor signature and its super() call are kept verbatim,
    so the model cannot change how callers build the block."""
    fixed = [line for line in block.source.splitlines()
             if (line.strip().startswith("def __init__(") and line.rstrip().endswith(":"))
             or line.strip() == "super().__init__()"]
    return body_grammar(block.kind, "    ", fixed if block.kind == "class" and len(fixed) == 2 else [])


class LLMVariation:
    """GE's mutation operator for evolution: the local model loads once, each call gets its own rng."""

    def __init__(self, settings: MutationSettings) -> None:
        settings.check()
        self.settings = settings
        self._llm: LocalLLM | None = None

    @property
    def llm(self) -> LocalLLM:
        if self._llm is None:
            s = self.settings
            self._llm = LocalLLM(resolve_model(s.model), n_ctx=s.context, n_threads=s.threads or None, seed=s.seed,
                                 n_gpu_layers=s.gpu_layers)
        return self._llm

    def rewriter(self, model_file: ModelFile, name: str, rng: random.Random) -> BlockRewriter:
        return BlockRewriter(
            self.llm, rng, grammar=whole_body_grammar, check=fast_check(model_file, name, self.settings.dataset),
            max_repairs=self.settings.repairs, scope=self.settings.scope,
        )

    def mutate(self, model_file: ModelFile, name: str, rng: random.Random, exemplar: Exemplar | None) -> Proposal:
        """One proposal that depends only on its arguments: resuming a run repeats it exactly."""
        self.llm.restart(system_prompt())
        rewriter = self.rewriter(model_file, name, rng)
        return rewriter.mutate(model_file.block(name), model_file.source, self.settings.intent, self.settings.persona,
                               exemplar)


def propose(model_file: ModelFile, name: str, count: int, settings: MutationSettings) -> Iterator[tuple[Proposal, str]]:
    """`count` proposals for block `name`, each with its verdict ("passed" or the failure)."""
    variation = LLMVariation(settings)
    block = model_file.block(name)
    if count < 1:
        raise AstevoError("--n must be at least 1")
    rewriter = variation.rewriter(model_file, name, random.Random(settings.seed))
    for _ in range(count):
        proposal = rewriter.mutate(block, model_file.source, settings.intent, settings.persona)
        yield proposal, "passed (parse, gate, build, shape probe)" if proposal.accepted else f"failed: {proposal.error}"
