"""Canonical hashes: the same code, however it is formatted, commented or documented, hashes the same.

Evolution uses them to recognise a candidate it has already evaluated and to tell
a real rewrite from a copy of its parent: an answer that only drops or rewords a
docstring or a comment is a copy.
"""

from __future__ import annotations

import ast
import functools
import hashlib

from astevo.code.syntax import parse_module


@functools.lru_cache(maxsize=1024)
def canonical_hash(source: str) -> str:
    """Hash of the code's syntax tree without its docstrings; a source is parsed for it once per process, however
    often the loop, the store and the evaluation cache ask."""
    return _digest(parse_module(source))


def block_hashes(source: str) -> dict[str, str]:
    """The canonical hash of each top-level class and function of a file, by name: what `canonical_hash` gives
    for that block's own source, found with ast alone, fast enough to run over every individual of a run."""
    return {
        node.name: _digest(ast.Module(body=[node], type_ignores=[]))
        for node in parse_module(source).body
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    }


def _digest(tree: ast.Module) -> str:
    for node in ast.walk(tree):
        _drop_docstring(node)
    dump = ast.dump(tree, annotate_fields=False, include_attributes=False)
    return hashlib.sha256(dump.encode("utf-8")).hexdigest()


def _drop_docstring(node: ast.AST) -> None:
    if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
        return
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
