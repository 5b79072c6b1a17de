"""Where a class block's size is written down, and source edits that change it consistently.

A one-line change to a channel count breaks the chain it belongs to (`ME(48, 96)` feeds
`DFSEBV2(96, …)`). These edits change every spot that must move together: an integer
literal everywhere it appears with the same meaning, or a stage's line in `__init__` and
its line in `forward` together. Whether a literal is a channel count is not read from
names; it is measured by building the model (see astevo.evaluation.variants).
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from astevo.code.syntax import parse_module

CONSTRUCTOR = "__init__"


@dataclass(frozen=True)
class SizeLiteral:
    """One integer literal in a class block: in the constructor, or an operand of arithmetic elsewhere."""

    line: int  # 1-based, within the block's source
    start: int  # character columns of the literal's text in that line
    end: int
    value: int
    in_constructor: bool
    parameter: str | None  # the parameter it is passed to, when the call's target is known


@dataclass(frozen=True)
class Stage:
    """A sub-module applied as one line `v = self.NAME(v)` in a method, built in one line of `__init__`."""

    name: str
    built_at: int  # the constructor line that builds it
    applied_at: int  # the line that applies it
    built_line: str
    applied_line: str


def literals(block_source: str, signatures: Mapping[str, Sequence[str]] | None = None) -> list[SizeLiteral]:
    """Integer literals a size edit may rewrite: every one in the constructor's body (not its defaults,
    not negative ones, which are dims and indices), and operands of arithmetic in other methods
    (`16 * 5 * 5` in a `view`), which follow a channel edit. `signatures`: parameter names of
    callables, to say what each literal is passed to."""
    tree = parse_module(block_source)
    lines = io.StringIO(block_source, newline="").readlines()
    if not tree.body or not isinstance(tree.body[0], ast.ClassDef):
        return []
    found: list[SizeLiteral] = []
    for method in tree.body[0].body:
        if not isinstance(method, ast.FunctionDef):
            continue
        in_constructor = method.name == CONSTRUCTOR
        negated = {id(n.operand) for n in ast.walk(method) if isinstance(n, ast.UnaryOp)}
        in_arithmetic = {id(side) for n in ast.walk(method) if isinstance(n, ast.BinOp) for side in (n.left, n.right)}
        bound = _bound_parameters(method, signatures or {})
        for statement in method.body:
            for node in ast.walk(statement):
                if not _is_integer(node) or id(node) in negated:
                    continue
                if in_constructor or id(node) in in_arithmetic:
                    found.append(_literal(node, lines, in_constructor, bound.get(id(node))))
    return sorted(found, key=lambda literal: (literal.line, literal.start))


def _is_integer(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is int


def _literal(node: ast.AST, lines: list[str], in_constructor: bool, parameter: str | None) -> SizeLiteral:
    assert isinstance(node, ast.Constant) and isinstance(node.value, int) and node.end_col_offset is not None
    start, end = _column(lines, node.lineno, node.col_offset), _column(lines, node.lineno, node.end_col_offset)
    return SizeLiteral(node.lineno, start, end, node.value, in_constructor, parameter)


def _column(lines: list[str], line: int, offset: int) -> int:
    """The character column of ast's `offset`, which counts UTF-8 bytes."""
    return len(lines[line - 1].encode("utf-8")[:offset].decode("utf-8", errors="ignore"))


def _bound_parameters(method: ast.FunctionDef, signatures: Mapping[str, Sequence[str]]) -> dict[int, str]:
    """For literals passed straight to a call: the name of the parameter that receives them."""
    bound: dict[int, str] = {}
    for call in (n for n in ast.walk(method) if isinstance(n, ast.Call)):
        names = signatures.get(ast.unparse(call.func))
        for index, argument in enumerate(call.args):
            if names is not None and index < len(names):
                bound[id(argument)] = names[index]
        for keyword in call.keywords:
            if keyword.arg is not None:
                bound[id(keyword.value)] = keyword.arg
    return bound


@dataclass(frozen=True)
class GroupableCall:
    """A constructor call that accepts `groups` and does not pass it: grouping it divides its weights."""

    name: str  # the attribute it is assigned to (`pw1`), else its callee and line (`nn.Conv1d on line 7`)
    line: int  # 1-based, within the block's source: where a new last argument goes
    column: int  # its character column: right after the last argument, or the opening bracket
    has_arguments: bool


def groupable_calls(block_source: str, signatures: Mapping[str, Sequence[str]]) -> list[GroupableCall]:
    """Calls in the constructor whose callee takes a `groups` parameter that the call leaves at its default.
    Whether a group count divides the channels is left to the build."""
    tree = parse_module(block_source)
    if not tree.body or not isinstance(tree.body[0], ast.ClassDef):
        return []
    constructor = next((m for m in tree.body[0].body if isinstance(m, ast.FunctionDef) and m.name == CONSTRUCTOR), None)
    if constructor is None:
        return []
    lines = io.StringIO(block_source, newline="").readlines()
    owners = {
        id(statement.value): name
        for statement in ast.walk(constructor)
        if isinstance(statement, ast.Assign) and (name := _assigned_attribute(statement)) is not None
    }
    found = []
    for call in (n for n in ast.walk(constructor) if isinstance(n, ast.Call)):
        callee = ast.unparse(call.func)
        names = list(signatures.get(callee, ()))
        if "groups" not in names or len(call.args) > names.index("groups"):
            continue
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg in (None, "groups") for k in call.keywords):
            continue
        name = owners.get(id(call), f"{callee} on line {call.lineno}")
        given: list[ast.expr] = [*call.args, *(k.value for k in call.keywords)]
        last = max(given, key=lambda n: (n.end_lineno or 0, n.end_col_offset or 0), default=call.func)
        assert last.end_lineno is not None and last.end_col_offset is not None
        column = _column(lines, last.end_lineno, last.end_col_offset) + (0 if given else 1)  # after `(` if bare
        found.append(GroupableCall(name, last.end_lineno, column, bool(given)))
    return sorted(found, key=lambda call: (call.line, call.column))


