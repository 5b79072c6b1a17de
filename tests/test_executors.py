"""The executors behind the evaluator seam, with real sandboxed evaluations: local slots and a real local Ray cluster.

The genealogy an executor gives is checked in tests/test_evolve_resume.py; here, where evaluations run.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from astevo.code.blocks import ModelFile
from astevo.evaluation.base import EvaluationRequest
from astevo.evaluation.cache import EvaluationCache
from astevo.evaluation.executors.gpus import slot_devices
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evaluation.executors.ray_cluster import RayEvaluator
from astevo.paths import default_seed_path
from astevo.settings import FitnessSettings

ROOT = Path(__file__).resolve().parents[1]
CHECKS = FitnessSettings(train=False, threads=1)
SEED = ModelFile.read(default_seed_path())


def requests(count: int) -> list[EvaluationRequest]:
    return [EvaluationRequest(f"r{index}", SEED.source, CHECKS) for index in range(count)]


def test_slots_take_the_gpus_in_turn_and_share_them_when_fewer() -> None:
    assert slot_devices(3, ["0", "1"]) == ["0", "1", "0"]
    assert slot_devices(2, ["5"]) == ["5", "5"]
    assert slot_devices(2, []) == [None, None]


def test_each_local_slot_evaluates_on_its_own_gpu() -> None:
    evaluator = LocalEvaluator(workers=2, gpus=["0", "1"])
    try:
        results = [future.result() for future in [evaluator.submit(request) for request in requests(4)]]
    finally:
        evaluator.close()
    assert [result.evaluation.problem for result in results] == [None] * 4
    assert {result.cuda_devices for result in results} == {"0", "1"}
    assert len({result.evaluation.metrics["parameters"] for result in results}) == 1


def test_fast_checks_run_in_the_caller_not_in_a_slot() -> None:
    evaluator = LocalEvaluator(workers=1, gpus=["0"])
    try:
        (result,) = evaluator.evaluate(requests(1))
    finally:
        evaluator.close()
    assert result.evaluation.valid and result.cuda_devices is None


@pytest.mark.slow
def test_ray_tasks_each_see_their_own_gpu_on_a_local_cluster() -> None:
    """Logical GPUs: Ray schedules and sets CUDA_VISIBLE_DEVICES per task on a machine without any."""
    evaluator = RayEvaluator(num_cpus=2, num_gpus=2)
    try:
        futures = [evaluator.submit(request) for request in requests(4)]
        results = [future.result(timeout=600) for future in futures]
    finally:
        evaluator.close()
    assert all(result.evaluation.valid for result in results)
    assert {result.cuda_devices for result in results} == {"0", "1"}
    assert [result.request_id for result in results] == ["r0", "r1", "r2", "r3"]


def test_a_ray_run_without_ray_installed_is_a_one_line_error(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['ray'] = None; from astevo.cli import app; app()"
    done = subprocess.run(
        [sys.executable, "-c", blocked, "evolve", "--executor", "ray", "--run", str(tmp_path / "run")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: the ray executor needs Ray, which is not installed; install it with: pip install 'astevo[ray]'"
    ]
    assert not (tmp_path / "run").exists()


def test_the_number_of_threads_is_part_of_what_an_evaluation_is_cached_under(tmp_path: Path) -> None:
    evaluator = LocalEvaluator(EvaluationCache(tmp_path))

    def cached(settings: FitnessSettings) -> bool:
        return next(evaluator.evaluate([EvaluationRequest("r", SEED.source, settings)])).evaluation.cached

    try:
        assert not cached(CHECKS)
        assert cached(CHECKS)
        assert not cached(replace(CHECKS, threads=2))  # other threads: maybe other sums, so another evaluation
        assert cached(replace(CHECKS, warm_workers=False))  # how the sandbox started changes nothing
    finally:
        evaluator.close()
