"""Reading a run back: which individual is meant, what it changed, what that did to its metrics.

Pure functions over a RunStore, shared by `astevo diff`, `show`, `export` and `report`, so that
every view of a run names, compares and formats individuals the same way.
"""

from __future__ import annotations

import difflib
import io
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import astevo
from astevo.code.blocks import ModelFile, changed_blocks
from astevo.code.imports import preamble_end
from astevo.code.syntax import parse_module
from astevo.errors import AstevoError
from astevo.evaluation.base import MAC_UNIT
from astevo.evolution import racing
from astevo.evolution.noise import Noise, run_noise
from astevo.evolution.selection import best_within_seed_cost
from astevo.store.records import DISCARDED, EVALUATED, PENDING, Individual
from astevo.store.run_store import RunStore

MODULE = "(module)"  # the pseudo-block: the file's text outside every block
REFERENCES = "an individual's id (a number), 'seed' or 'best'"


def cost_objective(store: RunStore) -> str:
    """The run's second objective, "parameters" or "macs"."""
    return store.config().cost


@dataclass(frozen=True)
class RunFigures:
    """A run's headline figures, defined once for the closing summary of `evolve` and the report."""

    offspring: int  # everything after the seed, evaluated or not
    valid: int  # offspring that passed every stage
    pending: int
    discarded: int  # offspring with no usable code (the operator failed or the child was unusable)
    evaluations: int  # cascade runs in this run: identical code reused and results from the cache excluded
    from_cache: int  # evaluations taken from the cross-run cache (measured by an earlier run)
    seconds_per_evaluation: float | None
    seconds_per_proposal: float | None

    @property
    def valid_share(self) -> float | None:
        return self.valid / self.offspring if self.offspring else None


def run_figures(individuals: Sequence[Individual]) -> RunFigures:
    offspring = [i for i in individuals if i.operator != "seed"]
    evaluated = [i for i in individuals if i.status == EVALUATED and i.reused_from is None]
    measured = [i.evaluate_seconds for i in evaluated if not i.cached]
    proposals = [i.propose_seconds for i in offspring]
    return RunFigures(
        offspring=len(offspring),
        valid=sum(i.valid for i in offspring),
        pending=sum(i.status == PENDING for i in offspring),
        discarded=sum(i.status == DISCARDED for i in offspring),
        evaluations=len(measured),
        from_cache=sum(i.cached for i in evaluated),
        seconds_per_evaluation=statistics.fmean(measured) if measured else None,
        seconds_per_proposal=statistics.fmean(proposals) if proposals else None,
    )


def cost_label(cost: str) -> str:
    return MAC_UNIT if cost == "macs" else cost


def seed_individual(store: RunStore) -> Individual:
    seed = store.at(0, 0)
    if seed is None:
        raise AstevoError(f"run {store.folder} has no seed individual yet")
    return seed


def best_individual(store: RunStore) -> Individual:
    """The most accurate valid individual that costs no more than the seed; else the most accurate one.

    Accuracy bought with a bigger model is no improvement on the seed, so the cost cap comes
    first; a run whose seed is not (yet) valid falls back to accuracy alone.
    """
    cost = cost_objective(store)
    individuals = store.individuals()
    valid = [i for i in individuals if i.valid]
    if not valid:
        raise AstevoError(f"run {store.folder} has no valid individual yet; `astevo show {store.folder}` lists them")
    return best_within_seed_cost(individuals, cost) or max(
        valid, key=lambda i: (i.val_accuracy, -i.metrics[cost], -i.id)
    )


def resolve(store: RunStore, ref: str | None) -> Individual:
    """The individual a user names: "seed", "best" (also when nothing is named) or an id."""
    if ref is None or ref == "best":
        return best_individual(store)
    if ref == "seed":
        return seed_individual(store)
    if not ref.isdecimal():
        raise AstevoError(f"{ref!r} names no individual; give {REFERENCES}")
    return store.individual(int(ref))


def origin(individual: Individual) -> str:
    """How an individual came about, e.g. "generation 2, crossover of #3 and #5"."""
    made = individual.operator
    if individual.parents:
        made += " of " + " and ".join(f"#{p}" for p in individual.parents)
    return f"generation {individual.generation}, {made}"


