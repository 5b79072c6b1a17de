"""The user's own images: real PNG folders written from Fashion-MNIST, scanned, decoded once into the cache,
split, and loaded as evaluations load them; every bad layout is a one-line error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from astevo.data.image_cache import decode_folder
from astevo.data.image_folder import scan_image_folder
from astevo.data.loading import load_dataset
from astevo.data.prepared import PreparedData, prepare_data, split_sizes
from astevo.errors import AstevoError
from astevo.paths import image_cache_dir
from astevo.settings import FitnessSettings
from tests.image_folders import CLASSES, fashion_images, write_class_folders, write_split_folders

pytestmark = pytest.mark.needs_data


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ASTEVO_DATA", raising=False)


def folder_settings(root: Path, **changes: object) -> FitnessSettings:
    return FitnessSettings(dataset="folder", data_dir=str(root), **changes)  # type: ignore[arg-type]


def prepared(root: Path, **changes: object) -> PreparedData:
    """Prepared afresh: prepare_data keeps one result per process and folder, and tests change folders."""
    from astevo.data import prepared as module

    module._prepared.clear()
    return prepare_data(folder_settings(root, **changes))


def noise(seed: int) -> Image.Image:
    """A 28 x 28 grey image of noise: its PNG is large enough that cutting it loses pixels."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8))


def complete_caches() -> list[Path]:
    return [p for p in image_cache_dir().iterdir() if (p / "meta.json").is_file() and ".partial-" not in p.name]


def test_a_single_folder_is_split_stratified_and_the_same_every_time(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "shoes", per_class=40)
    data = prepared(root)
    assert (data.classes, data.channels, data.side) == (CLASSES, 1, 28)
    assert data.images == {"train": 96, "val": 12, "test": 12}
    loaded = load_dataset("folder", data.location, with_test=True)
    again = load_dataset("folder", data.location, with_test=True)
    assert loaded.num_classes == 3 and loaded.train.images.shape[1:] == (1, 28, 28)
    assert {name: len(getattr(loaded, name)) for name in ("train", "val", "test")} == data.images
    assert torch.bincount(loaded.val.labels).tolist() == [4, 4, 4]
    assert torch.bincount(loaded.test.labels).tolist() == [4, 4, 4]  # type: ignore[union-attr]
    assert torch.equal(loaded.val.images, again.val.images) and torch.equal(loaded.train.labels, again.train.labels)
    keys = [{image.numpy().tobytes() for image in part.images} for part in (loaded.train, loaded.val, loaded.test)]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    # without the test part the training images are the same: the test part is carved whether loaded or not
    assert torch.equal(load_dataset("folder", data.location).train.images, loaded.train.images)


def test_laid_out_splits_are_kept_and_pixels_are_the_files_own(tmp_path: Path) -> None:
    root = write_split_folders(tmp_path / "shoes", train=20, val=5, test=6)
    data = prepared(root)
    assert data.images == {"train": 60, "val": 15, "test": 18}
    loaded = load_dataset("folder", data.location, with_test=True, limit_train=30)
    assert (len(loaded.train), len(loaded.val), len(loaded.test)) == (30, 15, 18)  # type: ignore[arg-type]
    originals = fashion_images(20 + 5 + 6)
    expected_val = {originals[name][index].tobytes() for name in CLASSES for index in range(20, 25)}
    assert {image[0].numpy().tobytes() for image in loaded.val.images} == expected_val


def test_built_in_split_sizes_match_what_the_loader_carves(tmp_path: Path) -> None:
    settings = FitnessSettings(limit_train=500)
    data = load_dataset("fashion-mnist", limit_train=500, with_test=True)
    assert split_sizes(60_000, None, 10_000, settings) == {
        "train": len(data.train),
        "val": len(data.val),
        "test": len(data.test),  # type: ignore[arg-type]
    }


def test_a_mix_of_grey_and_colour_becomes_three_channels_and_a_side_can_be_chosen(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "mixed", per_class=6, colour_every=3)
    Image.new("L", (40, 20), 200).save(root / "bag" / "wide.png")
    data = prepared(root, image_size=16)
    assert (data.channels, data.side) == (3, 16)
    assert "3 channels (13 grey images repeated into 3 channels)" in data.conversion
    assert "16x16 (set by --image-size); 19 of 19 images resized" in data.conversion
    loaded = load_dataset("folder", data.location, with_test=True)
    every = torch.cat([loaded.train.images, loaded.val.images, loaded.test.images])  # type: ignore[union-attr]
    assert every.shape[1:] == (3, 16, 16)
    grey = [image for image in every if torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])]
    assert len(grey) == 13  # the 12 grey digits and the wide grey image; the tinted ones differ per channel
    default = prepared(root)
    assert default.side == 28 and "28x28 (the most common size); 1 of 19 images resized" in default.conversion


