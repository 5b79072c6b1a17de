"""The user's own image folder through the installed command: bad folders are one line and exit 2, and a
run evolves on a real folder, says what data it used, resumes, refuses a changed folder and is finalised."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from astevo.paths import default_seed_path
from tests.cli_process import astevo
from tests.image_folders import write_class_folders, write_split_folders

pytestmark = pytest.mark.needs_data

SEED = str(default_seed_path())


def noise(seed: int) -> Image.Image:
    """A 28 x 28 grey image of noise: its PNG is large enough that cutting it loses pixels."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8))


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def two_classes(root: Path) -> Path:
    for name in ("bag", "trouser"):
        (root / name).mkdir(parents=True)
        for index in range(3):
            noise(index).save(root / name / f"{index:04d}.png")
    return root


def stray_file(root: Path) -> Path:
    root.mkdir()
    (root / "readme.txt").write_text("my shoes")
    return root


def only_one_class(root: Path) -> Path:
    (root / "cat").mkdir(parents=True)
    Image.new("L", (28, 28)).save(root / "cat" / "a.png")
    return root


def val_with_other_classes(root: Path) -> Path:
    two_classes(root / "train")
    two_classes(root / "val")
    (root / "val" / "trouser").rename(root / "val" / "jeans")
    return root


def no_images(root: Path) -> Path:
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    return root


def empty_class(root: Path) -> Path:
    two_classes(root)
    (root / "boot").mkdir()
    return root


def text_file(root: Path) -> Path:
    two_classes(root)
    (root / "bag" / "x.txt").write_text("x")
    return root


def truncated(root: Path) -> Path:
    two_classes(root)
    image = root / "bag" / "0001.png"
    image.write_bytes(image.read_bytes()[:400])
    return root


BAD_FOLDERS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "neither": (stray_file, "holds neither an image folder"),
    "no-images": (no_images, "holds no images"),
    "empty-class": (empty_class, "boot holds no images"),
    "single-class": (only_one_class, "has a single class (cat)"),
    "not-an-image": (text_file, "x.txt is not an image file"),
    "truncated": (truncated, "0001.png cannot be read as an image"),
    "val-classes": (val_with_other_classes, "(missing trouser; extra jeans)"),
}


@pytest.mark.parametrize("case", list(BAD_FOLDERS))
def test_a_bad_data_folder_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    make, message = BAD_FOLDERS[case]
    folder = make(tmp_path / "shoes")
    before = sorted((p.relative_to(folder), p.stat().st_size) for p in folder.rglob("*"))
    line = one_line_error(astevo("eval", SEED, "--data", str(folder), cwd=tmp_path))
    assert message in line and str(folder) in line
    assert sorted((p.relative_to(folder), p.stat().st_size) for p in folder.rglob("*")) == before  # nothing changed


def test_astevo_data_is_explicit_too_and_never_falls_through_to_the_system_copy(tmp_path: Path) -> None:
    folder = stray_file(tmp_path / "shoes")
    line = one_line_error(astevo("eval", SEED, cwd=tmp_path, extra={"ASTEVO_DATA": str(folder)}))
    assert "holds neither an image folder" in line and "Fashion-MNIST not found" in line
    classes = two_classes(tmp_path / "x")
    line = one_line_error(astevo("eval", SEED, "--dataset", "fashion-mnist", "--data", str(classes), cwd=tmp_path))
    assert "holds class folders, not fashion-mnist; to train on them, leave out --dataset" in line
    checked = astevo("eval", SEED, "--no-train", cwd=tmp_path, extra={"ASTEVO_DATA": str(classes)})
    assert checked.returncode == 0, checked.stderr
    assert f"data: folder in {classes}: 2 classes, 1x28x28" in checked.stderr


def test_eval_trains_on_laid_out_splits_and_says_so(tmp_path: Path) -> None:
    folder = write_split_folders(tmp_path / "clothes", train=20, val=5, test=5)
    result = astevo("eval", SEED, "--data", str(folder), "--epochs", "1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"data: folder in {folder}: 3 classes, 1x28x28 (train 60, val 15, test 15)" in result.stderr
    assert "decoding" not in result.stdout
    record = json.loads(result.stdout)
    assert record["valid"] and 0.0 <= record["metrics"]["val_accuracy"] <= 1.0
    assert record["metrics"]["images_seen"] == 60


@pytest.mark.slow
def test_evolve_on_a_single_folder_resumes_refuses_a_change_and_finalises(tmp_path: Path) -> None:
    folder = write_class_folders(tmp_path / "clothes", per_class=40)
    run = tmp_path / "run"
    evolve = ("evolve", "--data", str(folder), "--run", str(run), "--variation", "random", "--population", "2",
              "--generations", "1", "--epochs", "1", "--workers", "1", "--force")  # fmt: skip
    result = astevo(*evolve, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    said = f"data: folder in {folder}: 3 classes, 1x28x28 (train 96, val 12, test 12); 1 channel (every image is grey)"
    assert said in result.stderr
    shown = json.loads(astevo("show", str(run), "--json", cwd=tmp_path).stdout)
    assert shown["config"]["fitness"]["dataset"] == "folder"
    assert shown["data"]["classes"] == ["bag", "boot", "trouser"]
    assert shown["data"]["images"] == {"train": 96, "val": 12, "test": 12}
    seed = shown["individuals"][0]
    assert seed["operator"] == "seed" and seed["status"] == "valid"  # its probe checked 3 logits per image
    assert said in astevo("show", str(run), cwd=tmp_path).stdout
    assert astevo("report", str(run), cwd=tmp_path).returncode == 0
    page = (run / "report" / "report.html").read_text()
    assert "3: bag, boot, trouser" in page and "1 x 28 x 28" in page and "train 96, val 12, test 12" in page

    resumed = astevo("evolve", "--run", str(run), "--resume", "--force", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert said in resumed.stderr
    assert json.loads(astevo("show", str(run), "--json", cwd=tmp_path).stdout)["individuals"] == shown["individuals"]

    final = astevo("final", str(run), "--seeds", "1", cwd=tmp_path)
    assert final.returncode == 0, final.stderr[-2000:]
    assert "test" in final.stdout and "failed" not in final.stdout

    Image.new("L", (28, 28)).save(folder / "bag" / "new.png")
    line = one_line_error(astevo("evolve", "--run", str(run), "--resume", cwd=tmp_path))
    assert "with other files than" in line and "restore the folder to resume, or start a new run" in line
