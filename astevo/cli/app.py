"""The `astevo` command line: thin typer commands over the library's public functions."""

from __future__ import annotations

import typer

from astevo.cli.blocks_command import blocks
from astevo.cli.eval_command import eval_command
from astevo.cli.evolve_command import evolve
from astevo.cli.final_command import final
from astevo.cli.mutate_command import models, mutate
from astevo.cli.report_command import report
from astevo.cli.run_commands import diff, export, show

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Evolve neural-network source code with a local LLM."
)

app.command()(blocks)
app.command("eval")(eval_command)
app.command()(mutate)
app.command()(models)
for command in (evolve, diff, show, export, report, final):
    app.command()(command)