def describe(individual: Individual) -> str:
    return f"#{individual.id} ({origin(individual)})"


def run_noise_of(store: RunStore) -> Noise | None:
    """The run's measured noise (None before the seed is stored)."""
    seed = store.at(0, 0)
    return None if seed is None else run_noise(store, seed)


def format_accuracy(value: float | None, noise: Noise | None = None, trainings: int = 1) -> str:
    """A validation accuracy, the mean of `trainings`; with the run's noise, its standard error beside it."""
    if value is None:
        return ""
    std = noise.std if noise is not None else None
    return f"{value * 100:.2f}%" if std is None else f"{value * 100:.2f}% ±{std * 100 / math.sqrt(trainings):.2f}"


def individual_accuracy(individual: Individual, noise: Noise | None) -> str:
    """The individual's validation accuracy (a mean when racing trained it again) with its standard error."""
    return format_accuracy(individual.val_accuracy, noise, racing.trainings(individual))


def format_difference(points: float, noise: Noise | None, trainings: tuple[int, int] = (1, 1)) -> str:
    """A difference of two means of so many trainings, in percentage points, said to be within noise when it is."""
    within = noise.within(points / 100, trainings) if noise is not None else None
    text = f"{points:+.2f} points"
    return text if within is None else f"{text}, {'within noise' if within else 'beyond noise'}"


def noise_line(noise: Noise) -> str:
    """What the run measured of its noise, in one line."""
    if noise.std is None or noise.margin is None:
        return (
            f"noise: not measured yet ({len(noise.accuracies)} training of the seed so far); a single training varies "
            "by a few points, so small differences are not improvements"
        )
    accuracies = ", ".join(f"{value * 100:.2f}%" for value in noise.accuracies)
    if noise.std == 0:
        return (
            f"noise: the seed's validation accuracy over {len(noise.accuracies)} training seeds was {accuracies}, "
            "the same every time: this budget cannot tell any two models apart"
        )
    return (
        f"noise: the seed's validation accuracy over {len(noise.accuracies)} training seeds was {accuracies} "
        f"(std {noise.std * 100:.2f} points); two single evaluations that differ by less than "
        f"{noise.margin * 100:.2f} points (two standard errors) are within noise"
    )


def format_count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def require_source(individual: Individual) -> str:
    if individual.source is None:
        raise AstevoError(
            f"individual #{individual.id} has no code: it was {individual.status} "
            f"({individual.reason or 'no reason recorded'})"
        )
    return individual.source


def metric_deltas(before: Individual, after: Individual) -> dict[str, float | int | None]:
    """`after` minus `before`: val_accuracy in percentage points, parameters and macs in units; None if unknown."""
    deltas: dict[str, float | int | None] = {}
    for key, scale in (("val_accuracy", 100), ("parameters", 1), ("macs", 1)):
        old, new = before.metrics.get(key), after.metrics.get(key)
        deltas[key] = None if old is None or new is None else (new - old) * scale
    return deltas


@dataclass(frozen=True)
class BlockDiff:
    """One block's change between two model files."""

    name: str  # the block's name, or MODULE
    change: str  # "changed", "added" or "removed"
    diff: str  # unified diff whose hunk headers give line numbers as in each whole file


def block_diffs(before: str, after: str, before_label: str = "before", after_label: str = "after") -> list[BlockDiff]:
    """Per-block unified diffs: the blocks whose text differs, added and removed ones, then the module text.

    A whole-file diff runs hunks across block boundaries; diffing block by block keeps each
    change attributed to the block evolution rewrote.
    """
    old, new = ModelFile(before, before_label), ModelFile(after, after_label)
    changed = set(changed_blocks(old, new))
    names = [name for name in [*old.blocks, *new.blocks] if name in changed or name not in new.blocks]
    diffs = []
    for name in dict.fromkeys(names):
        was, now = old.blocks.get(name), new.blocks.get(name)
        change = "added" if was is None else "removed" if now is None else "changed"
        old_numbers = range(was.first_line, was.first_line + len(_lines(was.source))) if was else range(0)
        new_numbers = range(now.first_line, now.first_line + len(_lines(now.source))) if now else range(0)
        diffs.append(
            BlockDiff(
                name,
                change,
                _numbered_diff(
                    was.source if was else "",
                    now.source if now else "",
                    old_numbers,
                    new_numbers,
                    _label(before_label, name, old_numbers),
                    _label(after_label, name, new_numbers),
                ),
            )
        )
    old_outside, new_outside = _outside_blocks(old), _outside_blocks(new)
    if [text.rstrip() for _, text in old_outside] != [text.rstrip() for _, text in new_outside]:
        diffs.append(
            BlockDiff(
                MODULE,
                "changed",
                _numbered_diff(
                    "".join(text for _, text in old_outside),
                    "".join(text for _, text in new_outside),
                    [n for n, _ in old_outside],
                    [n for n, _ in new_outside],
                    f"{before_label}: {MODULE}, lines outside blocks",
                    f"{after_label}: {MODULE}, lines outside blocks",
                ),
            )
        )
    return diffs


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)  # as unified_diff splits


