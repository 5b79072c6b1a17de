"""Typer command functions for runs; astevo.cli registers them on the app."""
