"""What each kind of edit has done to accuracy in a run so far, for the prompt.

A block's code does not say what helps a network learn in a short training from scratch, and a small model
guesses; the run has measured it. Evolution of Thought shows one elite's change; this shows every kind of
edit the run has tried, the harmful ones too, with the direction of its size change, since wider and
narrower are opposite edits of one kind.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from astevo.variation.intents import SIZE_STEP

SHOWN = 8  # kinds of edit listed at most: the best half and the worst half


@dataclass(frozen=True)
class EditOutcome:
    edit: str  # the kind of edit, with the direction of its size change when it changed the size
    accuracy_change: float  # the mean change of validation accuracy against the version edited
    children: int


def edit_label(edit: str, parent_parameters: float, child_parameters: float) -> str:
    """The kind of edit, with "more parameters" or "fewer parameters" when the size changed by a step or more."""
    change = child_parameters / parent_parameters - 1 if parent_parameters else 0.0
    if abs(change) < SIZE_STEP:
        return edit
    return f"{edit}, {'more' if change > 0 else 'fewer'} parameters"


def edit_outcomes(changes: Iterable[tuple[str, float]]) -> tuple[EditOutcome, ...]:
    """(label, accuracy change) of each measured child, as the mean per label, best first; with more labels than
    fit, the best and the worst."""
    by_label: dict[str, list[float]] = {}
    for label, change in changes:
        by_label.setdefault(label, []).append(change)
    outcomes = sorted(
        (EditOutcome(label, statistics.fmean(found), len(found)) for label, found in by_label.items()),
        key=lambda outcome: (-outcome.accuracy_change, outcome.edit),
    )
    if len(outcomes) <= SHOWN:
        return tuple(outcomes)
    return (*outcomes[: SHOWN // 2], *outcomes[-(SHOWN - SHOWN // 2) :])
