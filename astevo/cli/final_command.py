"""`astevo final`: the seed and the Pareto front retrained on the whole training split, compared on test accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from astevo.cli.data_display import prepared_data, say_data
from astevo.cli.slot_choice import AUTO, resumed_slots, workers_flag
from astevo.cli.terminal import EXECUTOR_HELP, RAY_ADDRESS_HELP, console, print_whole, user_errors
from astevo.evaluation.base import MAC_UNIT
from astevo.evolution.data_check import check_data
from astevo.evolution.final import FinalSummary, final_evaluation, label
from astevo.runs import ExecutorChoice
from astevo.settings import FinalSettings
from astevo.store.records import FinalResult
from astevo.store.run_store import RunStore


@user_errors
def final(
    run: Annotated[Path, typer.Argument(help="The run folder (holds run.sqlite).", show_default=False)],
    seeds: Annotated[int, typer.Option(help="Training seeds per individual: the spread is part of the answer.")] = 3,
    epochs: Annotated[float | None, typer.Option(help="Training epochs (default: the run's own).")] = None,
    max_seconds: Annotated[
        float, typer.Option(help="Time cap per training, a safety net (trainings it cuts short are flagged).")
    ] = FinalSettings.max_seconds,
    workers: Annotated[
        str,
        typer.Option(
            help="Trainings side by side in local slots: auto (the run's own choice) or a count. Results do not "
            "depend on it."
        ),
    ] = AUTO,
    executor: Annotated[str, typer.Option(help=EXECUTOR_HELP)] = "local",
    ray_address: Annotated[str | None, typer.Option(help=RAY_ADDRESS_HELP, show_default=False)] = None,
) -> None:
    """Retrain the seed and the Pareto front with several seeds and report test accuracy: the unbiased comparison."""
    settings = FinalSettings(seeds=seeds, epochs=epochs, max_seconds=max_seconds)
    where = ExecutorChoice(executor, workers_flag(workers), ray_address)
    with RunStore.open(run) as store:
        check_data(store)
        say_data(prepared_data(store.config().fitness))
        trainings = where.make(resumed_slots(store, where.slots) if where.local else 0)
        try:
            summaries = final_evaluation(store, settings, trainings, on_result=lambda result: _progress(store, result))
        finally:
            trainings.close()
    print_whole(_table(summaries, settings.seeds))
    for summary in summaries:
        for failure in summary.failures:
            console.print(f"{summary.label} failed, {escape(failure)}", highlight=False, soft_wrap=True)
        if summary.stopped_by_time:
            console.print(
                f"{summary.label}: {summary.stopped_by_time} training(s) stopped by the time cap before the "
                "planned epochs; raise --max-seconds for a full training",
                highlight=False,
                soft_wrap=True,
            )


def _progress(store: RunStore, result: FinalResult) -> None:
    metrics = result.metrics
    if "error" in metrics:
        outcome = f"failed: {escape(metrics['error'])}"
    else:
        outcome = (
            f"test {metrics['test_accuracy'] * 100:.2f}%, val {metrics['val_accuracy'] * 100:.2f}%, "
            f"{metrics['images_seen']:,} images, stopped by {metrics['stopped_by']}"
        )
    console.print(
        f"{label(store.individual(result.individual))}, training seed {result.training_seed}: {outcome} "
        f"({result.seconds:.1f} s)",
        highlight=False,
        soft_wrap=True,
    )


def _table(summaries: list[FinalSummary], seeds: int) -> Table:
    table = Table(title="final evaluation on the test split", title_justify="left")
    columns = (
        "individual",
        "parameters",
        MAC_UNIT,
        "val acc (search)",
        f"test acc (mean ± std, {seeds} seeds)",
        "Δ test vs seed",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "individual" else "right")
    for s in summaries:
        if s.test_accuracy is None or s.test_std is None:  # both are None exactly when every training failed
            test = "failed"
        else:
            test = f"{s.test_accuracy * 100:.2f} ± {s.test_std * 100:.2f}%"
        if s.test_accuracy is not None and s.seeds < seeds:
            test += f" ({s.seeds} of {seeds})"
        table.add_row(
            s.label,
            _count(s.parameters),
            _count(s.macs),
            _percent(s.search_val_accuracy),
            test,
            "-" if s.delta_vs_seed is None else f"{s.delta_vs_seed * 100:+.2f} pp",
        )
    return table


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"
