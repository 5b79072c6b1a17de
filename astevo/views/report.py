"""A run's report: two plots and one self-contained HTML page, readable while the run goes on.

The page embeds its plots, so it survives being mailed or copied on its own; the PNGs are
written next to it as well, for slides and papers.
"""

from __future__ import annotations

import base64
import html
import json
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from astevo.evaluation.base import MAC_UNIT
from astevo.evolution.noise import Noise
from astevo.evolution.selection import pareto_front
from astevo.store.records import EVALUATED, Individual
from astevo.store.run_store import RunStore
from astevo.views.report_findings import findings_section
from astevo.views.run_view import (
    best_individual,
    cost_label,
    cost_objective,
    format_accuracy,
    format_count,
    individual_accuracy,
    origin,
    run_figures,
    run_noise_of,
)
from astevo.views.size_changes import by_intent, summary_line

PARETO_PNG, GENERATIONS_PNG, REPORT_HTML = "pareto.png", "generations.png", "report.html"


@dataclass(frozen=True)
class GenerationStats:
    generation: int
    individuals: int
    evaluated: int
    valid: int
    best: float | None  # validation accuracy, 0..1
    median: float | None
    survivors: tuple[int, ...] | None  # None while the generation is unfinished

    @property
    def valid_share(self) -> float | None:
        return self.valid / self.evaluated if self.evaluated else None


def _accuracy(individual: Individual) -> float:
    """A valid individual's validation accuracy, which validity guarantees was measured."""
    accuracy = individual.val_accuracy
    assert accuracy is not None, f"valid individual #{individual.id} has no validation accuracy"
    return accuracy


def generation_stats(store: RunStore, individuals: Sequence[Individual]) -> list[GenerationStats]:
    """One row per generation seen so far: a running run's last generation shows how far it got."""
    rows = []
    for generation in sorted({i.generation for i in individuals}):
        members = [i for i in individuals if i.generation == generation]
        accuracies = [_accuracy(i) for i in members if i.valid]
        survivors = store.population(generation)
        rows.append(
            GenerationStats(
                generation,
                len(members),
                sum(i.status == EVALUATED for i in members),
                len(accuracies),
                max(accuracies, default=None),
                statistics.median(accuracies) if accuracies else None,
                None if survivors is None else tuple(survivors),
            )
        )
    return rows


