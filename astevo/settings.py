"""Every setting of astevo as one frozen tree, each part validated when it is built.

No heavy imports: the command line, the run store and the views read and check settings
without loading torch, llama.cpp or DEAP. A run stores its tree as a record; reading a record
migrates renamed keys first and then rejects any key it does not know, because a skipped key
would silently reset a setting (the random seed, say) and change a resumed run's genealogy.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from astevo.errors import AstevoError
from astevo.typed_records import SettingsError, build, require
from astevo.variation.intents import INTENTS, PERSONAS

DATASET_NAMES = ("cifar10", "fashion-mnist", "folder")  # folder: the user's own images, in --data
COSTS = ("parameters", "macs")
SCOPES = ("line", "block")
ANSWERS = ("written", "ranked")  # at a spot: the model writes under the grammar, or ranks the spot's listed options
# What proposes offspring: evolution with the language model, evolution with uniformly drawn edits (the
# baseline that asks whether the model's choices beat chance), or the model's mutations of the seed alone
# with no selection (best-of-n sampling, the baseline that asks whether evolving helps).
VARIATIONS = ("llm", "random", "best-of-n")
LLM, RANDOM, BEST_OF_N = VARIATIONS

# Keys renamed or dropped since runs were first stored: (old path) -> (new path), or None when dropped.
_MIGRATIONS: dict[tuple[str, ...], tuple[str, ...] | None] = {
    ("seed",): ("random_seed",),
    ("mutation", "seed"): ("mutation", "random_seed"),
    ("fitness", "budget", "seed"): ("fitness", "budget", "training_seed"),
    ("mutation", "dataset"): None,  # the fast checks now use the run's own fitness settings
    ("mutation", "threads"): ("mutation", "llama_cpp", "threads"),  # llama.cpp's own knobs got their own table
    ("mutation", "context"): ("mutation", "llama_cpp", "context"),
    ("mutation", "gpu_layers"): ("mutation", "llama_cpp", "gpu_layers"),
}


@dataclass(frozen=True)
class TrainBudget:
    """How much training one candidate gets: stops at `epochs` or `max_images`, or early at `max_seconds`."""

    epochs: float = 1.0
    max_images: int | None = None
    max_seconds: float = 600.0
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.05
    label_smoothing: float = 0.0
    training_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "max_seconds", "lr"):
            require(getattr(self, name) > 0, name, f"must be positive, got {getattr(self, name)}")
        require(
            self.batch_size >= 2, "batch_size", f"must be at least 2 (BatchNorm needs 2 images), got {self.batch_size}"
        )
        require(
            self.max_images is None or self.max_images >= 2,
            "max_images",
            f"must be at least 2 (BatchNorm needs 2 images), got {self.max_images}",
        )
        require(self.weight_decay >= 0, "weight_decay", f"must be 0 or more, got {self.weight_decay}")
        for name in ("warmup_fraction", "label_smoothing"):
            require(0.0 <= getattr(self, name) < 1.0, name, f"must lie in [0, 1), got {getattr(self, name)}")

    def planned_images(self, train_size: int) -> int:
        """Images the budget allows on a training split of this size (before any time cap)."""
        images = int(self.epochs * train_size)
        return images if self.max_images is None else min(images, self.max_images)


@dataclass(frozen=True)
class FitnessSettings:
    """What one evaluation does: the data, the training budget, the checks' caps and the sandbox's limits."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    image_size: int | None = None  # an image folder's side; None: its most common size
    classes_argument: str | None = None  # the seed constructor's class-count argument, if not a usual name
    channels_argument: str | None = None  # and its input-channels argument
    limit_train: int | None = None
    val_fraction: float = 0.1
    split_seed: int = 0
    budget: TrainBudget = field(default_factory=TrainBudget)
    train: bool = True
    max_parameters: int | None = None
    max_macs: int | None = None
    safety_gate: bool = True  # off only for trusted files the gate is too strict for; the sandbox still runs
    check_seconds: float = 120.0
    memory_mb: int = 6144
    threads: int = 0  # 0: all cores; a run setting, so that results do not depend on which slot ran them
    warm_workers: bool = True  # fork each sandbox from a worker that imported torch once; results are the same

    def __post_init__(self) -> None:
        require(
            self.dataset in DATASET_NAMES, "dataset", f"must be one of {', '.join(DATASET_NAMES)}, got {self.dataset!r}"
        )
        require(
            self.image_size is None or self.image_size >= 4, "image_size", f"must be 4 or more, got {self.image_size}"
        )
        require(0.0 < self.val_fraction < 1.0, "val_fraction", f"must lie between 0 and 1, got {self.val_fraction}")
        require(
            self.limit_train is None or self.limit_train >= 2,
            "limit_train",
            f"must be at least 2 images, got {self.limit_train}",
        )
        require(self.check_seconds > 0, "check_seconds", f"must be positive, got {self.check_seconds}")
        require(self.memory_mb > 0, "memory_mb", f"must be positive, got {self.memory_mb}")
        require(self.threads >= 0, "threads", f"must be 0 (all cores) or more, got {self.threads}")
        for name in ("max_parameters", "max_macs"):
            value = getattr(self, name)
            require(value is None or value > 0, name, f"must be positive, got {value}")


