"""The names model code can call on torch, read from the installed torch itself.

Edits are written under a grammar that offers only real attributes and keyword names,
so a small model cannot invent `nn.Conv2D` or `Conv2d(dh_s=...)`.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from astevo.code.syntax import parse_module, signature
from astevo.llm.grammar import Vocabulary
from astevo.variation.edit_sites import EditSite


def _public(namespace: object) -> set[str]:
    return {name for name in dir(namespace) if name.isidentifier() and not name.startswith("_")}


@cache
def attribute_names() -> frozenset[str]:
    """What may follow a dot: torch, nn, F and tensor members."""
    return frozenset(_public(torch) | _public(nn) | _public(F) | _public(torch.Tensor) | _public(nn.init))


ELEMENTWISE_MODULES = ("torch.nn.modules.activation", "torch.nn.modules.dropout", "torch.nn.modules.linear")


@cache
def layer_names() -> frozenset[str]:
    """Argument-free nn layers that keep their input's shape: activations, dropouts, Identity."""
    found = set()
    for name in _public(nn):
        value = getattr(nn, name)
        if not (isinstance(value, type) and issubclass(value, nn.Module) and value.__module__ in ELEMENTWISE_MODULES):
            continue
        try:
            parameters = signature(value).parameters.values()
        except (TypeError, ValueError):
            continue
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            found.add(name)
    return frozenset(found - {"Softmax", "Softmin", "LogSoftmax", "Softmax2d", "GLU"})


@cache
def keyword_names() -> frozenset[str]:
    """Keyword arguments that nn layers and functional ops accept."""
    names: set[str] = set()
    callables = [getattr(nn, n) for n in _public(nn)] + [getattr(F, n) for n in _public(F)]
    for target in callables:
        if not callable(target):
            continue
        try:
            parameters = signature(target).parameters.values()
        except (TypeError, ValueError):
            continue
        names.update(
            p.name
            for p in parameters
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and not p.name.startswith("_") and p.name != "self"
        )
    return frozenset(names)


BUILTINS = frozenset(
    {"int", "float", "round", "max", "min", "abs", "len", "sum", "tuple", "list", "range", "True", "False", "None"}
)


def module_names(file_source: str) -> frozenset[str]:
    """Names the file defines at top level: imports, blocks and constants."""
    names: set[str] = set()
    for node in parse_module(file_source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names)


def file_attributes(file_source: str) -> frozenset[str]:
    return frozenset(n.attr for n in ast.walk(parse_module(file_source)) if isinstance(n, ast.Attribute))


def callee_object(callee: str) -> Callable[..., Any] | None:
    """The torch callable a dotted name such as `nn.Conv2d` or `F.relu` refers to."""
    head, _, rest = callee.partition(".")
    namespaces = {"nn": nn, "F": F, "torch": torch}
    if head not in namespaces or not rest:
        return None
    target: object | None = namespaces[head]
    for part in rest.split("."):
        target = getattr(target, part, None)
    return target if callable(target) else None


def constructor_of(callee: str, file_source: str) -> ast.FunctionDef | None:
    """The function of the file named `callee`, or the `__init__` of its class of that name."""
    for node in parse_module(file_source).body:
        if isinstance(node, ast.FunctionDef) and node.name == callee:
            return node
        if isinstance(node, ast.ClassDef) and node.name == callee:
            return next((s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"), None)
    return None


@lru_cache(maxsize=4096)
def callee_parameters(callee: str, file_source: str) -> tuple[str, ...] | None:
    """Parameter names of the called layer or function, in order, when astevo can tell what it is (kept per file:
    choosing a block asks again for every call in it, and each answer would parse the whole file)."""
    target = callee_object(callee)
    if target is not None:
        try:
            parameters = signature(target).parameters.values()
        except (TypeError, ValueError):
            return None
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return tuple(p.name for p in parameters if p.kind in kinds and p.name != "self") or None
    function = constructor_of(callee, file_source)
    if function is None:
        return None
    return tuple(a.arg for a in (*function.args.args, *function.args.kwonlyargs) if a.arg != "self") or None


def callee_keywords(callee: str, file_source: str) -> frozenset[str] | None:
    parameters = callee_parameters(callee, file_source)
    return frozenset(parameters) if parameters else None


def edit_vocabulary(file_source: str, site: EditSite) -> Vocabulary:
    """What the edited line may name: locals and file names, real attributes, fitting keywords."""
    statement = site.statement
    names = set(statement.locals_before) | module_names(file_source) | BUILTINS
    keywords = None
    if site.kind != "insert" and site.open_brackets > 0:
        keywords = callee_keywords(innermost_callee(site.kept_value), file_source)
    return Vocabulary(
        names=frozenset(names),
        attributes=attribute_names() | file_attributes(file_source),
        keywords=keywords or keyword_names(),
        layers=layer_names(),
    )


def innermost_callee(kept: str) -> str:
    """The dotted name before the last unclosed bracket: `nn.Conv2d` in `nn.Conv2d(cin, 3,`."""
    depth = 0
    for index in range(len(kept) - 1, -1, -1):
        char = kept[index]
        if char == ")":
            depth += 1
        elif char == "(":
            if depth == 0:
                start = index
                while start > 0 and (
                    kept[start - 1].isidentifier() or kept[start - 1].isdigit() or kept[start - 1] == "."
                ):
                    start -= 1
                return kept[start:index]
            depth -= 1
    return ""
