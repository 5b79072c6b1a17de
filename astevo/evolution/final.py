"""The honest final evaluation: the seed and the Pareto front, retrained and scored on the test split.

Evolution selects on validation accuracy, so the winners' validation accuracy is biased upward;
only the test split, read nowhere else, compares them fairly with the seed. Each finalist is
retrained on the whole training split (the validation split stays held out) with several
training seeds, because one short training's accuracy varies by more than many mutations gain.
Every training is recorded the moment it ends, so an interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from concurrent.futures import Future, as_completed
from dataclasses import asdict, dataclass, replace

from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.base import Executor, SandboxTask
from astevo.evaluation.payloads import data, network, sandbox_limits, sandboxed_task
from astevo.evaluation.tasks import Training, as_record
from astevo.evolution.selection import pareto_front
from astevo.isolation import sandbox
from astevo.settings import FinalSettings, FitnessSettings
from astevo.store.records import FinalResult, Individual
from astevo.store.run_store import RunStore

TASK = sandboxed_task("final_candidate")


@dataclass(frozen=True)
class FinalSummary:
    individual: int
    label: str
    parameters: int | None
    macs: int | None
    search_val_accuracy: float | None  # what selection saw: one short training on a slice
    test_accuracy: float | None  # mean over the trainings that succeeded; None when none did
    test_std: float | None  # sample standard deviation; 0 for a single training
    val_accuracy: float | None
    seeds: int  # trainings that succeeded
    stopped_by_time: int  # of those, how many the time cap cut short
    failures: tuple[str, ...]  # "seed N: reason" for each training that failed
    delta_vs_seed: float | None = None  # test accuracy mean minus the seed's


def final_evaluation(
    store: RunStore,
    settings: FinalSettings,
    executor: Executor,
    on_result: Callable[[FinalResult], None] | None = None,
) -> list[FinalSummary]:
    """Train every finalist with each training seed not yet recorded for these settings, side by side in the
    executor's slots (or a cluster's tasks); summarise all of them.

    Each training is recorded as it ends. A failed training is recorded with its reason (so it is reported) and
    retried by the next call.
    """
    store.claim()
    config = store.config()
    fitness = replace(config.fitness, limit_train=None, budget=settings.budget(config.fitness.budget))
    record = {key: value for key, value in asdict(fitness.budget).items() if key != "training_seed"}
    finalists = _finalists(store, config.cost)
    done = {(r.individual, r.training_seed): r for r in store.finals() if r.settings == record}
    running: dict[Future[sandbox.Outcome], tuple[int, int]] = {}
    for individual in finalists:
        model = ModelFile(individual.source or "", label(individual))
        for seed in range(settings.seeds):
            if (individual.id, seed) not in done or "error" in done[individual.id, seed].metrics:
                running[executor.run(tested_training(model, fitness, seed))] = (individual.id, seed)
    for finished in as_completed(running):
        try:
            outcome = finished.result()
        except Exception as error:  # the executor's own failure (a Ray worker lost, say): recorded, retried next time
            outcome = sandbox.Outcome(False, None, f"{type(error).__name__}: {error}", 0.0, "")
        result = FinalResult(*running[finished], record, final_metrics(outcome), outcome.seconds)
        store.record_final(result)
        done[result.individual, result.training_seed] = result
        if on_result is not None:
            on_result(result)
    summaries = [_summary(i, [done[i.id, seed] for seed in range(settings.seeds)]) for i in finalists]
    baseline = summaries[0].test_accuracy
    return [
        replace(s, delta_vs_seed=None if baseline is None or s.test_accuracy is None else s.test_accuracy - baseline)
        for s in summaries
    ]


def tested_training(model: ModelFile, fitness: FitnessSettings, training_seed: int) -> SandboxTask:
    """One training of the model under `fitness` with this seed, scored on the test split, as a sandboxed task."""
    task = Training(network(model, fitness), data(fitness), replace(fitness.budget, training_seed=training_seed))
    return SandboxTask(TASK, as_record(task), sandbox_limits(fitness, training=True))


def label(individual: Individual) -> str:
    return "seed" if individual.operator == "seed" else f"#{individual.id}"


def _finalists(store: RunStore, cost: str) -> list[Individual]:
    """The seed first (the baseline of every delta), then the rest of the Pareto front, cheapest first."""
    seed = store.at(0, 0)
    if seed is None or seed.operator != "seed" or seed.source is None:
        raise AstevoError(f"run {store.folder} has no seed individual (generation 0, slot 0) to compare against")
    return [seed, *(i for i in pareto_front(store.individuals(), cost) if i.id != seed.id)]


def final_metrics(outcome: sandbox.Outcome) -> dict:
    """The task's metrics, or {"error": reason} when the child died or one of its stages failed."""
    if not outcome.ok:
        return {"error": outcome.error}
    value = outcome.value
    assert value is not None  # an ok outcome always carries the task's value
    failed = next((stage for stage in value["stages"] if not stage["ok"]), None)
    return {"error": f"{failed['name']}: {failed['reason']}"} if failed else value["metrics"]


def _summary(individual: Individual, results: list[FinalResult]) -> FinalSummary:
    trained = [r.metrics for r in results if "error" not in r.metrics]
    tests = [m["test_accuracy"] for m in trained]
    return FinalSummary(
        individual=individual.id,
        label=label(individual),
        parameters=individual.parameters,
        macs=individual.macs,
        search_val_accuracy=individual.val_accuracy,
        test_accuracy=statistics.fmean(tests) if tests else None,
        test_std=(statistics.stdev(tests) if len(tests) > 1 else 0.0) if tests else None,
        val_accuracy=statistics.fmean(m["val_accuracy"] for m in trained) if trained else None,
        seeds=len(trained),
        stopped_by_time=sum(m["stopped_by"] == "time" for m in trained),
        failures=tuple(f"seed {r.training_seed}: {r.metrics['error']}" for r in results if "error" in r.metrics),
    )
