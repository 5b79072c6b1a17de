"""Crossover of two model files, block by block (GE's crossover, done on syntax trees).

A child takes each evolvable block from one parent or the other, together with the
helper blocks that version needs. When both parents rewrote the same block, a
three-way merge against their common ancestor keeps both rewrites if they touch
different statements. A child that is not a usable model file comes back with the
reason instead of an exception, so evolution simply draws another.
"""

from __future__ import annotations

import difflib
import io
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import libcst as cst

from astevo.code.blocks import ModelFile, changed_blocks, parse_source
from astevo.code.canonical import canonical_hash
from astevo.code.imports import add_missing_imports
from astevo.code.validity import child_problem
from astevo.errors import AstevoError

_RENDERER = cst.Module(body=())
Statements = Sequence[cst.BaseStatement]


@dataclass(frozen=True)
class CrossoverResult:
    child: ModelFile | None
    origins: dict[str, str]
    reason: str | None
    first: ModelFile | None = field(default=None, repr=False, kw_only=True)

    @property
    def changed_blocks(self) -> tuple[str, ...]:
        """The child's blocks whose text is not the first parent's: what evaluation has not seen yet."""
        if self.child is None or self.first is None:
            return ()
        return tuple(sorted(changed_blocks(self.first, self.child)))


def crossover(
    first: ModelFile, second: ModelFile, ancestor: ModelFile, evolvable: Sequence[str], rng: random.Random
) -> CrossoverResult:
    """A child of `first` and `second`; everything outside the blocks taken from `second` is `first`'s."""
    # One draw per block, used or not, so the same inputs always consume the rng alike.
    draws = [rng.random() < 0.5 for _ in evolvable]
    draft, origins = _Draft.of(first), {}
    for name, take_second in zip(evolvable, draws, strict=True):
        origins[name], source = _choose(name, first, second, ancestor, take_second)
        if source is not None:
            draft.put(name, source)
            _bring_helpers(draft, name, second, frozenset(evolvable))
    child_source = add_missing_imports(draft.render()).source
    reason = child_problem(child_source, evolvable)
    if reason is None:
        try:
            child = first if child_source == first.source else ModelFile(child_source, first.origin)
            return CrossoverResult(child, origins, None, first=first)
        except AstevoError as error:  # after child_problem, only a block ModelFile cannot locate byte for byte
            reason = str(error)
    return CrossoverResult(None, origins, reason, first=first)


def _choose(
    name: str, first: ModelFile, second: ModelFile, ancestor: ModelFile, take_second: bool
) -> tuple[str, str | None]:
    """The block's origin in the child and its new source, None to keep `first`'s (also when a parent lacks it)."""
    mine, theirs = first.blocks.get(name), second.blocks.get(name)
    if mine is None or theirs is None or _same(mine.source, theirs.source):
        return "first", None
    base = ancestor.blocks.get(name)
    if base is None or _same(base.source, mine.source) or _same(base.source, theirs.source):
        return ("second", theirs.source) if take_second else ("first", None)
    merged = merge_block(base.source, mine.source, theirs.source)
    if merged is not None:
        return "merged", merged
    return ("swap-second", theirs.source) if take_second else ("swap-first", None)


def _same(one: str, other: str) -> bool:
    """Same code, however formatted or commented: a reformatted block is not a rewrite."""
    return one == other or canonical_hash(one) == canonical_hash(other)


@dataclass
class _Draft:
    """A child's text as blocks in file order, each with the text before it.

    Blocks are swapped and inserted as text and the file is parsed once at the end:
    building a ModelFile resolves scopes, which costs a good part of a second.
    """

    order: list[str]
    before: dict[str, str]
    text: dict[str, str]
    tail: str

    @classmethod
    def of(cls, model: ModelFile) -> _Draft:
        lines = io.StringIO(model.source, newline="").readlines()
        line_starts = [0, *itertools.accumulate(len(line) for line in lines)]
        before, position = {}, 0
        for block in model.blocks.values():
            start = line_starts[block.first_line - 1]
            before[block.name], position = model.source[position:start], start + len(block.source)
        text = {name: block.source for name, block in model.blocks.items()}
        return cls(list(model.blocks), before, text, model.source[position:])

    def put(self, name: str, source: str) -> None:
        self.text[name] = source if source.endswith("\n") else source + "\n"

    def insert_before(self, needer: str, name: str, source: str) -> None:
        """A new block just above `needer` (and its decorators), which may need it at import time."""
        self.order.insert(self.order.index(needer), name)
        self.before[name], self.before[needer] = self.before[needer], "\n\n"
        self.put(name, source)

    def render(self) -> str:
        return "".join(self.before[name] + self.text[name] for name in self.order) + self.tail


def _bring_helpers(draft: _Draft, name: str, second: ModelFile, evolvable: frozenset[str]) -> None:
    """Second's versions of the non-evolvable blocks that second's `name` depends on, directly or not."""
    for helper, needer in _helper_closure(second, name, evolvable):
        theirs = second.blocks[helper].source
        if helper not in draft.text:
            draft.insert_before(needer, helper, theirs)
        elif draft.text[helper] != theirs:
            draft.put(helper, theirs)


