"""`--workers auto|K`: the local slots and training threads a run uses, and the one line that says why.

A new run measures this machine and chooses (astevo.evaluation.executors.slot_plan); the choice is stored with
the run, so a resume keeps it even where it would choose otherwise: threads are part of what a result
is, and slots change no result. An explicit `--workers K` or `[fitness] threads` always wins.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from astevo.cli.terminal import console
from astevo.errors import AstevoError
from astevo.evaluation.executors.gpus import visible_gpus
from astevo.evaluation.executors.local import default_workers
from astevo.evaluation.executors.slot_plan import SlotPlan, plan_slots
from astevo.llm.threads import threads_left_for_training
from astevo.store.run_store import RunStore
from astevo.variation.base import Variation

if TYPE_CHECKING:
    from astevo.evolution.run_setup import PlannedRun

AUTO = "auto"


def workers_flag(text: str) -> int | None:
    """The slot count a `--workers` value gives; None for auto."""
    if text == AUTO:
        return None
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if workers < 1:
        raise AstevoError(f"--workers must be auto or a count of 1 or more, got {text!r}")
    return workers


def new_run_slots(
    planned: PlannedRun, variation: Variation, workers: int | None
) -> tuple[PlannedRun, SlotPlan | None, int, Variation]:
    """The planned run with its training threads fixed, the choice made for this machine (None when the flags
    made it), the slots, and the variation for the run (after measuring, one that already holds its first
    proposal)."""
    fitness = planned.config.fitness
    if workers is not None:
        if fitness.threads == 0:  # fixed now: results must not depend on a later --workers
            planned = with_training_threads(planned, threads_left_for_training(planned.config.mutation, workers))
        return planned, None, workers, variation
    from astevo.evolution.machine_timings import measure_timings  # imports torch: only once a run is starting

    with console.status("measuring this machine for --workers auto: the seed trains on a slice, the model proposes"):
        measured = measure_timings(planned, variation, len(visible_gpus()))
    plan = plan_slots(measured.timings, threads=fitness.threads or None)
    console.print(
        f"slots: {plan.reason} (measured in {measured.seconds:.0f} s, the run's first proposal included)",
        highlight=False,
        soft_wrap=True,
    )
    return with_training_threads(planned, plan.threads), plan, plan.slots, measured.variation


def resumed_slots(store: RunStore, workers: int | None) -> int:
    """`--workers K`, else the slots chosen when the run started, else one per GPU (a run made before astevo chose)."""
    if workers is not None:
        return workers
    stored = store.meta().get("slots")
    if stored is None:
        return default_workers()
    plan = SlotPlan.from_record(stored)
    console.print(
        f"slots: {plan.slots}, as chosen when the run started ({plan.reason})", highlight=False, soft_wrap=True
    )
    return plan.slots


def with_training_threads(planned: PlannedRun, threads: int) -> PlannedRun:
    fitness = dataclasses.replace(planned.config.fitness, threads=threads)
    return dataclasses.replace(planned, config=dataclasses.replace(planned.config, fitness=fitness))
