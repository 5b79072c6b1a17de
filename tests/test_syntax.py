"""Parsing from several threads at once, as evaluation slots and the loop's thread do."""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from astevo.code.canonical import canonical_hash
from astevo.code.syntax import parse_expression, parse_module, signature
from astevo.evaluation.gate.safety import check_source

SEED = (Path(__file__).parents[1] / "seeds" / "exquisitenetv2.py").read_text(encoding="utf-8")


class _YieldsWhenCollected:
    """Garbage in a cycle whose finalizer gives up the GIL: the collector runs it in the middle of a
    parse, which is when another thread's parse gets its turn."""

    def __init__(self) -> None:
        self.cycle = self

    def __del__(self) -> None:
        time.sleep(0)


def _parse_concurrently(parses: list[Callable[[str], object]], rounds: int) -> list[BaseException]:
    failures: list[BaseException] = []
    start = threading.Barrier(len(parses))

    def hammer(parse: Callable[[str], object]) -> None:
        start.wait()
        for _ in range(rounds):
            if failures:
                return
            for _ in range(50):
                _YieldsWhenCollected()
            try:
                parse(SEED)
            except Exception as error:  # noqa: BLE001 - any failure is the finding
                failures.append(error)

    threads = [threading.Thread(target=hammer, args=(parse,)) for parse in parses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


@pytest.mark.slow
def test_threads_that_parse_at_once_never_fail() -> None:
    # the safety gate and the canonical hash run in slot threads while the loop's thread parses blocks
    assert _parse_concurrently([check_source, canonical_hash, parse_module, parse_module], rounds=150) == []


def test_no_two_parses_overlap_whichever_way_astevo_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each parse is slowed down, so that any two that were not kept apart would overlap."""
    inside, most = 0, 0
    count = threading.Lock()
    real_parse = ast.parse

    def slow_parse(*args: Any, **kwargs: Any) -> ast.AST:
        nonlocal inside, most
        with count:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)
        try:
            return real_parse(*args, **kwargs)
        finally:
            with count:
                inside -= 1

    monkeypatch.setattr(ast, "parse", slow_parse)
    asks: list[Callable[[], object]] = [
        lambda: parse_module(SEED),
        lambda: parse_expression("nn.Conv2d(3, 8, 3)"),
        lambda: signature(divmod),  # inspect parses a builtin's text signature with ast.parse
        lambda: check_source(SEED),
        lambda: canonical_hash(SEED),
    ]
    threads = [threading.Thread(target=lambda ask=ask: [ask() for _ in range(5)]) for ask in asks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1
