"""A new run's set-up: the blocks to evolve fixed from one build of the seed, then everything recorded.

The two steps are apart so that what must be fixed before the first training (the slots and threads
chosen for this machine) can be measured on the planned run before its folder exists: a run that
stops while it is being planned leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import astevo
from astevo.code.blocks import ModelFile
from astevo.data.prepared import PreparedData, prepare_data
from astevo.evaluation.anatomy import Anatomy, inspect_model
from astevo.evaluation.base import Evaluator
from astevo.evaluation.executors.slot_plan import SlotPlan
from astevo.evolution.evolvable import evolvable_blocks
from astevo.llm.factory import ModelChoice
from astevo.settings import EvolveConfig
from astevo.store.run_store import RunStore


@dataclass(frozen=True)
class PlannedRun:
    """A run ready to be created: its settings with the blocks fixed, and what one build of the seed showed."""

    config: EvolveConfig
    seed_model: ModelFile
    model: ModelChoice | None
    data: PreparedData
    anatomy: Anatomy

    @property
    def block_parameters(self) -> dict[str, int]:
        return {name: sum(use.parameters) for name, use in self.anatomy.uses.items()}


def plan_run(
    config: EvolveConfig, seed_model: ModelFile, model: ModelChoice | None, evaluator: Evaluator
) -> PlannedRun:
    """`evaluator` builds the seed once, where it runs fast checks."""
    data = prepare_data(config.fitness)
    anatomy = inspect_model(seed_model, evaluator, config.fitness)
    config = dataclasses.replace(config, blocks=evolvable_blocks(seed_model, anatomy, config.blocks))
    if model is not None:  # resolved once: a resume may not pick another file from $ASTEVO_MODEL
        mutation = dataclasses.replace(config.mutation, model=model.recorded_name)
        config = dataclasses.replace(config, mutation=mutation)
    return PlannedRun(config, seed_model, model, data, anatomy)


def create_run(folder: Path, planned: PlannedRun, slots: SlotPlan | None = None) -> RunStore:
    """The run's folder and record; `slots`: the setting chosen for this machine, which a resume keeps."""
    return RunStore.create(
        folder,
        {
            "config": planned.config.to_record(),
            "seed_file": planned.seed_model.origin,
            "seed_source": planned.seed_model.source,
            "versions": _versions(),
            "model": planned.model.identity.record() if planned.model else None,
            "data": planned.data.record(),
            "model_parameters": planned.anatomy.parameters,
            "block_parameters": planned.block_parameters,
            "slots": slots.record() if slots else None,
            "started": time.time(),
        },
    )


def _versions() -> dict[str, str]:
    versions = {"astevo": astevo.__version__, "python": platform.python_version()}
    for package in ("torch", "llama_cpp_python", "llguidance", "libcst", "deap", "fvcore"):
        try:
            versions[package] = metadata.version(package.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