def _helper_closure(model: ModelFile, name: str, evolvable: frozenset[str]) -> list[tuple[str, str]]:
    """(helper, a block that uses it) pairs, breadth first, so a helper's user is placed before it is."""
    pairs: list[tuple[str, str]] = []
    seen, pending = {name}, [name]
    while pending:
        needer = pending.pop(0)
        for helper in model.block(needer).uses:
            if helper not in evolvable and helper not in seen:
                seen.add(helper)
                pairs.append((helper, needer))
                pending.append(helper)
    return pairs


def merge_block(ancestor: str, first: str, second: str) -> str | None:
    """Three-way merge of one block's source, statement by statement; None when both sides changed the same spot."""
    if first == second or second == ancestor:
        return first
    if first == ancestor:
        return second
    base, mine, theirs = (parse_source(text, "<merge>") for text in (ancestor, first, second))
    body = _merge_statements(base.body, mine.body, theirs.body)
    return None if body is None else mine.with_changes(body=body).code


def _merge_statements(base: Statements, mine: Statements, theirs: Statements) -> list[cst.BaseStatement] | None:
    """diff3 over statements: statements all three share anchor the merge, the stretches between are resolved."""
    keys = [[_key(statement) for statement in side] for side in (base, mine, theirs)]
    to_mine, to_theirs = _matches(keys[0], keys[1]), _matches(keys[0], keys[2])
    anchors = [index for index in to_mine if index in to_theirs]
    to_mine[len(base)], to_theirs[len(base)] = len(mine), len(theirs)
    merged: list[cst.BaseStatement] = []
    i = j = k = 0
    for a in [*anchors, len(base)]:
        b, c = to_mine[a], to_theirs[a]
        stretch = _merge_stretch(base[i:a], mine[j:b], theirs[k:c])
        if stretch is None:
            return None
        merged += stretch
        if a < len(base):
            statement = _merge_statement(base[a], mine[b], theirs[c])
            if statement is None:
                return None
            merged.append(statement)
        i, j, k = a + 1, b + 1, c + 1
    return merged


def _key(statement: cst.BaseStatement) -> str:
    """What aligns statements: a definition by its name (its body may change), anything else by its code."""
    if isinstance(statement, (cst.ClassDef, cst.FunctionDef)):
        return f"{type(statement).__name__} {statement.name.value}"
    return _code(statement.with_changes(leading_lines=()))


def _matches(base: list[str], side: list[str]) -> dict[int, int]:
    """Index in `base` -> index in `side` of the statements that did not move, in order."""
    matcher = difflib.SequenceMatcher(None, base, side, autojunk=False)
    return {a + n: b + n for a, b, size in matcher.get_matching_blocks() for n in range(size)}


def _merge_stretch(base: Statements, mine: Statements, theirs: Statements) -> list[cst.BaseStatement] | None:
    """A stretch between anchors: one side's change wins over no change; equal-length stretches pair up."""
    picked = _pick(base, mine, theirs)
    if picked is not None:
        return list(picked)
    if not len(base) == len(mine) == len(theirs):
        return None
    merged: list[cst.BaseStatement] = []
    for triple in zip(base, mine, theirs, strict=True):
        statement = _merge_statement(*triple)
        if statement is None:
            return None
        merged.append(statement)
    return merged


def _merge_statement(
    base: cst.BaseStatement, mine: cst.BaseStatement, theirs: cst.BaseStatement
) -> cst.BaseStatement | None:
    """One statement in three versions; definitions that both sides changed are merged inside."""
    picked = _pick([base], [mine], [theirs])
    if picked is not None:
        return picked[0]
    definitions: list[cst.ClassDef | cst.FunctionDef] = []
    bodies: list[cst.IndentedBlock] = []
    for node in (base, mine, theirs):
        if not (
            isinstance(node, (cst.ClassDef, cst.FunctionDef))
            and isinstance(node.body, cst.IndentedBlock)
            and _key(node) == _key(base)
        ):
            return None
        definitions.append(node)
        bodies.append(node.body)
    shells = [
        node.with_changes(body=suite.with_changes(body=())) for node, suite in zip(definitions, bodies, strict=True)
    ]
    shell = _pick(*([node] for node in shells))
    body = _merge_statements(*(suite.body for suite in bodies))
    if shell is None or body is None:
        return None
    winner = shell[0]
    assert isinstance(winner, (cst.ClassDef, cst.FunctionDef))  # _pick returns one of the shells
    return winner.with_changes(body=winner.body.with_changes(body=body))


def _pick(base: Statements, mine: Statements, theirs: Statements) -> Statements | None:
    """diff3's rule: a side that did not change yields to the other, equal changes agree, else a conflict."""
    base_code, mine_code, theirs_code = ([_code(node) for node in side] for side in (base, mine, theirs))
    if mine_code == theirs_code or theirs_code == base_code:
        return mine
    if mine_code == base_code:
        return theirs
    return None


def _code(node: cst.CSTNode) -> str:
    return _RENDERER.code_for_node(node)