def test_a_second_preparation_decodes_nothing_and_a_touched_file_decodes_again(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "shoes", per_class=5)
    calls: list[int] = []
    first = decode_folder(scan_image_folder(root), None, lambda done, total: calls.append(done))
    assert calls == list(range(1, 16))
    calls.clear()
    second = decode_folder(scan_image_folder(root), None, lambda done, total: calls.append(done))
    assert calls == [] and second.directory == first.directory
    touched = root / "boot" / "0000.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    third = decode_folder(scan_image_folder(root), None, lambda done, total: calls.append(done))
    assert calls == list(range(1, 16)) and third.directory != first.directory
    assert len(complete_caches()) == 2


def test_a_decoding_killed_half_way_leaves_no_cache_that_looks_complete(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "shoes", per_class=10)
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from astevo.data.image_cache import decode_folder
        from astevo.data.image_folder import scan_image_folder

        def die_half_way(done, total):
            if done == total // 2:
                os.kill(os.getpid(), signal.SIGKILL)

        decode_folder(scan_image_folder(Path({str(root)!r})), None, die_half_way)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script], env=os.environ.copy(), timeout=120)
    assert killed.returncode == -signal.SIGKILL
    left = list(image_cache_dir().iterdir())
    assert len(left) == 1 and ".partial-" in left[0].name and complete_caches() == []
    decoded = decode_folder(scan_image_folder(root), None)
    assert [p.name for p in image_cache_dir().iterdir()] == [decoded.directory.name]  # the abandoned one removed
    assert np.load(decoded.directory / "images.npy").shape == (30, 1, 28, 28)


def test_the_identity_a_resume_checks_follows_the_files_not_a_touch(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "shoes", per_class=5)
    before = prepared(root).identity
    Image.new("L", (28, 28)).save(root / "bag" / "extra.png")
    assert prepared(root).identity != before
    touched = root / "boot" / "0000.png"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 10**9))
    after = prepared(root)
    assert after.identity == prepared(root).identity  # a touch alone decodes again but is the same data


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: (root / "boot").mkdir(), "holds no images; add images to it or remove the folder"),
        (lambda root: (root / "bag" / "notes.txt").write_text("x"), "notes.txt is not an image file"),
        (
            lambda root: (root / "bag" / "0001.png").write_bytes((root / "bag" / "0001.png").read_bytes()[:400]),
            "0001.png cannot be read as an image (OSError",
        ),
        (lambda root: (root / "bag" / "0002.png").write_bytes(b"not a png"), "0002.png cannot be read as an image"),
    ],
    ids=["empty-class", "not-an-image", "truncated", "garbage"],
)
def test_bad_files_name_what_to_fix(tmp_path: Path, damage, message: str) -> None:
    root = tmp_path / "shoes"
    for name in ("bag", "trouser"):
        (root / name).mkdir(parents=True)
        for index in range(3):
            noise(index).save(root / name / f"{index:04d}.png")
    damage(root)
    with pytest.raises(AstevoError) as caught:
        prepared(root)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not list(image_cache_dir().glob("*/meta.json"))


def test_layout_mistakes_name_what_to_fix(tmp_path: Path) -> None:
    single = tmp_path / "single"
    (single / "cat").mkdir(parents=True)
    Image.new("L", (8, 8)).save(single / "cat" / "a.png")
    with pytest.raises(AstevoError, match="has a single class \\(cat\\); a classifier needs at least two"):
        prepared(single)
    split = write_split_folders(tmp_path / "split", train=2, val=1, test=1)
    (split / "val" / "bag").rename(split / "val" / "handbag")
    with pytest.raises(AstevoError, match="differ from those of .*train \\(missing bag; extra handbag\\)"):
        prepared(split)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AstevoError, match="holds no class folders, so no images"):
        prepared(tmp_path / "empty")
    only_val = tmp_path / "only-val"
    write_class_folders(only_val / "val", 1)
    with pytest.raises(AstevoError, match="has val/ but no train/"):
        prepared(only_val)


def test_a_pool_of_processes_decodes_the_same_arrays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_class_folders(tmp_path / "mixed", per_class=30, colour_every=4)
    alone = decode_folder(scan_image_folder(root), 20)
    monkeypatch.setattr("astevo.data.image_cache.POOL_FROM", 10)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))
    pooled = decode_folder(scan_image_folder(root), 20)
    assert pooled.directory != alone.directory and pooled.conversion == alone.conversion
    for name in ("images.npy", "labels.npy", "splits.npy"):
        assert np.array_equal(np.load(alone.directory / name), np.load(pooled.directory / name))
