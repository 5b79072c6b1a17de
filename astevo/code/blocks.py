"""A model file as named blocks: its top-level classes and functions.

Everything evolution does to code goes through here, so that a rewrite of one
block provably leaves every other byte of the file as it was.
"""

from __future__ import annotations

import ast
import functools
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeGuard

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider, Scope, ScopeProvider

from astevo.code.syntax import parse_module
from astevo.errors import AstevoError

BlockKind = Literal["class", "function"]


class SourceParseError(AstevoError):
    """Source that Python cannot parse, located as file:line:column."""

    def __init__(self, origin: str, line: int, column: int, message: str) -> None:
        self.origin, self.line, self.column, self.message = origin, line, column, message
        super().__init__(f"{origin}:{line}:{column}: cannot parse: {message}")


class UnknownBlockError(AstevoError):
    """A block name the file does not define; the message lists the real ones."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name, self.available = name, available
        super().__init__(f"no block named {name!r}; blocks in this file: {', '.join(available)}")


class BlockShapeError(AstevoError):
    """Replacement source that is not exactly one definition of the block's name and kind."""


@dataclass(frozen=True)
class Block:
    name: str
    kind: BlockKind
    first_line: int
    last_line: int
    source: str
    uses: tuple[str, ...]
    used_by: tuple[str, ...]


def parse_source(source: str, origin: str = "<source>") -> cst.Module:
    """Parse with libcst; on failure report Python's own message, which users know, with its location."""
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        try:
            parse_module(source)
        except SyntaxError as python_error:
            raise SourceParseError(
                origin, python_error.lineno or 1, python_error.offset or 1, python_error.msg
            ) from None
        message = str(error.message).splitlines()[0] if error.message else "syntax error"
        raise SourceParseError(origin, error.raw_line, error.raw_column + 1, message) from None


Definition = cst.ClassDef | cst.FunctionDef


def _is_definition(statement: cst.CSTNode) -> TypeGuard[Definition]:
    return isinstance(statement, (cst.ClassDef, cst.FunctionDef))


def _kind_of(definition: Definition) -> BlockKind:
    return "class" if isinstance(definition, cst.ClassDef) else "function"


class _NameCollector(cst.CSTVisitor):
    """Collects every node below a block, so scope accesses can be attributed to it."""

    def __init__(self) -> None:
        self.nodes: set[int] = set()

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.nodes.add(id(node))
        return True


class ModelFile:
    """An immutable parsed model file; `replace` returns a new one."""

    def __init__(self, source: str, origin: str = "<source>") -> None:
        self.source = source
        self.origin = origin
        try:
            index = _index(source)
        except cst.ParserSyntaxError:
            parse_source(source, origin)  # raises the error located as file:line:column, in Python's words
            raise
        if index.repeated:
            raise BlockShapeError(
                f"{origin}: defines {', '.join(index.repeated)} more than once; keep one definition per name"
            )
        if index.unlocated is not None:
            raise BlockShapeError(
                f"{origin}: block {index.unlocated} cannot be located byte for byte; normalise the file's whitespace"
            )
        self.module = index.module
        self._line_starts = index.line_starts
        self.blocks: dict[str, Block] = dict(index.blocks)

    @classmethod
    def read(cls, path: str | Path) -> ModelFile:
        path = Path(path)
        if not path.is_file():
            raise AstevoError(f"{path}: no such file; give the path of a Python model file")
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise AstevoError(f"{path}: not a UTF-8 text file; give a Python model file") from None
        except OSError as error:
            raise AstevoError(f"{path}: cannot read ({error.strerror}); check its permissions") from None
        model_file = cls(source, str(path))
        if not model_file.blocks:
            raise AstevoError(
                f"{path}: no top-level class or function, so nothing to evolve; give a model file that defines its "
                "network as a class"
            )
        return model_file

    def block(self, name: str) -> Block:
        try:
            return self.blocks[name]
        except KeyError:
            raise UnknownBlockError(name, list(self.blocks)) from None

    def replace(self, name: str, new_source: str) -> ModelFile:
        """Splice new text over exactly the block's bytes; every other byte stays as it was."""
        parse_definition(new_source, name, self.block(name).kind)
        return ModelFile(self.spliced(name, new_source), self.origin)

    def spliced(self, name: str, new_source: str) -> str:
        """The file's text with the block's text replaced, unchecked and unparsed: for many versions at once
        (size edits measured together), whose checks come from building them."""
        block = self.block(name)
        if not new_source.endswith("\n"):
            new_source += "\n"
        start = self._offset(block)
        return self.source[:start] + new_source + self.source[start + len(block.source) :]

    def _offset(self, block: Block) -> int:
        return self._line_starts[block.first_line - 1]


@dataclass(frozen=True)
class _Index:
    module: cst.Module
    line_starts: tuple[int, ...]  # the offset where each line starts: \n, \r\n and \r, as Python counts lines
    blocks: dict[str, Block]
    repeated: tuple[str, ...]  # names defined more than once: no index
    unlocated: str | None  # a block whose text is not found at its lines: no index


