"""An evolution run's settings: one frozen tree, read from a TOML file, every field overridable by a flag.

The tree is stored in the run database as a record, so `--resume`, `final` and `report`
see exactly the settings the run was started with.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from astevo.budget import TrainBudget
from astevo.errors import AstevoError
from astevo.fitness import FitnessSettings
from astevo.mutation_settings import MutationSettings
from astevo.selection import check_cost


def default_fitness() -> FitnessSettings:
    """Minutes on a CPU laptop: 3 epochs of a 3,000-image slice (the seed: about 64% on Fashion-MNIST)."""
    return FitnessSettings(limit_train=3000, budget=TrainBudget(epochs=3.0, max_seconds=300.0))


@dataclass(frozen=True)
class EvolveConfig:
    blocks: tuple[str, ...] = ()  # empty: every nn.Module block the built model instantiates
    population: int = 4
    generations: int = 3  # including the first, made of mutations of the seed
    seed: int = 0
    cost: str = "parameters"  # the second objective: "parameters" or "macs"
    crossover_rate: float = 0.25  # share of offspring made by crossover (from the second generation on)
    eot_rate: float = 0.5  # share of mutations shown an elite's measured change (Evolution of Thought)
    mutation: MutationSettings = field(default_factory=MutationSettings)
    fitness: FitnessSettings = field(default_factory=default_fitness)

    def check(self) -> None:
        if self.population < 1 or self.generations < 1:
            raise AstevoError("--population and --generations must be at least 1")
        if not (0.0 <= self.crossover_rate <= 1.0 and 0.0 <= self.eot_rate <= 1.0):
            raise AstevoError("crossover_rate and eot_rate must lie between 0 and 1")
        check_cost(self.cost)
        self.mutation.check()
        fitness = self.fitness
        if not fitness.train:
            raise AstevoError("fitness.train = false leaves no accuracy to select on; evolution needs training")
        if not 0.0 < fitness.val_fraction < 1.0:
            raise AstevoError(f"fitness.val_fraction must lie between 0 and 1, got {fitness.val_fraction}")
        if fitness.limit_train is not None and fitness.limit_train < 2:
            raise AstevoError(f"--limit-train must be at least 2 images, got {fitness.limit_train}")
        if fitness.check_seconds <= 0 or fitness.memory_mb <= 0 or fitness.threads < 0:
            raise AstevoError("fitness.check_seconds and fitness.memory_mb must be positive, fitness.threads 0 or more")

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "EvolveConfig":
        return _build(cls, record, "config")


def read_config(path: Path) -> dict[str, Any]:
    """A TOML file's settings as nested tables; unknown keys are caught when they are applied."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise AstevoError(f"cannot read config file {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise AstevoError(f"{path} is not valid TOML: {error}") from None


def apply(config: EvolveConfig, overrides: dict[str, Any], origin: str = "config") -> EvolveConfig:
    """`config` with the nested `overrides` (TOML tables or flags) applied; unknown keys are errors."""
    record = config.to_record()
    _merge(record, overrides, origin)
    return EvolveConfig.from_record(record)


def _merge(record: dict[str, Any], overrides: dict[str, Any], where: str) -> None:
    for key, value in overrides.items():
        if key not in record:
            raise AstevoError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(record))}")
        if isinstance(record[key], dict):
            if not isinstance(value, dict):
                raise AstevoError(f"{where}: {key!r} is a table of settings, not a single value")
            _merge(record[key], value, f"{where}.{key}")
        else:
            record[key] = value


def _build(kind: type, record: dict[str, Any], where: str) -> Any:
    values = {}
    hints = typing.get_type_hints(kind)
    for spec in fields(kind):
        if spec.name not in record:
            continue
        value = record[spec.name]
        default = _default(spec)
        if is_dataclass(default):
            value = _build(type(default), value, f"{where}.{spec.name}")
        else:
            value = _checked(value, hints[spec.name], f"{where}.{spec.name}")
        values[spec.name] = value
    try:
        return kind(**values)
    except TypeError as error:
        raise AstevoError(f"{where}: {error}") from None


def _checked(value: Any, hint: Any, where: str) -> Any:
    """`value` if it fits the field's annotation (an int passes for a float; a list for a tuple of items)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if typing.get_origin(option) is tuple and isinstance(value, (list, tuple)):
            item = typing.get_args(option)[0]
            if all(isinstance(entry, item) for entry in value):
                return tuple(value)
        elif option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        elif option in (int, str, bool) and isinstance(value, option) and (option is bool) == isinstance(value, bool):
            return value
    shown = " or ".join(_type_name(option) for option in options)
    raise AstevoError(f"{where} must be {shown}, got {value!r}")


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return f"a list of {typing.get_args(hint)[0].__name__}"
    return "nothing" if hint is type(None) else hint.__name__


def _default(spec: dataclasses.Field) -> Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default