BACKENDS = ("llama.cpp", "server")  # the model in this process, or one an OpenAI-compatible server serves
LLAMA_CPP, SERVER = BACKENDS


@dataclass(frozen=True)
class ServerSettings:
    """Where a served model answers (backend "server"), and how long astevo waits for it before it gives up."""

    url: str | None = None  # the API's base, e.g. http://127.0.0.1:8080/v1
    timeout: float = 300.0  # seconds for one answer; a slow big model on a busy GPU takes minutes
    retries: int = 4  # tries after the first, with doubling waits, for a server that is down or overloaded
    api_key: str | None = None  # sent as a Bearer token; most local servers want none

    def __post_init__(self) -> None:
        require(
            self.url is None or self.url.startswith(("http://", "https://")),
            "url",
            f"must start with http:// or https://, got {self.url!r}",
        )
        require(self.timeout > 0, "timeout", f"must be positive, got {self.timeout}")
        require(self.retries >= 0, "retries", f"must be 0 or more, got {self.retries}")


@dataclass(frozen=True)
class LlamaCppSettings:
    """How a GGUF file runs in this process (backend "llama.cpp")."""

    threads: int = 0  # 0: llama.cpp's default share of the cores
    context: int = 4096
    gpu_layers: int | None = None  # None: all layers when llama.cpp was built with GPU support

    def __post_init__(self) -> None:
        require(self.threads >= 0, "threads", f"must be 0 (the default share) or more, got {self.threads}")
        require(self.context >= 256, "context", f"must be at least 256 tokens, got {self.context}")


