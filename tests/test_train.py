"""The short training loop on real data (a Fashion-MNIST slice) with real models, on the CPU."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from astevo.data.loading import Dataset, Split, load_dataset
from astevo.errors import AstevoError
from astevo.evaluation.sandboxed.train import (
    BatchMaker,
    TrainingDiverged,
    evaluate_accuracy,
    train,
    warmup_cosine,
)
from astevo.settings import TrainBudget
from tests.seed_module import load_seed

pytestmark = pytest.mark.needs_data

CPU = torch.device("cpu")
TRAIN_IMAGES = 2000


@pytest.fixture(scope="module")
def fashion() -> Dataset:
    return load_dataset("fashion-mnist", val_fraction=0.02, limit_train=TRAIN_IMAGES)


def small_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


def mean_loss(model: nn.Module, data: Dataset) -> float:
    inputs, labels = BatchMaker(data.val, data, CPU).plain(slice(0, 512))
    model.eval()
    with torch.no_grad():
        return float(F.cross_entropy(model(inputs), labels))


def test_seed_model_learns_fashion_mnist(fashion: Dataset) -> None:
    seed = load_seed()
    torch.manual_seed(0)
    model = seed.ExquisiteNetV2(fashion.num_classes, fashion.channels)
    loss_before = mean_loss(model, fashion)
    accuracy_before = evaluate_accuracy(model, fashion.val, fashion, CPU, 256)
    budget = TrainBudget(epochs=2.0, batch_size=64)
    result = train(model, fashion, budget, seed.get_optimizer, CPU)
    val_accuracy = evaluate_accuracy(model, fashion.val, fashion, CPU, budget.batch_size)
    assert result.stopped_by == "budget"
    assert result.images_seen == 2 * TRAIN_IMAGES and result.epochs_done == 2.0
    assert result.train_loss < loss_before - 0.5
    assert mean_loss(model, fashion) < loss_before - 0.5
    assert 0.0 <= val_accuracy <= 1.0 and val_accuracy > accuracy_before + 0.3
    assert result.images_per_second == pytest.approx(result.images_seen / result.seconds)


def test_same_seed_same_run_other_seed_other_run(fashion: Dataset) -> None:
    def loss_and_accuracy(budget: TrainBudget) -> tuple[float, float]:
        model = small_cnn()
        run = train(model, fashion, budget, None, CPU)
        return run.train_loss, evaluate_accuracy(model, fashion.val, fashion, CPU, budget.batch_size)

    budget = TrainBudget(max_images=640, batch_size=64, training_seed=1)
    first, again = loss_and_accuracy(budget), loss_and_accuracy(budget)
    other = loss_and_accuracy(TrainBudget(max_images=640, batch_size=64, training_seed=2))
    assert first == again
    assert first[0] != other[0]


class TurnsNaN(nn.Module):
    """A linear classifier whose output becomes NaN from its third forward pass on."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(28 * 28, 10)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.fc(x.flatten(1))
        return out * float("nan") if self.calls > 2 else out


def test_non_finite_loss_raises_training_diverged_early(fashion: Dataset) -> None:
    model = TurnsNaN()
    budget = TrainBudget(batch_size=32)
    with pytest.raises(TrainingDiverged, match="nan"):
        train(model, fashion, budget, None, CPU)
    assert model.calls < TRAIN_IMAGES // 32


def test_time_cap_stops_early(fashion: Dataset) -> None:
    budget = TrainBudget(epochs=1.0, batch_size=50, max_seconds=1e-9)
    result = train(small_cnn(), fashion, budget, None, CPU)
    assert result.stopped_by == "time"
    assert result.images_seen == 50 and result.epochs_done == 50 / TRAIN_IMAGES


@pytest.mark.parametrize("max_images, seen", [(300, 300), (129, 128)])
def test_max_images_is_respected(fashion: Dataset, max_images: int, seen: int) -> None:
    budget = TrainBudget(epochs=5.0, max_images=max_images, batch_size=64)
    result = train(small_cnn(), fashion, budget, None, CPU)
    assert (result.images_seen, result.stopped_by) == (seen, "budget")
    assert result.epochs_done == seen / TRAIN_IMAGES


