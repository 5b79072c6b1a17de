#!/usr/bin/env python3
"""Individuals per hour of one fixed evolution in five settings, side by side in one run, and a Ray run.

The workload is a real run: the bundled model proposes, every child is trained on the default
budget, nothing comes from the evaluation cache. The same run seed and settings are run
- cold sequential (astevo 0.3: each child evaluated before the next is proposed, each sandbox a
  fresh interpreter),
- warm sequential (sandboxes forked from a warm worker),
- warm pipelined with 1 slot (the next child proposed while one trains),
- warm pipelined with 2 slots,
- auto: slots and threads chosen from what astevo measures at the start (its measuring time counted in),
each with a fresh LLM and fresh warm workers. Sequential settings train with every core (astevo 0.3's
default); pipelined ones with the cores the LLM's threads leave, shared by the slots (astevo's default
now), since more threads than cores collapse both. Runs with the same training threads must give the
same genealogy: the sequential pair, and the pipelined ones with auto when it chose their threads. For
each fixed setting the rate the auto rule predicts from its measurements is printed beside the measured one.
Then the overhead per evaluation, cold and warm: the median wall seconds of a full evaluation of
the seed outside its build, probe, train and validate stages. Last, the same run on a local Ray
cluster with two logical GPUs: each task must have seen exactly one GPU, and the genealogy must
equal the local run's. Usage:

    python tools/bench_parallel.py [--population 4] [--generations 3] [--overhead-runs 5] [--no-ray]

(`--overhead-runs 0` skips the overhead measurement.)
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from astevo.cli.slot_choice import with_training_threads  # noqa: E402
from astevo.code.blocks import ModelFile  # noqa: E402
from astevo.evaluation.base import EvaluationRequest, EvaluationResult, Executor, SandboxTask  # noqa: E402
from astevo.evaluation.executors.gpus import visible_gpus  # noqa: E402
from astevo.evaluation.executors.local import LocalEvaluator  # noqa: E402
from astevo.evaluation.executors.sequential import SequentialEvaluator  # noqa: E402
from astevo.evaluation.executors.slot_plan import MachineTimings, SlotPlan, individuals_per_hour, plan_slots  # noqa: E402
from astevo.evaluation.payloads import WARM_IMPORTS  # noqa: E402
from astevo.evolution.loop import Evolution  # noqa: E402
from astevo.evolution.machine_timings import measure_timings  # noqa: E402
from astevo.evolution.run_setup import create_run, plan_run  # noqa: E402
from astevo.isolation.sandbox import Outcome  # noqa: E402
from astevo.isolation.warm_pool import shared_pool  # noqa: E402
from astevo.llm.factory import ModelChoice  # noqa: E402
from astevo.llm.gguf import resolve_model  # noqa: E402
from astevo.llm.threads import threads_left_for_training  # noqa: E402
from astevo.paths import default_seed_path  # noqa: E402
from astevo.runs import make_variation  # noqa: E402
from astevo.settings import EvolveConfig, apply  # noqa: E402
from astevo.store.run_store import RunStore  # noqa: E402

OWN_STAGES = ("build", "probe", "train", "validate")


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    warm: bool
    pipelined: bool
    workers: int
    auto: bool = False


SETTINGS = (
    Setting("cold sequential", warm=False, pipelined=False, workers=1),
    Setting("warm sequential", warm=True, pipelined=False, workers=1),
    Setting("warm pipelined, 1 slot", warm=True, pipelined=True, workers=1),
    Setting("warm pipelined, 2 slots", warm=True, pipelined=True, workers=2),
    Setting("auto", warm=True, pipelined=True, workers=0, auto=True),
)


class Recording:
    """Passes everything to an executor and keeps the results of what was submitted (where it ran)."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.results: list[EvaluationResult] = []

    def evaluate(self, requests: Sequence[EvaluationRequest]) -> Iterator[EvaluationResult]:
        return self.inner.evaluate(requests)

    def submit(self, request: EvaluationRequest) -> Future[EvaluationResult]:
        future = self.inner.submit(request)
        future.add_done_callback(lambda done: self.results.append(done.result()))
        return future

    def run_now(self, task: SandboxTask) -> Outcome:
        return self.inner.run_now(task)

    def run(self, task: SandboxTask) -> Future[Outcome]:
        return self.inner.run(task)

    def close(self) -> None:
        self.inner.close()


