"""What the parent hands the worker in the sandbox: task names, and payloads that say what to build and train."""

from __future__ import annotations

import os
from typing import Any

from astevo.code.blocks import ModelFile
from astevo.data.prepared import data_shape, prepare_data
from astevo.isolation import sandbox
from astevo.isolation.warm_pool import shared_pool
from astevo.settings import FitnessSettings

TASKS = "astevo.evaluation.sandboxed.entry_points"
WARM_IMPORTS = ("torch", "torch._dynamo", TASKS)  # what a warm worker imports once for every evaluation task


def sandboxed_task(name: str) -> str:
    """The sandbox's name for a function of the worker's entry points."""
    return f"{TASKS}:{name}"


def model_candidates(model_file: ModelFile) -> list[str]:
    """Classes no other block uses: the network is one of them."""
    return [b.name for b in model_file.blocks.values() if b.kind == "class" and not b.used_by]


def network_payload(model_file: ModelFile, settings: FitnessSettings) -> dict[str, Any]:
    """What a worker task needs to build the file's network for the settings' data."""
    num_classes, channels, _ = data_shape(settings)
    return {
        "source": model_file.source,
        "model_candidates": model_candidates(model_file),
        "block_names": list(model_file.blocks),
        "num_classes": num_classes,
        "channels": channels,
        "argument_names": {"classes": settings.classes_argument, "channels": settings.channels_argument},
    }


def model_payload(model_file: ModelFile, settings: FitnessSettings) -> dict[str, Any]:
    """What a worker task needs to build the file's network for the settings' data and feed it that data's images."""
    return {**network_payload(model_file, settings), "image_size": data_shape(settings)[2]}


def data_payload(settings: FitnessSettings) -> dict[str, Any]:
    """The data a training task loads, found here: the child sees neither $ASTEVO_DATA nor the user's home."""
    return {
        "name": settings.dataset,
        "data_dir": str(prepare_data(settings).location),
        "limit_train": settings.limit_train,
        "val_fraction": settings.val_fraction,
        "split_seed": settings.split_seed,
    }


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