def write_report(store: RunStore, out_dir: Path) -> Path:
    """Write pareto.png, generations.png and report.html into `out_dir`; return the HTML's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    individuals = store.individuals()
    cost = cost_objective(store)
    front = pareto_front(individuals, cost)
    stats = generation_stats(store, individuals)
    best = best_individual(store) if any(i.valid for i in individuals) else None
    seed = store.at(0, 0)
    noise = run_noise_of(store)
    _save(_pareto_figure(individuals, front, seed, cost), out_dir / PARETO_PNG)
    _save(_generations_figure(stats), out_dir / GENERATIONS_PNG)
    targets = ([best] if best else []) + [i for i in front if best is None or i.id != best.id]
    page = _page(
        store,
        [  # the answer first; how the run was set up last
            ("What the run found", findings_section(seed, targets, best, noise)),
            (
                "Pareto front",
                _figure(out_dir / PARETO_PNG, f"validation accuracy against {cost_label(cost)}")
                + _front_table(front, best, noise),
            ),
            ("Size changes", _size_section(individuals)),
            ("Generations", _figure(out_dir / GENERATIONS_PNG, "per generation") + _generations_table(stats, noise)),
            (
                "Lineage of the best individuals",
                "".join(_lineage(store, t, best, noise) for t in targets) or "<p>No valid individual yet.</p>",
            ),
            ("Run", _summary(store, individuals)),
        ],
    )
    path = out_dir / REPORT_HTML
    path.write_text(page, encoding="utf-8")
    return path


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)  # draws with Agg, without pyplot's global state
    figure.savefig(path, format="png", dpi=110)


def _pareto_figure(
    individuals: Sequence[Individual], front: Sequence[Individual], seed: Individual | None, cost: str
) -> Figure:
    figure = Figure(figsize=(7.5, 4.8), layout="constrained")
    axes = figure.add_subplot()
    valid = [i for i in individuals if i.valid]
    axes.set_xlabel(f"{cost_label(cost)} (log scale)")
    axes.set_ylabel("validation accuracy (%)")
    if not valid:
        axes.text(0.5, 0.5, "no valid individual yet", ha="center", va="center", transform=axes.transAxes)
        return figure
    axes.scatter(
        [i.metrics[cost] for i in valid],
        [_accuracy(i) * 100 for i in valid],
        s=18,
        color="0.6",
        label="valid individuals",
    )
    axes.plot(
        [i.metrics[cost] for i in front], [_accuracy(i) * 100 for i in front], "-o", color="C1", label="Pareto front"
    )
    for member in front:
        axes.annotate(
            f"#{member.id}",
            (member.metrics[cost], _accuracy(member) * 100),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    if seed is not None and seed.valid:
        axes.scatter(
            [seed.metrics[cost]], [_accuracy(seed) * 100], marker="*", s=220, color="C0", zorder=3, label="seed"
        )
    if all(i.metrics[cost] > 0 for i in valid):
        axes.set_xscale("log")
    axes.legend(loc="lower right")
    return figure


def _generations_figure(stats: Sequence[GenerationStats]) -> Figure:
    figure = Figure(figsize=(7.5, 5.2), layout="constrained")
    counts, accuracy = figure.subplots(2, 1, sharex=True)
    generations = [s.generation for s in stats]
    counts.bar(generations, [s.evaluated for s in stats], color="0.75", label="evaluated")
    counts.set_ylabel("evaluated individuals")
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    share = counts.twinx()
    share.plot(generations, [_percent(s.valid_share) for s in stats], "-o", color="C2", label="valid share")
    share.set_ylabel("valid share (%)")
    share.set_ylim(0, 105)
    accuracy.plot(generations, [_percent(s.best) for s in stats], "-o", color="C1", label="best")
    accuracy.plot(generations, [_percent(s.median) for s in stats], "--s", color="C0", label="median")
    accuracy.set_ylabel("validation accuracy (%)")
    accuracy.set_xlabel("generation")
    accuracy.set_xticks(generations)
    accuracy.legend(loc="lower right")
    figure.legend(
        loc="outside upper center",
        ncols=2,
        handles=[*counts.get_legend_handles_labels()[0], *share.get_legend_handles_labels()[0]],
    )
    return figure


def _percent(value: float | None) -> float:
    return float("nan") if value is None else value * 100  # a gap in the line


def _page(store: RunStore, sections: Iterable[tuple[str, str]]) -> str:
    title = html.escape(f"astevo run {store.folder}")
    body = "".join(f"<h2>{html.escape(name)}</h2>\n{content}\n" for name, content in sections)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1.5rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }}
td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
figure {{ margin: 1rem 0; }} img {{ max-width: 100%; }}
</style></head>
<body><h1>{title}</h1>
{body}</body></html>
"""


def _figure(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    name = html.escape(path.name)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f'<figcaption>{html.escape(caption)} (<a href="{name}">{name}</a>)</figcaption></figure>\n'
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[str] = ()) -> str:
    """An HTML table; every cell is escaped, columns named in `numeric` are right-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    cell_tags = ['<td class="n">' if h in numeric else "<td>" for h in headers]
    body = "".join(
        "<tr>"
        + "".join(f"{tag}{html.escape(str(cell))}</td>" for tag, cell in zip(cell_tags, row, strict=True))
        + "</tr>\n"
        for row in rows
    )
    return f"<table><tr>{head}</tr>\n{body}</table>\n"


def _flatten(record: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as dotted keys, e.g. fitness.budget.epochs."""
    if not isinstance(record, dict):
        return [(prefix, record if isinstance(record, str) else json.dumps(record))]
    return [pair for key, value in record.items() for pair in _flatten(value, f"{prefix}.{key}" if prefix else key)]


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _when(timestamp: float | None) -> str:
    return "" if timestamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def _summary(store: RunStore, individuals: Sequence[Individual]) -> str:
    meta = store.meta()
    figures = run_figures(individuals)
    run = [
        ("folder", str(store.folder)),
        ("seed file", str(meta.get("seed_file", ""))),
        ("started", _when(meta.get("started"))),
        ("finished", _when(meta["finished"]) if "finished" in meta else "still running (or stopped early)"),
        ("offspring", f"{figures.offspring} ({figures.pending} pending, {figures.discarded} discarded)"),
        (
            "evaluations",
            f"{figures.evaluations} (identical code reused, not counted; "
            f"{figures.from_cache} more taken from the evaluation cache of earlier runs)",
        ),
        (
            "valid share of offspring",
            f"{figures.valid} of {figures.offspring}" + (f" ({figures.valid_share:.0%})" if figures.offspring else ""),
        ),
        ("mean seconds per evaluation", _seconds(figures.seconds_per_evaluation)),
        ("mean seconds per proposal", _seconds(figures.seconds_per_proposal)),
    ]
    return (
        _table(("run", ""), run)
        + _table(("data", ""), _data_rows(meta.get("data")))
        + _table(("model", ""), _flatten(meta.get("model") or {"path": "none recorded"}))
        + _table(("versions", ""), _flatten(meta.get("versions", {})))
        + _table(("configuration", ""), _flatten(meta.get("config", {})))
    )


