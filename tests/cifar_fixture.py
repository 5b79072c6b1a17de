"""Writes a tiny CIFAR-10 folder in the exact format of the official python pickles.

Images are random but unique, so tests can follow each one through the loader's splits.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

FOLDER = "cifar-10-batches-py"
CLASS_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def fake_batch(count: int, seed: int) -> tuple[np.ndarray, list[int]]:
    """`count` rows of 3072 uint8 values (red plane, green plane, blue plane) and cycling labels."""
    rows = np.random.default_rng(seed).integers(0, 256, size=(count, 3072), dtype=np.uint8)
    return rows, [i % 10 for i in range(count)]


def write_pickle(path: Path, obj: object) -> None:
    # Protocol 2 with numpy arrays, as the official files (written by Python 2's cPickle).
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_fake_cifar10(parent: Path, per_batch: int = 40) -> Path:
    """Create parent/cifar-10-batches-py with 5 training batches, a test batch and batches.meta."""
    folder = parent / FOLDER
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for seed, name in enumerate(names):
        rows, labels = fake_batch(per_batch, seed)
        write_pickle(folder / name, {b"batch_label": name.encode(), b"labels": labels, b"data": rows})
    write_pickle(folder / "batches.meta", {b"label_names": CLASS_NAMES, b"num_cases_per_batch": per_batch})
    return folder
