"""Measuring versions of a model without training or memory: build (and run) them on torch's meta device.

A size edit must not break the model, and whether a literal is a channel count shows
only in what the built model does with it. On the meta device a build allocates nothing
and a forward pass computes only shapes, so a channel count of 55,440 costs milliseconds.
Runs only inside the sandbox's child process.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from astevo.evaluation.sandboxed.build import choose_model_class, constructor_arguments, load_candidate
from astevo.evaluation.tasks import Network, Versions

# Attributes through which a module's constructor records the channels (or features) it maps.
CHANNEL_ATTRIBUTES = (
    "in_channels",
    "out_channels",
    "num_features",
    "num_channels",
    "in_features",
    "out_features",
    "normalized_shape",
    "embed_dim",
    "hidden_size",
    "input_size",
)
BATCH = 2  # a batch like the probe's, never the degenerate single sample


def _build(network: Network, source: str) -> nn.Module:
    module = load_candidate(source, name="variant")
    model_class = choose_model_class(module, network.model_candidates)
    with torch.device("meta"):
        return model_class(**constructor_arguments(model_class, network).values)


def _channels(model: nn.Module) -> dict[tuple[str, str], str]:
    return {
        (name, attribute): repr(getattr(module, attribute))
        for name, module in model.named_modules()
        for attribute in CHANNEL_ATTRIBUTES
        if hasattr(module, attribute)
    }


def _channels_changed(before: dict[tuple[str, str], str], after: dict[tuple[str, str], str]) -> bool:
    """Whether a module both builds have maps other channels: a literal that adds or drops modules
    (a repeat count) is not a width, whatever the new modules' channels are."""
    return any(after[key] != value for key, value in before.items() if key in after)


def _output_shape(network: Network, model: nn.Module) -> list[int]:
    size = network.image_size
    example = torch.empty(BATCH, network.channels, size, size, device="meta")
    model.eval()
    with torch.no_grad():
        output = model(example)
    if not isinstance(output, torch.Tensor):
        raise TypeError(f"the model returned {type(output).__name__}, not a tensor")
    return list(output.shape)


def measure_versions(task: Versions) -> dict[str, Any]:
    """For each version: does it build (and, when asked, map an input to the original's output shape),
    how many parameters it has, and whether any module's channels differ from the original's."""
    network = task.network
    original = _build(network, network.source)
    channels = _channels(original)
    try:
        shape: list[int] | None = _output_shape(network, original)
    except Exception:  # an op without a meta kernel: forward checks are then left to the real probe
        shape = None
    results = []
    for version in task.versions:
        try:
            model = _build(network, version.source)
            if version.forward:
                if shape is None:
                    raise RuntimeError("the original model cannot run on the meta device")
                found = _output_shape(network, model)
                if found != shape:
                    raise ValueError(f"the output shape changes from {shape} to {found}")
        except Exception as error:  # the variant's own failure is its verdict
            results.append({"ok": False, "reason": f"{type(error).__name__}: {error}"[:300]})
            continue
        results.append(
            {
                "ok": True,
                "reason": None,
                "parameters": sum(p.numel() for p in model.parameters()),
                "channels_changed": _channels_changed(channels, _channels(model)),
            }
        )
    return {"parameters": sum(p.numel() for p in original.parameters()), "variants": results}
