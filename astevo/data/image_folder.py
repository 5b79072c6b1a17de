"""The user's own images, laid out as torchvision's ImageFolder: one folder per class.

Either `ROOT/<class>/...` (astevo carves validation and test parts from it) or `ROOT/train/<class>/...`
with optional `val/` and `test/` beside it. Scanning opens no image: it reads names, sizes and
modification times, so it is cheap enough for every start, and its fingerprints key the decoded
cache and let a resumed run refuse a folder that changed under it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from astevo.errors import AstevoError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm")
LAID_OUT_SPLITS = ("train", "val", "test")
WHOLE = ""  # the split of an image in a single class folder: astevo carves it


@dataclass(frozen=True)
class ImageEntry:
    """One image file: where it is under the root, its class and the split its folder puts it in."""

    relative: str
    label: int
    split: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class FolderListing:
    """What an image folder holds, checked for the mistakes that would make a run meaningless."""

    root: Path
    classes: tuple[str, ...]
    entries: tuple[ImageEntry, ...]
    laid_out: tuple[str, ...]  # the split folders present (train first); empty for a single folder

    def identity(self) -> str:
        """The folder's content as a run depends on it (names, classes, sizes): a resume checks it."""
        rows = [[e.relative, e.label, e.split, e.size] for e in self.entries]
        return _digest({"classes": self.classes, "rows": rows})

    def decoded_key(self, image_size: int | None) -> str:
        """The identity plus modification times and the requested side: a touched file is decoded again."""
        times = [e.mtime_ns for e in self.entries]
        return _digest({"identity": self.identity(), "times": times, "image_size": image_size})


def _digest(record: object) -> str:
    return hashlib.sha256(json.dumps(record, separators=(",", ":")).encode("utf-8")).hexdigest()


def looks_like_image_folder(root: Path) -> bool:
    """A quick look for class folders; their mistakes are for scan_image_folder to name."""
    return root.is_dir() and bool(_visible_folders(root))


def scan_image_folder(root: Path) -> FolderListing:
    """List an image folder, or an AstevoError naming the first thing to fix."""
    if not root.is_dir():
        raise AstevoError(f"{root} is not a folder; pass --data a folder of class folders")
    present = [name for name in LAID_OUT_SPLITS if (root / name).is_dir()]
    if present and "train" not in present:
        raise AstevoError(
            f"{root} has {'/ and '.join(present)}/ but no train/; add {root / 'train'} with a folder per class"
        )
    if not present:
        classes = _class_names(root)
        return FolderListing(root, classes, tuple(_entries(root, root, classes, WHOLE)), ())
    others = [p.name for p in _visible_folders(root) if p.name not in LAID_OUT_SPLITS]
    if others:
        raise AstevoError(
            f"{root / others[0]} is neither train/, val/ nor test/; move it out of {root} or into one of them"
        )
    classes = _class_names(root / "train")
    entries = list(_entries(root, root / "train", classes, "train"))
    for split in present[1:]:
        found = tuple(p.name for p in _visible_folders(root / split))
        if set(found) != set(classes):
            missing = sorted(set(classes) - set(found))
            extra = sorted(set(found) - set(classes))
            detail = "; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"extra {', '.join(extra)}" if extra else "",
                )
                if part
            )
            raise AstevoError(
                f"the classes of {root / split} differ from those of {root / 'train'} ({detail}); "
                "give both the same class folders"
            )
        entries.extend(_entries(root, root / split, classes, split))
    return FolderListing(root, classes, tuple(entries), tuple(present))


def _class_names(folder: Path) -> tuple[str, ...]:
    classes = tuple(sorted(p.name for p in _visible_folders(folder)))
    if not classes:
        raise AstevoError(
            f"{folder} holds no class folders, so no images; lay it out as {folder}/<class>/<image>.png "
            "(or train/<class>/... with optional val/ and test/)"
        )
    if len(classes) == 1:
        raise AstevoError(f"{folder} has a single class ({classes[0]}); a classifier needs at least two class folders")
    return classes


def _entries(root: Path, folder: Path, classes: tuple[str, ...], split: str) -> list[ImageEntry]:
    entries = []
    for label, name in enumerate(classes):
        files = sorted(_files_below(folder / name))
        if not files:
            raise AstevoError(f"{folder / name} holds no images; add images to it or remove the folder")
        for path in files:
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise AstevoError(
                    f"{path} is not an image file (astevo reads {', '.join(IMAGE_SUFFIXES)}); move it out of {root}"
                )
            stat = path.stat()
            entries.append(ImageEntry(path.relative_to(root).as_posix(), label, split, stat.st_size, stat.st_mtime_ns))
    return entries


def _visible_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files_below(folder: Path) -> list[Path]:
    """Every file under a class folder, nested ones included (as ImageFolder does), hidden ones left out."""
    found: list[Path] = []
    for directory, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if not f.startswith(".")]
        found.extend(Path(directory) / f for f in files if not f.startswith("."))
    return found
