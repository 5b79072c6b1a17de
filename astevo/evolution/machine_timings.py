"""The timings a new run's slots and threads are chosen from, measured on this machine before its first training.

The seed trains on a slice of the budget at one thread (at the given threads or at a GPU's share of the
cores, when those decide), and the variation makes the run's first mutation of the seed, drawn as the run
will draw it, its fast checks included; the model's cores are the process's CPU time over that proposal's
wall time, so a model offloaded to a GPU counts as what it really takes. Only when the cores the model leaves
allow a training of several threads does the seed train on the slice again, at that many. No training here
is cached or stored as a result; the proposal is kept, and the run's first child is that proposal instead of
a second model call (the draw is the same, so the run decides the same). Measuring costs one proposal that
is not yet overlapped with a training, and one or two short trainings: less than a generation.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time

from astevo.code.canonical import block_hashes
from astevo.errors import AstevoError
from astevo.evaluation.base import EvaluationRequest, Size
from astevo.evaluation.checks import BlockCheck
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evaluation.executors.slot_plan import MachineTimings, widest_training
from astevo.evolution.block_choice import mutation_site
from astevo.evolution.breeder import draw_seed
from astevo.evolution.run_setup import PlannedRun
from astevo.evolution.strategy import strategy_of
from astevo.settings import EvolveConfig, FitnessSettings
from astevo.variation.base import Variation
from astevo.variation.reuse import ReusingFirstProposal

PROBE_IMAGES = 2048  # a slice long enough that the first steps' set-up is a small part of it
FIRST_MUTATION = (0, 1)  # generation 0 mutates the seed from slot 1 on (slot 0 is the seed itself)


@dataclasses.dataclass(frozen=True)
class Measured:
    """What the slot choice reads, and the variation the run must use to keep the measured proposal."""

    timings: MachineTimings
    seconds: float  # what measuring took, the proposal included
    variation: Variation  # the run's: it hands the measured proposal back as the run's first child


def measure_timings(planned: PlannedRun, variation: Variation, gpus: int) -> Measured:
    """Timings measured only as far as a setting the rule may choose needs them."""
    started = time.perf_counter()
    cores = os.cpu_count() or 1
    evaluator = LocalEvaluator(workers=1)  # uncached: a result from an earlier run would take no time at all
    try:
        fitness = planned.config.fitness
        first = fitness.threads or (max(1, cores // gpus) if gpus else 1)
        trained = {first: _training_seconds(evaluator, planned, first)}
        reusing = ReusingFirstProposal(variation)
        propose_seconds, model_cores = _first_proposal(evaluator, planned, reusing, trained[first][1], first)
        widest = widest_training(cores, model_cores)
        if not fitness.threads and not gpus and widest > 1:  # only then can a setting train with several threads
            trained[widest] = _training_seconds(evaluator, planned, widest)
    finally:
        evaluator.close()
    timings = MachineTimings(
        cores=cores,
        gpus=gpus,
        model_cores=model_cores,
        propose_seconds=propose_seconds,
        train_seconds={threads: seconds for threads, (seconds, _) in trained.items()},
        population=planned.config.population,
        further_trainings=_raced_per_generation(planned.config),
    )
    return Measured(timings, time.perf_counter() - started, reusing)


def _raced_per_generation(config: EvolveConfig) -> int:
    """Racing's further trainings per generation: about one per child (a default run: 12 in 3 generations of 4)."""
    return config.population if strategy_of(config).races else 0


def _training_seconds(evaluator: LocalEvaluator, planned: PlannedRun, threads: int) -> tuple[float, Size]:
    """One whole evaluation's seconds at this many threads, from the seed trained on a slice: the stages around
    the training as measured, the training scaled from its images per second to the budget's images."""
    fitness = planned.config.fitness
    planned_images = fitness.budget.planned_images(planned.data.images["train"])
    probe = _probe_settings(fitness, threads, min(planned_images, PROBE_IMAGES))
    request = EvaluationRequest(f"timing:{threads}-threads", planned.seed_model.source, probe)
    result = next(iter(evaluator.evaluate([request])))
    evaluation = result.evaluation
    size = Size.of(evaluation)
    if not evaluation.valid or size is None:
        raise AstevoError(
            f"the seed model fails the fitness cascade ({evaluation.problem}); fix it (or the settings) and start again"
        )
    train = next((stage for stage in evaluation.stages if stage.name == "train"), None)
    if train is None:
        raise AstevoError("--workers auto measures trainings, and [fitness] train is false; pass --workers K")
    return result.seconds - train.seconds + planned_images / float(evaluation.metrics["images_per_second"]), size


def _probe_settings(fitness: FitnessSettings, threads: int, images: int) -> FitnessSettings:
    budget = dataclasses.replace(fitness.budget, max_images=images)
    return dataclasses.replace(fitness, threads=threads, budget=budget)


def _first_proposal(
    evaluator: LocalEvaluator, planned: PlannedRun, variation: Variation, size: Size, threads: int
) -> tuple[float, float]:
    """Seconds of the run's first mutation of the seed, and the cores the model took meanwhile; its fast checks
    run at `threads`, as the run's will unless it chooses more."""
    config, seed = planned.config, planned.seed_model
    rng = random.Random(draw_seed(config, *FIRST_MUTATION))
    intent, block = mutation_site(seed, config, rng, planned.block_parameters, planned.anatomy.parameters)
    known = frozenset({block_hashes(seed.source)[block]})  # the run then holds the seed alone
    settings = dataclasses.replace(config.fitness, threads=threads)
    check = BlockCheck(evaluator, settings, seed, block, parent_size=size, known=known)
    cpu, wall = time.process_time(), time.perf_counter()
    variation.mutate(seed, block, intent, rng, None, check)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return wall, min(float(os.cpu_count() or 1), math.floor(10 * cpu / wall) / 10) if wall > 0 else 0.0