def test_custom_optimizer_is_built_and_scheduled(fashion: Dataset) -> None:
    calls, built = [], []

    def adam(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
        calls.append((model, lr, weight_decay))
        built.append(torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay))
        return built[-1]

    model = small_cnn()
    budget = TrainBudget(max_images=256, batch_size=64, lr=0.01, weight_decay=1e-4)
    train(model, fashion, budget, adam, CPU)
    assert len(calls) == 1 and calls[0][0] is model and calls[0][1:] == (0.01, 1e-4)
    group = built[0].param_groups[0]
    assert group["initial_lr"] == 0.01 and group["lr"] < 0.01
    assert all(built[0].state[p]["step"] == 4 for p in model.parameters())


def test_schedule_warms_up_linearly_then_decays_by_cosine() -> None:
    factor = warmup_cosine(total_steps=100, warmup_fraction=0.1)
    factors = [factor(step) for step in range(100)]
    assert factors[:10] == pytest.approx([(i + 1) / 10 for i in range(10)])
    assert factors[10] == 1.0 and factors[55] == pytest.approx(0.5)
    assert all(a > b for a, b in zip(factors[10:], factors[11:], strict=False)) and 0 < factors[-1] < 0.001
    assert warmup_cosine(10, 0.0)(0) == 1.0


def tiny_dataset(images: torch.Tensor, labels: torch.Tensor) -> Dataset:
    split = Split(images, labels)
    channels, size = images.shape[1], images.shape[2]
    return Dataset("tiny", 10, channels, size, (0.5,) * channels, (0.25,) * channels, split, split, None)


def test_augmentation_is_a_padded_crop_with_the_first_half_flipped() -> None:
    images = torch.randint(0, 256, (16, 3, 6, 6), dtype=torch.uint8)
    data = tiny_dataset(images, torch.arange(16) % 10)
    maker = BatchMaker(data.train, data, CPU, padding=2)
    order = torch.randperm(16)
    out, labels = maker.augmented(order, torch.Generator().manual_seed(0))
    assert out.shape == (16, 3, 6, 6) and out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(labels, data.train.labels[order])
    restored = (out * 0.25 + 0.5) * 255
    padded = F.pad(images.float(), (2, 2, 2, 2))
    offsets_used = set()
    for position, (image, result) in enumerate(zip(padded[order], restored, strict=True)):
        matches = [
            (dy, dx, flip)
            for dy in range(5)
            for dx in range(5)
            for flip in (False, True)
            if torch.allclose(result, crop(image, dy, dx, 6, flip), atol=1e-3)
        ]
        assert [flip for _, _, flip in matches] == [position < 8]
        offsets_used.add(matches[0][:2])
    assert len(offsets_used) > 4


def crop(image: torch.Tensor, top: int, left: int, size: int, flip: bool) -> torch.Tensor:
    window = image[:, top : top + size, left : left + size]
    return window.flip(-1) if flip else window


def test_plain_batches_are_normalised_images() -> None:
    images = torch.randint(0, 256, (4, 1, 5, 5), dtype=torch.uint8)
    data = tiny_dataset(images, torch.zeros(4, dtype=torch.int64))
    out, _ = BatchMaker(data.val, data, CPU, padding=3).plain(slice(0, 4))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, (images.float() / 255 - 0.5) / 0.25, atol=1e-5)


class AlwaysClassZero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 10).index_fill_(1, torch.tensor([0]), 1.0)


def test_evaluate_accuracy_counts_correct_predictions(fashion: Dataset) -> None:
    accuracy = evaluate_accuracy(AlwaysClassZero(), fashion.val, fashion, CPU, batch_size=100)
    assert accuracy == pytest.approx(float((fashion.val.labels == 0).double().mean()))
    assert math.isclose(accuracy, 0.1, abs_tol=0.01)


def test_invalid_budget_is_an_astevo_error() -> None:
    with pytest.raises(AstevoError, match="batch_size"):
        TrainBudget(batch_size=1)
    with pytest.raises(AstevoError, match="positive"):
        TrainBudget(epochs=0)
