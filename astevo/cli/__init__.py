"""The `astevo` command line: typer commands and rich output over the library's public functions."""

from astevo.cli.app import app

__all__ = ["app"]
