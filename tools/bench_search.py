#!/usr/bin/env python3
"""Does evolution beat simpler search on one evaluation budget, and how often is selection's ranking right?

Methods. Each of `--methods` (llm: evolution with the bundled model; random: the same evolution with
uniformly drawn edits; best-of-n: the model's mutations of the seed, no selection) runs
`--replicates` times as `astevo evolve --variation M --evaluations N --random-seed R`, a real CLI
process each. The winner of a run is the best validation accuracy at or below the seed's parameters,
as the method itself ranks them (racing's means for llm and random, single trainings for best-of-n; the
seed when nothing beats it). It is trained again `--test-seeds` times on the run's budget and scored on
the test split, read nowhere else. Per method: the winner's test accuracy as mean +- std over
replicates, its validation minus test accuracy (the maximum of noisy values is biased upward), distinct
valid children and seconds per run.

Ranking. `--candidates` distinct valid individuals pooled from those runs are ranked by one training,
by the mean of `--seeds` trainings, and by successive halving (all trained on half the epochs, the better
half promoted to one full training); the reference is the mean of `--reference-seeds` further training
seeds disjoint from theirs. Kendall's tau of each against it, with a bootstrap interval over candidates,
and the training-seconds each ranking cost. Usage:

    python tools/bench_search.py [--evaluations 24] [--replicates 2] [--methods llm,random,best-of-n]
        [--population 4] [--test-seeds 3] [--candidates 12] [--seeds 3] [--reference-seeds 5]
        [--limit-train 6000] [--epochs 3] [--out /tmp/astevo-bench-search]

Runs already finished in --out are reused, and an unfinished one is resumed, so an interrupted bench
goes on where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

from scipy.stats import kendalltau

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from astevo.code.blocks import ModelFile  # noqa: E402
from astevo.evaluation.base import EvaluationRequest  # noqa: E402
from astevo.evaluation.executors.local import LocalEvaluator  # noqa: E402
from astevo.evolution.final import final_metrics, tested_training  # noqa: E402
from astevo.evolution.noise import run_noise  # noqa: E402
from astevo.evolution.selection import best_within_seed_cost  # noqa: E402
from astevo.settings import VARIATIONS, FitnessSettings  # noqa: E402
from astevo.store.records import Individual  # noqa: E402
from astevo.store.run_store import RunStore  # noqa: E402

REFERENCE_SEED_OFFSET = 1000  # training seeds of the reference: far from the rankings' own


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    method: str
    replicate: int
    winner: Individual
    winner_is_seed: bool
    winner_test: float  # mean over the test seeds
    distinct_valid_children: int
    rejected: int  # proposals the fast checks rejected: they cost no training
    trainings: int
    seconds: float


def evolve(folder: Path, method: str, replicate: int, arguments: argparse.Namespace) -> None:
    """One search run as a user starts it (resumed when an earlier bench left it unfinished)."""
    if (folder / "run.sqlite").exists():
        with RunStore.open(folder) as store:
            if "finished" in store.meta():
                return
        command = ["evolve", "--run", str(folder), "--resume"]
    else:
        command = [
            "evolve",
            "--variation",
            method,
            "--evaluations",
            str(arguments.evaluations),
            "--population",
            str(arguments.population),
            "--random-seed",
            str(replicate),
            "--limit-train",
            str(arguments.limit_train),
            "--epochs",
            str(arguments.epochs),
            "--run",
            str(folder),
            "--no-cache",
        ]
    environment = {**os.environ, "COLUMNS": "160"}
    finished = subprocess.run([sys.executable, "-m", "astevo.cli", *command], env=environment, text=True,
                              capture_output=True)  # fmt: skip
    if finished.returncode != 0:
        raise SystemExit(f"error: {method} replicate {replicate} failed:\n{finished.stdout[-2000:]}{finished.stderr}")


class TestScores:
    """Test accuracy per code over the test seeds, trained once per code (the seed wins several runs)."""

    def __init__(self, seeds: int) -> None:
        self.seeds, self._scores = seeds, dict[str, list[float]]()
        self._trainings = LocalEvaluator()

    def __call__(self, individual: Individual, fitness: FitnessSettings) -> list[float]:
        key = individual.code_hash or str(individual.id)
        if key not in self._scores:
            model = ModelFile(individual.code, f"#{individual.id}")
            running = [self._trainings.run(tested_training(model, fitness, seed)) for seed in range(self.seeds)]
            found = [final_metrics(training.result()).get("test_accuracy", math.nan) for training in running]
            self._scores[key] = found
        return self._scores[key]


def outcome(folder: Path, method: str, replicate: int, tests: TestScores) -> RunOutcome:
    with RunStore.open(folder) as store:
        config, meta, everyone = store.config(), store.meta(), store.individuals()
        further = len(store.trainings())
    winner = best_within_seed_cost(everyone, config.cost)
    if winner is None:
        raise SystemExit(f"error: the seed of {folder} is not valid")
    valid_children = {i.code_hash for i in everyone if i.valid and i.operator != "seed" and i.reused_from is None}
    evaluated = sum(1 for i in everyone if i.status != "discarded" and i.reused_from is None)
    return RunOutcome(
        method=method,
        replicate=replicate,
        winner=winner,
        winner_is_seed=winner.operator == "seed",
        winner_test=statistics.fmean(tests(winner, config.fitness)),
        distinct_valid_children=len(valid_children),
        rejected=sum(1 for i in everyone if i.status == "discarded"),
        trainings=evaluated + further,
        seconds=meta["finished"] - meta["started"],
    )


def print_methods(outcomes: list[RunOutcome], seed_test: list[float], seed_noise: float, budget: str) -> None:
    print(
        f"\nmethods on one budget ({budget}); test accuracy of each run's winner over "
        f"{len(seed_test)} training seeds, then mean +- std over replicates"
    )
    print(
        f"seed model: test {statistics.fmean(seed_test) * 100:.2f}% (std {statistics.stdev(seed_test) * 100:.2f} "
        f"over training seeds); search noise: std {seed_noise * 100:.2f} points of one validation training"
    )
    header = f"{'method':<10} {'winner test acc':>18} {'val - test':>11} {'distinct valid':>15} {'seconds':>8}  winners"
    print(header)
    for method in dict.fromkeys(o.method for o in outcomes):
        runs = [o for o in outcomes if o.method == method]
        tests = [o.winner_test * 100 for o in runs]
        spread = statistics.stdev(tests) if len(tests) > 1 else 0.0
        gaps = [(o.winner.val_accuracy - o.winner_test) * 100 for o in runs]
        winners = ", ".join(
            "seed" if o.winner_is_seed else f"#{o.winner.id} ({o.winner.parameters:,} p, {o.winner.val_accuracy:.2%})"
            for o in runs
        )
        print(
            f"{method:<10} {statistics.fmean(tests):>9.2f}% +- {spread:4.2f} {statistics.fmean(gaps):>+10.2f} "
            f"{statistics.fmean(o.distinct_valid_children for o in runs):>15.1f} "
            f"{statistics.fmean(o.seconds for o in runs):>8.0f}  {winners}"
        )
    print("per run: the winner's test accuracy, trainings spent, proposals the fast checks rejected (not counted)")
    for o in outcomes:
        print(
            f"  {o.method} {o.replicate}: winner {'seed' if o.winner_is_seed else f'#{o.winner.id}'} test "
            f"{o.winner_test:.2%}, {o.trainings} trainings, {o.rejected} rejected"
        )


def pooled_candidates(folders: list[Path], count: int) -> list[tuple[str, Individual]]:
    """Distinct valid individuals taken in turn from each run (each in the order it made them), the seed first;
    each labelled by its run folder's name and its number there."""
    queues = []
    for folder in folders:
        with RunStore.open(folder) as store:
            valid = [i for i in store.individuals() if i.valid and i.reused_from is None]
            queues.append([(f"{folder.name}#{i.id}", i) for i in valid])
    found: dict[str, tuple[str, Individual]] = {}
    while len(found) < count and any(queues):
        for queue in queues:
            while queue:
                labelled = queue.pop(0)
                key = labelled[1].code_hash or labelled[0]
                if key not in found:
                    found[key] = labelled
                    break
    return list(found.values())[:count]


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
        accuracies.append(evaluation.metrics["val_accuracy"] if evaluation.valid else 0.0)
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


