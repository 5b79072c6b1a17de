"""What the parent hands each sandboxed entry point (evaluation/sandboxed/entry_points.py), as typed records.

A task crosses into the child as JSON: `as_record` on this side, `decoded` on the child's, so both sides name
the same fields and a misspelt one fails at once instead of reading as missing. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

from astevo.settings import TrainBudget


@dataclass(frozen=True)
class Network:
    """What builds the file's network for the data: the source, the classes that may be the network (those no
    other block uses), its blocks, and the data's shape with the constructor arguments that take it."""

    source: str
    model_candidates: tuple[str, ...]
    block_names: tuple[str, ...]
    num_classes: int
    channels: int
    image_size: int
    classes_argument: str | None = None  # None: one of the usual names
    channels_argument: str | None = None


@dataclass(frozen=True)
class Data:
    """The data a training loads, found on the parent's side: the child sees neither $ASTEVO_DATA nor the home."""

    name: str
    data_dir: str | None
    limit_train: int | None
    val_fraction: float
    split_seed: int


@dataclass(frozen=True)
class Checks:
    """check_candidate: build, probe, cost; a rewritten block must keep the shapes the reference's instances had."""

    network: Network
    reference_source: str | None = None
    rewritten_blocks: tuple[str, ...] = ()
    max_parameters: int | None = None
    max_macs: int | None = None


@dataclass(frozen=True)
class Training:
    """train_candidate and final_candidate: one training under the budget (its training seed included)."""

    network: Network
    data: Data
    budget: TrainBudget


@dataclass(frozen=True)
class CheckedTraining:
    """evaluate_candidate: the checks, then the training, in one child that imports torch once."""

    checks: Checks
    data: Data
    budget: TrainBudget


@dataclass(frozen=True)
class Variant:
    """One version of the model file, to build on the meta device."""

    source: str  # the whole model file
    forward: bool  # also run a batch through it: the output shape must stay the original's


@dataclass(frozen=True)
class Versions:
    """measure_versions: versions of the network built (and run) on the meta device."""

    network: Network
    versions: tuple[Variant, ...]


Task = TypeVar("Task")


def as_record(task: object) -> dict[str, Any]:
    """The task as the JSON the sandbox carries."""
    return dataclasses.asdict(task)  # type: ignore[call-overload]


def decoded(kind: type[Task], value: dict[str, Any]) -> Task:
    """The task from its record, on the child's side: nested records become their types, lists tuples."""
    hints = typing.get_type_hints(kind)
    return kind(**{spec.name: _field(hints[spec.name], value[spec.name]) for spec in dataclasses.fields(kind)})  # type: ignore[arg-type]


def _field(hint: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(hint):
        return decoded(hint, value)  # type: ignore[arg-type]
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_field(item, each) for each in value)
    return value
