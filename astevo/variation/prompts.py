"""Prompt templates, kept as text files and filled without `str.format`.

Model code is full of braces; `string.Template` substitutes `$name` fields only in the
template text, so code inserted as a value is never interpreted.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template

from astevo.settings import FitnessSettings
from astevo.variation.edit_outcomes import EditOutcome


@cache
def template(name: str) -> Template:
    return Template(files("astevo.variation").joinpath("templates").joinpath(f"{name}.txt").read_text(encoding="utf-8"))


def text(name: str) -> str:
    return template(name).template.strip()


@dataclass(frozen=True)
class Exemplar:
    """An elite's rewrite of a block, with what it measurably changed (Evolution of Thought)."""

    block: str
    before: str
    after: str
    accuracy_change: float
    parameter_change: int
    edit: str | None = None  # the kind of edit it was (a spot's group or a size edit's kind), when known

    @property
    def change(self) -> str:
        """The changed lines with their neighbours: a small model sees in two lines what two whole blocks hide.
        Separate places are parted by "...", and the diff's file headers left out."""
        lines = list(difflib.unified_diff(self.before.splitlines(), self.after.splitlines(), lineterm="", n=2))[2:]
        return "\n".join("..." if line.startswith("@@") else line for line in lines[1:])


def system_prompt() -> str:
    return text("system")


def mutation_prompt(
    name: str,
    code: str,
    intent: str,
    persona: str | None,
    exemplar: Exemplar | None,
    objective: str | None = None,
    outcomes: Sequence[EditOutcome] = (),
) -> str:
    opening = text(f"intents/{intent}")
    if persona:
        opening = f"{text(f'personas/{persona}')} {opening}"
    if objective:
        opening = f"{opening} {objective}"
    return template("mutate").substitute(
        opening=opening, name=name, code=code.rstrip("\n"), memory=_memory(name, exemplar) + _measured(outcomes)
    )


def _memory(name: str, exemplar: Exemplar | None) -> str:
    if exemplar is None:
        return ""
    same = exemplar.block == name
    return template("memory").substitute(
        changed=f"In another version of the model, `{name}`" if same else f"Another block, `{exemplar.block}`,",
        name=name,
        change=exemplar.change,
        accuracy_change=f"{exemplar.accuracy_change * 100:+.2f} points",
        parameter_change=f"{exemplar.parameter_change:+,}",
    )


def _measured(outcomes: Sequence[EditOutcome]) -> str:
    if not outcomes:
        return ""
    lines = "\n".join(f"- {o.edit}: {o.accuracy_change * 100:+.2f} points ({o.children})" for o in outcomes)
    return template("outcomes").substitute(outcomes=lines)


def training_objective(fitness: FitnessSettings) -> str:
    """What a version is judged by. A block's code does not say that fitness is a short training from scratch,
    and what helps a network learn in 3 epochs is not what helps it in 300."""
    images = f"{fitness.limit_train:,} images" if fitness.limit_train else "the training images"
    source = "the user's own data set" if fitness.dataset == "folder" else fitness.dataset
    return (
        f"Every version is trained from scratch for only {fitness.budget.epochs:g} epochs on {images} of "
        f"{source}, then judged by its accuracy on held-out validation images."
    )


def repair_prompt(name: str, error: str) -> str:
    return template("repair").substitute(name=name, error=error)


def spot_prompt(kind: str, line: str) -> str:
    """Where the change goes, for a model that edits one spot of the block."""
    return template(f"{kind}_spot").substitute(line=line.strip())


def line_choice_prompt(group: str, lines: list[str]) -> str:
    """The lines where an edit of the group fits, for the model to choose the one it would change."""
    options = "\n".join(f"- {line}" for line in lines)
    return template("line_choice").substitute(question=text(f"line_choice/{group}"), options=options)


def retry_prompt(error: str) -> str:
    return template("retry").substitute(error=error)


def size_prompt(parameters: int, options: list[tuple[str, int]]) -> str:
    """The size edits a model may choose from, each with the parameter count it gives."""
    lines = "\n".join(f"- {label}  ({count:,} parameters, {count / parameters - 1:+.0%})" for label, count in options)
    return template("size_spot").substitute(parameters=f"{parameters:,}", options=lines)


def not_smaller(parameters: int, macs: int, parent_parameters: int, parent_macs: int) -> str:
    """Why a "fewer parameters" answer is retried."""
    return (
        template("too_large")
        .substitute(
            parameters=f"{parameters:,}",
            macs=f"{macs:,}",
            parent_parameters=f"{parent_parameters:,}",
            parent_macs=f"{parent_macs:,}",
        )
        .strip()
    )