@functools.lru_cache(maxsize=64)
def _index(source: str) -> _Index:
    """The blocks of a source, found once per process: libcst's scope analysis takes a quarter of a second for the
    seed, and one candidate is read by its check, its training and the breeder. LibCST's trees are immutable, so
    every ModelFile of the same text may share one."""
    module = cst.parse_module(source)
    lines = io.StringIO(source, newline="").readlines()
    line_starts = (0, *itertools.accumulate(len(line) for line in lines))
    definitions = [s for s in module.body if _is_definition(s)]
    names = [s.name.value for s in definitions]
    repeated = tuple(sorted({name for name in names if names.count(name) > 1}))
    if repeated:
        return _Index(module, line_starts, {}, repeated, None)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    positions = wrapper.resolve(PositionProvider)
    uses = _uses(definitions, wrapper.resolve(ScopeProvider)[module])
    order = {name: index for index, name in enumerate(names)}
    blocks: dict[str, Block] = {}
    for statement in definitions:
        name = statement.name.value
        span = positions[statement]
        first = positions[statement.decorators[0]] if statement.decorators else span
        block = Block(
            name=name,
            kind=_kind_of(statement),
            first_line=first.start.line,
            last_line=span.end.line,
            source=module.code_for_node(statement.with_changes(leading_lines=())),
            uses=tuple(sorted(uses[name], key=order.__getitem__)),
            used_by=tuple(other for other in names if name in uses[other]),
        )
        start = line_starts[block.first_line - 1]
        if source[start : start + len(block.source)] != block.source:
            return _Index(module, line_starts, {}, (), name)
        blocks[name] = block
    return _Index(module, line_starts, blocks, (), None)


def _uses(definitions: list[Definition], global_scope: Scope | None) -> dict[str, set[str]]:
    """For each block, the other blocks its code names."""
    assert global_scope is not None  # a module always has its global scope
    owner_of_node: dict[int, str] = {}
    for statement in definitions:
        collector = _NameCollector()
        statement.visit(collector)
        owner_of_node.update(dict.fromkeys(collector.nodes, statement.name.value))
    uses: dict[str, set[str]] = {statement.name.value: set() for statement in definitions}
    for name in uses:
        for assignment in global_scope.assignments[name]:
            for access in assignment.references:
                user = owner_of_node.get(id(access.node))
                if user is not None and user != name:
                    uses[user].add(name)
    return uses


def changed_blocks(before: ModelFile, after: ModelFile) -> tuple[str, ...]:
    """The blocks of `after`, in its order, whose text differs from `before`'s or that `before` lacks."""
    return tuple(
        name
        for name, block in after.blocks.items()
        if name not in before.blocks or before.blocks[name].source != block.source
    )


def parse_definition(source: str, name: str, kind: BlockKind) -> cst.ClassDef | cst.FunctionDef:
    """Accept `source` only if it is exactly one top-level `kind` named `name`."""
    module = parse_source(source, f"<new {name}>")
    statements = list(module.body)
    if len(statements) != 1:
        found = ", ".join(_describe(s) for s in statements) or "nothing"
        raise BlockShapeError(f"new source for {name} must be exactly one {kind} definition, found {found}")
    statement = statements[0]
    if not _is_definition(statement) or _kind_of(statement) != kind or statement.name.value != name:
        raise BlockShapeError(f"new source for {name} must define {kind} {name}, found {_describe(statement)}")
    return statement


def _describe(statement: cst.CSTNode) -> str:
    if _is_definition(statement):
        return f"{_kind_of(statement)} {statement.name.value}"
    return f"a {type(statement).__name__} statement"


def split_header(source: str) -> tuple[str, str]:
    """A definition's header (decorators and signature, through the colon's line) and its body."""
    module = parse_source(source, "<block>")
    statement = module.body[0]
    if not _is_definition(statement):
        raise BlockShapeError(f"expected a class or function definition, found {_describe(statement)}")
    if not isinstance(statement.body, cst.IndentedBlock):
        raise BlockShapeError(f"{statement.name.value} is a one-line definition; write its body on its own lines")
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    first_statement = statement.body.body[0]
    assert isinstance(first_statement, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
    body_start = wrapper.resolve(PositionProvider)[first_statement].start.line
    lines = io.StringIO(source, newline="").readlines()
    first_body_line = body_start - len(first_statement.leading_lines)
    return "".join(lines[: first_body_line - 1]), "".join(lines[first_body_line - 1 :])


def constructor_signature(source: str) -> str | None:
    """The parameters callers rely on: a class's `__init__` or a function's own, canonically dumped."""
    definition = parse_module(source).body[0]
    function: ast.FunctionDef | ast.AsyncFunctionDef
    if isinstance(definition, ast.ClassDef):
        inits = [s for s in definition.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"]
        if not inits:
            return None
        function = inits[0]
    elif isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
        function = definition
    else:
        raise BlockShapeError(f"expected a class or function definition, found a {type(definition).__name__} statement")
    return ast.dump(function.args, annotate_fields=False, include_attributes=False)
