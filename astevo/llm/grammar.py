"""The output constraint for one block: the model writes only the body under a given header.

The constraint is an llguidance Lark grammar built from the templates in `astevo.grammars`.
It is line based, not a Python grammar: every line stays inside the block, indented in
whole steps that deepen by at most one step per line, without tabs, bounded in length,
never an import; the lines that must not change are forced; and the generation ends when
the model starts a line at column 0. libcst checks the rest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from string import Template
from typing import Literal

from astevo.llm.backend import KEEP_CAPTURE

MAX_LINE_CHARS = 120
MAX_LEVELS = 8
MAX_DOCSTRING_CHARS = 1500
# Shape-keeping functions a new line may apply to a tensor (the grammar's and the random baseline's choices).
ELEMENTWISE = (
    "F.relu",
    "F.relu6",
    "F.silu",
    "F.gelu",
    "F.hardswish",
    "F.mish",
    "F.elu",
    "F.selu",
    "F.celu",
    "F.softplus",
    "F.leaky_relu",
    "F.hardsigmoid",
    "F.tanhshrink",
    "torch.tanh",
    "torch.sigmoid",
)


def _template(name: str) -> Template:
    return Template(files("astevo.grammars").joinpath(name).read_text(encoding="utf-8"))


def _lark_literal(line: str) -> str:
    """A Lark string literal for one forced line, newline included."""
    return json.dumps(line + "\n", ensure_ascii=False)


def _level(line: str, indent: str) -> int:
    """How many `indent` steps a fixed line is indented; ValueError if not whole steps."""
    stripped = line.lstrip(" ")
    depth, rest = divmod(len(line) - len(stripped), len(indent))
    if rest or not 1 <= depth <= MAX_LEVELS or not stripped:
        raise ValueError(f"fixed line {line!r} must be a statement indented by whole {indent!r} steps")
    if any(char in line for char in "\t\r\n"):
        raise ValueError(f"fixed line {line!r} must be one line without tabs")
    return depth


def _levels(indent: str) -> str:
    """The rules of every indentation level, deepest last."""
    level = _template("level.lark")
    return "\n".join(
        level.substitute(
            level=depth,
            spaces=indent * depth,
            nested=f"suite_{depth + 1}?" if depth < MAX_LEVELS else "",
            max_line=MAX_LINE_CHARS,
            max_content=MAX_LINE_CHARS - len(indent) * depth - 1,
        )
        for depth in range(1, MAX_LEVELS + 1)
    )


def _after_fixed(last_level: int) -> str:
    """What may follow the last fixed line before the block's top-level statements resume:
    its own nested suite, then statements climbing back out one level at a time."""
    if last_level == 0:
        return ""
    nested = [f"suite_{last_level + 1}?"] if last_level < MAX_LEVELS else []
    return " ".join(nested + [f"stmt_{depth}*" for depth in range(last_level, 1, -1)])


def body_grammar(
    kind: Literal["class", "function"], indent: str = "    ", fixed_lines: Sequence[str] | None = None
) -> str:
    """Grammar for the body of a `kind` block whose header line is given.

    `fixed_lines` come first, verbatim (e.g. a constructor's signature that evolution must
    keep). A class body must also define `forward(self...)` with a body. The text the model
    writes after the body (the first token of a column-0 line) is generated only to learn
    that the body ended; `Generator.complete` leaves it out of `Completion.text`.
    """
    if kind not in ("class", "function"):
        raise ValueError(f"kind must be 'class' or 'function', got {kind!r}")
    if not indent or indent.strip(" "):
        raise ValueError(f"indent must be one or more spaces, got {indent!r}")
    fixed = list(fixed_lines or [])
    levels = [_level(line, indent) for line in fixed]
    values = {
        "keep": KEEP_CAPTURE,
        "indent": indent,
        "fixed": " ".join(_lark_literal(line) for line in fixed),
        "after_fixed": _after_fixed(levels[-1] if levels else 0),
        "top_statements": "stmt_1*" if fixed else "stmt_1+",
        "max_docstring": MAX_DOCSTRING_CHARS,
    }
    parts = [_template(f"{kind}_body.lark").substitute(values), _levels(indent)]
    parts.append(_template("lines.lark").substitute(values))
    return "\n".join(parts)


@dataclass(frozen=True)
class Vocabulary:
    """The identifiers an edit may use: names in scope, attributes after a dot, keyword names."""

    names: frozenset[str]
    attributes: frozenset[str]
    keywords: frozenset[str]
    layers: frozenset[str]  # nn module classes a constructor line may build


def continuation_grammar(open_brackets: int, after_comma: bool, vocabulary: Vocabulary) -> str:
    """Grammar for the rest of a line whose value was cut right after `(` or `,` inside a call:
    the call's remaining arguments and closing brackets, nothing after them."""
    if open_brackets < 1:
        raise ValueError("a continuation starts inside a call: at least one bracket must be open")
    first = '" " arg (", " arg)* ")"' if after_comma else '(arg (", " arg)*)? ")"'
    outer = ['(", " arg)* ")"'] * (open_brackets - 1)
    return _expression_grammar(" ".join([first, *outer]), vocabulary)


def layer_grammar(vocabulary: Vocabulary) -> str:
    """Grammar for another argument-free nn layer in a constructor line (an activation, a gate)."""
    return _expression_grammar("layer", vocabulary)


def assignment_grammar(targets: Sequence[str], vocabulary: Vocabulary) -> str:
    """Grammar for a new shape-keeping line on one of `targets` (names the following code reads)."""
    return _expression_grammar("reshaping_free", vocabulary, targets)


def _alternatives(words: frozenset[str]) -> str:
    if not words:
        raise ValueError("a grammar terminal needs at least one word")
    return " | ".join(json.dumps(word) for word in sorted(words))


def _expression_grammar(start: str, vocabulary: Vocabulary, targets: Sequence[str] = ("x",)) -> str:
    return _template("expression.lark").substitute(
        start=start,
        keep=KEEP_CAPTURE,
        targets=_alternatives(frozenset(targets)),
        names=_alternatives(vocabulary.names),
        attributes=_alternatives(vocabulary.attributes),
        keywords=_alternatives(vocabulary.keywords),
        layers=_alternatives(vocabulary.layers),
        elementwise=_alternatives(frozenset(ELEMENTWISE)),
    )


def choice_grammar(choices: Sequence[str], before: str = "", after: str = "") -> str:
    """Grammar for exactly one of `choices` between fixed texts, then a newline: a pick from a list astevo made."""
    fixed = [json.dumps(text) for text in (before,) if text]
    closing = [json.dumps(text) for text in (after,) if text]
    line = " ".join([*fixed, "choice", *closing, json.dumps("\n")])
    return "\n".join(
        [
            "%llguidance {}",
            "start: line",
            f'line[capture="{KEEP_CAPTURE}"]: {line}',
            f"choice: {_alternatives(frozenset(choices))}",
        ]
    )
