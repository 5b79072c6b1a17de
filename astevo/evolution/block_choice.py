"""Which block a mutation rewrites, given what its intent asks for.

An intent that asks for a smaller model is wasted on a block that cannot move the model's
size by a real step: one that holds no parameters (MinPool2d) or under 5% of them (a
LayerNorm gate). It is drawn only for blocks that can, and those with size literals or
removable stages are drawn more often.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from astevo.code.blocks import ModelFile
from astevo.code.resizing import literals, stages

SIZE_INTENTS = ("fewer_parameters",)
SIZE_STEP = 0.05  # the least change of the parameter count that counts as a change of size
SIZED_WEIGHT = 3  # how much likelier a block with size literals or stages is drawn for a size intent


def choose_block(
    model_file: ModelFile,
    blocks: Sequence[str],
    intent: str,
    rng: random.Random,
    parameters: Mapping[str, int] | None,
) -> str:
    """`parameters`: each block's parameter count in the built seed, when known."""
    if intent not in SIZE_INTENTS:
        return rng.choice(list(blocks))
    weights = size_weights(model_file, blocks, parameters)
    if not any(weights):
        return rng.choice(list(blocks))
    return rng.choices(list(blocks), weights)[0]


def size_weights(model_file: ModelFile, blocks: Sequence[str], parameters: Mapping[str, int] | None) -> list[int]:
    """How likely each block is drawn for a size intent: 0 for one whose instances hold under 5% of the
    model's parameters (the model class holds them all); without counts (a run from before they were
    recorded) every block may be drawn."""
    total = max(parameters.values(), default=0) if parameters else 0
    weights = []
    for name in blocks:
        source = model_file.block(name).source
        sized = any(literal.value > 1 for literal in literals(source) if literal.in_constructor) or bool(stages(source))
        holds = parameters.get(name, 0) >= SIZE_STEP * total if parameters and total else True
        weights.append((SIZED_WEIGHT if sized else 1) if holds else 0)
    return weights
