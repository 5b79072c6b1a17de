"""Run (or resume) a small evolution with the scripted variation, as its own process: `kill -9` tests target it.

Usage: python3 -m tests.scripted_evolution RUN_DIR [--resume] [--workers K|auto] [--ray] [--clock-jumps]

`--workers auto` chooses the slots as `astevo evolve` does, from this machine's measured timings (the
settings fix the threads); `--ray` evaluates in tasks of a local Ray cluster with two logical GPUs;
`--clock-jumps` sets this process's wall clock back two hours and then forward a day while it runs. None may
change what the run decides.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

from astevo.cli.slot_choice import new_run_slots, resumed_slots, workers_flag
from astevo.code.blocks import ModelFile
from astevo.evaluation.base import Executor
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evaluation.executors.ray_cluster import RayEvaluator
from astevo.evolution.loop import Evolution
from astevo.evolution.run_setup import create_run, plan_run
from astevo.paths import DEFAULT_SEED
from astevo.settings import EvolveConfig, apply
from astevo.store.run_store import RunStore
from astevo.variation.base import Variation
from tests.scripted_variation import ScriptedVariation

SEED = Path(__file__).resolve().parents[1] / "seeds" / DEFAULT_SEED  # run from the checkout, as the tests are
SETTINGS = {
    "blocks": ["SE_LN", "DFSEBV2"],
    "population": 2,
    "generations": 3,
    "random_seed": 11,
    "crossover_rate": 0.5,
    "fitness": {"limit_train": 512, "val_fraction": 0.02, "threads": 1, "budget": {"epochs": 1.0, "batch_size": 32}},
}


class JumpingWallClock:
    """`time.time` as a wall clock that an NTP step sets back two hours at its 4th reading and a laptop woken
    from sleep sets forward a day at its 9th. The monotonic clocks, which time every limit, never jump."""

    JUMPS = ((4, -2 * 3600.0), (9, 24 * 3600.0))

    def __init__(self) -> None:
        self.real, self.readings, self.offset = time.time, 0, 0.0
        self.lock = threading.Lock()  # the slots' threads read it too

    def __call__(self) -> float:
        with self.lock:
            self.readings += 1
            self.offset += sum(jump for reading, jump in self.JUMPS if reading == self.readings)
            return self.real() + self.offset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--workers", default="1")
    parser.add_argument("--ray", action="store_true")
    parser.add_argument("--clock-jumps", action="store_true")
    arguments = parser.parse_args()
    if arguments.clock_jumps:
        time.time = JumpingWallClock()
    variation: Variation = ScriptedVariation()
    workers = workers_flag(arguments.workers)
    if arguments.resume:
        store = RunStore.open(arguments.folder)
        workers = resumed_slots(store, workers)
    else:
        settings = apply(EvolveConfig(), SETTINGS)
        planned = plan_run(settings, ModelFile.read(SEED), None, LocalEvaluator())
        planned, chosen, workers, variation = new_run_slots(planned, variation, workers)
        store = create_run(arguments.folder, planned, chosen)
    evaluator: Executor = RayEvaluator(num_cpus=2, num_gpus=2) if arguments.ray else LocalEvaluator(workers=workers)
    with store:
        # force: a budget this small teaches the seed little; the loop is under test here, not the budget
        Evolution(store, variation, evaluator, force=True).run()
    evaluator.close()


if __name__ == "__main__":
    main()
