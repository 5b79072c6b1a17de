"""An image folder decoded once into uint8 arrays in the per-user cache, which every evaluation memory-maps.

Decoding thousands of PNG or JPEG files takes seconds to minutes, and each training runs in a fresh
child: none of them may repeat it. The cache is keyed by the folder's file list, sizes, modification
times and the side asked for, and is written into a temporary folder renamed only once complete, so a
crash mid-decode leaves nothing that looks finished. A file that cannot be decoded stops the decoding
with its name: a data set silently smaller than the user's folder would mislead every result after it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from astevo.data.image_folder import WHOLE, FolderListing
from astevo.errors import AstevoError
from astevo.paths import image_cache_dir, remove_if_abandoned

SPLIT_CODES = (WHOLE, "train", "val", "test")  # splits.npy holds each image's index in this tuple
IMAGES, LABELS, SPLITS, META = "images.npy", "labels.npy", "splits.npy", "meta.json"
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
POOL_FROM = 2000  # images: below this, starting a pool costs more than it saves
CHUNK = 64
_PARTIAL = ".partial-"

OnProgress = Callable[[int, int], None]  # (images decoded, images in all)
T = TypeVar("T")


@dataclass(frozen=True)
class DecodedFolder:
    """A folder's images as arrays on disk, with the shape they were given and why."""

    directory: Path
    classes: tuple[str, ...]
    channels: int
    side: int
    conversion: str
    counts: dict[str, int]  # images per split folder ("" for a single folder)


def decode_folder(
    listing: FolderListing, image_size: int | None, on_progress: OnProgress | None = None
) -> DecodedFolder:
    """The folder's cache, decoded now unless an identical folder state was decoded before."""
    target = image_cache_dir() / listing.decoded_key(image_size)
    if (target / META).is_file():
        return _read_meta(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target.parent)
    paths = [str(listing.root / entry.relative) for entry in listing.entries]
    with _mapper(len(paths)) as mapper:
        headers = [_unless_failed(path, header) for path, header in zip(paths, mapper(_header, paths), strict=True)]
        channels, side, conversion = _shape(headers, image_size)
        partial_folder = target.with_name(f"{target.name}{_PARTIAL}{os.getpid()}")
        shutil.rmtree(partial_folder, ignore_errors=True)
        partial_folder.mkdir()
        images = np.lib.format.open_memmap(
            partial_folder / IMAGES, mode="w+", dtype=np.uint8, shape=(len(paths), channels, side, side)
        )
        decoded = mapper(partial(_decode, channels=channels, side=side), paths)
        for index, (path, pixels) in enumerate(zip(paths, decoded, strict=True)):
            images[index] = np.frombuffer(_unless_failed(path, pixels), dtype=np.uint8).reshape(channels, side, side)
            if on_progress is not None:
                on_progress(index + 1, len(paths))
    images.flush()
    del images
    np.save(partial_folder / LABELS, np.array([e.label for e in listing.entries], dtype=np.int64))
    np.save(partial_folder / SPLITS, np.array([SPLIT_CODES.index(e.split) for e in listing.entries], dtype=np.uint8))
    counts = Counter(entry.split for entry in listing.entries)
    meta = {
        "classes": list(listing.classes),
        "channels": channels,
        "side": side,
        "conversion": conversion,
        "counts": {split: counts[split] for split in SPLIT_CODES if counts[split]},
        "folder": str(listing.root),
    }
    (partial_folder / META).write_text(json.dumps(meta), encoding="utf-8")  # last: its presence means complete
    try:
        partial_folder.rename(target)
    except OSError:  # another process finished the same folder first: its copy is as good
        shutil.rmtree(partial_folder, ignore_errors=True)
    return _read_meta(target)


def _read_meta(directory: Path) -> DecodedFolder:
    meta = json.loads((directory / META).read_text(encoding="utf-8"))
    return DecodedFolder(
        directory, tuple(meta["classes"]), meta["channels"], meta["side"], meta["conversion"], meta["counts"]
    )


def _shape(headers: list[tuple[str, int, int]], image_size: int | None) -> tuple[int, int, str]:
    """Channels (1 only when every image is grey), the side, and a sentence saying how images were converted."""
    grey = sum(mode in GREY_MODES for mode, _, _ in headers)
    if grey == len(headers):
        channels, colour = 1, "1 channel (every image is grey)"
    else:
        channels = 3
        colour = "3 channels" + (f" ({grey} grey images repeated into 3 channels)" if grey else "")
    sizes = Counter((width, height) for _, width, height in headers)
    (common_width, common_height), common_count = sizes.most_common(1)[0]
    side = image_size or max(common_width, common_height)
    how = f"{side}x{side} (set by --image-size)" if image_size else f"{side}x{side} (the most common size)"
    others = len(headers) - sizes[(side, side)]
    resized = f"; {others} of {len(headers)} images resized to it, without keeping their aspect" if others else ""
    return channels, side, f"{colour}, {how}{resized}"


def _header(path: str) -> tuple[str, int, int] | str:
    """(mode, width, height) from the file's header alone, or why it is no image."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.mode, image.width, image.height
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds; each is this file's fault
        return f"{type(error).__name__}: {error}"


def _decode(path: str, channels: int, side: int) -> bytes | str:
    """The image as C x side x side bytes, or why it cannot be decoded (a truncated file fails here)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            converted = image.convert("L" if channels == 1 else "RGB")
            if converted.size != (side, side):
                converted = converted.resize((side, side), Image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.uint8).reshape(side, side, channels)
            return np.ascontiguousarray(pixels.transpose(2, 0, 1)).tobytes()
    except Exception as error:  # noqa: BLE001 - Pillow raises many kinds; each is this file's fault
        return f"{type(error).__name__}: {error}"


def _unless_failed(path: str, result: T | str) -> T:
    if isinstance(result, str):
        raise AstevoError(
            f"{path} cannot be read as an image ({result}); replace the file or move it out of the folder"
        )
    return result


@contextmanager
def _mapper(count: int) -> Iterator[Callable[[Callable[[str], Any], Iterable[str]], Iterator[Any]]]:
    """map() in order, through a pool of processes when the folder is large enough and there are cores to share."""
    workers = min(os.cpu_count() or 1, 8)
    if count < POOL_FROM or workers < 2:
        yield lambda function, items: map(function, items)
        return
    # spawn: the caller may hold threads (llama.cpp, torch) that a forked child would inherit mid-lock
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield lambda function, items: pool.map(function, items, chunksize=CHUNK)


def _remove_abandoned(folder: Path) -> None:
    """Partial caches whose decoding process is gone: a crash left them, and nothing will finish them."""
    for partial_folder in folder.glob(f"*{_PARTIAL}*"):
        remove_if_abandoned(partial_folder, partial_folder.name.rpartition(_PARTIAL)[2])
