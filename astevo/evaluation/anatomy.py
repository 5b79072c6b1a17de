"""What a model file builds: run the file once in the sandbox and record its block instances.

Evolving a block the model never instantiates cannot change fitness, and the parameter
count of each block is what users weigh changes against, so both come from a real build.
"""

from __future__ import annotations

from dataclasses import dataclass

from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.payloads import WARM_IMPORTS, network, sandboxed_task
from astevo.evaluation.tasks import as_record
from astevo.isolation import sandbox
from astevo.settings import FitnessSettings


@dataclass(frozen=True)
class BlockUse:
    arguments: tuple[str, ...]
    parameters: tuple[int, ...]


COLOUR_IMAGES = FitnessSettings(dataset="cifar10")  # a model's blocks, shown without a data set: 10 classes, RGB


@dataclass(frozen=True)
class Anatomy:
    model_class: str
    parameters: int
    uses: dict[str, BlockUse]

    def is_built(self, block: str) -> bool:
        return block in self.uses


def inspect_model(
    model_file: ModelFile, settings: FitnessSettings = COLOUR_IMAGES, limits: sandbox.Limits | None = None
) -> Anatomy:
    """Build the model for the settings' data in a sandboxed child; a file that cannot build raises AstevoError."""
    task = as_record(network(model_file, settings))
    outcome = sandbox.run(
        sandboxed_task("inspect_model"), task, limits or sandbox.Limits(seconds=120, preload=WARM_IMPORTS)
    )
    if not outcome.ok:
        raise AstevoError(f"{model_file.origin}: cannot build the model: {outcome.error}")
    value = outcome.value
    assert value is not None  # an ok outcome always carries the task's value
    uses = {
        name: BlockUse(tuple(facts["arguments"]), tuple(facts["parameters"])) for name, facts in value["blocks"].items()
    }
    return Anatomy(value["model_class"], value["parameters"], uses)
