"""Chunk packages joined into one GGUF file: real packages on sys.path, real files, a real kill mid-join.

The code model's own chunks are tested too (`needs_coder`): a corrupted or missing chunk package placed in
front of the installed one on PYTHONPATH, as a broken reinstall would leave it.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from astevo.llm.catalogue import NAMED_MODELS, JoinedChunks, NamedModel, named_model
from astevo.llm.chunks import Chunk, ChunkedFile, ChunkError, is_verified, join
from astevo.llm.gguf import named_info
from tests.conftest import CODE_MODEL

PART = "data/part{:02d}.bin"


def make_packages(root: Path, stem: str, parts: list[bytes]) -> ChunkedFile:
    """Chunk packages `<stem>1 ...` under `root`, each an import package holding its part, and their pins."""
    chunks = []
    for index, data in enumerate(parts, start=1):
        package = root / f"{stem}{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / PART.format(index)).write_bytes(data)
        chunks.append(
            Chunk(
                f"{stem}{index}".replace("_", "-"),
                "1.0",
                PART.format(index),
                len(data),
                hashlib.sha256(data).hexdigest(),
            )
        )
    whole = b"".join(parts)
    return ChunkedFile(tuple(chunks), len(whole), hashlib.sha256(whole).hexdigest())


@pytest.fixture
def packages(tmp_path: Path, monkeypatch) -> tuple[ChunkedFile, Path, list[bytes]]:
    root = tmp_path / "site"
    parts = [b"GGUF" + os.urandom(300_000), os.urandom(300_000), os.urandom(123_457)]
    stem = f"fake_chunks_{tmp_path.name.replace('-', '_')}_part"
    monkeypatch.syspath_prepend(str(root))
    return make_packages(root, stem, parts), root, parts


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_chunks_join_once_into_a_verified_file(packages, tmp_path: Path) -> None:
    chunked, root, parts = packages
    target = tmp_path / "cache" / "model.gguf"
    started = []
    assert join(chunked, target, "fake", lambda: started.append(1)) == target
    assert target.read_bytes() == b"".join(parts) and started == [1]
    assert is_verified(chunked, target)
    assert leftovers(target.parent) == ["model.gguf", "model.gguf.verified"]
    for package in root.iterdir():  # the joined file no longer needs its packages
        for member in package.rglob("*.bin"):
            member.unlink()
    assert join(chunked, target, "fake", lambda: started.append(2)) == target and started == [1]


def test_a_missing_chunk_package_is_named(packages, tmp_path: Path) -> None:
    chunked, root, _ = packages
    gone = Chunk(chunked.chunks[1].package + "x", "1.0", PART.format(2), 1, "0" * 64)
    broken = ChunkedFile((chunked.chunks[0], gone, chunked.chunks[2]), chunked.size, chunked.sha256)
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(ChunkError, match=f"chunk package {gone.package} is not installed") as raised:
        join(broken, target, "fake")
    assert "\n" not in str(raised.value) and str(raised.value).endswith(
        f"install it with: pip install {gone.package}==1.0"
    )
    assert leftovers(target.parent) == []


@pytest.mark.parametrize(
    "damage, word",
    [
        (lambda data: data[:-1000], "truncated"),
        (lambda data: data[:5000] + bytes([data[5000] ^ 1]) + data[5001:], "altered"),
        (lambda data: data + b"more", "too long"),
        (None, "lacks its data file"),
    ],
)
def test_a_damaged_chunk_is_named_and_nothing_is_left(packages, tmp_path: Path, damage, word) -> None:
    chunked, root, parts = packages
    member = root / chunked.chunks[1].module / chunked.chunks[1].member
    if damage is None:
        member.unlink()
    else:
        member.write_bytes(damage(parts[1]))
    target = tmp_path / "cache" / "model.gguf"
    with pytest.raises(ChunkError, match=word) as raised:
        join(chunked, target, "fake")
    message = str(raised.value)
    assert chunked.chunks[1].package in message and "pip install --force-reinstall" in message and "\n" not in message
    assert leftovers(target.parent) == []  # no file that looks complete, no temporary file


def test_a_file_changed_after_joining_is_joined_again(packages, tmp_path: Path) -> None:
    chunked, _, parts = packages
    target = tmp_path / "cache" / "model.gguf"
    join(chunked, target, "fake")
    target.write_bytes(b"GGUF but not the model")
    assert not is_verified(chunked, target)
    join(chunked, target, "fake")
    assert target.read_bytes() == b"".join(parts)


def test_a_join_killed_midway_leaves_no_file_that_looks_complete(tmp_path: Path) -> None:
    root = tmp_path / "site"
    parts = [b"GGUF" + os.urandom(40 << 20), os.urandom(40 << 20), os.urandom(40 << 20)]
    chunked = make_packages(root, "killed_join_part", parts)
    target = tmp_path / "cache" / "model.gguf"
    script = (
        "import sys, time; from astevo.llm import chunks\n"
        "write = chunks._copy_chunk\n"
        "def slow(*arguments):\n"
        "    write(*arguments); print('chunk', flush=True); time.sleep(30)\n"
        "chunks._copy_chunk = slow\n"
        f"chunks.join(chunks.ChunkedFile({chunked.chunks!r}, {chunked.size}, {chunked.sha256!r}), "
        f"__import__('pathlib').Path({str(target)!r}), 'fake')\n"
    ).replace("Chunk(", "chunks.Chunk(")
    environment = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=environment)
    assert child.stdout is not None and child.stdout.readline().strip() == "chunk"  # one chunk written
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert not target.exists() and not is_verified(chunked, target)
    assert all(name.endswith(".joining") for name in leftovers(target.parent))
    sys.path.insert(0, str(root))
    try:
        assert join(chunked, target, "fake").read_bytes() == b"".join(parts)
    finally:
        sys.path.remove(str(root))


def test_a_named_model_that_is_not_installed_is_none(tmp_path: Path) -> None:
    chunk = Chunk("not-installed-anywhere-part1", "1.0", PART.format(1), 4, "0" * 64)
    model = NamedModel("nothing", "-", "-", "nothing", JoinedChunks(ChunkedFile((chunk,), 4, "0" * 64), "x.gguf"))
    assert not model.origin.available() and named_info(model) is None


def test_every_named_code_model_pins_its_chunks() -> None:
    for model in NAMED_MODELS:
        if isinstance(model.origin, JoinedChunks):
            chunked = model.origin.chunked
            assert sum(chunk.size for chunk in chunked.chunks) == chunked.size
            assert len({chunk.package for chunk in chunked.chunks}) == len(chunked.chunks)
            assert all(len(chunk.sha256) == 64 for chunk in chunked.chunks)


def astevo(*arguments: str, pythonpath: Path | None = None, cache: Path | None = None) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    if pythonpath is not None:
        environment["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{environment.get('PYTHONPATH', '')}"
    if cache is not None:
        environment["XDG_CACHE_HOME"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "astevo.cli", *arguments], capture_output=True, text=True, env=environment, timeout=600
    )


@pytest.mark.needs_coder
@pytest.mark.parametrize("damage", ["truncated", "missing"])
def test_the_code_model_with_a_damaged_chunk_is_a_one_line_error(tmp_path: Path, damage: str) -> None:
    model = named_model(CODE_MODEL)
    assert model is not None and isinstance(model.origin, JoinedChunks)
    chunk = model.origin.chunked.chunks[2]
    shadow = tmp_path / "site" / chunk.module
    (shadow / "data").mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    if damage == "truncated":
        installed = chunk.path()
        assert installed is not None and installed.is_file()
        with installed.open("rb") as stream:
            (shadow / chunk.member).write_bytes(stream.read(chunk.size // 3))
    empty_cache = tmp_path / "cache"
    result = astevo(
        "mutate", "--block", "SE_LN", "--model", CODE_MODEL, pythonpath=tmp_path / "site", cache=empty_cache
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr and lines[-1].startswith("error:")
    assert chunk.package in lines[-1] and ("truncated" if damage == "truncated" else "lacks its data file") in lines[-1]
    assert lines[0].startswith("joining")  # said before the slow work started
    assert [p.name for p in (empty_cache / "astevo" / "models").iterdir()] == []


@pytest.mark.needs_coder
def test_astevo_models_lists_every_named_model(tmp_path: Path) -> None:
    result = astevo("models")
    assert result.returncode == 0, result.stderr
    for model in NAMED_MODELS:
        assert model.name in result.stdout
    assert "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046" in result.stdout or (
        "not installed: pip install 'astevo[coder-large]'" in result.stdout
    )
    code_model = next(line for line in result.stdout.splitlines() if f" {CODE_MODEL} " in line)
    assert "ready:" in code_model and "(pinned)" in code_model and "Apache-2.0" in code_model


def test_an_unknown_model_name_is_a_one_line_error() -> None:
    result = astevo("mutate", "--block", "SE_LN", "--model", "qwen-coder")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "neither a model name" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_named_model_is_joined_into_the_cache_and_known_by_its_pin(packages, tmp_path: Path, monkeypatch) -> None:
    chunked, _, parts = packages
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    model = NamedModel("fake", "-", "-", "fake", JoinedChunks(chunked, "fake.gguf"))
    assert model.origin.available() and model.origin.ready() is None
    said: list[str] = []
    info = named_info(model, said.append)
    assert info is not None and info.named and info.name == "fake"
    assert info.path == tmp_path / "xdg" / "astevo" / "models" / "fake.gguf" and model.origin.ready() == info.path
    assert info.sha256 == chunked.sha256 == hashlib.sha256(b"".join(parts)).hexdigest()
    assert len(said) == 1 and said[0].startswith("joining fake")