def genealogy(folder: Path) -> list[tuple]:
    with RunStore.open(folder) as store:
        return [
            (i.generation, i.slot, i.parents, i.operator, i.code_hash, i.status, i.metrics.get("val_accuracy"))
            for i in store.individuals()
        ]


def evolve(
    config: EvolveConfig, folder: Path, setting: Setting, executor: Executor | None = None
) -> tuple[float, int, tuple[MachineTimings, SlotPlan, float] | None]:
    """Seconds and individuals of one whole run, from a fresh LLM and fresh warm workers, and what auto measured and
    chose."""
    shared_pool(WARM_IMPORTS).close()
    model = ModelChoice(config.mutation)
    started = time.perf_counter()
    planned = plan_run(config, ModelFile.read(default_seed_path()), model, LocalEvaluator())
    variation = make_variation(config, model)
    plan, timings, measuring = None, None, 0.0
    workers = setting.workers
    if setting.auto:
        measured = measure_timings(planned, variation, len(visible_gpus()))
        timings, measuring, variation = measured.timings, measured.seconds, measured.variation
        plan = plan_slots(timings)
        workers = plan.slots
        planned = with_training_threads(planned, plan.threads)
    store = create_run(folder, planned, plan)
    evaluator = executor or LocalEvaluator(workers=workers)
    try:
        with store:
            ordered = evaluator if setting.pipelined else SequentialEvaluator(evaluator)
            Evolution(store, variation, ordered, force=True).run()
    finally:
        evaluator.close()
    seconds = time.perf_counter() - started
    return seconds, len(genealogy(folder)), (timings, plan, measuring) if timings and plan else None


def setting_config(base: EvolveConfig, setting: Setting) -> EvolveConfig:
    threads = threads_left_for_training(base.mutation, setting.workers) if setting.pipelined and not setting.auto else 0
    return apply(base, {"fitness": {"warm_workers": setting.warm, "threads": threads}})