def _label(label: str, name: str, numbers: range) -> str:
    return f"{label}: {name}, lines {numbers[0]}-{numbers[-1]}" if numbers else f"{label}: {name} (absent)"


def _outside_blocks(model: ModelFile) -> list[tuple[int, str]]:
    """The file's non-blank lines that belong to no block, each with its line number.

    Blank lines between blocks come and go with the blocks: they are no module change of their own.
    """
    inside = {
        n
        for block in model.blocks.values()
        for n in range(block.first_line, block.first_line + len(_lines(block.source)))
    }
    return [(n, text) for n, text in enumerate(_lines(model.source), start=1) if n not in inside and text.strip()]


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def _numbered_diff(
    before: str,
    after: str,
    before_numbers: Sequence[int],
    after_numbers: Sequence[int],
    before_label: str,
    after_label: str,
) -> str:
    """A unified diff of two excerpts whose hunk headers start at line numbers of the excerpts' files.

    `*_numbers[i]` is the file line number of the excerpt's line i + 1; counts stay counts of
    excerpt lines (exact for a block, which is contiguous).
    """

    def side(start: str, count: str | None, numbers: Sequence[int]) -> str:
        first = int(start)  # 0 only for an insertion before the excerpt's first line
        line = numbers[first - 1] if first else (numbers[0] - 1 if numbers else 0)
        return f"{line},{1 if count is None else count}"

    return _HUNK.sub(
        lambda m: f"@@ -{side(m[1], m[2], before_numbers)} +{side(m[3], m[4], after_numbers)} @@",
        unified_diff(before, after, before_label, after_label),
    )


_LINE_BREAKS = re.compile(r"[\r\n]+")


def export_source(store: RunStore, individual: Individual) -> str:
    """The individual's model file with a header comment saying where it came from.

    The header goes after the module docstring and `from __future__` imports (and a shebang
    or coding line), where a comment changes neither what the file does nor its blocks.
    """
    source = require_source(individual)
    header = [
        f"Exported by astevo {astevo.__version__} from run {store.folder.resolve()}",
        f"individual #{individual.id}, generation {individual.generation}, operator {individual.operator}"
        + (f" (parents {', '.join(f'#{p}' for p in individual.parents)})" if individual.parents else ""),
        f"val accuracy {format_accuracy(individual.val_accuracy) or 'not measured'}, "
        f"{format_count(individual.parameters) or 'unknown'} parameters, "
        f"{format_count(individual.macs) or 'unknown'} {MAC_UNIT} per image",
    ]
    comment = "".join("# " + _LINE_BREAKS.sub(" ", line) + "\n" for line in header)  # a path may hold a newline
    lines = io.StringIO(source, newline="").readlines()  # as Python numbers lines
    at = _header_line(source, lines)
    before = "".join(lines[:at])
    if before and not before.endswith(("\n", "\r")):
        before += "\n"
    return before + comment + "".join(lines[at:])


def _header_line(source: str, lines: list[str]) -> int:
    """How many leading lines the header must follow."""
    try:
        tree = parse_module(source)
    except SyntaxError as error:
        raise AstevoError(
            f"this individual's code does not parse (line {error.lineno}: {error.msg}); "
            "there is no model file to export"
        ) from None
    return preamble_end(tree, lines)


def unified_diff(before: str, after: str, before_label: str, after_label: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), before_label, after_label
        )
    )
