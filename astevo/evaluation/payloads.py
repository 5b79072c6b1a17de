"""What the parent hands the sandboxed entry points: their names, the typed tasks that say what to build and train,
the limits, and the modules a warm worker imports for them."""

from __future__ import annotations

import os

from astevo.code.blocks import ModelFile
from astevo.data.prepared import data_shape, prepare_data
from astevo.evaluation.tasks import Data, Network
from astevo.isolation import sandbox
from astevo.isolation.warm_pool import shared_pool
from astevo.settings import FitnessSettings

TASKS = "astevo.evaluation.sandboxed.entry_points"
WARM_IMPORTS = ("torch", "torch._dynamo", TASKS)  # what a warm worker imports once for every evaluation task


def sandboxed_task(name: str) -> str:
    """The sandbox's name for one of the sandboxed entry points."""
    return f"{TASKS}:{name}"


def network(model_file: ModelFile, settings: FitnessSettings) -> Network:
    """How to build the file's network for the settings' data: the network is one of the classes no other block
    uses."""
    num_classes, channels, image_size = data_shape(settings)
    return Network(
        source=model_file.source,
        model_candidates=tuple(b.name for b in model_file.blocks.values() if b.kind == "class" and not b.used_by),
        block_names=tuple(model_file.blocks),
        num_classes=num_classes,
        channels=channels,
        image_size=image_size,
        classes_argument=settings.classes_argument,
        channels_argument=settings.channels_argument,
    )


def data(settings: FitnessSettings) -> Data:
    """The data a training loads, found here: the child sees neither $ASTEVO_DATA nor the user's home."""
    return Data(
        name=settings.dataset,
        data_dir=str(prepare_data(settings).location),
        limit_train=settings.limit_train,
        val_fraction=settings.val_fraction,
        split_seed=settings.split_seed,
    )


def sandbox_limits(settings: FitnessSettings, *, training: bool) -> sandbox.Limits:
    """The child's limits: the check time, plus the budget's time cap when the child trains."""
    seconds = settings.check_seconds + settings.budget.max_seconds if training else settings.check_seconds
    preload = WARM_IMPORTS if settings.warm_workers else ()
    return sandbox.Limits(seconds, settings.memory_mb, training_threads(settings), preload=preload)


def prestart_warm_workers(settings: FitnessSettings, count: int) -> None:
    """Start warm workers now, when the settings use them, so that their imports overlap other work."""
    if settings.warm_workers:
        shared_pool(WARM_IMPORTS).prestart(count)


def training_threads(settings: FitnessSettings) -> int:
    """The threads each evaluation uses: part of what determines its result (floating-point sums)."""
    return settings.threads or os.cpu_count() or 1
