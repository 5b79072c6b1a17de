"""Where each data set lives on disk and what shape it has, known without reading it.

Kept apart from astevo.data.loading (which loads the images into torch tensors) so that the command
line can check a data set's presence before any work starts without importing torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from astevo.errors import AstevoError
from astevo.paths import data_cache_dir
from astevo.settings import DATASET_NAMES

NUM_CLASSES = 10
FOLDER = "folder"  # the data set setting for the user's own image folder

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"

FASHION_MNIST_FOLDER = "fashion-mnist"
FASHION_MNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


CLASS_NAMES = {
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
    "fashion-mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
    ),
}  # fmt: skip
TRAIN_IMAGES = {"cifar10": 50_000, "fashion-mnist": 60_000}
TEST_IMAGES = 10_000


def builtin_geometry(name: str) -> tuple[int, int]:
    """(channels, image side) of a built-in data set."""
    return (3, 32) if name == "cifar10" else (1, 28)


def require_dataset(name: str, data_dir: str | Path | None = None) -> Path:
    """The folder a built-in data set would load from; AstevoError naming the places looked, before any work starts."""
    check_name(name)
    locate = locate_cifar10 if name == "cifar10" else locate_fashion_mnist
    return locate(search_dirs(name, data_dir))


def check_name(name: str) -> None:
    if name not in DATASET_NAMES:
        raise AstevoError(f"unknown data set {name!r}; choose one of: {', '.join(DATASET_NAMES)}")
    if name == FOLDER:
        raise AstevoError("an image folder is prepared by astevo.data.prepared, not found by name")


def search_dirs(name: str, data_dir: str | Path | None) -> list[Path]:
    """Where to look: --data alone, else $ASTEVO_DATA alone, else the per-user cache and then the system copy.

    A folder the user named is never replaced by another copy: training on other data than asked, in
    silence, would make every result of the run about the wrong data.
    """
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    if os.environ.get("ASTEVO_DATA"):
        return [Path(os.environ["ASTEVO_DATA"]).expanduser()]
    return [data_cache_dir()] + ([FASHION_MNIST_SYSTEM_DIR] if name == "fashion-mnist" else [])


def explicit_data_dir(data_dir: str | Path | None) -> Path | None:
    """The folder the user named, by --data or $ASTEVO_DATA; None when astevo searches its default places."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    return Path(os.environ["ASTEVO_DATA"]).expanduser() if os.environ.get("ASTEVO_DATA") else None


def locate_cifar10(dirs: list[Path]) -> Path:
    required = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE)
    folder = _find_folder(dirs, CIFAR10_FOLDER, required)
    if folder is None:
        raise _not_found(
            "CIFAR-10",
            dirs,
            CIFAR10_FOLDER,
            f"Copy the standard '{CIFAR10_FOLDER}' folder (python version) into one of them, "
            "pass --data DIR or set ASTEVO_DATA; on a connected machine `python tools/fetch_cifar10.py` "
            "downloads and verifies it.",
        )
    return folder


def locate_fashion_mnist(dirs: list[Path]) -> Path:
    folder = _find_folder(dirs, FASHION_MNIST_FOLDER, tuple(FASHION_MNIST_FILES.values()))
    if folder is None:
        raise _not_found(
            "Fashion-MNIST",
            dirs,
            FASHION_MNIST_FOLDER,
            "Install it with `apt-get install dataset-fashion-mnist`, or copy its four IDX .gz files "
            "into one of them (pass --data DIR or set ASTEVO_DATA).",
        )
    return folder


def _find_folder(dirs: list[Path], subfolder: str, required: tuple[str, ...]) -> Path | None:
    """The first of each dir itself or dir/subfolder that holds every required file."""
    for folder in (candidate for d in dirs for candidate in (d, d / subfolder)):
        if all((folder / name).is_file() for name in required):
            return folder
    return None


def _not_found(title: str, dirs: list[Path], subfolder: str, how: str) -> AstevoError:
    looked = ", ".join(str(d) for d in dirs)
    return AstevoError(
        f"{title} not found; astevo looked in: {looked} (each itself and its '{subfolder}' subfolder). {how}"
    )
