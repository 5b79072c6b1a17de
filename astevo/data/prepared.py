"""The data set a run trains on, found (and for an image folder decoded) once, before any model is built.

Everything that builds or trains a model asks this for the data's shape and location, so the class
count, the channels and the side come from the data itself, and a folder is scanned once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from astevo.data.image_cache import OnProgress, decode_folder
from astevo.data.image_folder import WHOLE, looks_like_image_folder, scan_image_folder
from astevo.data.sources import (
    CLASS_NAMES,
    FOLDER,
    TEST_IMAGES,
    TRAIN_IMAGES,
    builtin_geometry,
    explicit_data_dir,
    require_dataset,
)
from astevo.errors import AstevoError
from astevo.settings import FitnessSettings


@dataclass(frozen=True)
class PreparedData:
    """A data set ready to load: where a training child reads it, its shape, and what a run records of it."""

    name: str
    location: Path  # a built-in set's folder, or an image folder's decoded cache
    classes: tuple[str, ...]
    channels: int
    side: int
    identity: str | None  # an image folder's content fingerprint; None for a built-in set
    folder: Path  # where the user's data is
    conversion: str  # how images were made one shape; empty for a built-in set
    images: dict[str, int]  # per split (train, val, test) as the settings carve it

    def record(self) -> dict[str, Any]:
        """What `show` and the report say about the data, and what a resume checks."""
        return {
            "dataset": self.name,
            "folder": str(self.folder),
            "classes": list(self.classes),
            "shape": [self.channels, self.side, self.side],
            "images": self.images,
            "conversion": self.conversion,
            "identity": self.identity,
        }


def data_line(record: dict[str, Any]) -> str:
    """One line on the data a run uses, from its record: what `evolve` says at the start and `show` repeats."""
    counts = ", ".join(f"{split} {count:,}" for split, count in record["images"].items())
    channels, side, _ = record["shape"]
    conversion = f"; {record['conversion']}" if record["conversion"] else ""
    return (
        f"data: {record['dataset']} in {record['folder']}: {len(record['classes'])} classes, "
        f"{channels}x{side}x{side} ({counts}){conversion}"
    )


_prepared: dict[tuple[str | None, int | None], PreparedData] = {}


def prepare_data(settings: FitnessSettings, on_progress: OnProgress | None = None) -> PreparedData:
    """The settings' data set; an image folder is prepared once per process, so later calls neither scan nor decode."""
    if settings.dataset != FOLDER:
        return _builtin(settings)
    key = (settings.data_dir, settings.image_size)
    if key not in _prepared:
        _prepared[key] = _image_folder(settings, on_progress)
    return _prepared[key]


def data_shape(settings: FitnessSettings) -> tuple[int, int, int]:
    """(classes, channels, side); a built-in set's come from its name, so checks that train nothing need no data."""
    if settings.dataset != FOLDER:
        return (len(CLASS_NAMES[settings.dataset]), *builtin_geometry(settings.dataset))
    data = prepare_data(settings)
    return len(data.classes), data.channels, data.side


def folder_identity(settings: FitnessSettings) -> str:
    """An image folder's content fingerprint as it is now, from a scan alone: nothing is decoded."""
    return scan_image_folder(_folder_root(settings)).identity()


def data_identity(settings: FitnessSettings) -> str | None:
    """What an evaluation's result depends on beyond the settings: an image folder's content."""
    return prepare_data(settings).identity if settings.dataset == FOLDER else None


def choose_dataset(data_dir: str | None) -> str:
    """The data set when none was named: an image folder the user pointed at, else the default built-in set."""
    given = explicit_data_dir(data_dir)
    default = FitnessSettings().dataset
    if given is None or _holds_builtin(default, given) or not looks_like_image_folder(given):
        return default
    return FOLDER


def carved(total: int, fraction: float) -> int:
    """How many images a split carved from `total` gets: at least one, and never all of them."""
    return min(total - 1, max(1, round(total * fraction)))


def split_sizes(train: int, val: int | None, test: int | None, settings: FitnessSettings) -> dict[str, int]:
    """Images per split once the settings carve what the data does not lay out (None: carved from train)."""
    whole = train
    if test is None:
        test = carved(whole, settings.val_fraction)
        train -= test
    if val is None:
        val = carved(whole, settings.val_fraction)
        train -= val
    if settings.limit_train is not None:
        train = min(train, settings.limit_train)
    return {"train": train, "val": val, "test": test}


def _builtin(settings: FitnessSettings) -> PreparedData:
    if settings.image_size is not None:
        raise AstevoError(f"image_size applies to image folders; {settings.dataset} has one size of its own")
    try:
        folder = require_dataset(settings.dataset, settings.data_dir)
    except AstevoError as missing:
        given = explicit_data_dir(settings.data_dir)
        if given is None:
            raise
        if looks_like_image_folder(given):
            raise AstevoError(
                f"{given} holds class folders, not {settings.dataset}; to train on them, leave out --dataset "
                "(or pass --dataset folder)"
            ) from missing
        raise AstevoError(
            f"{given} holds neither an image folder ({given}/<class>/<image>.png, or train/<class>/... with "
            f"optional val/ and test/) nor {settings.dataset}: {missing}"
        ) from missing
    channels, side = builtin_geometry(settings.dataset)
    return PreparedData(
        name=settings.dataset,
        location=folder,
        classes=CLASS_NAMES[settings.dataset],
        channels=channels,
        side=side,
        identity=None,
        folder=folder,
        conversion="",
        images=split_sizes(TRAIN_IMAGES[settings.dataset], None, TEST_IMAGES, settings),
    )


def _image_folder(settings: FitnessSettings, on_progress: OnProgress | None) -> PreparedData:
    listing = scan_image_folder(_folder_root(settings))
    root = listing.root
    decoded = decode_folder(listing, settings.image_size, on_progress)
    laid_out = decoded.counts
    whole = WHOLE in laid_out
    images = split_sizes(
        laid_out[WHOLE] if whole else laid_out["train"], laid_out.get("val"), laid_out.get("test"), settings
    )
    if images["train"] < 2:
        raise AstevoError(f"{root} has too few images to train on once validation and test are set apart: add images")
    return PreparedData(
        name=FOLDER,
        location=decoded.directory,
        classes=decoded.classes,
        channels=decoded.channels,
        side=decoded.side,
        identity=listing.identity(),
        folder=listing.root,
        conversion=decoded.conversion,
        images=images,
    )


def _folder_root(settings: FitnessSettings) -> Path:
    root = explicit_data_dir(settings.data_dir)
    if root is None:
        raise AstevoError("the data set 'folder' needs --data DIR: a folder with one folder of images per class")
    if not root.is_dir():
        raise AstevoError(f"{root}: no such folder; pass --data the folder that holds the class folders")
    return root.resolve()


def _holds_builtin(name: str, folder: Path) -> bool:
    try:
        require_dataset(name, folder)
    except AstevoError:
        return False
    return True
