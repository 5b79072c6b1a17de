"""`astevo diff`, `show` and `export`: reading a run, finished or still going, from the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from astevo.cli.terminal import JsonOption, code_view, console, print_json, print_whole, user_errors
from astevo.code.blocks import ModelFile
from astevo.data.prepared import data_line
from astevo.errors import AstevoError
from astevo.evaluation.base import MAC_UNIT
from astevo.evolution import racing
from astevo.evolution.noise import Noise
from astevo.store.records import Individual
from astevo.store.run_store import RunStore
from astevo.views.records import individual_record, run_record, status
from astevo.views.run_view import (
    REFERENCES,
    block_diffs,
    describe,
    export_source,
    format_accuracy,
    format_count,
    format_difference,
    individual_accuracy,
    metric_deltas,
    noise_line,
    require_source,
    resolve,
    run_noise_of,
    unified_diff,
)
from astevo.views.size_changes import by_intent, summary_line

RunArgument = Annotated[Path, typer.Argument(help="The run folder (holds run.sqlite).", show_default=False)]
REASON_WIDTH = 60


@user_errors
def diff(
    run: RunArgument,
    individual: Annotated[
        str | None, typer.Argument(help=f"The changed individual: {REFERENCES} (default: best).", show_default=False)
    ] = None,
    other: Annotated[
        str | None,
        typer.Argument(help=f"What to compare it with: {REFERENCES} (default: its first parent).", show_default=False),
    ] = None,
    full: Annotated[bool, typer.Option(help="One diff of the whole files instead of one per changed block.")] = False,
) -> None:
    """Show what an individual changed, block by block, and what that did to accuracy and cost."""
    with RunStore.open(run) as store:
        after = resolve(store, individual)
        if other is None and not after.parents:
            console.print(
                f"#{after.id} is the seed: it has no parent to compare with; name another individual as OTHER",
                highlight=False,
            )
            return
        before = store.individual(after.parents[0]) if other is None else resolve(store, other)
        noise = run_noise_of(store)
    old, new = require_source(before), require_source(after)
    diffs = block_diffs(old, new, f"#{before.id}", f"#{after.id}")
    console.print(
        f"[bold]{escape(describe(after))}[/] against {escape(describe(before))}: {status(after)}"
        + (f" ({escape(after.reason)})" if after.reason else ""),
        highlight=False,
        soft_wrap=True,
    )
    if after.intent:
        console.print(f"intent: {escape(after.intent)}", highlight=False, soft_wrap=True)
    console.print(f"changed blocks: {escape(', '.join(d.name for d in diffs)) or 'none'}", highlight=False)
    console.print(_metric_line(before, after, noise), highlight=False)
    if not diffs:
        console.print(f"#{before.id} and #{after.id} have the same code")
    elif full:
        print_whole(code_view(unified_diff(old, new, f"#{before.id}", f"#{after.id}"), "diff"))
    else:
        for change in diffs:
            console.rule(f"{escape(change.name)} ({change.change})")
            print_whole(code_view(change.diff, "diff"))


def _metric_line(before: Individual, after: Individual, noise: Noise | None) -> str:
    """Each metric with its change: green where it got better, red where worse; an accuracy change within
    the run's noise is neither."""
    deltas = metric_deltas(before, after)
    counts = (racing.trainings(before), racing.trainings(after))
    shown = (
        ("val_accuracy", "val accuracy", individual_accuracy(after, noise), 1),
        ("parameters", "parameters", format_count(after.parameters), -1),
        ("macs", MAC_UNIT, format_count(after.macs), -1),
    )
    return "   ".join(
        f"{name} {value or 'n/a'} ({_coloured(deltas[key], better_sign, key == 'val_accuracy', noise, counts)})"
        for key, name, value, better_sign in shown
    )


def _coloured(
    delta: float | None, better_sign: int, points: bool, noise: Noise | None, trainings: tuple[int, int]
) -> str:
    """A change (of accuracy when `points`, in percentage points, weighed against the noise)."""
    if delta is None:
        return "n/a"
    if delta == 0:
        return "unchanged"
    text = format_difference(delta, noise, trainings) if points else f"{delta:+,}"
    if points and noise is not None and noise.within(delta / 100, trainings):
        return text
    return f"[{'green' if delta * better_sign > 0 else 'red'}]{text}[/]"


