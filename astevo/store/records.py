"""What a run store holds, as immutable records: individuals and final results, and how a row becomes one."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

PENDING, EVALUATED, DISCARDED = "pending", "evaluated", "discarded"


@dataclass(frozen=True)
class NewIndividual:
    """An individual as it is born: how it was made, pending evaluation, or discarded with the reason."""

    generation: int
    slot: int
    parents: tuple[int, ...]
    operator: str
    blocks: tuple[str, ...]
    intent: str | None
    source: str | None
    code_hash: str | None
    exchanges: list[dict[str, Any]]
    rng_seed: str
    propose_seconds: float
    discarded: str | None = None


@dataclass(frozen=True)
class Individual:
    id: int
    generation: int
    slot: int
    parents: tuple[int, ...]
    operator: str  # "seed", "mutate", "eot" or "crossover"
    blocks: tuple[str, ...]  # the blocks this individual changed against its first parent
    intent: str | None
    source: str | None  # the whole model file; None when the operator produced nothing usable
    code_hash: str | None
    exchanges: tuple[dict, ...]  # every prompt and answer, in order
    rng_seed: str  # what this individual's random draws were seeded with
    status: str  # PENDING, EVALUATED or DISCARDED
    reason: str | None  # why it was discarded or failed the cascade
    stages: tuple[dict, ...]
    metrics: dict
    reused_from: int | None  # the individual whose evaluation of the same code was reused
    propose_seconds: float
    evaluate_seconds: float
    cached: bool = False  # the evaluation came from the cross-run cache: measured by an earlier run

    @property
    def valid(self) -> bool:
        return self.status == EVALUATED and "val_accuracy" in self.metrics and all(s["ok"] for s in self.stages)

    @property
    def code(self) -> str:
        """The model file of an individual that has one: every individual but the discarded."""
        if self.source is None:
            raise ValueError(f"individual #{self.id} has no code: {self.reason}")
        return self.source

    @property
    def val_accuracy(self) -> float | None:
        return self.metrics.get("val_accuracy")

    @property
    def parameters(self) -> int | None:
        return self.metrics.get("parameters")

    @property
    def macs(self) -> int | None:
        return self.metrics.get("macs")


@dataclass(frozen=True)
class FinalResult:
    individual: int
    training_seed: int
    settings: dict
    metrics: dict  # test_accuracy, val_accuracy, train_seconds, ...
    seconds: float


@dataclass(frozen=True)
class Training:
    """One more training of an individual with another training seed (its first is its evaluation)."""

    individual: int
    training_seed: int
    metrics: dict  # val_accuracy, ... or error
    seconds: float


def measured_accuracies(metrics: dict, further: list[dict]) -> list[float]:
    """An individual's validation accuracies: its evaluation's, then those of its further trainings that succeeded
    (`further`: their metrics, in training-seed order). Empty for an individual that never trained."""
    first = metrics.get("first_val_accuracy", metrics.get("val_accuracy"))
    if first is None:
        return []
    return [float(first)] + [float(m["val_accuracy"]) for m in further if "val_accuracy" in m]


COLUMNS = tuple(spec.name for spec in fields(Individual))
_WITHOUT_TEXT = {"source": "NULL", "exchanges": "'[]'"}
SELECT_ALL = f"SELECT {', '.join(COLUMNS)} FROM individuals"
SELECT_RESULTS = f"SELECT {', '.join(_WITHOUT_TEXT.get(column, column) for column in COLUMNS)} FROM individuals"
_JSON_SEQUENCES = ("parents", "blocks", "exchanges", "stages")


def individual_from_row(row: tuple[Any, ...]) -> Individual:
    """An individual from a row selected by SELECT_ALL or SELECT_RESULTS."""
    values = dict(zip(COLUMNS, row, strict=True))
    for name in _JSON_SEQUENCES:
        values[name] = tuple(json.loads(values[name]))
    values["metrics"] = json.loads(values["metrics"])
    values["cached"] = bool(values["cached"])
    return Individual(**values)
