"""Evaluation one at a time, behind the evaluator seam: each submitted request is evaluated before `submit`
returns, so the loop proposes the next child only once the last one is evaluated (astevo 0.3's order).

The loop itself knows one order only; this evaluator is how `tools/bench_parallel.py` measures what pipelining
gains, and how tests check that the order changes nothing a run decides.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING

from astevo.evaluation.base import EvaluationRequest, EvaluationResult, Evaluator, SandboxTask, finished

if TYPE_CHECKING:
    from astevo.isolation.sandbox import Outcome


class SequentialEvaluator:
    """Runs every request in `inner` (its slots, its cluster) and waits for it before `submit` returns."""

    def __init__(self, inner: Evaluator) -> None:
        self.inner = inner

    def evaluate(self, requests: Sequence[EvaluationRequest]) -> Iterator[EvaluationResult]:
        return self.inner.evaluate(requests)

    def submit(self, request: EvaluationRequest) -> Future[EvaluationResult]:
        return finished(self.inner.submit(request).result())

    def run_now(self, task: SandboxTask) -> Outcome:
        return self.inner.run_now(task)
