"""Rewrite tests/fixtures/genealogy.json from a fresh uninterrupted scripted run (only when a change is meant to
alter what a run decides): `python -m tests.record_genealogy`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.test_evolve_resume import RECORDED, ROOT, genealogy


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "run"
        environment = {**os.environ, "XDG_CACHE_HOME": str(Path(scratch) / "cache")}  # as the tests run it
        subprocess.run(
            [sys.executable, "-m", "tests.scripted_evolution", str(folder)], cwd=ROOT, check=True, env=environment
        )
        RECORDED.write_text(json.dumps(genealogy(folder), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {RECORDED}")


if __name__ == "__main__":
    main()
