"""Parameters and compute of a model, in multiply-adds, with no operator silently counted as zero.

fvcore counts convolutions and matrix products by default; evolved blocks lean on
activations, gates and residual sums, so those get handles too, and anything still
unknown is reported by name instead of vanishing from the total.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import get_shape

# One operation per output element.
ELEMENTWISE_OPS = [
    f"aten::{name}"
    for name in (
        "silu",
        "silu_",
        "hardswish",
        "hardswish_",
        "sigmoid",
        "sigmoid_",
        "hardsigmoid",
        "hardsigmoid_",
        "relu",
        "relu_",
        "relu6",
        "gelu",
        "gelu_",
        "tanh",
        "tanh_",
        "elu",
        "elu_",
        "leaky_relu",
        "leaky_relu_",
        "mish",
        "mish_",
        "softplus",
        "hardtanh",
        "hardtanh_",
        "exp",
        "log",
        "sqrt",
        "rsqrt",
        "abs",
        "clamp",
        "clamp_",
        "clamp_min",
        "clamp_min_",
        "clamp_max",
        "mul",
        "mul_",
        "add",
        "add_",
        "sub",
        "sub_",
        "rsub",
        "div",
        "div_",
        "neg",
        "neg_",
        "pow",
        "square",
        "maximum",
        "minimum",
        "where",
        "softmax",
        "log_softmax",
        "sum",
        "mean",
        "amax",
        "amin",
        "max",
        "min",
    )
]
# One comparison or addition per input element.
POOLING_OPS = [
    f"aten::{name}"
    for name in (
        "max_pool2d",
        "max_pool1d",
        "max_pool3d",
        "avg_pool2d",
        "avg_pool1d",
        "avg_pool3d",
        "max_pool2d_with_indices",
        "adaptive_max_pool2d",
    )
]


@dataclass(frozen=True)
class Cost:
    parameters: int
    macs: int
    by_operator: dict[str, int]
    uncounted_ops: dict[str, int]


def _output_elements(inputs: list[Any], outputs: list[Any]) -> int:
    shape = get_shape(outputs[0])
    return math.prod(shape) if shape else 0


def _input_elements(inputs: list[Any], outputs: list[Any]) -> int:
    shape = get_shape(inputs[0])
    return math.prod(shape) if shape else 0


def measure_cost(model: nn.Module, example: torch.Tensor) -> Cost:
    """Count one example's compute (batch of one) and all parameters, in eval mode."""
    was_training = model.training
    model.eval()
    try:
        analysis = FlopCountAnalysis(model, (example[:1],))
        analysis.set_op_handle(**{op: _output_elements for op in ELEMENTWISE_OPS})
        analysis.set_op_handle(**{op: _input_elements for op in POOLING_OPS})
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # fvcore traces with torch.jit, which warns
            total = int(analysis.total())
        by_operator = {op: int(count) for op, count in analysis.by_operator().items()}
        uncounted = dict(analysis.unsupported_ops())
    finally:
        model.train(was_training)
    parameters = sum(p.numel() for p in model.parameters())
    return Cost(parameters, total, by_operator, uncounted)
