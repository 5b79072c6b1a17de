"""What a model file builds: run the file once in the sandbox and record its block instances.

Evolving a block the model never instantiates cannot change fitness, and the parameter
count of each block is what users weigh changes against, so both come from a real build.
"""

from __future__ import annotations

from dataclasses import dataclass

from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.base import Evaluator, SandboxTask
from astevo.evaluation.payloads import WARM_IMPORTS, network, sandboxed_task
from astevo.evaluation.tasks import as_record
from astevo.isolation.sandbox import Limits
from astevo.settings import FitnessSettings


@dataclass(frozen=True)
class BlockUse:
    arguments: tuple[str, ...]
    parameters: tuple[int, ...]


BUILD_LIMITS = Limits(seconds=120, preload=WARM_IMPORTS)
COLOUR_IMAGES = FitnessSettings(dataset="cifar10")  # a model's blocks, shown without a data set: 10 classes, RGB


@dataclass(frozen=True)
class Anatomy:
    model_class: str
    parameters: int
    uses: dict[str, BlockUse]

    def is_built(self, block: str) -> bool:
        return block in self.uses


def inspect_model(model_file: ModelFile, evaluator: Evaluator, settings: FitnessSettings = COLOUR_IMAGES) -> Anatomy:
    """Build the model for the settings' data in a sandboxed child, where the evaluator runs fast checks; a file
    that cannot build raises AstevoError."""
    task = SandboxTask(sandboxed_task("inspect_model"), as_record(network(model_file, settings)), BUILD_LIMITS)
    outcome = evaluator.run_now(task)
    if not outcome.ok:
        raise AstevoError(f"{model_file.origin}: cannot build the model: {outcome.error}")
    value = outcome.value
    assert value is not None  # an ok outcome always carries the task's value
    uses = {
        name: BlockUse(tuple(facts["arguments"]), tuple(facts["parameters"])) for name, facts in value["blocks"].items()
    }
    return Anatomy(value["model_class"], value["parameters"], uses)
