"""astevo's Lark grammars in GBNF, the grammar language llama.cpp's servers (and vLLM's xgrammar) accept.

Only what GBNF can say is translated: sequences, alternatives, groups, repetition, literals and the regular
expressions inside terminals. llguidance's extensions (`&` and `~` on terminals, a rule's `max_tokens`) have no
GBNF form, so a grammar that uses them is refused rather than loosened without a word: the line-scope grammars
translate; the whole-body grammars of block scope do not.
"""

from __future__ import annotations

import json
import re

from astevo.llm.backend import GrammarError

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_RULE = re.compile(rf"^(?P<name>{_NAME})(?:\[(?P<attributes>[^\]]*)\])?\s*:\s*(?P<body>.*)$")
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<regex>/(?:[^/\\]|\\.)+/)|(?P<name>' + _NAME + r")|(?P<op>[|()*+?&~]))"
)
_CLASS_SHORTHANDS = {"d": "[0-9]", "w": "[A-Za-z0-9_]", "s": "[ \\t\\n\\r]"}
_CLASS_HEX = {"-": "\\x2D", "^": "\\x5E"}  # literal inside a class, where GBNF has no escape for them
_PLAIN_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def lark_to_gbnf(grammar: str) -> str:
    """The GBNF grammar that accepts what the Lark `grammar` accepts; GrammarError if GBNF cannot say it."""
    rules: list[tuple[str, str]] = []
    for line in grammar.splitlines():
        text = line.strip()
        if not text or text.startswith(("//", "%llguidance")):
            continue
        if text.startswith("%"):
            raise GrammarError(f"the Lark directive {text.split()[0]} has no GBNF form")
        if text.startswith("|") and rules:
            name, body = rules[-1]
            rules[-1] = (name, f"{body} {text}")
            continue
        match = _RULE.match(text)
        if match is None:
            raise GrammarError(f"cannot read the Lark rule {text!r}")
        if "max_tokens" in (match["attributes"] or ""):
            raise GrammarError(f"rule {match['name']} caps its tokens, which GBNF cannot say")
        rules.append((match["name"], match["body"]))
    if "start" not in {name for name, _ in rules}:
        raise GrammarError("a grammar needs a start rule")
    lines = [f"root ::= {_rule_name('start')}"]
    lines += [f"{_rule_name(name)} ::= {_expansion(body)}" for name, body in rules]
    return "\n".join(lines) + "\n"


def _rule_name(name: str) -> str:
    """GBNF names allow letters, digits and dashes; Lark's rules and terminals (upper case) get their own prefix,
    since a grammar may hold both `layer` and `LAYER`."""
    prefix = "t-" if name.isupper() else "r-"
    return prefix + name.lower().replace("_", "-")


def _expansion(body: str) -> str:
    parts: list[str] = []
    position = 0
    while position < len(body):
        if not body[position:].strip():
            break
        match = _TOKEN.match(body, position)
        if match is None:
            raise GrammarError(f"cannot read {body[position:]!r} in a Lark rule")
        position = match.end()
        if match["string"]:
            parts.append(_literal(json.loads(match["string"])))
        elif match["regex"]:
            parts.append(f"({regex_to_gbnf(match['regex'][1:-1])})")
        elif match["name"]:
            parts.append(_rule_name(match["name"]))
        elif match["op"] in "&~":
            raise GrammarError(f"llguidance's {match['op']!r} on terminals has no GBNF form")
        elif match["op"] in "*+?" and parts:
            parts[-1] += match["op"]
        else:
            parts.append(match["op"])
    return " ".join(parts)


def _literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def regex_to_gbnf(pattern: str) -> str:
    """A GBNF expression for a regular expression made of literals, classes, groups, `|` and quantifiers."""
    expression, end = _alternatives(pattern, 0)
    if end != len(pattern):
        raise GrammarError(f"unbalanced ')' in the regular expression /{pattern}/")
    return expression


def _alternatives(pattern: str, position: int) -> tuple[str, int]:
    branches = []
    while True:
        branch, position = _sequence(pattern, position)
        branches.append(branch or '""')
        if position < len(pattern) and pattern[position] == "|":
            position += 1
            continue
        return " | ".join(branches), position


def _sequence(pattern: str, position: int) -> tuple[str, int]:
    items: list[tuple[str, bool]] = []  # (GBNF text, whether it is one literal character)
    while position < len(pattern) and pattern[position] not in "|)":
        char = pattern[position]
        if char in "*+?{":
            if not items:
                raise GrammarError(f"a quantifier with nothing before it in /{pattern}/")
            quantifier, position = _quantifier(pattern, position)
            text, single = items[-1]
            items[-1] = ((_literal(text) if single else text) + quantifier, False)
            continue
        if char == "(":
            start = position + (3 if pattern.startswith("(?:", position) else 1)
            if pattern.startswith("(?", position) and start == position + 1:
                raise GrammarError(f"look-arounds and flags have no GBNF form: /{pattern}/")
            inner, position = _alternatives(pattern, start)
            if position >= len(pattern):
                raise GrammarError(f"unclosed '(' in /{pattern}/")
            items.append((f"({inner})", False))
            position += 1
        elif char == "[":
            text, position = _char_class(pattern, position)
            items.append((text, False))
        elif char == ".":
            items.append(("[^\\n]", False))
            position += 1
        elif char in "^$":
            raise GrammarError(f"anchors have no GBNF form: /{pattern}/")
        elif char == "\\":
            escaped = pattern[position + 1 : position + 2]
            if escaped in _CLASS_SHORTHANDS:
                items.append((_CLASS_SHORTHANDS[escaped], False))
            else:
                items.append((_PLAIN_ESCAPES.get(escaped, escaped), True))
            position += 2
        else:
            items.append((char, True))
            position += 1
    return _joined(items), position


def _joined(items: list[tuple[str, bool]]) -> str:
    """Runs of single characters become one GBNF string; everything else stays as it is."""
    parts: list[str] = []
    run = ""
    for text, single in items:
        if single:
            run += text
            continue
        if run:
            parts.append(_literal(run))
            run = ""
        parts.append(text)
    if run:
        parts.append(_literal(run))
    return " ".join(parts)


def _quantifier(pattern: str, position: int) -> tuple[str, int]:
    if pattern[position] != "{":
        return pattern[position], position + 1
    end = pattern.find("}", position)
    counts = pattern[position + 1 : end] if end > 0 else ""
    if not re.fullmatch(r"\d+(,\d*)?", counts):
        raise GrammarError(f"cannot read the repetition {{{counts}}} in /{pattern}/")
    return "{" + counts + "}", end + 1


def _char_class(pattern: str, position: int) -> tuple[str, int]:
    """A class copied into GBNF's nearly identical syntax; escapes GBNF does not know become the character."""
    out = "["
    position += 1
    if pattern[position : position + 1] == "^":
        out += "^"
        position += 1
    first = True
    while position < len(pattern) and (pattern[position] != "]" or first):
        char = pattern[position]
        first = False
        if char == "\\":
            escaped = pattern[position + 1 : position + 2]
            out += f"\\{escaped}" if escaped in "ntr\\[]" else _CLASS_HEX.get(escaped, escaped)
            position += 2
            continue
        out += char
        position += 1
    if position >= len(pattern):
        raise GrammarError(f"unclosed '[' in /{pattern}/")
    return out + "]", position + 1
