"""Real image folders for the tests: Fashion-MNIST images saved as PNG files, one folder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from astevo.data.loading import read_idx
from astevo.data.sources import FASHION_MNIST_FILES, FASHION_MNIST_SYSTEM_DIR

CLASSES = ("bag", "boot", "trouser")  # Fashion-MNIST's labels 8, 9 and 1, named as a user would
LABELS = (8, 9, 1)


def fashion_images(per_class: int, skip: int = 0) -> dict[str, np.ndarray]:
    """`per_class` images (28 x 28, uint8) of each of three classes, from the real training files."""
    images = read_idx(FASHION_MNIST_SYSTEM_DIR / FASHION_MNIST_FILES["train_images"], ndim=3)
    labels = read_idx(FASHION_MNIST_SYSTEM_DIR / FASHION_MNIST_FILES["train_labels"], ndim=1)
    return {
        name: images[np.flatnonzero(labels == label)[skip : skip + per_class]]
        for name, label in zip(CLASSES, LABELS, strict=True)
    }


def write_class_folders(root: Path, per_class: int, skip: int = 0, colour_every: int = 0) -> Path:
    """ROOT/<class>/NNNN.png; with colour_every=k, every k-th image is saved as RGB with a tint."""
    for name, images in fashion_images(per_class, skip).items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for index, pixels in enumerate(images):
            image = Image.fromarray(pixels)  # 2-D uint8: mode L
            if colour_every and index % colour_every == 0:
                image = Image.merge("RGB", (image, image.point(lambda v: v // 2), image))
            image.save(root / name / f"{index:04d}.png")
    return root


def write_split_folders(root: Path, train: int, val: int, test: int) -> Path:
    """ROOT/train, ROOT/val and ROOT/test, each with the three class folders and distinct images."""
    write_class_folders(root / "train", train)
    write_class_folders(root / "val", val, skip=train)
    write_class_folders(root / "test", test, skip=train + val)
    return root
