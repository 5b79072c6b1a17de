"""The package as users get it: a non-editable wheel holds every subpackage, template, grammar and the seed."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def test_the_built_wheel_runs_astevo_blocks_from_a_fresh_venv(tmp_path: Path) -> None:
    source = tmp_path / "source"  # build from a copy: the build writes build/ and egg-info next to the code
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in tracked.splitlines():
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), "."],
        cwd=source,
        check=True,
        capture_output=True,
        timeout=300,
    )
    environment = tmp_path / "venv"
    venv.create(environment, system_site_packages=True, with_pip=False)
    python = environment / "bin" / "python"
    wheel = next(wheels.glob("astevo-*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import sys, astevo.cli, astevo.evaluation.sandboxed.entry_points, astevo.variation.prompts; "
        "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('astevo')))"
    )
    loaded = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path)
    files = loaded.stdout.split()
    assert files and all(f.startswith(str(environment)) for f in files), files  # the wheel's copy, not the checkout
    listed = subprocess.run(
        [str(environment / "bin" / "astevo"), "blocks"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "HOME": str(tmp_path)},
    )
    assert listed.returncode == 0, listed.stderr
    assert "get_optimizer" in listed.stdout and "ExquisiteNetV2" in listed.stdout and "518,230" in listed.stdout
