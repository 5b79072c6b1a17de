"""The local evaluator: each request runs the cascade here, one sandboxed child at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from astevo.code.blocks import ModelFile
from astevo.evaluation.base import EvaluationRequest, EvaluationResult
from astevo.evaluation.cache import EvaluationCache
from astevo.evaluation.cascade import evaluate


class LocalEvaluator:
    """Evaluates requests in order on this machine; with a cache, identical code is never trained twice."""

    def __init__(self, cache: EvaluationCache | None = None) -> None:
        self.cache = cache

    def evaluate(self, requests: Sequence[EvaluationRequest]) -> Iterator[EvaluationResult]:
        for request in requests:
            started = time.perf_counter()
            reference = ModelFile(request.reference, "parent") if request.reference is not None else None
            evaluation = evaluate(
                request.source,
                request.settings,
                reference=reference,
                rewritten=request.rewritten,
                cache=self.cache,
                checked=request.checked,
            )
            yield EvaluationResult(request.request_id, evaluation, time.perf_counter() - started)
