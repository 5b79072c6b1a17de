"""`astevo evolve`: start or resume a run, with a live progress display and the Pareto front at the end."""

from __future__ import annotations

import time
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from astevo.cli.data_display import prepared_data, say_data
from astevo.cli.disk_space import space_warnings
from astevo.cli.run_summary import print_summary
from astevo.cli.slot_choice import AUTO, new_run_slots, resumed_slots, workers_flag
from astevo.cli.stop_signals import StopSignals
from astevo.cli.storage_faults import STORAGE_EXIT, storage_advice, storage_problem
from astevo.cli.terminal import (
    DATA_HELP,
    DATASET_HELP,
    EXECUTOR_HELP,
    IMAGE_SIZE_HELP,
    MODEL_HELP,
    MODEL_SERVER_HELP,
    RAY_ADDRESS_HELP,
    announce,
    console,
    errors,
    server_overrides,
    user_errors,
)
from astevo.code.blocks import ModelFile
from astevo.data.prepared import prepare_data
from astevo.errors import AstevoError
from astevo.evaluation.base import Executor
from astevo.evaluation.cache import EvaluationCache
from astevo.evaluation.payloads import prestart_warm_workers
from astevo.evolution.budget import planned_individuals
from astevo.evolution.data_check import DataChanged, check_data
from astevo.evolution.model_check import check_model
from astevo.llm.server_client import ServerUnavailable
from astevo.paths import default_seed_path
from astevo.runs import ExecutorChoice, budget_overrides, language_model, make_variation, new_run_settings, served_at
from astevo.settings import (
    VARIATIONS,
    EvolveConfig,
)
from astevo.store.run_store import RunStore
from astevo.views.run_view import format_accuracy

if TYPE_CHECKING:
    from astevo.evolution.loop import Progress as RunProgress
    from astevo.variation.base import Variation

DEFAULTS = EvolveConfig()
# Faults of what the run depends on, each with its sysexits code: the model server stopped answering
# (EX_UNAVAILABLE), the data's files changed (EX_NOINPUT). Nothing is lost, and --resume goes on once they are back.
OUTSIDE_FAULTS: dict[type[AstevoError], int] = {ServerUnavailable: 69, DataChanged: 66}


