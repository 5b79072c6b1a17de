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

    python tools/bench_parallel.py [--population 4] [--generations 3] [--overhead-runs 5] [--no-ray] [--rounds 1]

(`--overhead-runs 0` skips the overhead measurement; `--rounds N` runs the settings N times, round by round,
and prints each setting's mean with its rounds, since one run of a setting varies by 10-15% on a busy machine.)
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
    parser.add_argument("--rounds", type=int, default=1, help="run every setting this many times, round by round")
    arguments = parser.parse_args()
    if arguments.rounds < 1:
        parser.error(f"--rounds must be 1 or more, got {arguments.rounds}")
    base = apply(EvolveConfig(), {"population": arguments.population, "generations": arguments.generations})
    print(
        f"workload: population {base.population}, {base.generations} generations, default budget "
        f"({base.fitness.limit_train} images x {base.fitness.budget.epochs:g} epochs), bundled model "
        f"{resolve_model(None).path.name}, no evaluation cache, {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="astevo-bench-parallel-") as scratch:
        chosen_settings = [setting for setting in SETTINGS if not (arguments.no_cold and not setting.warm)]
        rates: dict[str, list[float]] = {setting.name: [] for setting in chosen_settings}
        genealogies: dict[str, list[tuple]] = {}
        by_threads: dict[int, list[str]] = {}  # runs that train at the same threads must decide the same
        measured: list[MachineTimings] = []  # auto's, by round
        threads_of: dict[str, int] = {}
        for round_ in range(1, arguments.rounds + 1):  # every setting once per round: drift falls on all alike
            for setting in chosen_settings:
                config = setting_config(base, setting)
                run = f"{setting.name}, round {round_}"
                folder = Path(scratch) / run.replace(" ", "-").replace(",", "")
                seconds, individuals, auto = evolve(config, folder, setting)
                rates[setting.name].append(individuals / seconds * 3600)
                genealogies[run] = genealogy(folder)
                with RunStore.open(folder) as store:
                    threads = threads_of[setting.name] = store.config().fitness.threads
                by_threads.setdefault(threads, []).append(run)
                if auto:
                    measured.append(auto[0])
                print(
                    f"  {run:35} {threads or 'all'} training thread(s): {individuals} individuals "
                    f"in {seconds:6.1f} s, {rates[setting.name][-1]:6.1f} per hour"
                    + (f"; measuring took {auto[2]:.1f} s of it and chose {auto[1].reason}" if auto else ""),
                    flush=True,
                )
        for count, names in sorted(by_threads.items()):  # auto's first child is the proposal it measured with
            if len(names) > 1:
                same = all(genealogies[name] == genealogies[names[0]] for name in names)
                valid = sum(row[5] == "evaluated" for row in genealogies[names[0]])
                print(f"same genealogy, {'; '.join(names)} ({count or 'all'} thread(s)): {same} ({valid} evaluated)")
        report_rates(chosen_settings, rates)
        if measured:
            print("what the auto rule predicted for the pipelined settings, from its own measurements in each round:")
            for setting in chosen_settings:
                if setting.pipelined and not setting.auto:
                    threads = threads_of[setting.name] or os.cpu_count() or 1
                    predicted = [individuals_per_hour(timings, setting.workers, threads) for timings in measured]
                    print(
                        f"  {setting.name:26} {', '.join(f'{rate:6.1f}' for rate in predicted)} per hour "
                        f"(measured {', '.join(f'{rate:6.1f}' for rate in rates[setting.name])})"
                    )
        shared_pool(WARM_IMPORTS).close()
        for label, warm_workers in (("cold", False), ("warm", True)) if arguments.overhead_runs else ():
            outside, whole = overhead(base, warm_workers, arguments.overhead_runs)
            print(
                f"overhead per evaluation, {label}: median {statistics.median(outside):.2f} s outside build, probe, "
                f"train and validate ({', '.join(f'{value:.2f}' for value in outside)}); whole evaluation: median "
                f"{statistics.median(whole):.2f} s"
            )
        if not arguments.no_ray:
            local = genealogies[f"{SETTINGS[2].name}, round 1"]
            ray_run(setting_config(base, SETTINGS[2]), Path(scratch) / "ray", local)


def report_rates(settings: list[Setting], rates: dict[str, list[float]]) -> None:
    """Each setting's mean rate against warm sequential's and the best fixed setting's, with the same ratio
    round by round (measured side by side, so less exposed to the machine's drift than the means)."""
    mean = {name: statistics.fmean(values) for name, values in rates.items()}
    warm = SETTINGS[1].name
    best = max((s.name for s in settings if not s.auto), key=mean.__getitem__)
    cold = SETTINGS[0].name
    for setting in settings:
        values = rates[setting.name]
        spread = f" (rounds: {', '.join(f'{value:.1f}' for value in values)})" if len(values) > 1 else ""
        against_cold = f"{mean[setting.name] / mean[cold]:.2f}x cold sequential, " if cold in mean else ""
        by_round = [value / rates[best][index] for index, value in enumerate(values)]
        print(
            f"  {setting.name:26} {mean[setting.name]:6.1f} per hour{spread}: {against_cold}"
            f"{mean[setting.name] / mean[warm]:.2f}x warm sequential, {mean[setting.name] / mean[best]:.2f}x the best "
            f"fixed setting ({best})"
            + (f", by round {', '.join(f'{ratio:.2f}x' for ratio in by_round)}" if len(values) > 1 else "")
        )


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
