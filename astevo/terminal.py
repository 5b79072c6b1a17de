"""Where the command line writes, and how user errors reach it: one line, exit 2, no traceback."""

from __future__ import annotations

import difflib
import functools
import sys
from typing import Callable

from rich.console import Console
from rich.markup import escape

from astevo.errors import AstevoError

console = Console()
errors = Console(stderr=True)


def user_errors(command: Callable) -> Callable:
    """Print an AstevoError as one line and exit 2: bad input never shows a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except AstevoError as error:
            errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            sys.exit(2)

    return wrapper


def unified_diff(before: str, after: str, before_label: str, after_label: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        before_label, after_label))