@user_errors
def evolve(
    block: Annotated[
        list[str] | None,
        typer.Option(
            "--block",
            help="A block to evolve; repeat for several (default: every module the model builds).",
            show_default=False,
        ),
    ] = None,
    seed_file: Annotated[
        Path | None,
        typer.Argument(help="Model file to start from (default: the bundled ExquisiteNetV2 seed).", show_default=False),
    ] = None,
    model: Annotated[str | None, typer.Option(help=MODEL_HELP, show_default=False)] = None,
    model_server: Annotated[str | None, typer.Option(help=MODEL_SERVER_HELP, show_default=False)] = None,
    dataset: Annotated[str | None, typer.Option(help=DATASET_HELP, show_default=False)] = None,
    data: Annotated[Path | None, typer.Option(help=DATA_HELP)] = None,
    image_size: Annotated[int | None, typer.Option(help=IMAGE_SIZE_HELP, show_default=False)] = None,
    population: Annotated[
        int | None, typer.Option(help=f"Individuals per generation (default {DEFAULTS.population}).")
    ] = None,
    generations: Annotated[
        int | None,
        typer.Option(
            help=f"Generations, the first included (default {DEFAULTS.generations}; with --evaluations, a cap).",
            show_default=False,
        ),
    ] = None,
    evaluations: Annotated[
        int | None,
        typer.Option(
            help="Size the run by trainings instead of generations: it ends once this many are spent, the seed's "
            "and racing's included (generations are then capped at this number unless --generations says less).",
            show_default=False,
        ),
    ] = None,
    variation: Annotated[
        str | None,
        typer.Option(
            help="What proposes offspring: llm (evolution with the model), random (the same evolution, edits drawn "
            "uniformly: a baseline) or best-of-n (the model's mutations of the seed, no selection: a baseline). "
            f"Default {DEFAULTS.variation}.",
            show_default=False,
        ),
    ] = None,
    cost: Annotated[
        str | None, typer.Option(help=f"Second objective: parameters or macs (default {DEFAULTS.cost}).")
    ] = None,
    limit_train: Annotated[
        int | None, typer.Option(help=f"Training images per evaluation (default {DEFAULTS.fitness.limit_train}).")
    ] = None,
    epochs: Annotated[
        float | None, typer.Option(help=f"Training epochs per evaluation (default {DEFAULTS.fitness.budget.epochs:g}).")
    ] = None,
    random_seed: Annotated[
        int | None, typer.Option(help=f"Seed of every random draw of the run (default {DEFAULTS.random_seed}).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file with any other settings (flags win).")] = None,
    run: Annotated[Path | None, typer.Option(help="Run folder (default: astevo-runs/<date-time>).")] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --run where it stopped, with its own settings.")
    ] = False,
    cache: Annotated[bool, typer.Option(help="Reuse evaluations of identical code from earlier runs.")] = True,
    force: Annotated[
        bool,
        typer.Option("--force", help="Go on even when the seed's own trainings show the budget teaches it nothing."),
    ] = False,
    workers: Annotated[
        str,
        typer.Option(
            help="Evaluation slots of the local executor: auto (measure this machine at the start of a run and "
            "choose slots and training threads; a resume keeps the choice) or a count. Results do not depend on "
            "the slots.",
        ),
    ] = AUTO,
    executor: Annotated[str, typer.Option(help=EXECUTOR_HELP)] = "local",
    ray_address: Annotated[str | None, typer.Option(help=RAY_ADDRESS_HELP, show_default=False)] = None,
) -> None:
    """Evolve blocks of a model with the local LLM: NSGA-II parents, SPEA2 elites, EoT, AST crossover."""
    overrides = _flag_overrides(
        block, model, dataset, data, image_size, population, generations, cost, limit_train, epochs, random_seed
    )
    if variation is not None:
        if variation not in VARIATIONS:
            raise AstevoError(f"--variation must be one of {', '.join(VARIATIONS)}, got {variation!r}")
        overrides["variation"] = variation
    if model_server is not None and not resume:
        overrides.setdefault("mutation", {}).update(server_overrides(model_server))
    if evaluations is not None:
        overrides = {**budget_overrides(evaluations), **overrides}
    where = ExecutorChoice(executor, workers_flag(workers), ray_address, EvaluationCache() if cache else None)
    if resume:
        if run is None:
            raise AstevoError("--resume needs --run FOLDER: the run to continue")
        if overrides or config or seed_file:
            raise AstevoError(
                "--resume continues a run with the settings it was started with; "
                "leave out the seed file, --config and the setting flags"
            )
        store = RunStore.open(run)
        check_data(store)  # before anything is decoded or loaded: a changed folder is a one-line error
        prepared_data(store.config().fitness)
        language = language_model(served_at(store.config(), model_server), announce)
        check_model(store, language.identity if language else None)  # before a file loads
        slots = resumed_slots(store, where.slots) if where.local else 0
        prestart_warm_workers(store.config().fitness, slots + 1)  # their imports overlap the model's load
        run_variation = make_variation(store.config(), language)  # a moved server answers at its new URL
    else:
        run = run or Path("astevo-runs") / time.strftime("%Y%m%d-%H%M%S")
        RunStore.refuse_existing(run)  # before any data is decoded, the seed built or the machine measured
        settings = new_run_settings(config, overrides)
        prepared_data(settings.fitness)
        language = language_model(settings, announce)
        seed_model = ModelFile.read(seed_file or default_seed_path())
        individuals = planned_individuals(settings)
        cache_folder = where.cache.directory if where.cache is not None else None
        for warning in space_warnings(
            run, cache_folder, seed_model.source, individuals, individuals * settings.race_trainings
        ):
            errors.print(warning, highlight=False, soft_wrap=True)
        from astevo.evolution.run_setup import create_run, plan_run  # imports torch: only once a run is starting

        with console.status("building the seed model once to find the blocks that can change fitness"):
            with closing(ExecutorChoice().make(slots=1)) as here:
                planned = plan_run(settings, seed_model, language, here)
        prestart_warm_workers(settings.fitness, 2)  # their imports overlap the model's load
        run_variation = make_variation(planned.config, language)
        slots = 0
        chosen = None
        if where.local:
            planned, chosen, slots, run_variation = new_run_slots(planned, run_variation, where.slots)
        store = create_run(run, planned, chosen)
    with store:
        _run(store, run_variation, where, slots, force)
    if where.cache is not None and where.cache.unwritable:
        errors.print(
            f"warning: the evaluation cache could not be written ({where.cache.unwritable}); the run went on "
            "without it, so later runs will train this run's models again: free space there",
            highlight=False,
            soft_wrap=True,
        )


