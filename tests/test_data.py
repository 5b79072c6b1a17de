"""The offline loaders, on a CIFAR-10 folder written in the official format and the real Fashion-MNIST."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from astevo.data.loading import load_dataset, read_idx
from astevo.data.sources import FASHION_MNIST_FILES
from astevo.errors import AstevoError
from astevo.paths import data_cache_dir
from tests.cifar_fixture import FOLDER, fake_batch, write_fake_cifar10, write_pickle

REPO = Path(__file__).resolve().parents[1]
PER_BATCH = 40


@pytest.fixture(autouse=True)
def isolated_search_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point $ASTEVO_DATA and the cache at empty folders so only what a test provides is found."""
    monkeypatch.delenv("ASTEVO_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))


@pytest.fixture
def cifar_parent(tmp_path: Path) -> Path:
    parent = tmp_path / "data"
    write_fake_cifar10(parent, PER_BATCH)
    return parent


def image_keys(images: torch.Tensor) -> set[bytes]:
    return {image.numpy().tobytes() for image in images}


def training_rows() -> np.ndarray:
    return np.concatenate([fake_batch(PER_BATCH, seed)[0] for seed in range(5)])


def test_cifar10_loads_from_the_folder_itself(cifar_parent: Path) -> None:
    data = load_dataset("cifar10", cifar_parent / FOLDER)
    assert (data.name, data.num_classes, data.channels, data.image_size) == ("cifar10", 10, 3, 32)
    assert data.test is None
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    assert data.train.images.shape[1:] == (3, 32, 32)
    assert len(data.train) + len(data.val) == 5 * PER_BATCH
    assert len(data.val) == round(0.1 * 5 * PER_BATCH)
    expected = image_keys(torch.from_numpy(training_rows().reshape(-1, 3, 32, 32)))
    assert image_keys(data.train.images) | image_keys(data.val.images) == expected


def test_cifar10_test_split_keeps_file_order_and_plane_layout(cifar_parent: Path) -> None:
    data = load_dataset("cifar10", cifar_parent, with_test=True)
    rows, labels = fake_batch(PER_BATCH, seed=5)
    assert data.test is not None
    assert torch.equal(data.test.images, torch.from_numpy(rows.reshape(-1, 3, 32, 32)))
    assert data.test.labels.tolist() == labels
    assert torch.equal(data.test.images[0, 0].flatten(), torch.from_numpy(rows[0, :1024]))


def test_cifar10_found_through_astevo_data(cifar_parent: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASTEVO_DATA", str(cifar_parent))
    assert len(load_dataset("cifar10").val) == round(0.1 * 5 * PER_BATCH)


def test_cifar10_found_in_the_user_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_fake_cifar10(data_cache_dir(), PER_BATCH)
    assert data_cache_dir() == tmp_path / "cache" / "astevo" / "data"
    assert len(load_dataset("cifar10").train) > 0


def test_a_named_folder_is_the_only_place_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--data, else $ASTEVO_DATA, is never replaced by the cache or the system copy; only the default search is."""
    write_fake_cifar10(data_cache_dir(), PER_BATCH)  # a copy in the cache, which a named folder must not reach
    monkeypatch.setenv("ASTEVO_DATA", str(tmp_path / "env-data"))
    with pytest.raises(AstevoError) as caught:
        load_dataset("cifar10", tmp_path / "given")
    message = str(caught.value)
    assert "\n" not in message and f"looked in: {tmp_path / 'given'} (each itself" in message
    assert str(tmp_path / "env-data") not in message and FOLDER in message and "fetch_cifar10.py" in message
    with pytest.raises(AstevoError, match=f"looked in: {tmp_path / 'env-data'} \\(each itself"):
        load_dataset("cifar10")
    monkeypatch.delenv("ASTEVO_DATA")
    assert len(load_dataset("cifar10").val) == round(0.1 * 5 * PER_BATCH)


def test_validation_split_is_deterministic_stratified_and_disjoint(cifar_parent: Path) -> None:
    first = load_dataset("cifar10", cifar_parent, val_fraction=0.2, split_seed=3)
    again = load_dataset("cifar10", cifar_parent, val_fraction=0.2, split_seed=3)
    other = load_dataset("cifar10", cifar_parent, val_fraction=0.2, split_seed=4)
    assert torch.equal(first.val.images, again.val.images) and torch.equal(first.val.labels, again.val.labels)
    assert not torch.equal(first.val.images, other.val.images)
    assert not image_keys(first.val.images) & image_keys(first.train.images)
    assert torch.bincount(first.val.labels).tolist() == [4] * 10


def test_limit_train_takes_a_fixed_subset_of_the_training_part(cifar_parent: Path) -> None:
    full = load_dataset("cifar10", cifar_parent)
    small = load_dataset("cifar10", cifar_parent, limit_train=50)
    assert len(small.train) == 50 and torch.equal(small.val.images, full.val.images)
    assert image_keys(small.train.images) <= image_keys(full.train.images)
    assert torch.equal(small.train.images, load_dataset("cifar10", cifar_parent, limit_train=50).train.images)


def test_channel_statistics_come_from_the_training_split(cifar_parent: Path) -> None:
    data = load_dataset("cifar10", cifar_parent)
    pixels = data.train.images.double() / 255.0
    assert data.mean == pytest.approx(pixels.mean(dim=(0, 2, 3)).tolist(), abs=1e-9)
    assert data.std == pytest.approx(pixels.std(dim=(0, 2, 3), unbiased=False).tolist(), abs=1e-9)


def test_malformed_cifar_batch_is_an_astevo_error(cifar_parent: Path) -> None:
    write_pickle(cifar_parent / FOLDER / "data_batch_3", {b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4})
    with pytest.raises(AstevoError, match="data_batch_3"):
        load_dataset("cifar10", cifar_parent)


class RunsCode:
    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (os.getpid, ())


def test_pickle_naming_anything_but_numpy_arrays_is_refused(cifar_parent: Path) -> None:
    write_pickle(cifar_parent / FOLDER / "data_batch_1", {b"data": RunsCode(), b"labels": []})
    with pytest.raises(AstevoError, match="refusing to load .*getpid"):
        load_dataset("cifar10", cifar_parent)


def test_bad_arguments_are_astevo_errors(cifar_parent: Path) -> None:
    with pytest.raises(AstevoError, match="unknown data set"):
        load_dataset("mnist", cifar_parent)
    with pytest.raises(AstevoError, match="val_fraction"):
        load_dataset("cifar10", cifar_parent, val_fraction=1.0)


# --- Fashion-MNIST ----------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_gz(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload))
    return path


def test_real_fashion_mnist_is_found_in_the_system_folder() -> None:
    data = load_dataset("fashion-mnist", with_test=True)
    assert (data.channels, data.image_size, data.num_classes) == (1, 28, 10)
    assert len(data.train) + len(data.val) == 60000 and len(data.val) == 6000
    assert data.test is not None and len(data.test) == 10000
    assert data.train.images.shape[1:] == (1, 28, 28) and data.test.images.shape[1:] == (1, 28, 28)
    assert torch.bincount(data.val.labels).tolist() == [600] * 10
    assert data.mean[0] == pytest.approx(0.286, abs=0.005)


def test_fashion_mnist_from_small_idx_files(tmp_path: Path) -> None:
    folder = tmp_path / "fm"
    folder.mkdir()
    images = np.arange(20 * 3 * 5, dtype=np.uint8).reshape(20, 3, 5)
    labels = np.arange(20) % 10
    for part in ("train", "test"):
        write_gz(folder / FASHION_MNIST_FILES[f"{part}_images"], idx_bytes(images))
        write_gz(folder / FASHION_MNIST_FILES[f"{part}_labels"], idx_bytes(labels))
    data = load_dataset("fashion-mnist", folder, with_test=True)
    assert data.test is not None
    assert torch.equal(data.test.images, torch.from_numpy(images).unsqueeze(1))
    assert data.test.labels.tolist() == labels.tolist()


@pytest.mark.parametrize(
    "payload, problem",
    [
        (b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") * 3 + bytes(7), "holds 7 bytes"),
        (b"\x08\x03\x00\x00" + (2).to_bytes(4, "big") * 3 + bytes(8), "bad header"),
        (b"\x00\x00\x0d\x03" + (2).to_bytes(4, "big") * 3 + bytes(8), "bad header"),
        (b"\x00\x00", "bad header"),
    ],
)
def test_corrupt_idx_is_an_astevo_error(tmp_path: Path, payload: bytes, problem: str) -> None:
    path = write_gz(tmp_path / "x.gz", payload)
    with pytest.raises(AstevoError, match=problem):
        read_idx(path, ndim=3)


def test_idx_that_is_not_gzip_is_an_astevo_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.gz"
    path.write_bytes(idx_bytes(np.ones((2, 2, 2))))
    with pytest.raises(AstevoError, match="gzip"):
        read_idx(path, ndim=3)


def test_missing_fashion_mnist_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("astevo.data.sources.FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system-copy")
    with pytest.raises(AstevoError, match="apt-get install dataset-fashion-mnist") as caught:
        load_dataset("fashion-mnist")  # the default search: the cache, then the system copy
    assert str(tmp_path / "no-system-copy") in str(caught.value) and str(data_cache_dir()) in str(caught.value)


# --- tools/fetch_cifar10.py -------------------------------------------------------------------


def load_fetch_tool():
    spec = importlib.util.spec_from_file_location("fetch_cifar10", REPO / "tools" / "fetch_cifar10.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tarball_of(folder: Path, target: Path) -> str:
    with tarfile.open(target, "w:gz") as archive:
        archive.add(folder, arcname=FOLDER)
    return hashlib.md5(target.read_bytes()).hexdigest()


def test_fetch_tool_verifies_and_unpacks_a_loadable_folder(cifar_parent: Path, tmp_path: Path) -> None:
    fetch = load_fetch_tool()
    tarball = tmp_path / "cifar-10-python.tar.gz"
    md5 = tarball_of(cifar_parent / FOLDER, tarball)
    folder = fetch.verify_and_unpack(tarball, tmp_path / "dest", expected_md5=md5)
    assert folder == tmp_path / "dest" / FOLDER
    assert len(load_dataset("cifar10", tmp_path / "dest").train) > 0
    with pytest.raises(fetch.FetchError, match="MD5"):
        fetch.verify_and_unpack(tarball, tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_fetch_tool_refuses_members_outside_the_folder(tmp_path: Path) -> None:
    fetch = load_fetch_tool()
    tarball = tmp_path / "evil.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        info = tarfile.TarInfo(f"{FOLDER}/../escaped.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(fetch.FetchError, match="unexpected member"):
        fetch.verify_and_unpack(tarball, tmp_path / "dest", expected_md5=hashlib.md5(tarball.read_bytes()).hexdigest())
    assert not (tmp_path / "escaped.txt").exists()


def test_fetch_tool_default_destination_is_astevos_cache() -> None:
    assert load_fetch_tool().default_dest() == data_cache_dir()
