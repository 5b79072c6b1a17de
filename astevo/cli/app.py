"""The `astevo` command line: thin typer commands over the library's public functions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import JustifyMethod
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from astevo.cli.evolve_command import evolve
from astevo.cli.final_command import final
from astevo.cli.report_command import report
from astevo.cli.run_commands import diff, export, show
from astevo.cli.terminal import console, errors, user_errors
from astevo.code.blocks import ModelFile, changed_blocks
from astevo.data.sources import require_dataset
from astevo.errors import AstevoError
from astevo.evaluation.anatomy import Anatomy, inspect_model
from astevo.evaluation.base import MAC_UNIT, Evaluation
from astevo.evaluation.cache import EvaluationCache
from astevo.evaluation.cascade import evaluate
from astevo.evolution.proposals import block_proposals
from astevo.paths import default_seed_path
from astevo.settings import DATASET_NAMES, FitnessSettings, MutationSettings, build
from astevo.views.run_view import unified_diff

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Evolve neural-network source code with a local LLM."
)

SeedArgument = Annotated[
    Path | None, typer.Argument(help="Model file (default: the bundled ExquisiteNetV2 seed).", show_default=False)
]


def read_model(path: Path | None) -> ModelFile:
    return ModelFile.read(path or default_seed_path())


@app.command()
@user_errors
def blocks(seed_file: SeedArgument = None) -> None:
    """List the file's blocks: kind, lines, how often the model builds them, parameters, dependencies."""
    model_file = read_model(seed_file)
    anatomy: Anatomy | None = None
    try:
        anatomy = inspect_model(model_file)
    except AstevoError as error:
        errors.print(
            f"[yellow]note:[/] {escape(str(error))}; parameter counts are left blank", highlight=False, soft_wrap=True
        )
    table = Table(title=model_file.origin, title_justify="left")
    columns: list[tuple[str, JustifyMethod]] = [
        ("block", "left"),
        ("kind", "left"),
        ("lines", "right"),
        ("built", "right"),
        ("parameters", "right"),
        ("uses", "left"),
        ("used by", "left"),
    ]
    for column, justify in columns:
        table.add_column(column, justify=justify)
    for block in model_file.blocks.values():
        built, parameters = _build_columns(anatomy, block.name, block.kind)
        table.add_row(
            block.name,
            block.kind,
            f"{block.first_line}-{block.last_line}",
            built,
            parameters,
            ", ".join(block.uses),
            ", ".join(block.used_by),
        )
    console.print(table)
    if anatomy is not None:
        console.print(f"model: {anatomy.model_class}, {anatomy.parameters:,} parameters (10 classes, 3 channels)")
        unbuilt = [
            b.name
            for b in model_file.blocks.values()
            if b.kind == "class" and not anatomy.is_built(b.name) and b.name != anatomy.model_class
        ]
        if unbuilt:
            console.print(
                f"never built by {anatomy.model_class}: {', '.join(unbuilt)} "
                "(evolving only these cannot change fitness)"
            )


def _build_columns(anatomy: Anatomy | None, name: str, kind: str) -> tuple[str, str]:
    if anatomy is None or kind != "class":
        return "", ""
    if name == anatomy.model_class:
        return "model", f"{anatomy.parameters:,}"
    use = anatomy.uses.get(name)
    if use is None:
        return "never", ""
    counts = set(use.parameters)
    shown = f"{use.parameters[0]:,}" if len(counts) == 1 else f"{min(counts):,}-{max(counts):,}"
    return f"{len(use.parameters)}x", shown


