"""The CPU shortcuts compute what the layers compute, take effect where they should, and leave no trace."""

from __future__ import annotations

import copy
from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from astevo.data.loading import load_dataset
from astevo.evaluation.sandboxed import cpu_shortcuts as shortcuts
from astevo.evaluation.sandboxed.train import train
from astevo.settings import TrainBudget
from tests.seed_module import load_seed

CPU = torch.device("cpu")


def forward_and_grads(module: nn.Module, x: torch.Tensor, use_shortcuts: bool) -> list[torch.Tensor]:
    """Output, input gradient and parameter gradients of one forward and backward on a copy of `module`."""
    module = copy.deepcopy(module)
    x = x.detach().clone().requires_grad_()
    if use_shortcuts:
        with shortcuts.cpu_shortcuts(module, CPU):
            out = module(x)
    else:
        out = module(x)
    out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
    return [out.detach(), x.grad] + [p.grad for p in module.parameters()]


def assert_same_results(module: nn.Module, x: torch.Tensor) -> None:
    usual = forward_and_grads(module, x, use_shortcuts=False)
    fast = forward_and_grads(module, x, use_shortcuts=True)
    for layout in (torch.contiguous_format, torch.channels_last):  # the output's layout matters downstream
        assert fast[0].is_contiguous(memory_format=layout) == usual[0].is_contiguous(memory_format=layout)
    for expected, actual in zip(usual, fast, strict=True):
        assert actual.shape == expected.shape
        scale = max(1.0, float(expected.abs().max()))  # sums of many terms differ by rounding in the last bits
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * scale)


@st.composite
def conv_cases(draw: st.DrawFn) -> tuple[nn.Conv2d, torch.Tensor]:
    """Convolutions around the shortcut cases: tiny inputs, 1x1 and depthwise kernels, odd strides and paddings."""
    in_channels = draw(st.integers(1, 6))
    depthwise = draw(st.booleans())
    out_channels = in_channels if depthwise else draw(st.integers(1, 6))
    kernel = draw(st.sampled_from([(1, 1), (3, 3), (1, 3), (2, 2), (5, 5)]))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = draw(st.sampled_from([(1, 1), (2, 1)]))
    height, width = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    for size, pad, k, d in zip((height, width), padding, kernel, dilation, strict=True):
        if size + 2 * pad < d * (k - 1) + 1:
            height = width = 0
    if height == 0:
        padding = tuple(k // 2 * d for k, d in zip(kernel, dilation, strict=True))
        height, width = max(kernel), max(kernel)
    torch.manual_seed(draw(st.integers(0, 2**16)))
    conv = nn.Conv2d(
        in_channels,
        out_channels,
        kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=in_channels if depthwise else 1,
        bias=draw(st.booleans()),
    )
    x = torch.randn(draw(st.integers(1, 3)), in_channels, height, width)
    if draw(st.booleans()):
        x = x.contiguous(memory_format=torch.channels_last)
    return conv, x


@settings(max_examples=150, deadline=None)
@given(conv_cases())
def test_convolutions_give_the_usual_outputs_and_gradients(case: tuple[nn.Conv2d, torch.Tensor]) -> None:
    conv, x = case
    assert_same_results(conv, x)


@pytest.mark.parametrize(
    ("conv", "shape"),
    [
        (nn.Conv2d(8, 16, 1, bias=False), (4, 8, 2, 2)),  # pointwise over 4 pixels
        (nn.Conv2d(8, 16, 1), (4, 8, 1, 1)),
        (nn.Conv2d(8, 8, 3, padding=1, groups=8), (4, 8, 1, 1)),  # depthwise "same" on one pixel
        (nn.Conv2d(8, 8, 5, padding=2, groups=8, bias=False), (4, 8, 1, 1)),
        (nn.Conv2d(8, 16, 3, padding=1), (4, 8, 1, 1)),  # a dense 3x3 on one pixel is a matrix product too
        (nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8), (4, 8, 1, 1)),  # strided: still one window
    ],
)
def test_shortcut_is_taken_and_exact_where_it_applies(conv: nn.Conv2d, shape: tuple[int, ...]) -> None:
    x = torch.randn(shape).contiguous(memory_format=torch.channels_last)
    assert shortcuts.conv_as_matrix_product(conv, x) is not None
    assert_same_results(conv, x)


