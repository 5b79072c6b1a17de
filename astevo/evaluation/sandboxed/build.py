"""Building a candidate model; runs only inside the sandbox's child process.

The candidate's source is untrusted: these functions are what the child executes
on astevo's behalf, and they return plain JSON-able facts to the parent.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch.nn as nn

from astevo.evaluation.tasks import Network

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
    """Which file classes were instantiated during one model build, by class name, and the model's arguments."""

    arguments: Arguments
    instances: dict[str, list[Instance]] = field(default_factory=dict)


def load_candidate(source: str, name: str = "candidate") -> types.ModuleType:
    """Execute the model file as a fresh module, registered so dataclasses and pickling can find it."""
    module = types.ModuleType(name)
    module.__file__ = f"{name}.py"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102 - only ever in the sandbox
    return module


def choose_model_class(module: types.ModuleType, candidates: Sequence[str]) -> type[nn.Module]:
    """The last candidate that is an nn.Module class: model files define the network last."""
    for name in reversed(candidates):
        value = getattr(module, name, None)
        if isinstance(value, type) and issubclass(value, nn.Module):
            return value
    raise BuildError(f"no nn.Module class among {', '.join(candidates) or 'the blocks'}")


@dataclass(frozen=True)
class Arguments:
    """What the model's constructor is given, and which of its arguments took the class count and the channels."""

    values: dict[str, int]
    classes: str | None
    channels: str | None


def constructor_arguments(model_class: type, network: Network) -> Arguments:
    """Fill the class count and the input channels: into the arguments the settings name, else the usual names.

    Every other argument must have a default. A name the settings give that the constructor lacks is an
    error, never a guess.
    """
    parameters = {
        name: parameter
        for name, parameter in inspect.signature(model_class).parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
    values: dict[str, int] = {}
    chosen: dict[str, str | None] = {}
    for role, usual, setting, wanted, value in (
        ("classes", NUM_CLASSES_NAMES, "classes_argument", network.classes_argument, network.num_classes),
        ("channels", CHANNELS_NAMES, "channels_argument", network.channels_argument, network.channels),
    ):
        if wanted is not None and wanted not in parameters:
            raise BuildError(
                f"{model_class.__name__} has no argument {wanted!r} (the setting fitness.{setting}); "
                f"its arguments are: {', '.join(parameters) or 'none'}"
            )
        name = wanted or next((name for name in parameters if name in usual), None)
        if name is not None:
            values[name] = value
        chosen[role] = name
    for name, parameter in parameters.items():
        if name not in values and parameter.default is parameter.empty:
            raise BuildError(
                f"{model_class.__name__} needs argument {name!r}, which astevo cannot supply; give it a default"
            )
    return Arguments(values, chosen["classes"], chosen["channels"])


def build_recording(
    module: types.ModuleType, model_class: type[nn.Module], network: Network
) -> tuple[nn.Module, Construction]:
    """Build the model while noting every construction of the file's own module classes."""
    arguments = constructor_arguments(model_class, network)
    construction = Construction(arguments=arguments)
    originals: dict[type[nn.Module], Any] = {}
    for name in network.block_names:
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            originals[cls] = cls.__dict__.get("__init__")
            # setattr: a plain assignment to a method is a type error, though patching it is the point here
            setattr(cls, "__init__", _recording_init(cls, construction))  # noqa: B010
    try:
        model = model_class(**arguments.values)
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
