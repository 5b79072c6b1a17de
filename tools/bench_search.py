#!/usr/bin/env python3
"""How often selection's ranking is right: single evaluations against means over several training seeds.

The candidates are the valid individuals of a real run (distinct code, the seed first, then in the
order the run made them). Each is ranked three ways: by its single evaluation (what selection ranks
today), by the mean over `--seeds` training seeds (the first of them its single evaluation), and, as
the reference, by the mean over `--reference-seeds` further training seeds disjoint from those. It
prints Kendall's tau of each ranking against the reference, with a bootstrap interval over
candidates, and the CPU-seconds each ranking cost. Usage:

    python tools/bench_search.py --run RUN [--candidates 12] [--seeds 3] [--reference-seeds 5] [--bootstrap 2000]

The comparison of search methods on one evaluation budget (evolution against random edits and
best-of-n) is not measured here yet.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
from pathlib import Path

from scipy.stats import kendalltau

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from astevo.evaluation.base import EvaluationRequest  # noqa: E402
from astevo.evaluation.local import LocalEvaluator  # noqa: E402
from astevo.settings import FitnessSettings  # noqa: E402
from astevo.store.records import Individual  # noqa: E402
from astevo.store.run_store import RunStore  # noqa: E402

REFERENCE_SEED_OFFSET = 1000  # training seeds of the reference: far from the rankings' own


def candidates(store: RunStore, count: int) -> list[Individual]:
    found: dict[str, Individual] = {}
    for individual in store.individuals():
        if individual.valid and individual.reused_from is None and individual.code_hash not in found:
            found[individual.code_hash or str(individual.id)] = individual
    chosen = list(found.values())[:count]
    if len(chosen) < 3:
        raise SystemExit(f"error: the run holds {len(chosen)} valid distinct individuals; rank at least 3")
    return chosen


def trainings(
    evaluator: LocalEvaluator, fitness: FitnessSettings, individual: Individual, seeds: range
) -> tuple[list[float], float]:
    """Validation accuracies and train+validate seconds of `individual` trained with each of `seeds`."""
    accuracies, seconds = [], 0.0
    for seed in seeds:
        settings = dataclasses.replace(fitness, budget=dataclasses.replace(fitness.budget, training_seed=seed))
        result = evaluator.submit(EvaluationRequest(f"{individual.id}:{seed}", individual.code, settings)).result()
        evaluation = result.evaluation
        seconds += sum(stage.seconds for stage in evaluation.stages if stage.name in ("train", "validate"))
        accuracies.append(evaluation.metrics["val_accuracy"] if evaluation.valid else float("nan"))
    return accuracies, seconds


def tau_with_interval(
    scores: list[float], reference: list[float], draws: int, rng: random.Random
) -> tuple[float, float, float]:
    """Kendall's tau-b and a 95% percentile bootstrap interval over candidates."""
    tau = float(kendalltau(scores, reference).statistic)
    samples = []
    for _ in range(draws):
        picked = [rng.randrange(len(scores)) for _ in scores]
        if len({reference[i] for i in picked}) > 1 and len({scores[i] for i in picked}) > 1:
            samples.append(float(kendalltau([scores[i] for i in picked], [reference[i] for i in picked]).statistic))
    samples.sort()
    return tau, samples[int(0.025 * len(samples))], samples[int(0.975 * len(samples)) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a run folder whose valid individuals are ranked")
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3, help="training seeds of the noise-aware ranking")
    parser.add_argument("--reference-seeds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=2000)
    arguments = parser.parse_args()
    with RunStore.open(arguments.run) as store:
        fitness = store.config().fitness
        chosen = candidates(store, arguments.candidates)
    first = fitness.budget.training_seed
    evaluator = LocalEvaluator()
    print(
        f"{len(chosen)} candidates from {arguments.run}; budget {fitness.limit_train} images x "
        f"{fitness.budget.epochs:g} epochs, {fitness.threads or 'all'} training thread(s)"
    )
    print(f"{'#':>4} {'single':>8} {f'mean of {arguments.seeds}':>11} {'reference':>10}  parameters")
    single, mean, reference, spent_single, spent_mean = [], [], [], 0.0, 0.0
    for individual in chosen:
        own, seconds = trainings(evaluator, fitness, individual, range(first, first + arguments.seeds))
        held_out, _ = trainings(
            evaluator,
            fitness,
            individual,
            range(REFERENCE_SEED_OFFSET, REFERENCE_SEED_OFFSET + arguments.reference_seeds),
        )
        single.append(own[0])
        mean.append(statistics.mean(own))
        reference.append(statistics.mean(held_out))
        spent_single += seconds / arguments.seeds
        spent_mean += seconds
        print(
            f"{individual.id:>4} {own[0] * 100:7.2f}% {mean[-1] * 100:10.2f}% {reference[-1] * 100:9.2f}%  "
            f"{individual.parameters:,}"
        )
    evaluator.close()
    rng = random.Random(0)
    for label, scores, spent in (
        ("single evaluation", single, spent_single),
        (f"mean of {arguments.seeds}", mean, spent_mean),
    ):
        tau, low, high = tau_with_interval(scores, reference, arguments.bootstrap, rng)
        print(
            f"Kendall tau vs reference ({arguments.reference_seeds} disjoint seeds), {label}: {tau:.2f} "
            f"[95% bootstrap {low:.2f}, {high:.2f}], {spent:.0f} training-seconds for {len(chosen)} candidates"
        )


if __name__ == "__main__":
    main()
