"""Proposals for one block outside a run (`astevo mutate`, tools/bench_mutate.py): the LLM variation wired to
the local evaluator's fast checks, as evolution wires them."""

from __future__ import annotations

from collections.abc import Iterator

from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.checks import BlockCheck
from astevo.evaluation.local import LocalEvaluator
from astevo.settings import FitnessSettings, MutationSettings
from astevo.variation.base import Proposal


def block_proposals(
    model_file: ModelFile, name: str, count: int, settings: MutationSettings, fitness: FitnessSettings
) -> Iterator[Proposal]:
    """`count` proposals in a row for block `name`, each judged by the fast checks under `fitness`."""
    if count < 1:
        raise AstevoError("--n must be at least 1")
    from astevo.llm.llama_cpp_backend import LlamaCppGenerator  # loads llama.cpp only when proposals are asked for
    from astevo.variation.llm_mutation import LLMVariation

    generator = LlamaCppGenerator.from_settings(settings)
    variation = LLMVariation(generator, settings, generator.info.path)
    check = BlockCheck(LocalEvaluator(), fitness, model_file, name)
    yield from variation.proposals(model_file, name, count, check)
