"""The block-level shape contract: a rewritten block, built with the arguments the model
gives it, must map the inputs the original block saw to outputs of the same shape.

This catches a broken block by itself, even where the rest of the network would
happen to absorb the wrong shape (a global pool after it, say).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from astevo.evaluation.sandboxed.build import Instance


@dataclass(frozen=True)
class BlockCall:
    instance: Instance
    inputs: tuple[torch.Tensor, ...]
    output_shape: tuple[int, ...]


def record_block_calls(model: nn.Module, instances: list[Instance], example: torch.Tensor) -> list[BlockCall]:
    """Run the original model once and keep each distinct (arguments, input shapes) call of the block."""
    calls: dict[tuple[str, tuple], BlockCall] = {}

    def hook_for(instance: Instance) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def hook(_module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
            if (
                not inputs
                or not all(isinstance(t, torch.Tensor) for t in inputs)
                or not isinstance(output, torch.Tensor)
            ):
                return
            key = (instance.shown_arguments(), tuple(tuple(t.shape) for t in inputs))
            calls.setdefault(key, BlockCall(instance, tuple(t.detach().clone() for t in inputs), tuple(output.shape)))

        return hook

    handles = [instance.module.register_forward_hook(hook_for(instance)) for instance in instances]
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return list(calls.values())


def violation(block_class: type[nn.Module], calls: list[BlockCall]) -> str | None:
    """The first call where the new block's output shape differs from the original's, as a reason."""
    for call in calls:
        shown = f"{block_class.__name__}({call.instance.shown_arguments()})"
        block = block_class(*call.instance.args, **call.instance.kwargs).eval()
        with torch.no_grad():
            output = block(*call.inputs)
        in_shapes = ", ".join(str(tuple(t.shape)) for t in call.inputs)
        if not isinstance(output, torch.Tensor):
            return f"{shown} returned {type(output).__name__} for input {in_shapes}, not a tensor"
        if tuple(output.shape) != call.output_shape:
            return f"{shown} maps {in_shapes} to {tuple(output.shape)}; the original block gave {call.output_shape}"
    return None
