"""The summary `astevo evolve` prints when a run ends."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from astevo.cli.terminal import console, print_whole
from astevo.evaluation.base import MAC_UNIT
from astevo.evolution.budget import trainings_spent
from astevo.evolution.selection import pareto_front
from astevo.settings import EvolveConfig
from astevo.store.run_store import RunStore
from astevo.views.run_view import format_count, individual_accuracy, noise_line, run_figures, run_noise_of
from astevo.views.size_changes import summary_line


def print_summary(store: RunStore, config: EvolveConfig) -> None:
    """What a finished `evolve` prints: the Pareto front, then the run's figures in a few lines."""
    individuals = store.individuals(with_text=False)
    figures = run_figures(individuals)
    noise = run_noise_of(store)
    table = Table(title="Pareto front (validation accuracy up, cost down)", title_justify="left")
    for column in ("id", "gen", "operator", "blocks", "val acc", "parameters", MAC_UNIT):
        table.add_column(
            column, justify="right" if column in ("id", "gen", "val acc", "parameters", MAC_UNIT) else "left"
        )
    for member in pareto_front(individuals, config.cost):
        table.add_row(
            str(member.id),
            str(member.generation),
            member.operator,
            escape(", ".join(member.blocks) or "-"),
            individual_accuracy(member, noise),
            format_count(member.parameters),
            format_count(member.macs),
        )
    print_whole(table)
    evaluations = (
        f"{figures.seconds_per_evaluation:.1f} s per evaluation ({figures.evaluations} evaluations)"
        if figures.seconds_per_evaluation is not None
        else "no evaluation ran"
    )
    if figures.from_cache:
        evaluations += f", {figures.from_cache} taken from the evaluation cache of earlier runs"
    further = store.trainings()
    seed = store.at(0, 0)
    raced = [t for t in further if seed is None or t.individual != seed.id]
    generation_of = {i.id: i.generation for i in individuals}
    rounds = len({(generation_of[t.individual], t.training_seed) for t in raced})  # a round trains side by side
    evaluations += (
        f"; {len(further)} further trainings ({len(further) - len(raced)} of the seed for the noise, "
        f"{len(raced)} racing in {rounds} rounds)"
    )
    if config.evaluations:
        evaluations += f"; {trainings_spent(store, config)} of the budget of {config.evaluations} trainings spent"
    console.print(
        f"offspring: {figures.offspring}, valid {figures.valid} ({figures.valid_share or 0:.0%}); "
        f"{figures.seconds_per_proposal or 0:.1f} s per proposal, {evaluations}\n"
        f"{summary_line(individuals)}\n"
        f"{noise_line(noise) if noise is not None else ''}\n"
        f"run database: {store.folder / 'run.sqlite'}\n"
        f"next: astevo diff {store.folder} | astevo report {store.folder} | astevo final {store.folder}",
        highlight=False,
    )
