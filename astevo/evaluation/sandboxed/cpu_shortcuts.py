"""Faster CPU code paths for layer shapes that PyTorch's CPU kernels handle poorly.

ExquisiteNetV2 trains on 28-32 pixel images: its stem has 12 channels and its last stages run
at 2x2 and 1x1 pixels. Measured on this project's 2-core machines, a training step of a
channels_last BatchNorm over 12 channels took 1.8x the time it takes on a contiguous copy (the
kernel vectorises across channels, 16 floats at a time), and oneDNN's convolutions at 1-4 output
pixels took 2-4x (1x1) and 5-7x (3x3 depthwise) the time of the same arithmetic as a matrix
product or a per-channel scale. Together those layers were about a quarter of a training step.

`cpu_shortcuts` gives exact `nn.Conv2d` and `nn.BatchNorm2d` modules a forward that takes these
paths while training and validation run, and restores them afterwards. Each call checks its own
input, so a call outside the cases below, or a candidate's own subclass, runs the usual forward.
Results equal the usual ones up to float rounding (tests/test_cpu_shortcuts.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SMALL_PIXELS = 4  # a 1x1 convolution over at most this many pixels runs as a matrix product
NARROW_CHANNELS = 16  # a channels_last BatchNorm over fewer channels runs on a contiguous copy

# A layer's shortcut: its result, or None to run the usual forward. The layer is the exact type it is keyed by.
Attempt = Callable[[Any, torch.Tensor], torch.Tensor | None]


@contextmanager
def cpu_shortcuts(model: nn.Module, device: torch.device) -> Iterator[None]:
    """While active, `model`'s plain Conv2d and BatchNorm2d layers take the shortcuts on a CPU."""
    if device.type != "cpu":
        yield
        return
    patched = [module for module in model.modules() if type(module) in _SHORTCUTS and "forward" not in vars(module)]
    for module in patched:
        module.forward = _Shortcut(module)
    try:
        yield
    finally:
        for module in patched:
            vars(module).pop("forward", None)


class _Shortcut:
    """A layer's forward that tries its shortcut first.

    An object rather than a closure so that a deepcopy of the layer gets a forward bound to the
    copy (a copy made inside the context keeps it after the context ends, which is harmless:
    every call still checks its input).
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.attempt = _SHORTCUTS[type(module)]

    def __call__(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - the name the layers' forward uses
        result = self.attempt(self.module, input)
        return type(self.module).forward(self.module, input) if result is None else result


def conv_as_matrix_product(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor | None:
    """`conv(x)` without a convolution kernel, or None when no shortcut applies to this call.

    Only a channels_last (or 1x1) batch of the weight's dtype and channel count qualifies, so the
    result has the layout, dtype and errors the convolution would have.
    """
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str) or x.dim() != 4:
        return None
    if x.shape[1] != conv.in_channels or x.dtype != conv.weight.dtype:
        return None
    if not x.is_contiguous(memory_format=torch.channels_last):
        return None
    height, width = x.shape[-2:]
    if _is_pointwise(conv) and height * width <= SMALL_PIXELS:
        channels_last = x.permute(0, 2, 3, 1)
        return F.linear(channels_last, conv.weight.flatten(1), conv.bias).permute(0, 3, 1, 2)
    if (height, width) == (1, 1) and _touches_one_pixel_with_one_tap(conv):
        tap = conv.weight[:, :, conv.padding[0], conv.padding[1]]
        if conv.groups == 1:
            return F.linear(x.flatten(1), tap, conv.bias)[:, :, None, None]
        if conv.groups == conv.in_channels == conv.out_channels:
            scaled = x * tap.view(1, -1, 1, 1)
            return scaled if conv.bias is None else scaled + conv.bias.view(1, -1, 1, 1)
    return None


def narrow_batch_norm_on_contiguous(norm: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor | None:
    """`norm(x)` computed on a contiguous copy, or None when `x` is not a narrow channels_last batch."""
    if norm.num_features >= NARROW_CHANNELS or x.dim() != 4 or x.is_contiguous():
        return None
    if not x.is_contiguous(memory_format=torch.channels_last):
        return None
    return nn.BatchNorm2d.forward(norm, x.contiguous()).contiguous(memory_format=torch.channels_last)


def _is_pointwise(conv: nn.Conv2d) -> bool:
    return conv.kernel_size == (1, 1) and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.groups == 1


def _touches_one_pixel_with_one_tap(conv: nn.Conv2d) -> bool:
    """On a 1x1 input the output is 1x1 and its only window meets the pixel at tap (padding, padding).

    Along each axis the zero-padded input has 2p + 1 positions and the pixel sits at p; with
    dilation 1 a window of k starting at 0 covers taps 0..k-1, and it is the only window when
    fewer than `stride` positions are left after it.
    """
    if conv.dilation != (1, 1) or isinstance(conv.padding, str):
        return False
    return all(
        padding < kernel and 0 <= 2 * padding + 1 - kernel < stride
        for kernel, padding, stride in zip(conv.kernel_size, conv.padding, conv.stride, strict=True)
    )


_SHORTCUTS: dict[type[nn.Module], Attempt] = {
    nn.Conv2d: conv_as_matrix_product,
    nn.BatchNorm2d: narrow_batch_norm_on_contiguous,
}
