"""The local executor: K evaluation slots on this machine, each with its own GPU when there are GPUs.

Trainings submitted by the loop run in the slots, so the LLM proposes the next offspring while
they train. The fast checks a variation asks for run in the caller's thread: they must not wait
behind a training. Every evaluation runs the cascade in its own sandboxed child; a slot only
chooses the child's GPU.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from astevo.errors import AstevoError
from astevo.evaluation.base import EvaluationRequest, EvaluationResult, SandboxTask
from astevo.evaluation.cache import EvaluationCache
from astevo.evaluation.cascade import evaluate
from astevo.evaluation.executors.gpus import slot_devices, visible_gpus
from astevo.isolation import sandbox
from astevo.isolation.sandbox import ANYWHERE, Outcome, Slot

Done = TypeVar("Done")


def default_workers() -> int:
    """One slot per GPU; one on a CPU, where the LLM's threads and one training already fill the cores."""
    return max(len(visible_gpus()), 1)


class LocalEvaluator:
    """Evaluates requests on this machine; with a cache, identical code is never trained twice."""

    def __init__(self, cache: EvaluationCache | None = None, workers: int = 1, gpus: list[str] | None = None) -> None:
        if workers < 1:
            raise AstevoError(f"--workers must be at least 1, got {workers}")
        self.cache = cache
        self.workers = workers
        self._stop = threading.Event()
        self._free_slots: queue.SimpleQueue[Slot] = queue.SimpleQueue()
        for devices in slot_devices(workers, visible_gpus() if gpus is None else gpus):
            self._free_slots.put(Slot(devices, self._stop))
        self._slots = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="astevo-slot")

    def evaluate(self, requests: Sequence[EvaluationRequest]) -> Iterator[EvaluationResult]:
        for request in requests:
            yield run_request(request, self.cache, ANYWHERE)

    def submit(self, request: EvaluationRequest) -> Future[EvaluationResult]:
        return self._slots.submit(self._in_slot, lambda slot: run_request(request, self.cache, slot))

    def run(self, task: SandboxTask) -> Future[Outcome]:
        return self._slots.submit(self._in_slot, lambda slot: run_task(task, slot))

    def run_now(self, task: SandboxTask) -> Outcome:
        return run_task(task, ANYWHERE)

    def close(self) -> None:
        """Stop: evaluations still running are abandoned (the loop records none after it stops)."""
        self._stop.set()
        self._slots.shutdown(wait=True, cancel_futures=True)

    def _in_slot(self, work: Callable[[Slot], Done]) -> Done:
        slot = self._free_slots.get()  # never waits: the pool runs at most one evaluation per slot
        try:
            return work(slot)
        finally:
            self._free_slots.put(slot)


def run_task(task: SandboxTask, slot: Slot) -> Outcome:
    """One sandboxed task, here, in the slot: what every executor finally runs for a task that is not an evaluation."""
    return sandbox.run(task.entry_point, task.payload, task.limits, slot=slot)


def run_request(request: EvaluationRequest, cache: EvaluationCache | None, slot: Slot) -> EvaluationResult:
    """One request through the cascade, here: what every executor finally runs, wherever it runs it."""
    started = time.perf_counter()
    evaluation = evaluate(
        request.source,
        request.settings,
        reference=request.reference,
        rewritten=request.rewritten,
        cache=cache,
        checked=request.checked,
        slot=slot,
    )
    return EvaluationResult(request.request_id, evaluation, time.perf_counter() - started, slot.cuda_devices)
