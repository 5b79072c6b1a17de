"""Size edits a small model can choose from and astevo applies consistently: width, depth, groups, sizes inside blocks.

The options for a block are planned from two measured builds of the parent (both on the
meta device, in the sandbox). The first puts a marker value (twelve times the old one) in
place of each integer literal of the constructor, one at a time: a literal that changes some module's channels
is a width, one that only changes the parameter count is a size inside a block (a kernel,
a ratio, a repeat count), and one that changes neither is left alone. The second builds
and runs every option: a new value for each group of equal literals with the same role,
every width scaled at once, each stage removed or repeated, and each convolution that has
no group count given one; only options that keep the model's output shape are
offered, each with its measured parameter count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from astevo.code.blocks import ModelFile
from astevo.code.resizing import (
    SizeLiteral,
    attribute_names,
    callee_names,
    groupable_calls,
    literals,
    stages,
    with_keyword,
    with_stage_repeated,
    with_values,
    without_stage,
)
from astevo.errors import AstevoError
from astevo.variation.base import Check
from astevo.variation.vocabulary import callee_parameters

# A literal is replaced by twelve times its value to learn its role: far enough from it that a derived
# size (`int(cin / ratio)`) moves too, still divisible by whatever divided it (a width by its groups), and
# small enough that a repeat count does not build thousands of modules.
MARKER_FACTOR = 12
WIDTH_FACTORS = (0.25, 0.5, 0.75, 1.5, 2.0)
# Group counts tried on a convolution that has none: most widths divide by 2 and 4, and the build drops the rest.
GROUP_COUNTS = (2, 4)
WIDTH = "width"
DEPTH = "depth"
GROUPS = "groups"
SIZE = "size"  # a size inside a block: "size of <parameter>", or "size" when the parameter is unknown


def is_size_kind(edit: str) -> bool:
    """Whether a recorded kind of edit is one of the measured size edits."""
    return edit in (WIDTH, DEPTH, GROUPS, SIZE) or edit.startswith(f"{SIZE} of ")


KEPT_PARENTS = 32  # parents whose measured size edits are kept: elites are mutated again and again


@dataclass(frozen=True)
class SizeOption:
    label: str  # what the model chooses: "width 48 -> 32", "every width x0.5", "size of dw_s 3 -> 5",
    # "remove DFSEB5", "repeat DFSEB3", "groups of pw1 -> 4"
    kind: str  # "width", "depth", "groups", or "size of" the parameter a literal is passed to ("size" when unknown)
    source: str  # the new block
    parameters: int  # the whole model's, measured


@dataclass(frozen=True)
class SizeOptions:
    parent_parameters: int
    options: tuple[SizeOption, ...]


SizeOptionsSource = Callable[[], SizeOptions]  # a block's size edits, measured only when first asked for


class MeasuredSizes:
    """Size edits per parent and block, measured once and kept for the last few parents."""

    def __init__(self) -> None:
        self._measured: dict[tuple[str, str], SizeOptions] = {}

    def source(self, model_file: ModelFile, name: str, check: Check) -> SizeOptionsSource:
        key = (model_file.source, name)

        def measured() -> SizeOptions:
            if key not in self._measured:
                while len(self._measured) >= KEPT_PARENTS:
                    self._measured.pop(next(iter(self._measured)))
                try:
                    self._measured[key] = size_options(model_file, name, check)
                except AstevoError:  # no build on the meta device (or out of time): no size edits, not kept
                    return SizeOptions(0, ())
            return self._measured[key]

        return measured


def size_options(model_file: ModelFile, name: str, check: Check) -> SizeOptions:
    """Every size edit of block `name` that builds and keeps the model's output shape."""
    block = model_file.block(name)
    if block.kind != "class":
        return SizeOptions(0, ())
    signatures = _signatures(model_file, block.source)
    found = literals(block.source, signatures)
    constructor = [literal for literal in found if literal.in_constructor]
    depth = stages(block.source)
    groupable = groupable_calls(block.source, signatures)
    if not constructor and not depth and not groupable:
        return SizeOptions(0, ())
    roles = _roles(block.source, constructor, check)
    candidates: list[tuple[str, str, str]] = []  # label, kind, new block source
    widths: dict[int, list[SizeLiteral]] = {}
    for (value, role, parameter), group in _groups(constructor, roles).items():
        if role == WIDTH:
            group = widths[value] = group + [f for f in found if not f.in_constructor and f.value == value]
        kind = WIDTH if role == WIDTH else f"{SIZE} of {parameter}" if parameter else SIZE
        for new in _new_values(value, role):
            candidates.append((f"{kind} {value} -> {new}", kind, with_values(block.source, [(g, new) for g in group])))
    if len(widths) > 1:  # a width multiplier, as MobileNet's: every channel count scaled at once
        for factor in WIDTH_FACTORS:
            scaled = [(literal, _scaled(value, factor)) for value, group in widths.items() for literal in group]
            candidates.append((f"every width x{factor:g}", WIDTH, with_values(block.source, scaled)))
    taken = attribute_names(block.source)
    for stage in depth:
        candidates.append((f"remove {stage.name}", DEPTH, without_stage(block.source, stage)))
        candidates.append((f"repeat {stage.name}", DEPTH, with_stage_repeated(block.source, stage, taken)))
    for call in groupable:
        for count in GROUP_COUNTS:
            edited = with_keyword(block.source, call, f"groups={count}")
            candidates.append((f"groups of {call.name} -> {count}", GROUPS, edited))
    measured = check.measure([(source, True) for _, _, source in candidates])
    options = tuple(
        SizeOption(label, kind, source, facts.parameters)
        for (label, kind, source), facts in zip(candidates, measured.variants, strict=True)
        if facts.ok and facts.parameters is not None
    )
    return SizeOptions(measured.parameters, options)


