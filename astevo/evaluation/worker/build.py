"""Building a candidate model; runs only inside the sandbox's child process.

The candidate's source is untrusted: these functions are what the child executes
on astevo's behalf, and they return plain JSON-able facts to the parent.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

NUM_CLASSES_NAMES = ("class_num", "num_classes", "n_classes", "classes", "nclass", "num_class")
CHANNELS_NAMES = ("img_channels", "in_channels", "in_chans", "input_channels", "channels", "in_ch")


class BuildError(Exception):
    """The candidate's model cannot be constructed with the arguments astevo knows."""


@dataclass(frozen=True)
class Instance:
    """One construction of a file class inside the model, with the arguments it was given."""

    module: nn.Module
    args: tuple
    kwargs: dict[str, Any]

    def shown_arguments(self) -> str:
        return ", ".join([repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()])


@dataclass
class Construction:
    """Which file classes were instantiated during one model build, by class name."""

    instances: dict[str, list[Instance]] = field(default_factory=dict)


def load_candidate(source: str, name: str = "candidate") -> types.ModuleType:
    """Execute the model file as a fresh module, registered so dataclasses and pickling can find it."""
    module = types.ModuleType(name)
    module.__file__ = f"{name}.py"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - only ever in the sandbox
    return module


def choose_model_class(module: types.ModuleType, candidates: list[str]) -> type[nn.Module]:
    """The last candidate that is an nn.Module class: model files define the network last."""
    for name in reversed(candidates):
        value = getattr(module, name, None)
        if isinstance(value, type) and issubclass(value, nn.Module):
            return value
    raise BuildError(f"no nn.Module class among {', '.join(candidates) or 'the blocks'}")


def constructor_arguments(model_class: type, num_classes: int, channels: int) -> dict[str, int]:
    """Fill the class count and input channels by their usual names; the rest must have defaults."""
    arguments: dict[str, int] = {}
    for name, parameter in inspect.signature(model_class).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in NUM_CLASSES_NAMES:
            arguments[name] = num_classes
        elif name in CHANNELS_NAMES:
            arguments[name] = channels
        elif parameter.default is parameter.empty:
            raise BuildError(
                f"{model_class.__name__} needs argument {name!r}, which astevo cannot supply; give it a default"
            )
    return arguments


def build_recording(
    module: types.ModuleType, model_class: type[nn.Module], block_names: list[str], num_classes: int, channels: int
) -> tuple[nn.Module, Construction]:
    """Build the model while noting every construction of the file's own module classes."""
    construction = Construction()
    arguments = constructor_arguments(model_class, num_classes, channels)
    originals: dict[type[nn.Module], Any] = {}
    for name in block_names:
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            originals[cls] = cls.__dict__.get("__init__")
            # setattr: a plain assignment to a method is a type error, though patching it is the point here
            setattr(cls, "__init__", _recording_init(cls, construction))  # noqa: B010
    try:
        model = model_class(**arguments)
    finally:
        for cls, original in originals.items():
            if original is None:
                del cls.__init__
            else:
                setattr(cls, "__init__", original)  # noqa: B010
    return model, construction


def _recording_init(cls: type[nn.Module], construction: Construction) -> Callable[..., None]:
    wrapped = cls.__init__

    @functools.wraps(wrapped)
    def recording_init(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        wrapped(self, *args, **kwargs)
        if type(self) is cls:
            construction.instances.setdefault(cls.__name__, []).append(Instance(self, args, kwargs))

    return recording_init


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
