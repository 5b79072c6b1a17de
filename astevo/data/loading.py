"""Offline image data sets, held in memory as uint8 tensors.

Nothing here downloads: a missing data set is an AstevoError naming every place astevo looked
(astevo.data.sources), so an air-gapped workstation fails fast with instructions instead of
hanging on a network call.
"""

from __future__ import annotations

import gzip
import importlib
import json
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from astevo.data.image_cache import IMAGES, LABELS, META, SPLIT_CODES, SPLITS
from astevo.data.image_folder import WHOLE
from astevo.data.prepared import carved
from astevo.data.sources import (
    CIFAR10_TEST_FILE,
    CIFAR10_TRAIN_FILES,
    FASHION_MNIST_FILES,
    FOLDER,
    NUM_CLASSES,
    check_name,
    locate_cifar10,
    locate_fashion_mnist,
    search_dirs,
)
from astevo.errors import AstevoError

_IDX_UBYTE = 0x08


@dataclass(frozen=True, eq=False)
class Split:
    """Images (uint8, N x C x H x W) and labels (int64, N) of one part of a data set."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set split for honest selection: fitness reads `val`; `test` is only for finalists."""

    name: str
    num_classes: int
    channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    train: Split
    val: Split
    test: Split | None


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    val_fraction: float = 0.1,
    split_seed: int = 0,
    limit_train: int | None = None,
    with_test: bool = False,
) -> Dataset:
    """Load a data set from disk and carve a fixed, stratified validation split from its training set."""
    if not 0.0 < val_fraction < 1.0:
        raise AstevoError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    if limit_train is not None and limit_train < 2:
        raise AstevoError(f"limit_train must be at least 2 images, got {limit_train}")
    if name == FOLDER:
        if data_dir is None:
            raise AstevoError("an image folder loads from its decoded cache: pass the cache's folder")
        parts = _read_decoded_folder(Path(data_dir), with_test)
    else:
        check_name(name)
        reader = _read_cifar10 if name == "cifar10" else _read_fashion_mnist
        parts = reader(search_dirs(name, data_dir), with_test)
    full_train = parts.train
    whole = len(full_train)  # carved parts are fractions of it, as astevo.data.prepared.split_sizes says
    generator = torch.Generator().manual_seed(split_seed)
    test = parts.test
    if test is None and parts.test_from_train:  # carved first, loaded or not, so the rest never depends on it
        test_index, rest = _stratified_pick(full_train.labels, carved(whole, val_fraction), generator)
        test = _subset(full_train, test_index) if with_test else None
        full_train = _subset(full_train, rest)
    if parts.val is None:
        val_index, train_index = _stratified_pick(full_train.labels, carved(whole, val_fraction), generator)
        val = _subset(full_train, val_index)
    else:
        val, train_index = parts.val, torch.arange(len(full_train))
    if limit_train is not None and limit_train < len(train_index):
        train_index = train_index[_stratified_pick(full_train.labels[train_index], limit_train, generator)[0]]
    train = _subset(full_train, train_index)
    mean, std = _channel_stats(train.images)
    _, channels, height, _ = full_train.images.shape
    return Dataset(
        name=name,
        num_classes=parts.num_classes,
        channels=channels,
        image_size=height,
        mean=mean,
        std=std,
        train=train,
        val=val,
        test=test if with_test else None,
    )


@dataclass(frozen=True, eq=False)
class _Parts:
    """What a source lays out: the training images, and the validation and test images if it has them."""

    train: Split
    val: Split | None
    test: Split | None
    num_classes: int = NUM_CLASSES
    test_from_train: bool = False  # a source without a test part has one carved from its training images


# --- an image folder, decoded into the cache ------------------------------------------------------


def _read_decoded_folder(directory: Path, with_test: bool) -> _Parts:
    """The cache, memory-mapped copy-on-write: pages are shared between processes until one writes."""
    try:
        images = torch.from_numpy(np.load(directory / IMAGES, mmap_mode="c"))
        labels = torch.from_numpy(np.load(directory / LABELS))
        splits = np.load(directory / SPLITS)
        classes = json.loads((directory / META).read_text(encoding="utf-8"))["classes"]
    except (OSError, ValueError, KeyError) as exc:
        raise AstevoError(
            f"{directory} is not a complete decoded image folder ({exc}); delete it to decode again"
        ) from exc

    def index_of(split: str) -> torch.Tensor:
        return torch.from_numpy(np.flatnonzero(splits == SPLIT_CODES.index(split)))

    def part(index: torch.Tensor) -> Split | None:
        return _subset(Split(images, labels), index) if len(index) else None

    train = part(index_of(WHOLE)) or part(index_of("train"))
    assert train is not None  # a folder without training images is refused when it is scanned
    test_index = index_of("test")
    test = part(test_index) if with_test else None  # copied only when asked for: trainings never read it
    return _Parts(train, part(index_of("val")), test, num_classes=len(classes), test_from_train=not len(test_index))