def size_levers(model_file: ModelFile, name: str) -> int:
    """How many places in a block a size edit can act on: constructor literals above 1, stages, and
    convolutions that could be grouped. Counted from the source alone, without a build."""
    source = model_file.block(name).source
    constructor = [literal for literal in literals(source) if literal.in_constructor and literal.value > 1]
    return len(constructor) + len(stages(source)) + len(groupable_calls(source, _signatures(model_file, source)))


def _signatures(model_file: ModelFile, block_source: str) -> dict[str, tuple[str, ...]]:
    return {
        callee: parameters
        for callee in callee_names(block_source)
        if (parameters := callee_parameters(callee, model_file.source)) is not None
    }


def _roles(block_source: str, constructor: Sequence[SizeLiteral], check: Check) -> list[str | None]:
    """Per literal: "width" when a marker in its place changes some module's channels, "size" when it
    changes only the parameter count, None when it changes neither (or the marker breaks the build)."""
    if not constructor:
        return []
    measured = check.measure(
        [(with_values(block_source, [(literal, literal.value * MARKER_FACTOR)]), False) for literal in constructor]
    )
    roles: list[str | None] = []
    for facts in measured.variants:
        if not facts.ok:
            roles.append(None)
        elif facts.channels_changed:
            roles.append(WIDTH)
        else:
            roles.append("size" if facts.parameters != measured.parameters else None)
    return roles


def _groups(
    constructor: Sequence[SizeLiteral], roles: Sequence[str | None]
) -> dict[tuple[int, str, str | None], list[SizeLiteral]]:
    """Equal literals with the same role move together: one channel count, wherever it is written, and one
    size of one parameter (every `dw_s` of 3, but not a repeat count that happens to be 3 too)."""
    groups: dict[tuple[int, str, str | None], list[SizeLiteral]] = {}
    for literal, role in zip(constructor, roles, strict=True):
        if role is not None:
            groups.setdefault((literal.value, role, None if role == WIDTH else literal.parameter), []).append(literal)
    return groups


def _new_values(value: int, role: str) -> list[int]:
    """Values to try: widths in steps that keep the old value's factors of two, small sizes near the old one."""
    if role == WIDTH:
        found = {_scaled(value, factor) for factor in WIDTH_FACTORS}
    else:
        found = {value - 2, value - 1, value + 1, value + 2, value // 2, value * 2}
    return sorted(v for v in found if v >= 1 and v != value)


def _scaled(width: int, factor: float) -> int:
    """`width` times `factor`, in steps that keep its factors of two (so it still divides by its groups)."""
    step = next((s for s in (8, 4, 2) if width % s == 0 and 4 * s <= width), 1)  # a quarter stays reachable
    return max(step, round(width * factor / step) * step)
