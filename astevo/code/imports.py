"""Imports a model file needs but lacks: added for allowed modules, named for the others.

Capable models write `math.sqrt(...)` in a rewritten block whose file imports only torch, nn
and F. Such a child is fine once the import is there, so astevo adds it at the top of the child
(it becomes part of the child's source and hash). A free name that is any other module is
reported, so that the safety gate can reject it with a reason instead of a NameError at build.
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import sys
from dataclasses import dataclass

from astevo.code.blocks import ModelFile
from astevo.code.syntax import parse_module

_CODING_COOKIE = re.compile(r"^[ \t\f]*#.*?coding[:=]")  # PEP 263: must stay on line 1 or 2

# The modules a model file may import (the safety gate's allow-list).
ALLOWED_IMPORTS = frozenset(
    {
        "__future__",
        "torch",
        "torch.nn",
        "torch.nn.functional",
        "torch.nn.init",
        "torch.optim",
        "torch.optim.lr_scheduler",
        "math",
        "typing",
        "functools",
        "collections",
        "itertools",
        "dataclasses",
        "numbers",
        "enum",
        "abc",
        "operator",
    }
)

# The name a file reads -> the import line that binds it: each allowed top-level module, and the usual aliases.
IMPORT_LINES = {
    "nn": "import torch.nn as nn",
    "F": "import torch.nn.functional as F",
    **{name: f"import {name}" for name in sorted(ALLOWED_IMPORTS) if "." not in name and name != "__future__"},
}


@dataclass(frozen=True)
class ImportRepair:
    source: str  # the file with the missing allowed imports added (unchanged when none were missing)
    added: tuple[str, ...]  # the import lines added, in order


def add_missing_imports(source: str) -> ImportRepair:
    """`source` with an import for every allowed module it reads as a free name but does not import.

    A file that does not parse is returned unchanged: the parse stage reports it.
    """
    try:
        tree = parse_module(source)
    except SyntaxError:
        return ImportRepair(source, ())
    free = free_names(tree)
    added = tuple(IMPORT_LINES[name] for name in sorted(free) if name in IMPORT_LINES)
    if not added:
        return ImportRepair(source, ())
    lines = io.StringIO(source, newline="").readlines()  # as Python numbers lines
    at = preamble_end(tree, lines)
    block = "".join(f"{line}\n" for line in added)
    return ImportRepair("".join(lines[:at]) + block + "".join(lines[at:]), added)


def with_block(parent: ModelFile, name: str, block_source: str) -> str:
    """The child file: `parent` with block `name` rewritten, plus the allowed imports the new version needs."""
    return add_missing_imports(parent.replace(name, block_source).source).source


def free_names(tree: ast.Module) -> set[str]:
    """Names read somewhere that nothing in the file binds (imports, definitions, assignments, parameters)."""
    bound = set(dir(builtins))
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return read - bound


def is_unallowed_module(name: str) -> bool:
    """A standard-library module that no allowed import can bind."""
    return name not in IMPORT_LINES and name in sys.stdlib_module_names


def preamble_end(tree: ast.Module, lines: list[str]) -> int:
    """How many leading lines must stay first: a shebang, a coding line, the docstring, `from __future__`."""
    end = 0
    for index, statement in enumerate(tree.body):
        is_docstring = (
            index == 0
            and isinstance(statement, ast.Expr)
            and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str)
        )
        is_future = isinstance(statement, ast.ImportFrom) and statement.module == "__future__"
        if not (is_docstring or is_future):
            break
        end = statement.end_lineno or end
    while end < min(2, len(lines)) and (lines[end].startswith("#!") or _CODING_COOKIE.match(lines[end])):
        end += 1
    return end