def overhead(config: EvolveConfig, warm: bool, runs: int) -> tuple[list[float], list[float]]:
    """Per full evaluation of the seed, after one untimed to start a warm worker: wall seconds outside the
    candidate's own stages, and wall seconds in all (the first optimizer's import counts in its train stage)."""
    settings = dataclasses.replace(config.fitness, warm_workers=warm)
    evaluator = LocalEvaluator()
    outside, whole = [], []
    for index in range(runs + 1):
        request = EvaluationRequest(f"seed-{index}", ModelFile.read(default_seed_path()).source, settings)
        result = evaluator.submit(request).result()
        own = sum(stage.seconds for stage in result.evaluation.stages if stage.name in OWN_STAGES)
        if index:
            outside.append(result.seconds - own)
            whole.append(result.seconds)
    evaluator.close()
    return outside, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--overhead-runs", type=int, default=5)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray run")
    parser.add_argument("--no-cold", action="store_true", help="skip cold sequential (astevo 0.3's way; the slowest)")
    arguments = parser.parse_args()
    base = apply(EvolveConfig(), {"population": arguments.population, "generations": arguments.generations})
    print(
        f"workload: population {base.population}, {base.generations} generations, default budget "
        f"({base.fitness.limit_train} images x {base.fitness.budget.epochs:g} epochs), bundled model "
        f"{resolve_model(None).path.name}, no evaluation cache, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="astevo-bench-parallel-") as scratch:
        rates: dict[str, float] = {}
        genealogies: dict[str, list[tuple]] = {}
        by_threads: dict[int, list[str]] = {}  # runs that train at the same threads must decide the same
        chosen: tuple[MachineTimings, SlotPlan, float] | None = None
        chosen_settings = [setting for setting in SETTINGS if not (arguments.no_cold and not setting.warm)]
        for setting in chosen_settings:
            config = setting_config(base, setting)
            folder = Path(scratch) / setting.name.replace(" ", "-").replace(",", "")
            seconds, individuals, auto = evolve(config, folder, setting)
            chosen = auto or chosen
            rates[setting.name] = individuals / seconds * 3600
            genealogies[setting.name] = genealogy(folder)
            with RunStore.open(folder) as store:
                threads = store.config().fitness.threads
            by_threads.setdefault(threads, []).append(setting.name)
            print(
                f"  {setting.name:26} {threads or 'all'} training thread(s): {individuals} individuals "
                f"in {seconds:6.1f} s, {rates[setting.name]:6.1f} per hour"
                + (f"; measuring took {auto[2]:.1f} s of it and chose {auto[1].reason}" if auto else ""),
                flush=True,
            )
        for count, names in sorted(by_threads.items()):  # auto's first child is the proposal it measured with
            if len(names) > 1:
                same = all(genealogies[name] == genealogies[names[0]] for name in names)
                valid = sum(row[5] == "evaluated" for row in genealogies[names[0]])
                print(f"same genealogy, {', '.join(names)} ({count or 'all'} thread(s)): {same} ({valid} evaluated)")
        warm = SETTINGS[1].name
        best = max((s.name for s in chosen_settings if not s.auto), key=rates.__getitem__)
        for setting in chosen_settings:
            against_cold = (
                f"{rates[setting.name] / rates[SETTINGS[0].name]:.2f}x cold sequential, "
                if (SETTINGS[0].name in rates)
                else ""
            )
            print(
                f"  {setting.name:26} {against_cold}{rates[setting.name] / rates[warm]:.2f}x warm sequential, "
                f"{rates[setting.name] / rates[best]:.2f}x the best fixed setting ({best})"
            )
        if chosen is not None:
            print("what the auto rule predicted for the pipelined settings, from its own measurements:")
            for setting in chosen_settings:
                if setting.pipelined and not setting.auto:
                    with RunStore.open(Path(scratch) / setting.name.replace(" ", "-").replace(",", "")) as store:
                        threads = store.config().fitness.threads or os.cpu_count() or 1
                    predicted = individuals_per_hour(chosen[0], setting.workers, threads)
                    print(f"  {setting.name:26} {predicted:6.1f} per hour (measured {rates[setting.name]:6.1f})")
        shared_pool(WARM_IMPORTS).close()
        for label, warm_workers in (("cold", False), ("warm", True)) if arguments.overhead_runs else ():
            outside, whole = overhead(base, warm_workers, arguments.overhead_runs)
            print(
                f"overhead per evaluation, {label}: median {statistics.median(outside):.2f} s outside build, probe, "
                f"train and validate ({', '.join(f'{value:.2f}' for value in outside)}); whole evaluation: median "
                f"{statistics.median(whole):.2f} s"
            )
        if not arguments.no_ray:
            ray_run(setting_config(base, SETTINGS[2]), Path(scratch) / "ray", genealogies[SETTINGS[2].name])


def ray_run(config: EvolveConfig, folder: Path, local: list[tuple]) -> None:
    from astevo.evaluation.executors.ray_cluster import RayEvaluator

    recording = Recording(RayEvaluator(num_cpus=2, num_gpus=2))
    seconds, individuals, _ = evolve(config, folder, SETTINGS[2], recording)
    devices = [result.cuda_devices for result in recording.results]
    one_each = all(device is not None and "," not in device for device in devices)
    print(
        f"ray, local cluster with 2 logical GPUs: {individuals} individuals in {seconds:.1f} s; "
        f"{len(devices)} tasks, each saw one GPU: {one_each}, GPUs seen: {sorted(set(map(str, devices)))}; "
        f"same genealogy as the local pipelined run: {genealogy(folder) == local}"
    )


if __name__ == "__main__":
    main()
