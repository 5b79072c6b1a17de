"""The report's opening section: what the run found, each finding against the seed with its diff one click away."""

from __future__ import annotations

import html
from collections.abc import Sequence

from astevo.evolution import racing
from astevo.evolution.noise import Noise
from astevo.store.records import Individual
from astevo.views.run_view import block_diffs, format_count, format_difference, individual_accuracy, noise_line, origin

FINAL_NOTE = (
    "Validation accuracies come from one short training each: a difference within the noise is not an "
    "improvement. <code>astevo final</code> retrains the seed and the front with several seeds and compares "
    "them on the test split."
)


def findings_section(
    seed: Individual | None, targets: Sequence[Individual], best: Individual | None, noise: Noise | None
) -> str:
    """A table of the best individuals against the seed; each row opens its diff against the seed."""
    if seed is None or not targets:
        return "<p>No valid individual yet: nothing found so far.</p>\n"
    headers = ("individual", "", "val accuracy", "vs seed", "parameters", "vs seed", "changed from the seed (click)")
    rows = [_row(seed, target, best, noise) for target in targets]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    measured = f"{html.escape(noise_line(noise))}. " if noise is not None else ""
    return f"<p>{measured}{FINAL_NOTE}</p>\n<table><tr>{head}</tr>\n{''.join(rows)}</table>\n"


def _row(seed: Individual, target: Individual, best: Individual | None, noise: Noise | None) -> str:
    role = "best at or below the seed's size" if best and target.id == best.id else "on the Pareto front"
    if target.id == seed.id:
        role = "the seed itself"
    cells = [
        _cell(f"#{target.id}"),
        _cell(f"{role}; {origin(target)}"),
        _cell(individual_accuracy(target, noise), numeric=True),
        _cell(_points(target, seed, noise), numeric=True),
        _cell(format_count(target.parameters), numeric=True),
        _cell(_count_delta(target.parameters, seed.parameters), numeric=True),
        f"<td>{_diff(seed, target)}</td>",
    ]
    return f'<tr id="individual-{target.id}">{"".join(cells)}</tr>\n'


def _diff(seed: Individual, target: Individual) -> str:
    if seed.source is None or target.source is None or target.id == seed.id:
        return ""
    diffs = block_diffs(seed.source, target.source, "seed", f"#{target.id}")
    if not diffs:
        return "same code"
    text = "\n".join(d.diff for d in diffs)
    return (
        f"<details><summary>{html.escape(', '.join(d.name for d in diffs))}</summary>"
        f"<pre>{html.escape(text)}</pre></details>"
    )


def _cell(text: str, *, numeric: bool = False) -> str:
    return f'<td class="n">{html.escape(text)}</td>' if numeric else f"<td>{html.escape(text)}</td>"


def _points(target: Individual, seed: Individual, noise: Noise | None) -> str:
    if target.val_accuracy is None or seed.val_accuracy is None:
        return ""
    counts = (racing.trainings(target), racing.trainings(seed))
    return format_difference((target.val_accuracy - seed.val_accuracy) * 100, noise, counts)


def _count_delta(value: int | None, reference: int | None) -> str:
    return "" if value is None or reference is None else f"{value - reference:+,}"
