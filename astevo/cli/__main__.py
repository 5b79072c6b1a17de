"""`python -m astevo.cli`: the command line without the installed script."""

from astevo.cli.app import app

app()
