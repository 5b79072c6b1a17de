#!/usr/bin/env python3
"""The user's own images: decoding a folder once against loading its cache, and an evaluation on the folder
against the same evaluation on the built-in Fashion-MNIST loader.

The bench writes Fashion-MNIST as an image folder laid out like the real set (train/ with the first
--images training images, test/ with the 10,000 test images, one folder per class, PNG), so that the
folder and the built-in loader give the same split sizes. Then, side by side in one run:
  1. the first preparation (scan, header pass, decode, write the cache) in images per second;
  2. loading the cache (memory-map, split, statistics), every image and then as a training child does,
     beside the built-in loader reading the gzipped IDX files;
  3. whole evaluations of the seed at the default budget, alternating folder and built-in, in seconds.

    python tools/bench_data.py [--images 60000] [--evaluations 2] [--folder /tmp/astevo-bench-data]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PIL import Image  # noqa: E402

from astevo.code.blocks import ModelFile  # noqa: E402
from astevo.data.image_cache import decode_folder  # noqa: E402
from astevo.data.image_folder import scan_image_folder  # noqa: E402
from astevo.data.loading import load_dataset, read_idx  # noqa: E402
from astevo.data.prepared import prepare_data  # noqa: E402
from astevo.data.sources import CLASS_NAMES, FASHION_MNIST_FILES, FASHION_MNIST_SYSTEM_DIR  # noqa: E402
from astevo.evaluation.base import EvaluationRequest  # noqa: E402
from astevo.evaluation.executors.local import LocalEvaluator  # noqa: E402
from astevo.paths import default_seed_path  # noqa: E402
from astevo.settings import default_fitness  # noqa: E402

T = TypeVar("T")


def write_folder(root: Path, images: int) -> int:
    """Fashion-MNIST as train/<class>/ and test/<class>/ PNG files; returns how many files were written."""
    written = 0
    for split, part, count in (("train", "train", images), ("test", "test", None)):
        pixels = read_idx(FASHION_MNIST_SYSTEM_DIR / FASHION_MNIST_FILES[f"{part}_images"], ndim=3)[:count]
        labels = read_idx(FASHION_MNIST_SYSTEM_DIR / FASHION_MNIST_FILES[f"{part}_labels"], ndim=1)[:count]
        names = [name.replace("/", "-") for name in CLASS_NAMES["fashion-mnist"]]
        for name in names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for index, (image, label) in enumerate(zip(pixels, labels, strict=True)):
            Image.fromarray(image).save(root / split / names[label] / f"{index:05d}.png")
        written += len(labels)
    return written


def timed(action: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    value = action()
    return value, time.perf_counter() - start


def median_seconds(action: Callable[[], object], repeats: int = 3) -> float:
    return statistics.median(timed(action)[1] for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60_000, help="training images written to the folder")
    parser.add_argument("--evaluations", type=int, default=2, help="evaluations of each loader, alternated")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "astevo-bench-data")
    arguments = parser.parse_args()
    os.environ["XDG_CACHE_HOME"] = str(arguments.folder / "cache")  # a cold cache, the user's left alone
    shutil.rmtree(arguments.folder, ignore_errors=True)
    root = arguments.folder / "fashion-folder"
    files, seconds = timed(lambda: write_folder(root, arguments.images))
    print(f"wrote {files:,} PNG files in {seconds:.1f} s ({os.cpu_count()} cores)")

    base = dataclasses.replace(default_fitness(), threads=0)
    folder_settings = dataclasses.replace(base, dataset="folder", data_dir=str(root))
    prepared, decode_seconds = timed(lambda: prepare_data(folder_settings))
    _, again_seconds = timed(lambda: decode_folder(scan_image_folder(root), None))
    rate = files / decode_seconds
    print(f"first preparation (scan, headers, decode, write): {decode_seconds:.1f} s, {rate:,.0f} images/s")

    loaders = {
        "folder cache": partial(load_dataset, "folder", prepared.location),
        "built-in IDX": partial(load_dataset, "fashion-mnist"),
    }
    whole = {name: median_seconds(partial(load, with_test=True)) for name, load in loaders.items()}
    child = {name: median_seconds(partial(load, limit_train=base.limit_train)) for name, load in loaders.items()}
    print(
        f"loading every image (all splits, median of 3): cache {whole['folder cache']:.2f} s "
        f"({files / whole['folder cache']:,.0f} images/s), built-in IDX {whole['built-in IDX']:.2f} s "
        f"({files / whole['built-in IDX']:,.0f} images/s); first decode / cache load = "
        f"{decode_seconds / whole['folder cache']:.0f}x"
    )
    print(
        f"loading as a training child does ({base.limit_train} training images, median of 3): cache "
        f"{child['folder cache']:.2f} s, built-in IDX {child['built-in IDX']:.2f} s"
    )
    print(f"split sizes: folder {prepared.images}, built-in {prepare_data(base).images}")

    source = ModelFile.read(default_seed_path()).source
    evaluator = LocalEvaluator()
    seconds_of: dict[str, list[float]] = {"folder": [], "fashion-mnist": []}
    accuracy_of: dict[str, list[float]] = {"folder": [], "fashion-mnist": []}
    try:
        for round_number in range(arguments.evaluations):
            for name, settings in (("folder", folder_settings), ("fashion-mnist", base)):
                budget = dataclasses.replace(settings.budget, training_seed=round_number)
                request = EvaluationRequest(
                    f"{name}:{round_number}", source, dataclasses.replace(settings, budget=budget)
                )
                result = evaluator.submit(request).result()
                assert result.evaluation.valid, result.evaluation.problem
                seconds_of[name].append(sum(stage.seconds for stage in result.evaluation.stages))
                accuracy_of[name].append(result.evaluation.metrics["val_accuracy"])
    finally:
        evaluator.close()
    folder_seconds, builtin_seconds = (statistics.median(seconds_of[n]) for n in ("folder", "fashion-mnist"))
    print(
        f"evaluation of the seed at {base.limit_train} images x {base.budget.epochs:g} epochs (median of "
        f"{arguments.evaluations}): folder {folder_seconds:.1f} s, built-in {builtin_seconds:.1f} s, "
        f"folder / built-in = {folder_seconds / builtin_seconds:.2f}"
    )
    for name in ("folder", "fashion-mnist"):
        print(f"  {name}: val accuracy {', '.join(f'{a * 100:.2f}%' for a in accuracy_of[name])}")
    print(f"a later start on the same folder (scan and cache hit, nothing decoded): {again_seconds:.2f} s")


if __name__ == "__main__":
    main()
