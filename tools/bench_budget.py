#!/usr/bin/env python3
"""The noise of one evaluation per CPU-second, for a few training budgets, on the seed model.

Each budget (training images x epochs) trains the seed with the same training seeds in the real
sandbox, side by side in one run. A budget's figure is the standard deviation of one training's
validation accuracy times the square root of its seconds: the standard error that one second of
repeated trainings at that budget would buy. Lower is better; it says which budget tells
candidates apart most cheaply, not which trains the best model. Usage:

    python tools/bench_budget.py [--seeds 5] [--budgets 1500x3,3000x1,3000x3,6000x3] [--threads 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from astevo.code.blocks import ModelFile  # noqa: E402
from astevo.evaluation.base import EvaluationRequest  # noqa: E402
from astevo.evaluation.executors.local import LocalEvaluator  # noqa: E402
from astevo.paths import default_seed_path  # noqa: E402
from astevo.settings import default_fitness  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budgets", default="1500x3,3000x1,3000x3,6000x3", help="IMAGESxEPOCHS, comma-separated")
    parser.add_argument("--threads", type=int, default=0, help="training threads (0: all cores)")
    arguments = parser.parse_args()
    source = ModelFile.read(default_seed_path()).source
    base = dataclasses.replace(default_fitness(), threads=arguments.threads)
    evaluator = LocalEvaluator()
    print(
        f"seed model, Fashion-MNIST, {arguments.seeds} training seeds per budget; default budget: "
        f"{base.limit_train} images x {base.budget.epochs:g} epochs"
    )
    print(f"{'budget':>12} {'mean acc':>9} {'std (pts)':>10} {'s/training':>11} {'std*sqrt(s)':>12}")
    for text in arguments.budgets.split(","):
        images, epochs = text.lower().split("x")
        accuracies, seconds = [], []
        for seed in range(arguments.seeds):
            budget = dataclasses.replace(base.budget, epochs=float(epochs), training_seed=seed)
            settings = dataclasses.replace(base, limit_train=int(images), budget=budget)
            result = evaluator.submit(EvaluationRequest(f"{text}:{seed}", source, settings)).result()
            if not result.evaluation.valid:
                print(f"{text}: seed {seed} failed ({result.evaluation.problem})")
                continue
            accuracies.append(result.evaluation.metrics["val_accuracy"])
            seconds.append(sum(s.seconds for s in result.evaluation.stages if s.name in ("train", "validate")))
        if len(accuracies) < 2:
            continue
        std, mean_seconds = statistics.stdev(accuracies) * 100, statistics.mean(seconds)
        print(
            f"{text:>12} {statistics.mean(accuracies) * 100:8.2f}% {std:10.2f} {mean_seconds:11.2f} "
            f"{std * math.sqrt(mean_seconds):12.2f}"
        )
    evaluator.close()


if __name__ == "__main__":
    main()
