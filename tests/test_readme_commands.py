"""README's main command, copied as written, on a fresh clone: as root, with no `sudo` on the machine.

It installs into a throwaway venv made with --system-site-packages (an editable install from a
temporary clone must not re-point the package the rest of the suite imports), then runs the whole
main job: evolution on the defaults, the diff of the best individual, the report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from astevo.llm.catalogue import named_model
from astevo.store.run_store import RunStore
from tests.conftest import CODE_MODEL

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.needs_coder, pytest.mark.needs_data]


def readme_command(marker: str) -> str:
    """The command in the fenced block after `<!-- marker -->`, as .ci/run reads the test command."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- {marker} -->\n```bash\n(.+)\n```", text)
    assert found, f"README.md has no {marker}"
    return found.group(1)


@pytest.mark.skipif(os.geteuid() != 0, reason="the first command runs apt-get as root, as on a fresh machine")
def test_the_main_command_works_as_root_without_sudo(tmp_path: Path) -> None:
    clone = tmp_path / "astevo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    environment = tmp_path / "venv"
    venv.create(environment, system_site_packages=True, with_pip=True)
    path = f"{environment / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    assert shutil.which("sudo", path=path) is None, "this test needs a machine without sudo"
    result = subprocess.run(
        ["bash", "-c", readme_command("main-command")],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=1500,
        env={"PATH": path, "HOME": str(tmp_path / "home"), "LANG": "C.UTF-8", "VIRTUAL_ENV": str(environment)},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    runs = list((clone / "astevo-runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "run.sqlite").is_file()
    assert (runs[0] / "report" / "report.html").is_file()
    assert "Pareto front" in result.stdout and "report:" in result.stdout
    assert "Traceback" not in output
    # No --model and no $ASTEVO_MODEL: the run used the default code model, and recorded its name and pinned
    # hash, so that a resume finds it by name on any machine.
    assert f"(llm variation by {CODE_MODEL})" in " ".join(result.stdout.split())  # the console wraps at 80 columns
    with RunStore.open(runs[0]) as store:
        meta, config, individuals = store.meta(), store.config(), store.individuals()
    asked = [child for child in individuals[1:] if child.exchanges]
    assert asked and all(child.exchanges[0]["prompt"].startswith("<|im_start|>system\n") for child in asked)  # Qwen's
    pinned = named_model(CODE_MODEL)
    assert pinned is not None and pinned.origin.pinned_sha256 is not None
    assert meta["model"]["name"] == CODE_MODEL and meta["model"]["sha256"] == pinned.origin.pinned_sha256
    assert config.mutation.model == CODE_MODEL
    chosen = meta["slots"]  # --workers auto, the default: measured, chosen, said and stored for a resume
    assert "slots: " in result.stdout and chosen["reason"] in " ".join(result.stdout.split())
    assert chosen["slots"] >= 1 and config.fitness.threads == chosen["threads"] >= 1
