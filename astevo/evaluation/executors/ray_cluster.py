"""The Ray executor: each training is a Ray task, so a run can use every GPU of a cluster.

A task reserves the run's training threads as CPUs and, when the cluster has GPUs, one GPU; Ray
sets that GPU in the task's CUDA_VISIBLE_DEVICES, and the sandboxed child inherits it. The
cascade and its sandbox run inside the task exactly as in a local slot, so a task's result is the
same as a local evaluation's. Fast checks run here, in the caller: they take a second and must
not queue behind trainings. Ray is optional (`pip install 'astevo[ray]'`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from types import ModuleType
from typing import Any

from astevo.errors import AstevoError
from astevo.evaluation.base import EvaluationRequest, EvaluationResult, SandboxTask
from astevo.evaluation.cache import EvaluationCache
from astevo.evaluation.executors.local import run_request, run_task
from astevo.evaluation.payloads import training_threads
from astevo.isolation.sandbox import ANYWHERE, Outcome, Slot


def require_ray() -> ModuleType:
    """Ray, or a one-line error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise AstevoError(
            "the ray executor needs Ray, which is not installed; install it with: pip install 'astevo[ray]'"
        ) from None
    return ray


def _evaluate_in_task(request: EvaluationRequest, cache_directory: str | None) -> EvaluationResult:
    """Runs in a Ray worker: the GPU Ray assigned is in this process's CUDA_VISIBLE_DEVICES."""
    cache = EvaluationCache(Path(cache_directory)) if cache_directory is not None else None
    return run_request(request, cache, _assigned())


def _run_in_task(task: SandboxTask) -> Outcome:
    """Runs in a Ray worker, like an evaluation."""
    return run_task(task, _assigned())


def _assigned() -> Slot:
    """The slot of this Ray worker: the GPU Ray assigned, if any."""
    return Slot(os.environ.get("CUDA_VISIBLE_DEVICES") or None)


class RayEvaluator:
    """Joins the cluster at `address` (e.g. "auto" or "ray://host:10001"), or starts a local one."""

    def __init__(
        self,
        cache: EvaluationCache | None = None,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
    ) -> None:
        ray = require_ray()
        self.cache = cache
        self._started_here = not ray.is_initialized()
        if self._started_here:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if address is None:  # a local cluster: these say what it offers (GPUs may be logical)
                options.update(num_cpus=num_cpus, num_gpus=num_gpus)
            try:
                ray.init(address=address, **options)
            except ConnectionError as error:
                raise AstevoError(
                    f"cannot join the Ray cluster at {address} ({error}); "
                    "start it (ray start --head) or fix --ray-address"
                ) from None
        self._gpus_per_task = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        self._task = ray.remote(_evaluate_in_task)
        self._sandboxed = ray.remote(_run_in_task)

    def evaluate(self, requests: Sequence[EvaluationRequest]) -> Iterator[EvaluationResult]:
        for request in requests:
            yield run_request(request, self.cache, ANYWHERE)

    def submit(self, request: EvaluationRequest) -> Future[EvaluationResult]:
        task = self._task.options(num_cpus=training_threads(request.settings), num_gpus=self._gpus_per_task)
        future: Future[EvaluationResult] = task.remote(
            request, str(self.cache.directory) if self.cache is not None else None
        ).future()
        return future

    def run(self, task: SandboxTask) -> Future[Outcome]:
        remote = self._sandboxed.options(num_cpus=task.limits.threads, num_gpus=self._gpus_per_task)
        future: Future[Outcome] = remote.remote(task).future()
        return future

    def run_now(self, task: SandboxTask) -> Outcome:
        return run_task(task, ANYWHERE)

    def close(self) -> None:
        """Leave the cluster; a local one started here stops (and its tasks with it)."""
        if self._started_here:
            require_ray().shutdown()
