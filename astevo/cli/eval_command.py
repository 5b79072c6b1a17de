"""`astevo eval`: the fitness cascade on one model file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from astevo.cli.data_display import prepared_data, say_data
from astevo.cli.model_files import read_model
from astevo.cli.terminal import (
    DATA_HELP,
    DATASET_HELP,
    IMAGE_SIZE_HELP,
    JsonOption,
    console,
    errors,
    print_json,
    print_whole,
    user_errors,
)
from astevo.code.blocks import ModelFile, changed_blocks
from astevo.code.imports import add_missing_imports
from astevo.data.prepared import choose_dataset
from astevo.data.sources import FOLDER
from astevo.evaluation.base import MAC_UNIT, Evaluation, EvaluationRequest
from astevo.evaluation.cache import EvaluationCache
from astevo.runs import ExecutorChoice
from astevo.settings import FitnessSettings
from astevo.typed_records import build
from astevo.views.records import evaluation_record


@user_errors
def eval_command(
    model_file: Annotated[Path, typer.Argument(help="The model file to evaluate.", show_default=False)],
    dataset: Annotated[str | None, typer.Option(help=DATASET_HELP, show_default=False)] = None,
    data: Annotated[Path | None, typer.Option(help=DATA_HELP)] = None,
    image_size: Annotated[int | None, typer.Option(help=IMAGE_SIZE_HELP, show_default=False)] = None,
    epochs: Annotated[float, typer.Option(help="Training budget in epochs.")] = 1.0,
    max_images: Annotated[int | None, typer.Option(help="Training budget in images (overrides epochs).")] = None,
    max_seconds: Annotated[float, typer.Option(help="Time cap on training.")] = 600.0,
    batch_size: Annotated[int, typer.Option(help="Training batch size.")] = 128,
    limit_train: Annotated[int | None, typer.Option(help="Use only this many training images.")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    train: Annotated[bool, typer.Option(help="Train and validate, or stop after the fast checks.")] = True,
    against: Annotated[
        Path | None,
        typer.Option(help="Original model file: blocks that differ from it must keep its block-level shapes."),
    ] = None,
    max_parameters: Annotated[int | None, typer.Option(help="Reject models with more parameters.")] = None,
    max_macs: Annotated[int | None, typer.Option(help=f"Reject models with more {MAC_UNIT}.")] = None,
    gate: Annotated[bool, typer.Option(help="Run the static safety gate (the sandbox always runs).")] = True,
    cache: Annotated[bool, typer.Option(help="Reuse and store results in the evaluation cache.")] = True,
    json_output: JsonOption = False,
) -> None:
    """Run the fitness cascade on one model file; exit 0 if valid, 1 if not."""
    candidate = read_model(model_file)
    repair = add_missing_imports(candidate.source)  # as evolution does for its children
    reference: ModelFile | None = None
    rewritten: tuple[str, ...] = ()
    if against is not None:
        reference = read_model(against)
        rewritten = tuple(name for name in changed_blocks(reference, candidate) if name in reference.blocks)
    settings = build(
        FitnessSettings,
        {
            "dataset": dataset or choose_dataset(str(data) if data else None),
            "data_dir": str(data.resolve()) if data else None,  # the sandbox runs in another folder
            "image_size": image_size,
            "limit_train": limit_train,
            "train": train,
            "budget": {
                "epochs": epochs,
                "max_images": max_images,
                "max_seconds": max_seconds,
                "batch_size": batch_size,
                "training_seed": seed,
            },
            "max_parameters": max_parameters,
            "max_macs": max_macs,
            "safety_gate": gate,
        },
        "fitness",
    )
    if train or settings.dataset == FOLDER:
        say_data(prepared_data(settings))
    if repair.added:
        errors.print(
            f"note: {escape(str(model_file))} uses modules it does not import; evaluated with "
            f"{escape('; '.join(repair.added))} added at the top (the file itself is unchanged)",
            highlight=False,
            soft_wrap=True,
        )
    request = EvaluationRequest(
        str(model_file), repair.source, settings, reference.source if reference else None, rewritten
    )
    evaluator = ExecutorChoice(cache=EvaluationCache() if cache else None).make(1)
    with console.status("evaluating (build, probe and cost take a few seconds; training longer)"):
        (result,) = evaluator.evaluate([request])
    evaluator.close()
    evaluation = result.evaluation
    if json_output:
        print_json(evaluation_record(evaluation, rewritten, repair.added))
    else:
        print_evaluation(evaluation, rewritten)
    raise typer.Exit(0 if evaluation.valid else 1)


def print_evaluation(evaluation: Evaluation, rewritten: tuple[str, ...]) -> None:
    table = Table(title="fitness cascade" + (" (cached result)" if evaluation.cached else ""), title_justify="left")
    for column in ("stage", "result", "seconds", "reason"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for stage in evaluation.stages:
        result = "[green]passed[/]" if stage.ok else "[bold red]failed[/]"
        table.add_row(stage.name, result, f"{stage.seconds:.2f}", escape(stage.reason or ""))
    print_whole(table)
    if rewritten:
        console.print(f"block contracts checked for: {', '.join(rewritten)}")
    metrics = evaluation.metrics
    lines = []
    if "parameters" in metrics:
        lines.append(f"parameters: {metrics['parameters']:,}")
        lines.append(f"compute: {metrics['macs']:,} {MAC_UNIT} per image")
        if metrics.get("uncounted_ops"):
            lines.append(f"not counted: {', '.join(sorted(metrics['uncounted_ops']))}")
    if "val_accuracy" in metrics:
        lines.append(f"validation accuracy: {metrics['val_accuracy'] * 100:.2f}%")
        lines.append(
            f"training: {metrics['images_seen']:,} images in {metrics['train_seconds']:.1f} s "
            f"({metrics['images_per_second']:,.0f} images/s, stopped by {metrics['stopped_by']})"
        )
    failure = evaluation.failure
    verdict = "[green]valid[/]" if failure is None else f"[bold red]invalid[/] at {failure.name}"
    lines.append(f"verdict: {verdict}")
    console.print("\n".join(lines), highlight=False)
