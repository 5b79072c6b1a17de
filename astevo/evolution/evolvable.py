"""Which blocks a run may change: only ones that can reach the built model.

A block class the model never instantiates (the faithful seed's `SE`: every `DFSEBV2` is
built with `is_LN=True` and so uses `SE_LN`) cannot change fitness, whatever the model
writes into it. This is found from one sandboxed build of the seed, before any evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence

from astevo.code.blocks import ModelFile, UnknownBlockError
from astevo.errors import AstevoError
from astevo.evaluation.anatomy import Anatomy


def evolvable_blocks(model_file: ModelFile, anatomy: Anatomy, requested: Sequence[str]) -> tuple[str, ...]:
    """The blocks to evolve: those requested, or every module class the built model instantiates."""
    if not requested:
        return tuple(
            name for name, block in model_file.blocks.items() if block.kind == "class" and _reaches_model(name, anatomy)
        )
    chosen = tuple(dict.fromkeys(requested))
    for name in chosen:
        if name not in model_file.blocks:
            raise UnknownBlockError(name, list(model_file.blocks))
    for name in chosen:
        block = model_file.blocks[name]
        if block.kind != "class" or _reaches_model(name, anatomy):
            continue
        choosers = [user for user in block.used_by if user in chosen]
        if not choosers:
            raise AstevoError(_unbuilt_message(model_file, anatomy, name))
    return chosen


def _reaches_model(name: str, anatomy: Anatomy) -> bool:
    return name == anatomy.model_class or anatomy.is_built(name)


def _unbuilt_message(model_file: ModelFile, anatomy: Anatomy, name: str) -> str:
    users = sorted(model_file.blocks[name].used_by)
    if users:
        also = " ".join(f"--block {user}" for user in users)
        remedy = f"also evolve the block that chooses it (--block {name} {also}) or evolve a block that is built"
    else:
        remedy = "no other block refers to it; evolve a block the model builds (see `astevo blocks`)"
    return f"{name} is never built by {anatomy.model_class}, so evolving it alone cannot change fitness; {remedy}"