# --- CIFAR-10 ---------------------------------------------------------------------------------

# The official pickles hold only numpy arrays, lists, ints and bytes. Unpickling can run code, so
# this unpickler resolves no global except the numpy array constructors those files name, and
# _codecs.encode (a pure str-to-bytes conversion that protocol 2 pickles written by Python 3 use):
# a tampered file fails with an AstevoError instead of executing anything.
_ALLOWED_PICKLE_GLOBALS = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }
)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return getattr(importlib.import_module(module), name)


def _read_cifar10(dirs: list[Path], with_test: bool) -> _Parts:
    folder = locate_cifar10(dirs)
    parts = [_read_cifar10_batch(folder / name) for name in CIFAR10_TRAIN_FILES]
    train = Split(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]))
    return _Parts(train, None, _read_cifar10_batch(folder / CIFAR10_TEST_FILE) if with_test else None)


def _read_cifar10_batch(path: Path) -> Split:
    try:
        with path.open("rb") as f:
            batch = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise AstevoError(f"{path} is not a CIFAR-10 python batch ({exc}); replace it with a fresh copy") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise AstevoError(f"{path} is not a CIFAR-10 python batch (needs keys b'data' and b'labels')")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise AstevoError(f"{path}: 'data' must be uint8 rows of 3072 values, got {data.dtype} {data.shape}")
    _check_labels(path, labels, data.shape[0])
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return Split(images, torch.from_numpy(labels.astype(np.int64)))


def _check_labels(path: Path, labels: np.ndarray, count: int) -> None:
    if labels.ndim != 1 or labels.shape[0] != count or labels.dtype.kind not in "iu":
        raise AstevoError(f"{path}: expected {count} integer labels, got {labels.dtype} {labels.shape}")
    if count and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise AstevoError(f"{path}: labels must lie in 0..{NUM_CLASSES - 1}")


# --- Fashion-MNIST ----------------------------------------------------------------------------


def _read_fashion_mnist(dirs: list[Path], with_test: bool) -> _Parts:
    folder = locate_fashion_mnist(dirs)
    return _Parts(_read_idx_pair(folder, "train"), None, _read_idx_pair(folder, "test") if with_test else None)


def _read_idx_pair(folder: Path, part: str) -> Split:
    image_path = folder / FASHION_MNIST_FILES[f"{part}_images"]
    label_path = folder / FASHION_MNIST_FILES[f"{part}_labels"]
    images = read_idx(image_path, ndim=3)
    labels = read_idx(label_path, ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise AstevoError(f"{image_path} has {images.shape[0]} images but {label_path} has {labels.shape[0]} labels")
    _check_labels(label_path, labels, labels.shape[0])
    return Split(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)))


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes (the MNIST family's format), checking its header."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise AstevoError(f"{path} is not a readable gzip file ({exc}); replace it with a fresh copy") from exc
    header_size = 4 + 4 * ndim
    if len(raw) < header_size or raw[0:2] != b"\x00\x00" or raw[2] != _IDX_UBYTE or raw[3] != ndim:
        raise AstevoError(f"{path} is not an IDX file of {ndim}-D unsigned bytes (bad header)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) - header_size != int(np.prod(dims, dtype=np.int64)):
        raise AstevoError(f"{path}: header says {dims} but holds {len(raw) - header_size} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims).copy()


# --- splitting and statistics -----------------------------------------------------------------


def _stratified_pick(labels: torch.Tensor, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick `count` indices at random with each class in proportion; return (picked, rest), sorted.

    Every index gets a key (its random rank within its class + 0.5) / class size; taking the
    smallest keys spreads the pick evenly over classes, whatever their sizes.
    """
    order = torch.randperm(labels.shape[0], generator=generator)
    shuffled = labels[order]
    class_sizes = torch.bincount(shuffled)
    by_class = torch.argsort(shuffled, stable=True)
    class_starts = torch.cumsum(class_sizes, 0) - class_sizes
    rank = torch.empty_like(order)
    rank[by_class] = torch.arange(order.shape[0]) - torch.repeat_interleave(class_starts, class_sizes)
    keys = (rank.double() + 0.5) / class_sizes[shuffled].double()
    chosen = order[torch.argsort(keys, stable=True)]
    return chosen[:count].sort().values, chosen[count:].sort().values


def _subset(split: Split, index: torch.Tensor) -> Split:
    return Split(split.images[index], split.labels[index])


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact mean and std per channel on the 0..1 scale, from a 256-bin histogram (no float copy of the set)."""
    levels = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for channel in range(images.shape[1]):
        counts = torch.bincount(images[:, channel].reshape(-1), minlength=256).double()
        mean = float((counts * levels).sum() / counts.sum())
        variance = float((counts * (levels - mean) ** 2).sum() / counts.sum())
        means.append(mean)
        stds.append(max(variance, 1e-12) ** 0.5)
    return tuple(means), tuple(stds)