def ranking_quality(
    chosen: list[tuple[str, Individual]], fitness: FitnessSettings, arguments: argparse.Namespace
) -> None:
    fitness = dataclasses.replace(fitness, threads=0)  # no model runs now: every core trains
    first = fitness.budget.training_seed
    half = dataclasses.replace(fitness, budget=dataclasses.replace(fitness.budget, epochs=fitness.budget.epochs / 2))
    evaluator = LocalEvaluator()
    print(
        f"\nranking quality: {len(chosen)} candidates pooled from the runs; budget {fitness.limit_train} images x "
        f"{fitness.budget.epochs:g} epochs (successive halving's first round: {half.budget.epochs:g}), all threads"
    )
    columns = ("single", f"mean of {arguments.seeds}", "half", "reference")
    print(f"{'candidate':>16} " + " ".join(f"{column:>10}" for column in columns) + "  parameters")
    single, mean, short, reference = [], [], [], []
    spent = {"single": 0.0, "mean": 0.0, "short": 0.0}
    full_seconds = []
    for name, individual in chosen:
        own, seconds = trainings(evaluator, fitness, individual, range(first, first + arguments.seeds))
        brief, brief_seconds = trainings(evaluator, half, individual, range(first, first + 1))
        reference_seeds = range(REFERENCE_SEED_OFFSET, REFERENCE_SEED_OFFSET + arguments.reference_seeds)
        held_out, _ = trainings(evaluator, fitness, individual, reference_seeds)
        single.append(own[0])
        mean.append(statistics.fmean(own))
        short.append(brief[0])
        reference.append(statistics.fmean(held_out))
        full_seconds.append(seconds / arguments.seeds)
        spent["single"] += seconds / arguments.seeds
        spent["mean"] += seconds
        spent["short"] += brief_seconds
        print(
            f"{name:>16} "
            + " ".join(f"{value * 100:9.2f}%" for value in (own[0], mean[-1], brief[0], reference[-1]))
            + f"  {individual.parameters:,}"
        )
    evaluator.close()
    promoted = set(sorted(range(len(chosen)), key=lambda i: short[i], reverse=True)[: math.ceil(len(chosen) / 2)])
    halving = [1.0 + single[i] if i in promoted else short[i] for i in range(len(chosen))]
    halving_seconds = spent["short"] + sum(full_seconds[i] for i in promoted)
    rng = random.Random(0)
    for label, scores, seconds in (
        ("single evaluation", single, spent["single"]),
        (f"mean of {arguments.seeds}", mean, spent["mean"]),
        ("successive halving", halving, halving_seconds),
    ):
        tau, low, high = tau_with_interval(scores, reference, arguments.bootstrap, rng)
        print(
            f"Kendall tau vs reference ({arguments.reference_seeds} disjoint seeds), {label}: {tau:.2f} "
            f"[95% bootstrap {low:.2f}, {high:.2f}], {seconds:.0f} training-seconds for {len(chosen)} candidates"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--evaluations", type=int, default=24, help="trainings per run, every one counted")
    parser.add_argument("--replicates", type=int, default=2)
    parser.add_argument("--methods", default=",".join(VARIATIONS))
    parser.add_argument("--population", type=int, default=4)
    parser.add_argument("--test-seeds", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=6000)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--candidates", type=int, default=12, help="0: methods only, no ranking quality")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds of the noise-aware ranking")
    parser.add_argument("--reference-seeds", type=int, default=5)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/astevo-bench-search"))
    arguments = parser.parse_args()
    methods = arguments.methods.split(",")
    if unknown := [m for m in methods if m not in VARIATIONS]:
        raise SystemExit(f"error: unknown method {unknown[0]!r}; choose from {', '.join(VARIATIONS)}")
    folders = {(m, r): arguments.out / f"{m}-{r}" for r in range(arguments.replicates) for m in methods}
    for (method, replicate), folder in folders.items():
        print(f"running {method} replicate {replicate} in {folder}", flush=True)
        evolve(folder, method, replicate, arguments)
    tests = TestScores(arguments.test_seeds)
    outcomes = [outcome(folder, m, r, tests) for (m, r), folder in folders.items()]
    with RunStore.open(next(iter(folders.values()))) as store:
        fitness, seed = store.config().fitness, store.at(0, 0)
        assert seed is not None
        noise = run_noise(store, seed).std
    budget = (
        f"{arguments.evaluations} trainings per run, {fitness.limit_train} images x {fitness.budget.epochs:g} epochs, "
        f"population {arguments.population}, {fitness.threads or 'all'} training thread(s)"
    )
    print_methods(outcomes, tests(seed, fitness), noise or 0.0, budget)
    if arguments.candidates:
        ranking_quality(pooled_candidates(list(folders.values()), arguments.candidates), fitness, arguments)


if __name__ == "__main__":
    main()
