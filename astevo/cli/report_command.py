"""`astevo report`: a finished or running run as an HTML page with its plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from astevo.cli.run_commands import RunArgument
from astevo.cli.terminal import console, user_errors
from astevo.errors import AstevoError
from astevo.store.run_store import RunStore


@user_errors
def report(
    run: RunArgument,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Folder for report.html and its plots (default: RUN/report).", show_default=False
        ),
    ] = None,
) -> None:
    """Write an HTML report: summary, per-generation statistics, the Pareto front and the best lineages."""
    from astevo.views.report import write_report  # matplotlib loads only for this command

    with RunStore.open(run) as store:
        try:
            path = write_report(store, output or run / "report")
        except OSError as error:
            raise AstevoError(f"cannot write the report to {error.filename or output}: {error.strerror}") from None
    console.print(f"report: {escape(str(path))}", highlight=False, soft_wrap=True)
