#!/usr/bin/env python3
"""Fetch CIFAR-10 (python version) on a connected machine: download, check its MD5, unpack.

astevo itself never downloads. Run this where there is internet and copy the resulting
`cifar-10-batches-py` folder to the offline machine, or use --tarball to verify and unpack a
tarball carried over by hand. Standard library only, so any Python 3.10+ can run it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path, PurePosixPath

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"  # the official checksum (the one torchvision's CIFAR10 checks)
FOLDER = "cifar-10-batches-py"


class FetchError(Exception):
    """The download or the tarball is not the official CIFAR-10 archive."""


def default_dest() -> Path:
    """astevo's per-user data cache (kept equal to astevo.paths.data_cache_dir by a test)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "astevo" / "data"


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_and_unpack(tarball: Path, dest: Path, expected_md5: str = MD5) -> Path:
    """Check the tarball's MD5, then extract its `cifar-10-batches-py` folder into `dest`.

    Every member must be a plain file or folder inside that one folder, so a tampered archive
    cannot write anywhere else.
    """
    actual = md5_of(tarball)
    if actual != expected_md5:
        raise FetchError(f"{tarball}: MD5 {actual} differs from the official {expected_md5}; download it again")
    with tarfile.open(tarball, "r:gz") as archive:
        members = archive.getmembers()
        for member in members:
            parts = PurePosixPath(member.name).parts
            if not (member.isfile() or member.isdir()) or not parts or parts[0] != FOLDER or ".." in parts:
                raise FetchError(f"{tarball}: unexpected member {member.name!r}; not the CIFAR-10 archive")
        dest.mkdir(parents=True, exist_ok=True)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(dest, members=members, **safe)
    return dest / FOLDER


def download(url: str, target: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dest", type=Path, default=default_dest(), help="folder to unpack into (default: %(default)s)"
    )
    parser.add_argument("--tarball", type=Path, help="verify and unpack this already downloaded cifar-10-python.tar.gz")
    args = parser.parse_args(argv)
    try:
        if args.tarball:
            folder = verify_and_unpack(args.tarball, args.dest)
        else:
            args.dest.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=args.dest) as tmp:
                tarball = Path(tmp) / "cifar-10-python.tar.gz"
                print(f"downloading {URL}")
                download(URL, tarball)
                folder = verify_and_unpack(tarball, args.dest)
    except (FetchError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"CIFAR-10 is in {folder}; astevo finds it there (or pass --data {folder.parent})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