def _flag_overrides(
    block: list[str] | None,
    model: str | None,
    dataset: str | None,
    data: Path | None,
    image_size: int | None,
    population: int | None,
    generations: int | None,
    cost: str | None,
    limit_train: int | None,
    epochs: float | None,
    random_seed: int | None,
) -> dict[str, Any]:
    """The settings given as flags, as a nested record like the TOML file's."""
    top: dict[str, Any] = {
        "blocks": block or None,
        "population": population,
        "generations": generations,
        "cost": cost,
        "random_seed": random_seed,
    }
    fitness: dict[str, Any] = {
        "dataset": dataset,
        "data_dir": str(data.resolve()) if data else None,
        "image_size": image_size,
        "limit_train": limit_train,
        "budget": {"epochs": epochs} if epochs is not None else None,
    }
    overrides = {k: v for k, v in top.items() if v is not None}
    if any(v is not None for v in fitness.values()):
        overrides["fitness"] = {k: v for k, v in fitness.items() if v is not None}
    if model is not None:
        overrides["mutation"] = {"model": model}
    return overrides


def _run(store: RunStore, variation: Variation, where: ExecutorChoice, slots_here: int, force: bool) -> None:
    from astevo.evolution.loop import Evolution

    config = store.config()
    say_data(prepare_data(config.fitness))  # prepared already: an image folder is not scanned again
    model = variation.identity
    size = f"{config.evaluations} trainings" if config.evaluations else f"{config.generations} generations"
    console.print(
        f"run {store.folder}: evolving {', '.join(config.blocks)} ({config.variation} variation"
        f"{f' by {model.name}' if model else ''}); population "
        f"{config.population}, {size}, {config.fitness.dataset}; "
        f"{config.fitness.threads or 'all'} training thread(s) per evaluation"
        + (f", {slots_here} slot(s)" if slots_here else ""),
        highlight=False,
    )
    display = Progress(
        TextColumn("generation {task.fields[generation]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )
    stop = StopSignals()
    evaluator: Executor | None = None
    try:
        with stop.installed():
            evaluator = where.make(slots_here)
            prestart_warm_workers(config.fitness, slots_here + 1)  # one per slot, one more for the fast checks
            evolution = Evolution(store, variation, evaluator, force=force)
            task = display.add_task("evolve", total=evolution.total, generation="-", status="")
            evolution.on_progress = lambda progress: _show(display, task, progress)
            with display:
                evolution.run()
    except BaseException as error:
        resume = " --force" if force else ""
        outside = next((code for kind, code in OUTSIDE_FAULTS.items() if isinstance(error, kind)), None)
        if outside is not None and stop.exit_code is None:
            errors.print(
                f"error: {error}; nothing evaluated is lost. Once it is back, continue with: "
                f"astevo evolve --run {store.folder} --resume{resume}",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(outside) from None
        problem = storage_problem(error, store.folder)
        if stop.exit_code is None and problem is None:
            raise
        if stop.exit_code is None:
            errors.print(f"error: {problem}; {storage_advice(store.folder)}{resume}", highlight=False, soft_wrap=True)
            raise typer.Exit(STORAGE_EXIT) from None
        errors.print(
            f"{stop.said()}; nothing evaluated is lost. Continue with: astevo evolve --run {store.folder} --resume"
            + resume,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(stop.exit_code) from None
    finally:
        if evaluator is not None:
            evaluator.close()
    print_summary(store, config)


def _show(display: Progress, task: TaskID, progress: RunProgress) -> None:
    best = progress.best
    status = f"valid {progress.valid}/{progress.done}" + (
        f", best {format_accuracy(best.val_accuracy)} (#{best.id}) at or below the seed's size" if best else ""
    )
    display.update(
        task,
        completed=progress.done,
        generation=f"{progress.generation + 1}" + (f"/{progress.generations}" if progress.generations else ""),
        status=status,
    )
