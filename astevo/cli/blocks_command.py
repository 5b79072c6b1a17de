"""`astevo blocks`: a model file's blocks and what the built network makes of them."""

from __future__ import annotations

from contextlib import closing

from rich.console import JustifyMethod
from rich.markup import escape
from rich.table import Table

from astevo.cli.model_files import SeedArgument, read_model
from astevo.cli.terminal import JsonOption, console, errors, print_json, print_whole, user_errors
from astevo.errors import AstevoError
from astevo.evaluation.anatomy import Anatomy, inspect_model
from astevo.runs import ExecutorChoice
from astevo.views.records import blocks_record


@user_errors
def blocks(seed_file: SeedArgument = None, json_output: JsonOption = False) -> None:
    """List the file's blocks: kind, lines, how often the model builds them, parameters, dependencies."""
    model_file = read_model(seed_file)
    anatomy: Anatomy | None = None
    try:
        with closing(ExecutorChoice().make(slots=1)) as here:
            anatomy = inspect_model(model_file, here)
    except AstevoError as error:
        errors.print(
            f"[yellow]note:[/] {escape(str(error))}; parameter counts are left blank", highlight=False, soft_wrap=True
        )
    if json_output:
        print_json(blocks_record(model_file, anatomy))
        return
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
    print_whole(table)
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
