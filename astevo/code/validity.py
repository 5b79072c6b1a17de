"""Whether a child file can be a model file at all: parsed, each block once, no undefined names.

Checked by libcst alone, in microseconds, so a broken child is discarded before any evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable

import libcst as cst
import libcst.matchers as matchers
from libcst.metadata import GlobalScope, MetadataWrapper, ScopeProvider

from astevo.code.blocks import SourceParseError, parse_source

# Names Python defines in every module's globals that are not attributes of `builtins`.
_MODULE_NAMES = frozenset({"__file__", "__cached__", "__builtins__", "__annotations__"})


def child_problem(child_source: str, expected: Iterable[str]) -> str | None:
    """Why a child cannot be a model file (unparsable, a block missing or doubled, an undefined name), or None."""
    try:
        module = parse_source(child_source, "<child>")
    except SourceParseError as error:
        return str(error)
    expected = list(expected)
    defined = [
        statement.name.value for statement in module.body if isinstance(statement, (cst.ClassDef, cst.FunctionDef))
    ]
    problems = [f"missing block {name}" for name in expected if name not in defined]
    problems += [f"block {name} defined {defined.count(name)} times" for name in expected if defined.count(name) > 1]
    if problems:
        return "; ".join(problems)
    undefined = _undefined_names(module)
    return f"uses undefined names: {', '.join(undefined)}" if undefined else None


def _undefined_names(module: cst.Module) -> list[str]:
    """Names read where no enclosing scope (nor builtins) assigns them; module level also before their definition."""
    if matchers.findall(module, matchers.ImportFrom(names=matchers.ImportStar())):
        return []  # `from m import *` can define any name
    scopes = MetadataWrapper(module, unsafe_skip_copy=True).resolve(ScopeProvider)
    undefined: set[str] = set()
    for scope in {scope for scope in scopes.values() if scope is not None}:
        for access in scope.accesses:
            if access.referents or not isinstance(access.node, cst.Name):
                continue
            name = access.node.value
            # A local read before its assignment in the code's order is fine in a loop; libcst cannot tell.
            assigned_later_here = not isinstance(scope, GlobalScope) and name in scope.assignments
            if name not in _MODULE_NAMES and not assigned_later_here:
                undefined.add(name)
    return sorted(undefined)
