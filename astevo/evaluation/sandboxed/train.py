"""The short training run that fitness repeats for every candidate: astevo's hot path.

It is fast because nothing per sample runs in Python: the data set stays in memory as uint8 (on
the GPU when there is one), a batch is cropped and flipped by one batched gather, the model and
its inputs use channels_last, CUDA runs under AMP, and on a CPU the layer shapes that PyTorch's
kernels handle poorly take faster paths (astevo.evaluation.sandboxed.cpu_shortcuts). There are no PIL transforms and
no DataLoader workers to feed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from astevo.data.loading import Dataset, Split
from astevo.errors import AstevoError
from astevo.evaluation.sandboxed.cpu_shortcuts import cpu_shortcuts
from astevo.settings import TrainBudget

OptimizerFactory = Callable[[nn.Module, float, float], torch.optim.Optimizer]

CROP_PADDING = 4
_CHECK_EVERY = 8  # steps between divergence checks; each check waits for the GPU to catch up
_LOSS_SMOOTHING = 0.1  # weight of the newest step in the running train loss


def pick_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class TrainRun:
    """What one short training run measured."""

    train_loss: float
    images_seen: int
    epochs_done: float
    seconds: float
    images_per_second: float
    stopped_by: Literal["budget", "time"]


class TrainingDiverged(Exception):
    """The training loss became NaN or infinite: the candidate failed, not the run."""


class BatchMaker:
    """Turns index batches of one split into normalised, channels_last float batches on the device.

    Images are stored once as zero-padded N x H x W x C uint8, and viewed (without copying) as
    every crop window at every offset; a batch of random crops is then one index of that view,
    and the permute to N x C x H x W that follows is free and gives channels_last strides.
    """

    def __init__(self, split: Split, data: Dataset, device: torch.device, padding: int = 0) -> None:
        self.device = device
        self.padding = padding
        count, channels, height, width = split.images.shape
        padded = split.images.new_zeros((count, height + 2 * padding, width + 2 * padding, channels))
        padded[:, padding : padding + height, padding : padding + width] = split.images.permute(0, 2, 3, 1)
        padded = _keep_for(padded, device)
        image_stride, row_stride, col_stride, channel_stride = padded.stride()
        self.windows = padded.as_strided(
            (count, 2 * padding + 1, 2 * padding + 1, height, width, channels),
            (image_stride, row_stride, col_stride, row_stride, col_stride, channel_stride),
        )
        self.labels = _keep_for(split.labels, device)
        self.storage = padded.device
        mean = torch.tensor(data.mean, dtype=torch.float32)
        std = torch.tensor(data.std, dtype=torch.float32)
        self.scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1).to(device)
        self.shift = (-mean / std).view(1, -1, 1, 1).to(device)

    def plain(self, index: slice | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The images uncropped (the centre window) and unflipped, for evaluation."""
        return self._finish(self.windows[index, self.padding, self.padding], self.labels[index])

    def augmented(self, index: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random crops (with the zero padding) of the indexed images, the first half of them flipped.

        The batch comes from a random permutation, so flipping its first half flips each image
        with probability one half, without a GPU sync to count coin tosses.
        """
        offsets = torch.randint(0, 2 * self.padding + 1, (2, index.shape[0]), device=self.storage, generator=generator)
        crops = self.windows[index, offsets[0], offsets[1]]
        half = index.shape[0] // 2
        crops[:half] = crops[:half].flip(2)
        return self._finish(crops, self.labels[index])

    def _finish(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = images.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        images = images.to(torch.float32, memory_format=torch.channels_last)
        return images.mul_(self.scale).add_(self.shift), labels.to(self.device, non_blocking=True)


def _keep_for(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move data to the GPU once; if it does not fit, pin it so batch copies can overlap compute."""
    if device.type != "cuda":
        return tensor
    try:
        return tensor.to(device)
    except torch.cuda.OutOfMemoryError:
        return tensor.pin_memory()


def default_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum, used when the evaluated file defines no get_optimizer."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Learning-rate factor per step: a linear warm-up, then a cosine decay towards zero."""
    warmup = math.ceil(warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def _batch_bounds(images: int, batch_size: int) -> list[tuple[int, int]]:
    """(start, stop) of each step; a last batch of one image is dropped, as BatchNorm cannot train on it."""
    bounds = [(start, min(start + batch_size, images)) for start in range(0, images, batch_size)]
    return [(start, stop) for start, stop in bounds if stop - start > 1]


def _image_order(train_size: int, images: int, generator: torch.Generator) -> torch.Tensor:
    """A fresh shuffle of the training split per epoch, concatenated and cut to the images planned."""
    epochs = math.ceil(images / train_size)
    device = generator.device
    return torch.cat([torch.randperm(train_size, generator=generator, device=device) for _ in range(epochs)])[:images]


def _check_finite(running_loss: torch.Tensor, step: int) -> None:
    value = float(running_loss)
    if not math.isfinite(value):
        raise TrainingDiverged(f"training loss became {value} by step {step + 1}")


def train(
    model: nn.Module,
    data: Dataset,
    budget: TrainBudget,
    make_optimizer: OptimizerFactory | None = None,
    device: torch.device | None = None,
) -> TrainRun:
    """Train `model` on `data.train` within `budget` (the cascade measures validation as its own stage).

    The learning-rate schedule is planned for the whole budget, so a run cut by the time cap
    stops before the rate has decayed: the cap is a safety net, not the intended budget.
    """
    device = device or pick_device()
    started = time.perf_counter()
    torch.manual_seed(budget.training_seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    _to_channels_last(model, device)
    batches = BatchMaker(data.train, data, device, padding=CROP_PADDING)
    generator = torch.Generator(device=batches.storage).manual_seed(budget.training_seed)
    planned = budget.planned_images(len(data.train))
    steps = _batch_bounds(planned, budget.batch_size)
    if not steps:
        raise AstevoError(f"training budget allows no step: {planned} images on a split of {len(data.train)}")
    order = _image_order(len(data.train), planned, generator)
    optimizer = (make_optimizer or default_optimizer)(model, budget.lr, budget.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(len(steps), budget.warmup_fraction))
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    model.train()
    running_loss = torch.zeros((), device=device)
    images_seen = 0
    stopped_by: Literal["budget", "time"] = "budget"
    with cpu_shortcuts(model, device):
        for step, (start, stop) in enumerate(steps):
            inputs, labels = batches.augmented(order[start:stop], generator)
            with torch.autocast(device.type, enabled=use_amp):
                loss = F.cross_entropy(model(inputs).float(), labels, label_smoothing=budget.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            running_loss = running_loss.lerp(loss.detach(), 1.0 if step == 0 else _LOSS_SMOOTHING)
            images_seen = stop
            if (step + 1) % _CHECK_EVERY == 0:
                _check_finite(running_loss, step)
            if stop < steps[-1][1] and time.perf_counter() - started >= budget.max_seconds:
                stopped_by = "time"
                break
    _check_finite(running_loss, step)
    seconds = time.perf_counter() - started
    return TrainRun(
        train_loss=float(running_loss),
        images_seen=images_seen,
        epochs_done=images_seen / len(data.train),
        seconds=seconds,
        images_per_second=images_seen / seconds,
        stopped_by=stopped_by,
    )


def _to_channels_last(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` on `device`, its 4-d tensors channels_last (torch's stubs lack the one-call `to` for both)."""
    return model.to(device).to(memory_format=torch.channels_last)


def evaluate_accuracy(model: nn.Module, split: Split, data: Dataset, device: torch.device, batch_size: int) -> float:
    """Top-1 accuracy (0..1) of `model` on `split`, without augmentation; leaves the model in eval mode."""
    if len(split) == 0:
        raise ValueError("cannot measure accuracy on an empty split")
    batches = BatchMaker(split, data, device)
    _to_channels_last(model, device).eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    amp = torch.autocast(device.type, enabled=device.type == "cuda")
    with torch.inference_mode(), amp, cpu_shortcuts(model, device):
        for start in range(0, len(split), batch_size):
            inputs, labels = batches.plain(slice(start, start + batch_size))
            correct += (model(inputs).argmax(dim=1) == labels).sum()
    return int(correct) / len(split)
