"""Which block a mutation rewrites, given what its intent asks for.

An intent that tries a size edit first is drawn for a block in proportion to its size
levers (literals in its constructor, stages it can lose or repeat, convolutions it could group): in ExquisiteNetV2
every width sits in the top-level class. "Fewer parameters" is wasted on a block that
cannot move the model's size by a real step, one that holds no parameters (MinPool2d)
or under 5% of them (a LayerNorm gate), so it is never drawn there.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from astevo.code.blocks import ModelFile
from astevo.settings import EvolveConfig
from astevo.variation.intents import INTENTS, SIZE_FIRST, SIZE_STEP, SMALLER
from astevo.variation.structural import size_levers


def mutation_site(
    model_file: ModelFile,
    config: EvolveConfig,
    rng: random.Random,
    parameters: Mapping[str, int] | None,
    total: int | None,
) -> tuple[str, str]:
    """A mutation's intent and block, drawn in the one order every run draws them, so that a proposal made before
    the run starts (the one `--workers auto` times) is the proposal the run would make there."""
    intent = config.mutation.intent or rng.choice(INTENTS)
    return intent, choose_block(model_file, config.blocks, intent, rng, parameters, total)


def choose_block(
    model_file: ModelFile,
    blocks: Sequence[str],
    intent: str,
    rng: random.Random,
    parameters: Mapping[str, int] | None,
    total: int | None = None,
) -> str:
    """`parameters`: each block's parameter count in the built seed, and `total` the model's, when known."""
    if intent not in SIZE_FIRST:
        return rng.choice(list(blocks))
    weights = size_weights(model_file, blocks, parameters, total, must_shrink=intent == SMALLER)
    if not any(weights):
        return rng.choice(list(blocks))
    return rng.choices(list(blocks), weights)[0]


def size_weights(
    model_file: ModelFile,
    blocks: Sequence[str],
    parameters: Mapping[str, int] | None,
    total: int | None = None,
    *,
    must_shrink: bool,
) -> list[int]:
    """How likely each block is drawn for an intent that tries a size edit first: one more than its size
    levers. When the model must shrink, 0 for a block whose instances hold under 5% of the model's
    parameters (the model class holds them all, and is the total when none is given); without counts (a
    run from before they were recorded) no block is left out."""
    total = total or (max(parameters.values(), default=0) if parameters else 0)
    weights = []
    for name in blocks:
        levers = size_levers(model_file, name)
        holds = parameters.get(name, 0) >= SIZE_STEP * total if parameters and total else True
        weights.append(1 + levers if holds or not must_shrink else 0)
    return weights
