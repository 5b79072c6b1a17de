"""What may be written at an edit spot, as a finite list: the random baseline draws from it uniformly.

A uniform draw over tokens under the grammar would only write junk, so the baseline draws over
the same vocabulary's options the grammar offers the model at the spot: another layer, a keyword
the call has not been given with a fitting value, a new value for a hyper-parameter argument
in its parameter's range, or a shape-keeping line on a tensor the next line reads.
"""

from __future__ import annotations

import ast

from astevo.code.syntax import parse_expression, parse_module
from astevo.llm.grammar import ELEMENTWISE
from astevo.variation.edit_sites import EditSite, argument_at
from astevo.variation.keyword_values import keyword_choices, values_near
from astevo.variation.vocabulary import callee_parameters, innermost_callee, layer_names

SCALES = ("0.5", "0.9", "1.1", "2.0")  # a new line that scales a tensor by a constant


def keyword_texts(file_source: str, site: EditSite) -> list[str]:
    """What an appended argument may be: a keyword the call has not been given, with a fitting value."""
    return keyword_choices(innermost_callee(site.kept_value), file_source, site.statement.value)


def insert_targets(site: EditSite) -> list[str]:
    """The tensors a new line before the statement may change: those the statement reads, else any local."""
    statement = site.statement
    used = {node.id for node in ast.walk(parse_module(statement.value)) if isinstance(node, ast.Name)}
    read = [name for name in statement.locals_before if name != "self" and name in used]
    return read or [name for name in statement.locals_before if name != "self"]


def spot_options(file_source: str, site: EditSite) -> list[str]:
    """Every text the spot's grammar allows that the baseline may write there, each ending its line."""
    if site.kind == "append":
        before = " " if site.kept_value.endswith(",") else ""
        return [f"{before}{choice}{')' * site.open_brackets}\n" for choice in keyword_texts(file_source, site)]
    if site.kind == "insert":
        return [
            f"{target} = {text}\n"
            for target in insert_targets(site)
            for text in [
                *(f"{function}({target})" for function in ELEMENTWISE),
                *(f"{target} {op} {function}({target})" for op in ("+", "*") for function in ELEMENTWISE),
                *(f"{target} * {scale}" for scale in SCALES),
            ]
        ]
    if site.split == 0:  # an argument-free layer replaced by another
        return [f"nn.{layer}()\n" for layer in sorted(layer_names()) if f"nn.{layer}()" != site.statement.value]
    return _argument_values(file_source, site)


def _argument_values(file_source: str, site: EditSite) -> list[str]:
    """The hyper-parameter argument at the spot set to other values in its parameter's range; the rest of the
    line kept."""
    value = site.statement.value
    argument = argument_at(value, site.split)
    lead = argument[: len(argument) - len(argument.lstrip())]
    keyword, equals, literal = argument.strip().partition("=")
    if equals and keyword.isidentifier():
        name, given = keyword, f"{keyword}="
    else:
        parameters = callee_parameters(innermost_callee(site.kept_value), file_source) or ()
        position = _position(site.kept_value)
        name, given, literal = (parameters[position] if position < len(parameters) else ""), "", argument.strip()
    rest = value[site.split + len(argument) :]
    return [f"{lead}{given}{new}{rest}\n" for new in values_near(name, ast.literal_eval(parse_expression(literal)))]


def _position(kept: str) -> int:
    """Which positional argument of the innermost open call starts at the end of `kept`."""
    depth, commas = 0, 0
    for char in reversed(kept):
        if char in ")]}":
            depth += 1
        elif char in "([{":
            if depth == 0:
                return commas
            depth -= 1
        elif char == "," and depth == 0:
            commas += 1
    return commas
