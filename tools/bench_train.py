#!/usr/bin/env python3
"""Images per second of astevo's training loop next to a conventional torchvision loop.

Both train the seed model (seeds/exquisitenetv2.py) on the same data, batch size and machine in
one run; each figure counts everything from the first batch request (data-loader start-up
included) to the last optimiser step. A third loop is astevo's with every layer on its usual
forward (no astevo.evaluation.sandboxed.cpu_shortcuts), to show what the shortcuts add. The loops alternate for a few
rounds and the best round of each is reported, since other load on the machine can only slow a
round down; the ratio of the medians follows. Usage:

    python tools/bench_train.py [--dataset auto|cifar10|fashion-mnist] [--data DIR] [--images N] [--rounds R]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import ModuleType
from unittest import mock

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import transforms

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from astevo.data.loading import Dataset, Split, load_dataset  # noqa: E402
from astevo.errors import AstevoError  # noqa: E402
from astevo.evaluation.sandboxed.train import CROP_PADDING, BatchMaker, default_optimizer, pick_device, train  # noqa: E402
from astevo.settings import TrainBudget  # noqa: E402

BATCH_SIZE = 128
LR, WEIGHT_DECAY = 0.05, 5e-4


def load_seed() -> ModuleType:
    spec = importlib.util.spec_from_file_location("exquisitenetv2_seed", REPO / "seeds" / "exquisitenetv2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fresh_model(seed: ModuleType, data: Dataset) -> nn.Module:
    torch.manual_seed(0)
    return seed.ExquisiteNetV2(data.num_classes, data.channels)


class PilImages(torch.utils.data.Dataset):
    """The usual torchvision shape: one PIL image per item, transformed in a worker process."""

    def __init__(self, split: Split, transform: transforms.Compose) -> None:
        self.images = split.images.permute(0, 2, 3, 1).squeeze(-1).numpy()
        self.labels = split.labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), self.labels[i]


def no_shortcuts(model: nn.Module, device: torch.device) -> AbstractContextManager[None]:
    """Stands in for astevo.evaluation.sandboxed.cpu_shortcuts.cpu_shortcuts: every layer runs its usual forward."""
    return nullcontext()


def conventional_images_per_second(model: nn.Module, data: Dataset, images: int, device: torch.device) -> float:
    transform = transforms.Compose(
        [
            transforms.RandomCrop(data.image_size, padding=CROP_PADDING),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(data.mean, data.std),
        ]
    )
    loader = DataLoader(PilImages(data.train, transform), batch_size=BATCH_SIZE, shuffle=True, num_workers=2)
    model.to(device).train()
    optimizer = default_optimizer(model, LR, WEIGHT_DECAY)
    seen, started = 0, time.perf_counter()
    while seen < images:
        for inputs, labels in loader:
            loss = F.cross_entropy(model(inputs.to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(labels)
            if seen >= images:
                break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return seen / (time.perf_counter() - started)


def batch_preparation_ms(data: Dataset, device: torch.device, repeats: int = 50) -> float:
    """Milliseconds astevo spends making one augmented, normalised batch."""
    maker = BatchMaker(data.train, data, device, padding=CROP_PADDING)
    generator = torch.Generator(device=maker.storage).manual_seed(0)
    index = torch.randperm(len(data.train), generator=generator, device=maker.storage)[:BATCH_SIZE]
    maker.augmented(index, generator)
    started = time.perf_counter()
    for _ in range(repeats):
        inputs, _ = maker.augmented(index, generator)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - started) / repeats * 1000.0


def rounds_text(rounds: list[float]) -> str:
    return ", ".join(f"{value:.0f}" for value in rounds)


def pick_data(name: str, data_dir: Path | None) -> Dataset:
    """The named data set; for "auto", CIFAR-10 when it is there, else Fashion-MNIST."""
    if name != "auto":
        return load_dataset(name, data_dir, val_fraction=0.02)
    try:
        return load_dataset("cifar10", data_dir, val_fraction=0.02)
    except AstevoError:
        print("CIFAR-10 not found; using Fashion-MNIST")
        return load_dataset("fashion-mnist", data_dir, val_fraction=0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="astevo training loop vs a conventional loop, images/s")
    parser.add_argument("--dataset", choices=("auto", "cifar10", "fashion-mnist"), default="auto")
    parser.add_argument("--data", type=Path, help="folder holding the data set (see astevo.data.loading)")
    parser.add_argument("--images", type=int, default=3840, help="training images per loop (default %(default)s)")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating rounds of the three loops (default %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        data = pick_data(args.dataset, args.data)
    except AstevoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = pick_device()
    seed = load_seed()
    print(
        f"data: {data.name}, {len(data.train)} training images of {data.channels}x{data.image_size}x{data.image_size}; "
        f"device: {device}; torch threads: {torch.get_num_threads()}; batch {BATCH_SIZE}; {args.images} images per loop"
    )
    budget = TrainBudget(
        epochs=args.images / len(data.train) + 1,
        max_images=args.images,
        batch_size=BATCH_SIZE,
        lr=LR,
        weight_decay=WEIGHT_DECAY,
    )
    rounds_ours, rounds_usual, rounds_theirs = [], [], []
    for _ in range(args.rounds):
        rounds_ours.append(train(fresh_model(seed, data), data, budget, None, device).images_per_second)
        with mock.patch("astevo.evaluation.sandboxed.train.cpu_shortcuts", no_shortcuts):
            rounds_usual.append(train(fresh_model(seed, data), data, budget, None, device).images_per_second)
        rounds_theirs.append(conventional_images_per_second(fresh_model(seed, data), data, args.images, device))
    ours, usual, theirs = max(rounds_ours), max(rounds_usual), max(rounds_theirs)
    prep_ms = batch_preparation_ms(data, device)
    step_ms = BATCH_SIZE / ours * 1000.0
    print(f"astevo loop:       {ours:8.0f} images/s  (rounds: {rounds_text(rounds_ours)})")
    print(
        f"astevo loop, usual layer forwards: {usual:8.0f} images/s  (rounds: {rounds_text(rounds_usual)}; "
        f"the shortcuts give {ours / usual:.2f}x)"
    )
    print(
        f"conventional loop: {theirs:8.0f} images/s  (rounds: {rounds_text(rounds_theirs)}; "
        "PIL transforms, DataLoader with 2 workers, default memory format)"
    )
    print(
        f"ratio astevo/conventional: {ours / theirs:.2f}x (best rounds); "
        f"{statistics.median(rounds_ours) / statistics.median(rounds_theirs):.2f}x (medians)"
    )
    print(f"astevo batch preparation: {prep_ms:.2f} ms of {step_ms:.1f} ms per batch ({100 * prep_ms / step_ms:.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
