"""Where the command line writes, and how user errors reach it: one line, exit 2, no traceback."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from astevo.errors import AstevoError
from astevo.settings import SERVER
from astevo.typed_records import SettingsError

console = Console()
errors = Console(stderr=True)

# The flag that sets each setting, so that an error names what the user typed.
SETTING_FLAGS = {
    "blocks": "--block",
    "population": "--population",
    "generations": "--generations",
    "evaluations": "--evaluations",
    "variation": "--variation",
    "cost": "--cost",
    "random_seed": "--random-seed",
    "mutation.model": "--model",
    "mutation.intent": "--operator",
    "mutation.persona": "--persona",
    "mutation.scope": "--scope",
    "mutation.answers": "--answers",
    "mutation.repairs": "--repairs",
    "mutation.random_seed": "--seed",
    "mutation.llama_cpp.threads": "--threads",
    "mutation.llama_cpp.context": "--context",
    "mutation.llama_cpp.gpu_layers": "--gpu-layers",
    "mutation.server.url": "--model-server",
    "fitness.dataset": "--dataset",
    "fitness.data_dir": "--data",
    "fitness.image_size": "--image-size",
    "fitness.limit_train": "--limit-train",
    "fitness.budget.epochs": "--epochs",
    "fitness.budget.max_images": "--max-images",
    "fitness.budget.max_seconds": "--max-seconds",
    "fitness.budget.batch_size": "--batch-size",
    "fitness.budget.training_seed": "--seed",
    "fitness.max_parameters": "--max-parameters",
    "fitness.max_macs": "--max-macs",
    "seeds": "--seeds",
    "epochs": "--epochs",
}


MODEL_HELP = (
    "A model name (see `astevo models`) or a GGUF file (default: $ASTEVO_MODEL, else the first named model "
    "installed: the code model of astevo\\[coder]); with --model-server, the served model's name."
)
MODEL_SERVER_HELP = (
    "Use a model an OpenAI-compatible server serves (llama-server, llama-cpp-python, vLLM, Ollama) instead of "
    "loading one here, e.g. http://127.0.0.1:8080/v1. With --resume: where the run's server answers now."
)


def server_overrides(model_server: str | None) -> dict[str, Any]:
    """The mutation settings that `--model-server URL` stands for."""
    return {} if model_server is None else {"backend": SERVER, "server": {"url": model_server}}


DATA_HELP = (
    "Folder holding the data: an image folder (one folder of images per class, or train/, val/ and test/ "
    "above them) or a built-in set's files. Only this folder is searched."
)
DATASET_HELP = (
    "Data set: cifar10, fashion-mnist or folder (default: folder when --data holds class folders, else fashion-mnist)."
)
EXECUTOR_HELP = "Where trainings run: local (slots here) or ray (tasks of a Ray cluster)."
RAY_ADDRESS_HELP = "Ray cluster to join (e.g. auto); default: start a local one. Needs --executor ray."
IMAGE_SIZE_HELP = "Side images of a folder are resized to (default: their most common size)."


def announce(message: str) -> None:
    """Slow one-off work the user should know is happening (joining a model's chunks)."""
    errors.print(message, highlight=False, soft_wrap=True)


UNBOUNDED = 1_000_000  # columns: wide enough for any table's natural width
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts (the shape README documents).")]


def print_whole(shown: Table | Syntax) -> None:
    """On a terminal, fitted to its width; into a pipe or a file, as wide as its content: nothing is cut short."""
    if console.is_terminal:
        console.print(shown)
    else:
        natural = console.measure(shown, options=console.options.update_width(UNBOUNDED)).maximum
        Console(width=max(console.width, natural)).print(shown)  # print(width=) cannot exceed the console's


def code_view(code: str, lexer: str, first_line: int | None = None) -> Syntax:
    """Code or a diff, highlighted; on a terminal narrower than a line, the line wraps instead of being cut."""
    return Syntax(
        code,
        lexer,
        theme="ansi_dark",
        word_wrap=True,
        line_numbers=first_line is not None,
        start_line=first_line or 1,
    )


def print_json(record: dict[str, Any]) -> None:
    """A record for scripts, on stdout as plain JSON (no markup, no wrapping)."""
    sys.stdout.write(json.dumps(record, indent=2) + "\n")


Params = ParamSpec("Params")
Returned = TypeVar("Returned")


def user_message(error: AstevoError) -> str:
    """The error as the user should read it: a setting set by a flag is named by that flag."""
    if isinstance(error, SettingsError) and error.origin in (None, "flags") and error.setting in SETTING_FLAGS:
        return f"{SETTING_FLAGS[error.setting]} {error.problem} (setting {error.setting})"
    return str(error)


def user_errors(command: Callable[Params, Returned]) -> Callable[Params, Returned]:
    """Print an AstevoError as one line and exit 2: bad input never shows a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Params.args, **kwargs: Params.kwargs) -> Returned:
        try:
            return command(*args, **kwargs)
        except AstevoError as error:
            errors.print(f"[bold red]error:[/] {escape(user_message(error))}", highlight=False, soft_wrap=True)
            sys.exit(2)

    return wrapper