def with_keyword(block_source: str, call: GroupableCall, argument: str) -> str:
    """The block with `argument` (`groups=4`) passed last to the call, right after its last argument (so a
    trailing comma or comment stays where it was); every other character kept."""
    lines = io.StringIO(block_source, newline="").readlines()
    text = lines[call.line - 1]
    lines[call.line - 1] = text[: call.column] + (", " if call.has_arguments else "") + argument + text[call.column :]
    return "".join(lines)


def callee_names(block_source: str) -> set[str]:
    """The dotted names the block calls anywhere, whose signatures say what its literals are passed to."""
    tree = parse_module(block_source)
    return {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}


def with_values(block_source: str, changes: Iterable[tuple[SizeLiteral, int]]) -> str:
    """The block with each literal's text replaced by its new value; every other character kept."""
    lines = io.StringIO(block_source, newline="").readlines()
    for literal, value in sorted(changes, key=lambda change: (change[0].line, change[0].start), reverse=True):
        text = lines[literal.line - 1]
        lines[literal.line - 1] = text[: literal.start] + str(value) + text[literal.end :]
    return "".join(lines)


def stages(block_source: str) -> list[Stage]:
    """Sub-modules a depth edit may remove or repeat: built in one constructor line, applied once,
    as a whole line that maps a variable to itself."""
    tree = parse_module(block_source)
    if not tree.body or not isinstance(tree.body[0], ast.ClassDef):
        return []
    lines = io.StringIO(block_source, newline="").readlines()
    methods = [m for m in tree.body[0].body if isinstance(m, ast.FunctionDef)]
    constructor = next((m for m in methods if m.name == CONSTRUCTOR), None)
    if constructor is None:
        return []
    built = {
        name: statement
        for statement in constructor.body
        if (name := _assigned_attribute(statement)) is not None and _whole_line(statement, lines)
    }
    uses: dict[str, int] = {}
    for method in methods:
        if method is constructor:
            continue
        for node in ast.walk(method):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
                uses[node.attr] = uses.get(node.attr, 0) + 1
    found = []
    for method in methods:
        for statement in method.body if method is not constructor else ():
            name = _self_application(statement)
            if name in built and uses.get(name) == 1 and _whole_line(statement, lines):
                line = built[name].lineno
                found.append(Stage(name, line, statement.lineno, lines[line - 1], lines[statement.lineno - 1]))
    return found


def _whole_line(statement: ast.stmt, lines: list[str]) -> bool:
    """A statement alone on its line, so that removing or copying the line moves it and nothing else."""
    if statement.lineno != statement.end_lineno:
        return False
    text = lines[statement.lineno - 1].encode("utf-8")
    return not text[: statement.col_offset].strip() and not text[statement.end_col_offset :].strip()


def _assigned_attribute(statement: ast.stmt) -> str | None:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            return target.attr
    return None


def _self_application(statement: ast.stmt) -> str | None:
    """NAME for a statement `v = self.NAME(v)`."""
    if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
        return None
    target, value = statement.targets[0], statement.value
    if not (isinstance(target, ast.Name) and isinstance(value, ast.Call) and not value.keywords):
        return None
    function = value.func
    if not (isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)):
        return None
    arguments = value.args
    if function.value.id != "self" or len(arguments) != 1 or not isinstance(arguments[0], ast.Name):
        return None
    return function.attr if arguments[0].id == target.id else None


def without_stage(block_source: str, stage: Stage) -> str:
    lines = io.StringIO(block_source, newline="").readlines()
    return "".join(line for number, line in enumerate(lines, 1) if number not in (stage.built_at, stage.applied_at))


def with_stage_repeated(block_source: str, stage: Stage, taken: Iterable[str] = ()) -> str:
    """The stage built a second time under a fresh name, and applied right after the first."""
    used = set(taken) | {stage.name}
    copy = next(f"{stage.name}_{n}" for n in range(2, 100) if f"{stage.name}_{n}" not in used)
    lines = io.StringIO(block_source, newline="").readlines()
    mention = re.compile(rf"\bself\.{re.escape(stage.name)}\b")
    renamed = {
        stage.built_at: mention.sub(f"self.{copy}", stage.built_line, count=1),
        stage.applied_at: mention.sub(f"self.{copy}", stage.applied_line, count=1),
    }
    result = []
    for number, line in enumerate(lines, 1):
        result.append(line)
        if number in renamed:
            result.append(renamed[number])
    return "".join(result)


def attribute_names(block_source: str) -> set[str]:
    """Every `self.NAME` the block mentions, so that a repeated stage gets a name of its own."""
    return {
        n.attr
        for n in ast.walk(parse_module(block_source))
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"
    }
