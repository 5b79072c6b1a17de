"""Which children changed size, and whether each intent moved size the way it asked.

A size change counts only when the parameter count moves by at least 5%: toggling a bias
moves it by a few hundred and is not one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from astevo.store.records import Individual
from astevo.variation.intents import SIZE_STEP, SMALLER

DIRECTIONS = ("smaller", "same", "larger")
INTENDED = {SMALLER: "smaller"}  # the intents that ask for a direction


def direction(parameters: int, reference: int) -> str:
    if parameters <= reference * (1 - SIZE_STEP):
        return "smaller"
    if parameters >= reference * (1 + SIZE_STEP):
        return "larger"
    return "same"


@dataclass
class IntentSizes:
    """For one intent: the directions of its valid children, and of its first answers that passed the checks."""

    intent: str
    children: Counter[str] = field(default_factory=Counter)
    first_answers: Counter[str] = field(default_factory=Counter)

    @property
    def intended(self) -> str | None:
        return INTENDED.get(self.intent)

    def line(self) -> str:
        def counts(found: Counter[str]) -> str:
            return ", ".join(f"{found[d]} {d}" for d in DIRECTIONS)

        text = f"{self.intent}: children {counts(self.children)}; first answers {counts(self.first_answers)}"
        if self.intended:
            share = _share(self.children[self.intended], sum(self.children.values()))
            first = _share(self.first_answers[self.intended], sum(self.first_answers.values()))
            text += f" ({self.intended}: {share} of children, {first} of first answers)"
        return text


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "-"


def children_by_size(individuals: Sequence[Individual]) -> Counter[str]:
    """Valid offspring, each against its first parent."""
    by_id = {i.id: i for i in individuals}
    found: Counter[str] = Counter()
    for child in individuals:
        parent = by_id.get(child.parents[0]) if child.parents else None
        if child.valid and child.parameters and parent is not None and parent.parameters:
            found[direction(child.parameters, parent.parameters)] += 1
    return found


def by_intent(individuals: Sequence[Individual]) -> list[IntentSizes]:
    """Mutations grouped by intent; a first answer counts when it passed the fast checks (its size is known)."""
    by_id: Mapping[int, Individual] = {i.id: i for i in individuals}
    found: dict[str, IntentSizes] = {}
    for child in individuals:
        if child.operator not in ("mutate", "eot") or not child.intent or not child.parents:
            continue
        parent = by_id.get(child.parents[0])
        if parent is None or not parent.parameters:
            continue
        sizes = found.setdefault(child.intent, IntentSizes(child.intent))
        if child.valid and child.parameters:
            sizes.children[direction(child.parameters, parent.parameters)] += 1
        first = child.exchanges[0].get("parameters") if child.exchanges else None
        if first:
            sizes.first_answers[direction(first, parent.parameters)] += 1
    return [found[intent] for intent in sorted(found)]


def summary_line(individuals: Sequence[Individual]) -> str:
    found = children_by_size(individuals)
    counts = ", ".join(f"{found[d]} {d}" for d in DIRECTIONS)
    return f"valid children by size against their parent (a change is >= {SIZE_STEP:.0%} of parameters): {counts}"
