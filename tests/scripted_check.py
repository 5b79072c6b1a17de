"""A Check for unit tests of variation: verdicts and sizes from plain functions, no sandbox."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from astevo.evaluation.base import Size, VariantsMeasured

UNIT = Size(1000, 1000)


class ScriptedCheck:
    def __init__(
        self,
        verdict: Callable[[str], str | None] = lambda source: None,
        size: Callable[[str], Size] = lambda source: Size(1000, 1000),
        parent_size: Size = UNIT,
        measure: Callable[[Sequence[tuple[str, bool]]], VariantsMeasured] | None = None,
    ) -> None:
        self._verdict, self._size, self._parent_size, self._measure = verdict, size, parent_size, measure
        self.checked: list[str] = []
        self.known: frozenset[str] = frozenset()

    def __call__(self, block_source: str) -> str | None:
        self.checked.append(block_source)
        return self._verdict(block_source)

    def size(self, block_source: str) -> Size | None:
        return self._size(block_source)

    def parent_size(self) -> Size | None:
        return self._parent_size

    def measure(self, versions: Sequence[tuple[str, bool]]) -> VariantsMeasured:
        if self._measure is None:
            raise AssertionError("this test measures no versions")
        return self._measure(versions)
