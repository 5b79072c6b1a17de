"""Python syntax trees that any thread may ask for: CPython 3.11's `ast.parse` is not thread-safe.

Evaluation slots parse candidates (the safety gate, the canonical hash) while the loop's thread
parses blocks for the next proposal. CPython 3.11 keeps one AST-builder recursion counter per
interpreter; when a parse yields the GIL midway (the garbage collector runs a finalizer), another
thread's parse resets that counter and the first fails with "SystemError: AST constructor recursion
depth mismatch". So every parse in astevo goes through one lock, and so does `inspect.signature`,
which parses the text signature of a builtin (`torch.Size`, say) with `ast.parse`.
"""

from __future__ import annotations

import ast
import inspect
import threading
from collections.abc import Callable
from typing import Any

_ONE_PARSE_AT_A_TIME = threading.RLock()  # re-entrant: a finalizer that parses must not deadlock its own thread


def parse_module(source: str) -> ast.Module:
    with _ONE_PARSE_AT_A_TIME:
        return ast.parse(source)  # noqa: TID251 - the one place that may


def parse_expression(text: str) -> ast.expr:
    with _ONE_PARSE_AT_A_TIME:
        return ast.parse(text, mode="eval").body  # noqa: TID251 - the one place that may


def signature(target: Callable[..., Any]) -> inspect.Signature:
    with _ONE_PARSE_AT_A_TIME:
        return inspect.signature(target)  # noqa: TID251 - the one place that may
