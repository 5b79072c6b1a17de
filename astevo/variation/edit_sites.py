"""Where in a block a small model can make a useful edit: one statement's right-hand side, or a new line.

Tiny local models asked to rewrite a whole block mostly copy it or wander off. Given the
block up to one chosen spot and asked to continue from there, with the copy forbidden at
that spot, they write a real variation that keeps the rest of the block intact.
"""

from __future__ import annotations

import ast
import io
from dataclasses import dataclass
from typing import Literal

from astevo.code.syntax import parse_expression, parse_module

EditKind = Literal["replace", "append", "insert"]
OPENERS, CLOSERS = "([{", ")]}"


@dataclass(frozen=True)
class Statement:
    """A one-line assignment or return inside a method or function of the block."""

    line: int  # 1-based, within the block's source
    indent: str
    lead: str  # "self.pw = ", "y = " or "return "
    value: str
    function: str  # the enclosing def's name
    locals_before: tuple[str, ...]  # names assigned (or parameters) before this line in its function


@dataclass(frozen=True)
class EditSite:
    """One spot to continue from: the block's text before it is kept, the model writes from there."""

    kind: EditKind  # rewrite the value from `split` on, add an argument to its call, or add a line before it
    statement: Statement
    split: int = 0

    @property
    def kept_value(self) -> str:
        if self.kind == "append":  # the call's own arguments stay; a new one follows them
            return self.statement.value[:-1] + ("," if self.statement.value[-2] != "(" else "")
        return self.statement.value[: self.split]

    @property
    def avoided(self) -> str:
        """The original text from the spot on, which the model's first token must not repeat."""
        return self.statement.value[self.split :] if self.kind == "replace" else ""

    @property
    def open_brackets(self) -> int:
        return _unclosed(self.kept_value)


def statements(block_source: str) -> list[Statement]:
    """One-line assignments and returns in the block's functions (methods for a class)."""
    tree = parse_module(block_source)
    lines = io.StringIO(block_source, newline="").readlines()
    found: list[Statement] = []
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        known = [a.arg for a in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)]
        for node in function.body:
            statement = _statement(node, lines, function.name, tuple(known))
            if statement is not None:
                found.append(statement)
            if isinstance(node, ast.Assign):
                known.extend(t.id for t in node.targets if isinstance(t, ast.Name) and t.id not in known)
    return found


def _statement(node: ast.stmt, lines: list[str], function: str, known: tuple[str, ...]) -> Statement | None:
    if node.lineno != node.end_lineno:
        return None
    text = lines[node.lineno - 1].rstrip("\r\n")
    encoded = text.encode("utf-8")  # ast's columns count UTF-8 bytes

    def column(offset: int) -> int:
        return len(encoded[:offset].decode("utf-8", errors="ignore"))

    indent = text[: len(text) - len(text.lstrip(" "))]
    value = getattr(node, "value", None)
    if value is None or column(value.end_col_offset) != len(text):
        return None  # a comment or a second statement follows: not a clean one-line spot
    start = column(value.col_offset)
    if (
        isinstance(node, ast.Assign)
        and len(node.targets) == 1
        and isinstance(node.targets[0], (ast.Name, ast.Attribute))
    ):
        return Statement(node.lineno, indent, text[len(indent) : start], text[start:], function, known)
    if isinstance(node, ast.Return):
        return Statement(node.lineno, indent, "return ", text[start:], function, known)
    return None


def _unclosed(text: str) -> int:
    """Open round brackets at the end of `text`; -1 when other brackets are open (not a usable spot)."""
    stack: list[str] = []
    for char in text:
        if char in OPENERS:
            stack.append(char)
        elif char in CLOSERS and stack:
            stack.pop()
    return len(stack) if all(b == "(" for b in stack) else -1


def argument_at(value: str, start: int) -> str:
    """The argument text from `start` to the next comma or bracket that closes it."""
    depth = 0
    for index in range(start, len(value)):
        char = value[index]
        if char in OPENERS:
            depth += 1
        elif char in CLOSERS:
            if depth == 0:
                return value[start:index]
            depth -= 1
        elif char == "," and depth == 0:
            return value[start:index]
    return value[start:]


def _is_setting(argument: str) -> bool:
    """A literal (`3`, `0.5`, `True`) or a keyword set to one (`bias=False`): a hyper-parameter.
    Names such as channel counts carry the block's structure and are left alone."""
    text = argument.strip()
    keyword, equals, literal = text.partition("=")
    if equals and keyword.isidentifier():
        text = literal
    try:
        node = parse_expression(text)
    except SyntaxError:
        return False
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float))


def argument_splits(value: str) -> list[int]:
    """Spots right after an opening bracket or a comma where a hyper-parameter argument starts."""
    spots = []
    in_string = None
    for index, char in enumerate(value):
        if in_string:
            in_string = None if char == in_string else in_string
        elif char in "'\"":
            in_string = char
        elif char in "(," and index + 1 < len(value) and value[index + 1] != ")":
            if _unclosed(value[: index + 1]) > 0 and _is_setting(argument_at(value, index + 1)):
                spots.append(index + 1)
    return spots


def _is_call(value: str) -> bool:
    """A value that is one call ending the line: `nn.Conv2d(cin, cin, 1)`, `int(x * 0.5)`."""
    try:
        node = parse_expression(value)
    except SyntaxError:
        return False
    return isinstance(node, ast.Call) and value.endswith(")")


def sites(block_source: str) -> dict[str, list[EditSite]]:
    """Every spot, grouped by what an intent can ask for.

    arguments: a hyper-parameter argument of a call rewritten, or a keyword argument added to it;
    layers: an argument-free `nn` layer in a constructor replaced by another (an activation, a gate);
    computations: a new shape-keeping line (an activation, a scaling) before a forward statement.
    A forward statement's whole value is not offered: small models rarely keep its shapes.
    """
    groups: dict[str, list[EditSite]] = {"arguments": [], "layers": [], "computations": []}
    tree = parse_module(block_source)
    is_class = bool(tree.body) and isinstance(tree.body[0], ast.ClassDef)
    for statement in statements(block_source):
        in_constructor = statement.function == "__init__"
        if in_constructor or not is_class:  # a forward's arguments are dims and indices: structure
            groups["arguments"].extend(
                EditSite("replace", statement, split) for split in argument_splits(statement.value)
            )
            if _is_call(statement.value) and statement.value.startswith("nn."):
                groups["arguments"].append(EditSite("append", statement))
        if in_constructor and statement.value.startswith("nn.") and statement.value.endswith("()"):
            groups["layers"].append(EditSite("replace", statement, 0))
        if is_class and not in_constructor and [name for name in statement.locals_before if name != "self"]:
            groups["computations"].append(EditSite("insert", statement))
    return groups
