"""Frozen dataclasses built from plain records (TOML tables, stored JSON), checked as they are built.

Every wrong key, type or value is a SettingsError named by its path in the tree (`fitness.budget.epochs`), so
the command line can name the flag that set it. Nothing here knows which settings astevo has.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

from astevo.errors import AstevoError


class SettingsError(AstevoError):
    """A setting with a bad value, named by its path in the tree (`fitness.budget.epochs`)."""

    def __init__(self, setting: str, problem: str, origin: str | None = None) -> None:
        self.setting, self.problem, self.origin = setting, problem, origin
        super().__init__(f"{origin + ': ' if origin else ''}{setting} {problem}")

    def under(self, prefix: str) -> SettingsError:
        return SettingsError(f"{prefix}.{self.setting}" if prefix else self.setting, self.problem, self.origin)


def require(condition: bool, setting: str, problem: str) -> None:
    if not condition:
        raise SettingsError(setting, problem)


Settings = TypeVar("Settings")


def build(kind: type[Settings], record: dict[str, Any], prefix: str = "") -> Settings:
    """A settings object from a record: unknown keys, wrong types and bad values are SettingsErrors."""
    if not isinstance(record, dict):
        raise SettingsError(prefix or "settings", f"must be a table of settings, got {record!r}")
    specs = {spec.name: spec for spec in fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(record) - set(specs))
    if unknown:
        where = f"{prefix}.{unknown[0]}" if prefix else unknown[0]
        raise SettingsError(where, f"is not a setting; known here: {', '.join(sorted(specs))}")
    hints = typing.get_type_hints(kind)
    values = {}
    for name, value in record.items():
        path = f"{prefix}.{name}" if prefix else name
        default = _default(specs[name])
        values[name] = (
            build(type(default), value, path) if is_dataclass(default) else _checked(value, hints[name], path)
        )
    try:
        return kind(**values)
    except SettingsError as error:
        raise error.under(prefix) from None


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
            return float(value)  # `epochs = 2` and `--epochs 2` are the same setting
        elif option in (int, str, bool) and isinstance(value, option) and (option is bool) == isinstance(value, bool):
            return value
    shown = " or ".join(_type_name(option) for option in options)
    raise SettingsError(where, f"must be {shown}, got {value!r}")


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return f"a list of {typing.get_args(hint)[0].__name__}"
    return "nothing" if hint is type(None) else str(hint.__name__)


def _default(spec: dataclasses.Field[Any]) -> Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default