@dataclass(frozen=True)
class MutationSettings:
    """How the LLM mutation operator runs: which model, which prompt, which edits, how many retries."""

    model: str | None = None  # backend llama.cpp: a name or a GGUF file; backend server: the served model's name
    backend: str = LLAMA_CPP
    llama_cpp: LlamaCppSettings = field(default_factory=LlamaCppSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    intent: str | None = None
    persona: str | None = None  # None: one drawn per proposal
    scope: str = "line"
    answers: str = "written"  # one of ANSWERS
    repairs: int = 3
    random_seed: int = 0

    def __post_init__(self) -> None:
        require(
            self.intent is None or self.intent in INTENTS,
            "intent",
            f"must be one of {', '.join(INTENTS)}, got {self.intent!r}",
        )
        require(
            self.persona is None or self.persona in PERSONAS,
            "persona",
            f"must be one of {', '.join(PERSONAS)}, got {self.persona!r}",
        )
        require(self.scope in SCOPES, "scope", f"must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        require(self.answers in ANSWERS, "answers", f"must be one of {', '.join(ANSWERS)}, got {self.answers!r}")
        require(self.answers == "written" or self.scope == "line", "answers", 'must be "written" with scope "block"')
        require(self.backend in BACKENDS, "backend", f"must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        require(
            self.backend != SERVER or self.server.url is not None,
            "server.url",
            "must be given for backend server (--model-server URL)",
        )
        require(self.repairs >= 0, "repairs", f"must be 0 or more, got {self.repairs}")


def default_fitness() -> FitnessSettings:
    """Minutes on a CPU laptop: 3 epochs of a 6,000-image slice (the seed: about 74% on Fashion-MNIST). Of the
    budgets tools/bench_budget.py measured, it tells candidates apart at the lowest cost (README, "Noise")."""
    return FitnessSettings(limit_train=6000, budget=TrainBudget(epochs=3.0, max_seconds=300.0))


@dataclass(frozen=True)
class EvolveConfig:
    """An evolution run's settings, stored with the run: `--resume`, `final` and the views see exactly these."""

    blocks: tuple[str, ...] = ()  # empty: every nn.Module block the built model instantiates
    population: int = 4
    generations: int = 3  # including the first, made of mutations of the seed model; the cap when evaluations > 0
    evaluations: int = 0  # when > 0 the run ends once this many trainings (every one counts) are spent
    variation: str = LLM  # one of VARIATIONS
    random_seed: int = 0  # every random draw of the run derives from it
    cost: str = "parameters"  # the second objective: "parameters" or "macs"
    crossover_rate: float = 0.25  # share of offspring made by crossover (from the second generation on)
    eot_rate: float = 0.5  # share of mutations shown an elite's measured change (Evolution of Thought)
    noise_seeds: int = 3  # the seed model is trained with this many training seeds at the start: the run's noise
    race_trainings: int = 3  # at most this many trainings of a child that would enter the elites or front (1: none)
    mutation: MutationSettings = field(default_factory=MutationSettings)
    fitness: FitnessSettings = field(default_factory=default_fitness)

    def __post_init__(self) -> None:
        require(self.population >= 1, "population", f"must be at least 1, got {self.population}")
        require(self.generations >= 1, "generations", f"must be at least 1, got {self.generations}")
        require(self.cost in COSTS, "cost", f"must be one of {', '.join(COSTS)}, got {self.cost!r}")
        require(
            self.evaluations >= 0, "evaluations", f"must be 0 (sized by generations) or more, got {self.evaluations}"
        )
        require(
            self.evaluations == 0 or self.evaluations > self.noise_seeds,
            "evaluations",
            f"must exceed noise_seeds ({self.noise_seeds}), the seed's own trainings, got {self.evaluations}",
        )
        require(
            self.variation in VARIATIONS,
            "variation",
            f"must be one of {', '.join(VARIATIONS)}, got {self.variation!r}",
        )
        require(self.noise_seeds >= 1, "noise_seeds", f"must be at least 1, got {self.noise_seeds}")
        require(self.race_trainings >= 1, "race_trainings", f"must be at least 1, got {self.race_trainings}")
        for name in ("crossover_rate", "eot_rate"):
            require(0.0 <= getattr(self, name) <= 1.0, name, f"must lie between 0 and 1, got {getattr(self, name)}")
        require(self.fitness.train, "fitness.train", "must be true: evolution selects on trained accuracy")

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EvolveConfig:
        """The settings a record holds, every key known (a stored run's record is migrated first)."""
        return build(cls, migrate_record(record))


@dataclass(frozen=True)
class FinalSettings:
    """The final multi-seed test evaluation (`astevo final`)."""

    seeds: int = 3  # training seeds 0 .. seeds-1 per finalist
    epochs: float | None = None  # None: the run's own budget
    max_seconds: float = 12 * 3600.0  # a safety net only: the search's cap was meant for short trainings

    def __post_init__(self) -> None:
        require(self.seeds >= 1, "seeds", f"must be at least 1, got {self.seeds}")
        require(self.epochs is None or self.epochs > 0, "epochs", f"must be positive, got {self.epochs}")

    def budget(self, run_budget: TrainBudget) -> TrainBudget:
        """The run's training budget with these overrides (TrainBudget rejects bad values)."""
        return dataclasses.replace(
            run_budget, epochs=run_budget.epochs if self.epochs is None else self.epochs, max_seconds=self.max_seconds
        )


def migrate_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stored record with every renamed key under its current name and every dropped key removed."""
    migrated = copy.deepcopy(record)
    for old, new in _MIGRATIONS.items():
        table = _table(migrated, old[:-1])
        if table is None or old[-1] not in table:
            continue
        value = table.pop(old[-1])
        if new is not None:
            target = migrated
            for key in new[:-1]:  # a table the new name lives in is made if need be
                target = target.setdefault(key, {})
            target.setdefault(new[-1], value)
    return migrated


def _table(record: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    for key in path:
        record = record.get(key)  # type: ignore[assignment]
        if not isinstance(record, dict):
            return None
    return record


def read_config(path: Path) -> dict[str, Any]:
    """A TOML file's settings as nested tables; unknown keys are caught when they are applied."""
    try:
        return migrate_record(tomllib.loads(path.read_text(encoding="utf-8")))  # a file written for an older astevo
    except OSError as error:
        raise AstevoError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise AstevoError(f"{path} is not valid TOML: {error}") from None


def apply(config: EvolveConfig, overrides: dict[str, Any], origin: str | None = None) -> EvolveConfig:
    """`config` with the nested `overrides` (TOML tables or flags) applied; unknown keys are errors."""
    record = config.to_record()
    try:
        _merge(record, overrides, "")
        return EvolveConfig.from_record(record)
    except SettingsError as error:  # earlier overrides were checked when applied: this one is at fault
        raise SettingsError(error.setting, error.problem, origin) from None


def _merge(record: dict[str, Any], overrides: dict[str, Any], prefix: str) -> None:
    for key, value in overrides.items():
        path = f"{prefix}{key}"
        if key not in record:
            raise SettingsError(path, f"is not a setting; known here: {', '.join(sorted(record))}")
        if isinstance(record[key], dict):
            if not isinstance(value, dict):
                raise SettingsError(path, "is a table of settings, not a single value")
            _merge(record[key], value, f"{path}.")
        else:
            record[key] = value