@app.command("eval")
@user_errors
def eval_command(
    model_file: Annotated[Path, typer.Argument(help="The model file to evaluate.", show_default=False)],
    dataset: Annotated[str, typer.Option(help=f"Data set: {' or '.join(DATASET_NAMES)}.")] = "fashion-mnist",
    data: Annotated[Path | None, typer.Option(help="Folder holding the data set.")] = None,
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
) -> None:
    """Run the fitness cascade on one model file; exit 0 if valid, 1 if not."""
    candidate = read_model(model_file)
    source = candidate.source
    reference: ModelFile | None = None
    rewritten: tuple[str, ...] = ()
    if against is not None:
        reference = read_model(against)
        rewritten = tuple(name for name in changed_blocks(reference, candidate) if name in reference.blocks)
    settings = build(
        FitnessSettings,
        {
            "dataset": dataset,
            "data_dir": str(data) if data else None,
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
    if train:
        require_dataset(dataset, data)
    with console.status("evaluating (build, probe and cost take a few seconds; training longer)"):
        evaluation = evaluate(
            source, settings, reference=reference, rewritten=rewritten, cache=EvaluationCache() if cache else None
        )
    print_evaluation(evaluation, rewritten)
    raise typer.Exit(0 if evaluation.valid else 1)


def print_evaluation(evaluation: Evaluation, rewritten: tuple[str, ...]) -> None:
    table = Table(title="fitness cascade" + (" (cached result)" if evaluation.cached else ""), title_justify="left")
    for column in ("stage", "result", "seconds", "reason"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for stage in evaluation.stages:
        result = "[green]passed[/]" if stage.ok else "[bold red]failed[/]"
        table.add_row(stage.name, result, f"{stage.seconds:.2f}", escape(stage.reason or ""))
    console.print(table)
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


@app.command()
@user_errors
def mutate(
    block: Annotated[str, typer.Option("--block", help="Name of the block to rewrite.", show_default=False)],
    seed_file: SeedArgument = None,
    model: Annotated[
        str | None, typer.Option(help="GGUF model file (default: $ASTEVO_MODEL, else the bundled tiny model).")
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option(
            help="GE's mutation intent: hyperparameters, unusual_values, complexity, fewer_parameters, "
            "rare_enhancement or bold_change (default: drawn per proposal)."
        ),
    ] = None,
    persona: Annotated[str | None, typer.Option(help="expert, innovator or researcher (default: none).")] = None,
    n: Annotated[int, typer.Option("--n", help="How many proposals.")] = 3,
    scope: Annotated[
        str, typer.Option(help="line: edit one spot per call (suits tiny models); block: write the whole body.")
    ] = "line",
    repairs: Annotated[int, typer.Option(help="Further attempts after a rejected answer.")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the run's random draws.")] = 0,
    threads: Annotated[int, typer.Option(help="Threads for llama.cpp (0: half the cores).")] = 0,
    context: Annotated[int, typer.Option(help="The model's context size in tokens.")] = 4096,
    gpu_layers: Annotated[
        int | None, typer.Option(help="Layers to offload to a GPU (default: all when llama.cpp has GPU support).")
    ] = None,
) -> None:
    """Ask the local model for new versions of one block; show each as a diff with its fast-check verdict."""
    model_file = read_model(seed_file)
    original = model_file.block(block)
    settings = build(
        MutationSettings,
        {
            "model": model,
            "intent": operator,
            "persona": persona,
            "scope": scope,
            "repairs": repairs,
            "random_seed": seed,
            "threads": threads,
            "context": context,
            "gpu_layers": gpu_layers,
        },
        "mutation",
    )
    proposals = block_proposals(model_file, block, n, settings, FitnessSettings(train=False))
    useful = 0
    for index, proposal in enumerate(proposals, start=1):
        useful += proposal.accepted
        verdict = "passed (parse, gate, build, shape probe)" if proposal.accepted else f"failed: {proposal.error}"
        title = (
            f"proposal {index}/{n}: {proposal.operator}, intent {proposal.intent}, persona {proposal.persona or '-'}"
        )
        console.rule(title)
        if proposal.source is not None:
            console.print(
                Syntax(
                    unified_diff(original.source, proposal.source, f"{block} (original)", f"{block} (proposal)"),
                    "diff",
                    theme="ansi_dark",
                )
            )
        elif proposal.exchanges:
            console.print(f"last answer: {escape(repr(proposal.exchanges[-1].answer.strip()))}", highlight=False)
        console.print(
            f"{len(proposal.exchanges)} model call(s), {proposal.seconds:.1f} s; fast checks: {escape(verdict)}",
            highlight=False,
        )
    console.print(f"useful proposals: {useful} of {n}")


@app.command()
@user_errors
def models(model: Annotated[str | None, typer.Option(help="A GGUF file to check as well.")] = None) -> None:
    """List the GGUF models astevo finds and which one `mutate` uses by default."""
    from astevo.llm.gguf import bundled_models, resolve_model

    chosen = resolve_model(model)
    table = Table(title_justify="left")
    for column in ("model", "size", "from", "path", "default"):
        table.add_column(column, justify="right" if column == "size" else "left")
    found = bundled_models()
    if all(info.path != chosen.path for info in found):
        found = [chosen, *found]
    for info in found:
        table.add_row(
            info.name, f"{info.size_mb:,.0f} MB", info.source, str(info.path), "yes" if info.path == chosen.path else ""
        )
    console.print(table)


for command in (evolve, diff, show, export, report, final):
    app.command()(command)
