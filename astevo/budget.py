"""How much training a candidate gets, as plain settings.

Kept apart from astevo.train so that settings, configs and the command line can name a budget
without importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass

from astevo.errors import AstevoError


@dataclass(frozen=True)
class TrainBudget:
    """How much training one candidate gets: stops at `epochs` or `max_images`, or early at `max_seconds`."""

    epochs: float = 1.0
    max_images: int | None = None
    max_seconds: float = 600.0
    batch_size: int = 128
    lr: float = 0.05
    weight_decay: float = 5e-4
    warmup_fraction: float = 0.05
    label_smoothing: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.max_seconds <= 0 or self.lr <= 0:
            raise AstevoError("training budget: epochs, max_seconds and lr must be positive")
        if self.batch_size < 2 or (self.max_images is not None and self.max_images < 2):
            raise AstevoError("training budget: batch_size and max_images must be at least 2 (BatchNorm needs 2 images)")
        if not 0.0 <= self.warmup_fraction < 1.0 or not 0.0 <= self.label_smoothing < 1.0:
            raise AstevoError("training budget: warmup_fraction and label_smoothing must lie in [0, 1)")

    def planned_images(self, train_size: int) -> int:
        """Images the budget allows on a training split of this size (before any time cap)."""
        images = int(self.epochs * train_size)
        return images if self.max_images is None else min(images, self.max_images)
