"""Hypothesis strategies for varied model-like Python files, rendered in varied styles.

A program is generated once as an abstract list of definitions and then rendered with
different formatting, so tests can compare "same code, other layout" with "other code".
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass

from hypothesis import strategies as st

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name) and not keyword.issoftkeyword(name) and name not in {"self", "super"}
)


@dataclass(frozen=True)
class Statement:
    target: str
    operands: tuple[str, ...]
    constant: int
    operator: str


@dataclass(frozen=True)
class Definition:
    kind: str  # "class" or "function"
    name: str
    params: tuple[str, ...]
    statements: tuple[Statement, ...]
    docstring: str | None


@dataclass(frozen=True)
class Style:
    indent: str
    spaced_operators: bool
    blank_lines: int
    comments: bool
    parenthesise: bool
    single_quotes: bool
    docstring_wrapped: bool


def statements(names: tuple[str, ...]) -> st.SearchStrategy[Statement]:
    return st.builds(
        Statement,
        target=identifiers,
        operands=st.lists(st.sampled_from(names), min_size=1, max_size=3).map(tuple),
        constant=st.integers(0, 999),
        operator=st.sampled_from(["+", "-", "*"]),
    )


@st.composite
def definitions(draw, name: str) -> Definition:
    params = tuple(draw(st.lists(identifiers, min_size=1, max_size=3, unique=True)))
    docstring = draw(st.none() | st.text(st.sampled_from("abc xyz"), min_size=1, max_size=30).filter(str.strip))
    return Definition(
        kind=draw(st.sampled_from(["class", "function"])),
        name=name,
        params=params,
        statements=tuple(draw(st.lists(statements(params), min_size=1, max_size=4))),
        docstring=docstring,
    )


@st.composite
def programs(draw, min_size: int = 1, max_size: int = 6) -> tuple[Definition, ...]:
    names = draw(st.lists(identifiers, min_size=min_size, max_size=max_size, unique=True))
    return tuple(draw(definitions(name)) for name in names)


styles = st.builds(
    Style,
    indent=st.sampled_from(["    ", "  ", "\t", "        "]),
    spaced_operators=st.booleans(),
    blank_lines=st.integers(0, 3),
    comments=st.booleans(),
    parenthesise=st.booleans(),
    single_quotes=st.booleans(),
    docstring_wrapped=st.booleans(),
)


def render(program: tuple[Definition, ...], style: Style) -> str:
    header = "# generated model file\nimport math\n" if style.comments else "import math\n"
    parts = [header]
    for definition in program:
        parts.append("\n" * style.blank_lines)
        if style.comments:
            parts.append(f"# about {definition.name}\n")
        parts.append(render_definition(definition, style))
    return "".join(parts)


def render_definition(definition: Definition, style: Style) -> str:
    one, two = style.indent, style.indent * 2
    if definition.kind == "class":
        lines = [f"class {definition.name}:"]
        body_indent = two
        lines_doc_indent = one
        signature = f"{one}def method(self, {', '.join(definition.params)}):"
    else:
        lines = [f"def {definition.name}({', '.join(definition.params)}):"]
        body_indent = one
        lines_doc_indent = one
        signature = None
    if definition.docstring is not None:
        lines.append(lines_doc_indent + render_docstring(definition.docstring, style, lines_doc_indent))
    if signature:
        lines.append(signature)
    for statement in definition.statements:
        comment = "  # step" if style.comments else ""
        lines.append(f"{body_indent}{render_statement(statement, style)}{comment}")
    lines.append(f"{body_indent}return {definition.statements[-1].target}")
    return "\n".join(lines) + "\n"


def render_statement(statement: Statement, style: Style) -> str:
    glue = f" {statement.operator} " if style.spaced_operators else statement.operator
    expression = glue.join((*statement.operands, str(statement.constant)))
    if style.parenthesise:
        expression = f"({expression})"
    equals = " = " if style.spaced_operators else "="
    return f"{statement.target}{equals}{expression}"


def render_docstring(text: str, style: Style, indent: str) -> str:
    quote = "'''" if style.single_quotes else '"""'
    words = text.split()
    if style.docstring_wrapped and len(words) > 1:
        body = f"\n{indent}".join(words)
        return f"{quote}{body}\n{indent}{quote}"
    return f"{quote}{' '.join(words)}{quote}"