def _data_rows(record: dict[str, Any] | None) -> list[tuple[str, str]]:
    if record is None:
        return [("data set", "not recorded (a run made before astevo recorded its data)")]
    channels, side, _ = record["shape"]
    rows = [
        ("data set", record["dataset"]),
        ("folder", record["folder"]),
        ("classes", f"{len(record['classes'])}: {', '.join(record['classes'])}"),
        ("shape", f"{channels} x {side} x {side}"),
        ("images", ", ".join(f"{split} {count:,}" for split, count in record["images"].items())),
    ]
    return rows + ([("conversion", record["conversion"])] if record["conversion"] else [])


def _size_section(individuals: Sequence[Individual]) -> str:
    """How many children got smaller, stayed or grew, and how each intent moved size."""
    lines = [summary_line(individuals), *(sizes.line() for sizes in by_intent(individuals))]
    return "".join(f"<p>{html.escape(line)}</p>" for line in lines)


def _generations_table(stats: Sequence[GenerationStats], noise: Noise | None) -> str:
    headers = (
        "generation",
        "individuals",
        "evaluated",
        "valid",
        "valid share",
        "best val accuracy",
        "median val accuracy",
        "survivors",
    )
    rows = [
        (
            s.generation,
            s.individuals,
            s.evaluated,
            s.valid,
            "" if s.valid_share is None else f"{s.valid_share:.0%}",
            format_accuracy(s.best, noise),
            format_accuracy(s.median, noise),
            "unfinished" if s.survivors is None else " ".join(f"#{i}" for i in s.survivors),
        )
        for s in stats
    ]
    return _table(headers, rows, numeric=headers[:7])


def _front_table(front: Sequence[Individual], best: Individual | None, noise: Noise | None) -> str:
    if not front:
        return "<p>No valid individual yet, so no front.</p>\n"
    headers = ("individual", "origin", "val accuracy", "parameters", MAC_UNIT, "changed blocks", "")
    rows = [
        (
            f"#{i.id}",
            origin(i),
            individual_accuracy(i, noise),
            format_count(i.parameters),
            format_count(i.macs),
            ", ".join(i.blocks),
            "best" if best and i.id == best.id else "",
        )
        for i in front
    ]
    return _table(headers, rows, numeric=("val accuracy", "parameters", MAC_UNIT))


def _lineage(store: RunStore, target: Individual, best: Individual | None, noise: Noise | None) -> str:
    """The chain of first parents from the seed to `target`, one row per step."""
    role = "best" if best and target.id == best.id else "on the Pareto front"
    accuracy = individual_accuracy(target, noise)
    heading = f"#{target.id} ({role}): {accuracy}, {format_count(target.parameters)} parameters"
    headers = ("individual", "origin", "intent", "changed blocks", "val accuracy", "parameters")
    rows = [
        (
            f"#{i.id}",
            origin(i),
            i.intent or "",
            ", ".join(i.blocks),
            individual_accuracy(i, noise),
            format_count(i.parameters),
        )
        for i in reversed(list(store.lineage(target.id)))
    ]
    return f"<h3>{html.escape(heading)}</h3>\n" + _table(headers, rows, numeric=("val accuracy", "parameters"))
