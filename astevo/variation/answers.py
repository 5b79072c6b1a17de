"""Turning a model's continuation into a block: parse it, salvage a cut-off answer, check its shape.

The model writes the body after a given header; the result is accepted only as exactly
one definition of the same name and kind whose constructor signature is unchanged.
"""

from __future__ import annotations

import io

from astevo.code.blocks import Block, BlockShapeError, SourceParseError, constructor_signature, parse_definition
from astevo.errors import AstevoError


class RejectedAnswer(AstevoError):
    """An answer that is not a usable version of the block; the message is shown in a repair prompt."""


def block_from_answer(original: Block, header: str, continuation: str) -> str:
    """The new block's source, from the longest prefix of the answer that forms a complete block."""
    source = header + continuation
    if not source.endswith("\n"):
        source += "\n"
    try:
        parse_definition(source, original.name, original.kind)
    except (SourceParseError, BlockShapeError) as error:
        salvaged = _complete_prefix(original, header, source)
        if salvaged is None:
            raise RejectedAnswer(_without_origin(error)) from None
        source = salvaged
    if constructor_signature(source) != constructor_signature(original.source):
        raise RejectedAnswer(f"the arguments of {_callable(original)} changed; keep them exactly as they were")
    return source


def _complete_prefix(original: Block, header: str, source: str) -> str | None:
    """Drop trailing lines until the rest parses: a cut-off answer usually ends mid-statement."""
    lines = io.StringIO(source, newline="").readlines()
    header_lines = len(io.StringIO(header, newline="").readlines())
    for end in range(len(lines) - 1, header_lines, -1):
        candidate = "".join(lines[:end])
        try:
            parse_definition(candidate, original.name, original.kind)
        except (SourceParseError, BlockShapeError):
            continue
        return candidate
    return None


def _callable(block: Block) -> str:
    return f"{block.name}.__init__" if block.kind == "class" else block.name


def _without_origin(error: AstevoError) -> str:
    if isinstance(error, SourceParseError):
        return f"line {error.line}, column {error.column}: {error.message}"
    return str(error)