F32, CL = torch.float32, torch.channels_last


@pytest.mark.parametrize(
    ("conv", "shape", "dtype", "layout"),
    [
        (nn.Conv2d(8, 16, 1), (4, 8, 3, 2), F32, CL),  # pointwise over 6 pixels: oneDNN is faster there
        (nn.Conv2d(8, 8, 3, padding=1, groups=8), (4, 8, 2, 2), F32, CL),
        (nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8), (4, 8, 1, 1), F32, CL),
        (nn.Conv2d(8, 8, 3, padding=1, groups=8, padding_mode="reflect"), (4, 8, 1, 1), F32, CL),
        (nn.Conv2d(8, 8, 3, padding="same", groups=8), (4, 8, 1, 1), F32, CL),
        (nn.Conv2d(8, 8, 5, padding=3, groups=8), (4, 8, 1, 1), F32, CL),  # two windows: 3x3 output
        (nn.Conv2d(8, 8, 1, groups=2), (4, 8, 1, 1), F32, CL),  # grouped but not depthwise
        (nn.Conv2d(8, 16, 1), (8, 1, 1), F32, CL),  # an unbatched input
        (nn.Conv2d(8, 8, 3, padding=1, groups=8), (4, 1, 1, 1), F32, CL),  # wrong channel count: the conv's own error
        (nn.Conv2d(8, 16, 1), (4, 8, 2, 2), torch.float64, CL),  # another dtype: the conv's own error
        (nn.Conv2d(8, 16, 1), (4, 8, 2, 2), F32, torch.contiguous_format),  # the usual output is contiguous there
    ],
)
def test_no_shortcut_outside_its_cases(
    conv: nn.Conv2d, shape: tuple[int, ...], dtype: torch.dtype, layout: torch.memory_format
) -> None:
    x = torch.randn(shape, dtype=dtype)
    x = x.contiguous(memory_format=layout) if x.dim() == 4 else x
    assert shortcuts.conv_as_matrix_product(conv, x) is None


@pytest.mark.parametrize("channels", [2, 3, 12, 15])
def test_narrow_batch_norm_matches_in_outputs_gradients_and_running_statistics(channels: int) -> None:
    torch.manual_seed(channels)
    norm = nn.BatchNorm2d(channels)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    x = (3 * torch.randn(16, channels, 5, 7) + 1).contiguous(memory_format=torch.channels_last)
    assert shortcuts.narrow_batch_norm_on_contiguous(copy.deepcopy(norm), x) is not None
    assert_same_results(norm, x)
    usual, fast = copy.deepcopy(norm), copy.deepcopy(norm)
    usual(x)
    with shortcuts.cpu_shortcuts(fast, CPU):
        out = fast(x)
        fast.eval()
        torch.testing.assert_close(fast(x), usual.eval()(x))
    assert out.is_contiguous(memory_format=torch.channels_last)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(fast, name), getattr(usual, name))


def test_wide_or_contiguous_batch_norm_keeps_its_usual_forward() -> None:
    wide = torch.randn(4, 16, 3, 3).contiguous(memory_format=torch.channels_last)
    assert shortcuts.narrow_batch_norm_on_contiguous(nn.BatchNorm2d(16), wide) is None
    assert shortcuts.narrow_batch_norm_on_contiguous(nn.BatchNorm2d(12), torch.randn(4, 12, 3, 3)) is None
    one_channel = torch.randn(4, 1, 3, 3).contiguous(memory_format=torch.channels_last)  # contiguous as well
    assert shortcuts.narrow_batch_norm_on_contiguous(nn.BatchNorm2d(1), one_channel) is None


