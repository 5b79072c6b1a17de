"""`astevo mutate` and `astevo models`: the local language model's proposals for one block, and which models exist."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from astevo.cli.model_files import SeedArgument, read_model
from astevo.cli.terminal import (
    MODEL_HELP,
    MODEL_SERVER_HELP,
    announce,
    code_view,
    console,
    print_whole,
    server_overrides,
    user_errors,
)
from astevo.errors import AstevoError
from astevo.evolution.proposals import BlockProposals
from astevo.runs import ExecutorChoice, llm_variation
from astevo.settings import FitnessSettings, MutationSettings
from astevo.typed_records import build
from astevo.views.run_view import unified_diff


@user_errors
def mutate(
    block: Annotated[str, typer.Option("--block", help="Name of the block to rewrite.", show_default=False)],
    seed_file: SeedArgument = None,
    model: Annotated[str | None, typer.Option(help=MODEL_HELP, show_default=False)] = None,
    model_server: Annotated[str | None, typer.Option(help=MODEL_SERVER_HELP, show_default=False)] = None,
    operator: Annotated[
        str | None,
        typer.Option(
            help="GE's mutation intent: hyperparameters, unusual_values, complexity, fewer_parameters, "
            "rare_enhancement or bold_change (default: drawn per proposal)."
        ),
    ] = None,
    persona: Annotated[
        str | None, typer.Option(help="expert, innovator or researcher (default: one drawn per proposal).")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="How many proposals.")] = 3,
    scope: Annotated[
        str, typer.Option(help="line: edit one spot per call (suits tiny models); block: write the whole body.")
    ] = "line",
    answers: Annotated[
        str,
        typer.Option(
            help="written: the model writes at a spot under its grammar; ranked: it chooses among the spot's "
            "listed options by their log-probabilities (a model file only)."
        ),
    ] = "written",
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
    if n < 1:
        raise AstevoError("--n must be at least 1")
    settings = build(
        MutationSettings,
        {
            "model": model,
            "intent": operator,
            "persona": persona,
            "scope": scope,
            "answers": answers,
            "repairs": repairs,
            "random_seed": seed,
            "llama_cpp": {"threads": threads, "context": context, "gpu_layers": gpu_layers},
            **server_overrides(model_server),
        },
        "mutation",
    )
    from astevo.llm.factory import ModelChoice

    chosen = ModelChoice(settings, announce)
    console.print(f"model: {chosen.shown}", highlight=False)
    checks = ExecutorChoice().make(1)
    proposals = BlockProposals(
        model_file, block, n, llm_variation(settings, chosen), FitnessSettings(train=False), checks
    )
    useful = 0
    for index, proposal in enumerate(proposals, start=1):
        useful += proposal.accepted
        verdict = "passed (parse, gate, build, shape probe, cost)" if proposal.accepted else f"failed: {proposal.error}"
        title = (
            f"proposal {index}/{n}: {proposal.operator}, intent {proposal.intent}, persona {proposal.persona or '-'}"
        )
        console.rule(title)
        if proposal.source is not None:
            print_whole(
                code_view(
                    unified_diff(original.source, proposal.source, f"{block} (original)", f"{block} (proposal)"), "diff"
                )
            )
        elif proposal.exchanges:
            console.print(f"last answer: {escape(repr(proposal.exchanges[-1].answer.strip()))}", highlight=False)
        console.print(
            f"{len(proposal.exchanges)} model call(s), {proposal.seconds:.1f} s; fast checks: {escape(verdict)}",
            highlight=False,
        )
        final = proposal.exchanges[-1] if proposal.accepted and proposal.exchanges else None
        if final is not None and final.parameters is not None:
            before = proposals.parent_size().parameters
            console.print(
                f"size: {before:,} -> {final.parameters:,} parameters ({final.parameters / before - 1:+.1%}), "
                f"edit kind: {final.edit}",
                highlight=False,
            )
    console.print(f"useful proposals: {useful} of {n}")


@user_errors
def models(
    model: Annotated[str | None, typer.Option(help="A model name or GGUF file to check as well.")] = None,
) -> None:
    """List the models astevo knows by name, and any given file: size, origin, sha256, whether ready, the default."""
    from astevo.llm.catalogue import NAMED_MODELS
    from astevo.llm.gguf import file_hash, resolve_model

    chosen = resolve_model(model, announce)
    table = Table(title_justify="left")
    for column in ("model", "what", "size", "from", "licence", "sha256", "state", "default"):
        table.add_column(column, justify="right" if column == "size" else "left")
    listed = False
    for named in NAMED_MODELS:
        path = named.origin.ready()
        pinned = named.origin.pinned_sha256
        if path is not None:
            state = f"ready: {path}"
        elif named.origin.available():
            state = "installed; its chunks are joined into the cache on first use"
        else:
            state = f"not installed: {named.install}"
        is_chosen = path is not None and path == chosen.path
        listed = listed or is_chosen
        table.add_row(
            named.name,
            named.title,
            f"{path.stat().st_size / 2**20:,.0f} MB" if path is not None else "-",
            named.origin.description,
            named.licence,
            (pinned or (file_hash(path) if path is not None else "-")) + (" (pinned)" if pinned else ""),
            state,
            "yes" if is_chosen else "",
        )
    if not listed:
        table.add_row(
            chosen.name,
            "-",
            f"{chosen.size_mb:,.0f} MB",
            chosen.source,
            "-",
            chosen.sha256,
            f"ready: {chosen.path}",
            "yes",
        )
    print_whole(table)