@user_errors
def show(
    run: RunArgument,
    individual: Annotated[
        str | None,
        typer.Argument(help=f"Show one in detail: {REFERENCES} (default: a table of all).", show_default=False),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """List a run's individuals, or show one: origin, intent, stages, metrics, model calls and changed blocks."""
    with RunStore.open(run) as store:
        if json_output:
            print_json(
                run_record(store)
                if individual is None
                else individual_record(resolve(store, individual), with_text=True)
            )
        elif individual is None:
            print_whole(_individuals_table(store))
            data = store.meta().get("data")
            if data is not None:
                console.print(data_line(data), highlight=False, soft_wrap=True, markup=False)
            everyone = store.individuals(with_text=True)
            console.print(summary_line(everyone), highlight=False, soft_wrap=True)
            noise = run_noise_of(store)
            if noise is not None:
                console.print(noise_line(noise), highlight=False, soft_wrap=True)
            for sizes in by_intent(everyone):
                console.print(sizes.line(), highlight=False, soft_wrap=True)
        else:
            _details(resolve(store, individual), run_noise_of(store))


def _individuals_table(store: RunStore) -> Table:
    everyone = store.individuals()
    noise = run_noise_of(store)
    table = Table(title=f"run {escape(str(store.folder))}: {len(everyone)} individuals", title_justify="left")
    for column in ("id", "gen", "operator", "blocks", "status", "val acc", "parameters", MAC_UNIT, "reason"):
        numeric = column in ("id", "gen", "val acc", "parameters", MAC_UNIT)
        table.add_column(column, justify="right" if numeric else "left")
    for i in everyone:
        reason = i.reason or ""
        if len(reason) > REASON_WIDTH and console.is_terminal:  # a pipe or a file gets every reason whole
            reason = reason[: REASON_WIDTH - 1] + "…"
        table.add_row(
            str(i.id),
            str(i.generation),
            i.operator,
            escape(", ".join(i.blocks)),
            status(i),
            individual_accuracy(i, noise),
            format_count(i.parameters),
            format_count(i.macs),
            escape(reason),
        )
    return table


def _details(individual: Individual, noise: Noise | None) -> None:
    console.print(f"[bold]{escape(describe(individual))}[/]: {status(individual)}", highlight=False)
    for label, value in (
        ("intent", individual.intent),
        ("changed blocks", ", ".join(individual.blocks)),
        ("reason", individual.reason),
        ("evaluation reused from", None if individual.reused_from is None else f"#{individual.reused_from}"),
    ):
        if value:
            console.print(f"{label}: {escape(str(value))}", highlight=False, soft_wrap=True)
    console.print(
        f"seconds: proposing {individual.propose_seconds:.1f}, evaluating {individual.evaluate_seconds:.1f}",
        highlight=False,
    )
    if individual.stages:
        stages = Table(title="fitness cascade", title_justify="left")
        for column in ("stage", "result", "seconds", "reason"):
            stages.add_column(column, justify="right" if column == "seconds" else "left")
        for stage in individual.stages:
            stages.add_row(
                stage["name"],
                "[green]passed[/]" if stage["ok"] else "[bold red]failed[/]",
                f"{stage.get('seconds', 0):.2f}",
                escape(stage.get("reason") or ""),
            )
        print_whole(stages)
    for key, value in individual.metrics.items():
        console.print(f"{escape(_metric_name(key))}: {escape(_metric_value(key, value, noise))}", highlight=False)
    console.print(f"model calls: {len(individual.exchanges)}", highlight=False)
    if individual.exchanges:
        last = individual.exchanges[-1]
        console.rule(f"last answer ({escape(str(last.get('purpose', 'answer')))})")
        console.print(Text(str(last.get("answer", ""))))
    _changed_blocks(individual)


def _metric_name(key: str) -> str:
    return MAC_UNIT if key == "macs" else key.replace("_", " ")


def _metric_value(key: str, value: object, noise: Noise | None) -> str:
    if key.endswith("accuracy") and isinstance(value, float):
        return format_accuracy(value, noise if key == "val_accuracy" else None)
    if isinstance(value, int) and not isinstance(value, bool):
        return format_count(value)
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _changed_blocks(individual: Individual) -> None:
    if individual.source is None or not individual.blocks:
        return
    try:
        blocks = ModelFile(individual.source, f"#{individual.id}").blocks
    except AstevoError as error:
        console.print(f"its code does not parse: {escape(str(error))}", highlight=False, soft_wrap=True)
        return
    for name in individual.blocks:
        block = blocks.get(name)
        if block is not None:
            console.rule(f"{escape(name)}, lines {block.first_line}-{block.last_line}")
            print_whole(code_view(block.source.rstrip("\n"), "python", block.first_line))


@user_errors
def export(
    run: RunArgument,
    individual: Annotated[str, typer.Argument(help=f"The individual to export: {REFERENCES}.", show_default=False)],
    output: Annotated[Path, typer.Option("-o", "--output", help="The model file to write.", show_default=False)],
    force: Annotated[bool, typer.Option(help="Overwrite OUTPUT if it exists.")] = False,
) -> None:
    """Write an individual's model file, with a header saying where it came from, to use outside astevo."""
    with RunStore.open(run) as store:
        chosen = resolve(store, individual)
        text = export_source(store, chosen)
    try:
        with output.open("w" if force else "x", encoding="utf-8", newline="") as stream:
            stream.write(text)
    except FileExistsError:
        raise AstevoError(f"{output} already exists; add --force to overwrite it, or choose another --output") from None
    except OSError as error:
        raise AstevoError(f"cannot write {output}: {error.strerror}") from None
    console.print(f"wrote {escape(describe(chosen))} to {escape(str(output))}", highlight=False, soft_wrap=True)