class OwnConv(nn.Conv2d):
    """A candidate's own Conv2d subclass: its forward may do anything, so it is never replaced."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 2


def test_context_replaces_only_plain_layers_on_cpu_and_always_restores_them() -> None:
    model = nn.Sequential(nn.Conv2d(4, 4, 1), OwnConv(4, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
    x = torch.randn(2, 4, 1, 1)
    with shortcuts.cpu_shortcuts(model, CPU):
        assert [("forward" in vars(layer)) for layer in model] == [True, False, True, False]
        torch.testing.assert_close(model[0](input=x), nn.Conv2d.forward(model[0], x))  # called as PyTorch allows
    assert not any("forward" in vars(layer) for layer in model)
    with pytest.raises(RuntimeError, match="candidate failed"):
        with shortcuts.cpu_shortcuts(model, CPU):
            raise RuntimeError("candidate failed")
    assert not any("forward" in vars(layer) for layer in model)
    with shortcuts.cpu_shortcuts(model, torch.device("cuda")):
        assert not any("forward" in vars(layer) for layer in model)


@pytest.fixture()
def shortcut_log(monkeypatch: pytest.MonkeyPatch) -> list[nn.Module]:
    """The layers whose calls took a shortcut (not just tried one)."""
    taken: list[nn.Module] = []

    def recording(attempt):  # noqa: ANN001, ANN202 - wraps either shortcut function
        def wrapped(module: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
            result = attempt(module, x)
            if result is not None:
                taken.append(module)
            return result

        return wrapped

    monkeypatch.setattr(shortcuts, "_SHORTCUTS", {kind: recording(f) for kind, f in shortcuts._SHORTCUTS.items()})
    return taken


SEED_SHORTCUT_LAYERS = {  # at 28x28: the 12-channel stem, and everything from 2x2 pixels on
    "FCT.bn",
    "DFSEB1.bn1",
    "DFSEB1.bn2",
    "ME4.pw",
    "DFSEB4.pw1",
    "DFSEB4.pw2",
    "ME5.pw",
    "DFSEB5.pw1",
    "DFSEB5.dw1",
    "DFSEB5.pw2",
    "DFSEB5.dw2",
    "DW.dw",
}


def test_seed_training_step_is_unchanged_and_uses_the_shortcuts(shortcut_log: list[nn.Module]) -> None:
    torch.manual_seed(0)
    model = load_seed().ExquisiteNetV2(10, 1).to(memory_format=torch.channels_last).train()
    x = torch.randn(32, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    results = []
    for use in (False, True):
        copy_ = copy.deepcopy(model)
        torch.manual_seed(1)  # the same dropout mask
        with shortcuts.cpu_shortcuts(copy_, CPU) if use else nullcontext():
            loss = F.cross_entropy(copy_(x), torch.arange(32) % 10)
        loss.backward()
        results.append([loss.detach()] + [p.grad for p in copy_.parameters()])
        if use:
            names = {module: name for name, module in copy_.named_modules()}
            assert {names[module] for module in shortcut_log} == SEED_SHORTCUT_LAYERS
    for expected, actual in zip(*results, strict=True):
        torch.testing.assert_close(actual, expected, rtol=1e-3, atol=1e-6)


def test_train_uses_the_shortcuts_and_leaves_the_model_as_it_was(shortcut_log: list[nn.Module]) -> None:
    data = load_dataset("fashion-mnist", val_fraction=0.02, limit_train=256)
    torch.manual_seed(0)
    model = load_seed().ExquisiteNetV2(data.num_classes, data.channels)
    run = train(model, data, TrainBudget(epochs=1, batch_size=64), device=CPU)
    assert run.images_seen == 256
    assert shortcut_log
    assert not any("forward" in vars(module) for module in model.modules())
