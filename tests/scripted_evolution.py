"""Run (or resume) a small evolution with the scripted variation, as its own process: `kill -9` tests target it.

Usage: python3 -m tests.scripted_evolution RUN_DIR [--resume]
"""

from __future__ import annotations

import sys
from pathlib import Path

from astevo.code.blocks import ModelFile
from astevo.evaluation.local import LocalEvaluator
from astevo.evolution.loop import Evolution, start_run
from astevo.paths import DEFAULT_SEED
from astevo.settings import EvolveConfig, apply
from astevo.store.run_store import RunStore
from tests.scripted_variation import ScriptedVariation

SEED = Path(__file__).resolve().parents[1] / "seeds" / DEFAULT_SEED  # run from the checkout, as the tests are
SETTINGS = {
    "blocks": ["SE_LN", "DFSEBV2"],
    "population": 2,
    "generations": 3,
    "random_seed": 11,
    "crossover_rate": 0.5,
    "fitness": {"limit_train": 512, "val_fraction": 0.02, "budget": {"epochs": 1.0, "batch_size": 32}},
}


def main(folder: Path, resume: bool) -> None:
    if resume:
        store = RunStore.open(folder)
    else:
        store = start_run(folder, apply(EvolveConfig(), SETTINGS), ModelFile.read(SEED), None)
    with store:
        Evolution(store, ScriptedVariation(), LocalEvaluator()).run()


if __name__ == "__main__":
    main(Path(sys.argv[1]), "--resume" in sys.argv[2:])
