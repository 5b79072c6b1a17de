"""The installed `astevo` command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from astevo.code.blocks import ModelFile
from astevo.llm.catalogue import NAMED_MODELS
from astevo.paths import default_seed_path

MODELS = Path(__file__).parent / "models"


def astevo(*args: str, cwd: Path | None = None, columns: str = "200") -> subprocess.CompletedProcess[str]:
    command = [shutil.which("astevo") or sys.executable, *args]
    if command[0] == sys.executable:
        command[1:1] = ["-m", "astevo.cli"]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"COLUMNS": columns, "PATH": "/usr/bin:/bin:" + str(Path(sys.executable).parent), "HOME": str(Path.home())},
    )


def test_starting_the_command_line_loads_no_torch_llama_or_matchers() -> None:
    """Help, show, diff and report answer at once: torch, llama.cpp and libcst's matchers load only when used."""
    heavy = "{'torch', 'llama_cpp', 'libcst.matchers', 'matplotlib'}"
    probe = f"import sys, astevo.cli; print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_blocks_lists_the_seed_with_dependencies_and_parameters() -> None:
    result = astevo("blocks")
    assert result.returncode == 0, result.stderr
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[1:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    }
    assert list(rows) == [
        "get_optimizer",
        "pad_num",
        "SE",
        "SE_LN",
        "DFSEBV2",
        "MinPool2d",
        "FCT",
        "EVE",
        "ME",
        "DW",
        "ExquisiteNetV2",
    ]
    assert rows["DFSEBV2"][1:] == [
        "class",
        rows["DFSEBV2"][2],
        "5x",
        "600-304,896",
        "pad_num, SE, SE_LN",
        "ExquisiteNetV2",
    ]
    assert rows["ExquisiteNetV2"][3:6] == ["model", "518,230", "DFSEBV2, FCT, EVE, ME, DW"]
    assert rows["SE"][3] == "never"
    assert rows["SE_LN"][3:5] == ["5x", "24-768"]
    assert "model: ExquisiteNetV2, 518,230 parameters" in result.stdout
    assert "never built by ExquisiteNetV2: SE" in result.stdout


def test_blocks_reads_any_ordinary_model_file() -> None:
    result = astevo("blocks", str(MODELS / "residual_net.py"))
    assert result.returncode == 0, result.stderr
    assert "model: Net," in result.stdout
    assert "ScaledResidual" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not a UTF-8 text file"),
        (b"class A(:\n    pass\n", ":1:9: cannot parse"),
        (b"width = 3\nprint(width)\n", "no top-level class or function"),
    ],
    ids=["missing", "binary", "unparsable", "no blocks"],
)
def test_bad_files_are_one_line_errors_with_exit_code_2(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "model.py"
    if content is not None:
        path.write_bytes(content)
    result = astevo("blocks", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.slow
def test_eval_fast_stages_on_the_seed_and_a_broken_file(tmp_path: Path) -> None:
    result = astevo("eval", str(default_seed_path()), "--no-train", "--no-cache", "--dataset", "cifar10")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "parameters: 518,230" in result.stdout and "multiply-adds per image" in result.stdout
    assert "verdict: valid" in result.stdout
    broken = tmp_path / "broken.py"
    broken.write_text(
        default_seed_path().read_text().replace("self.ln(self.gavg(x).flatten(1))", "self.ln(self.gavg(x))")
    )
    result = astevo("eval", str(broken), "--no-train", "--no-cache")
    assert result.returncode == 1
    assert "verdict: invalid at probe" in result.stdout


def test_eval_adds_an_allowed_import_says_so_and_leaves_the_file_alone(tmp_path: Path) -> None:
    edited = tmp_path / "edited.py"
    text = default_seed_path().read_text().replace("self.act(self.dw(x))", "self.act(self.dw(x)) * math.sqrt(2.0)")
    edited.write_text(text)
    result = astevo("eval", str(edited), "--no-train", "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verdict: valid" in result.stdout
    assert "evaluated with import math added at the top (the file itself is unchanged)" in result.stderr
    assert edited.read_text() == text


def test_eval_usage_errors_exit_2(tmp_path: Path) -> None:
    result = astevo("eval", str(default_seed_path()), "--dataset", "imagenet")
    assert (
        result.returncode == 2
        and "--dataset must be one of cifar10, fashion-mnist, folder, got 'imagenet'" in result.stderr
    )
    result = astevo("eval", str(default_seed_path()), "--dataset", "cifar10", "--data", str(tmp_path))
    assert result.returncode == 2 and "CIFAR-10 not found" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.needs_model
def test_mutate_shows_a_diff_and_a_verdict_with_the_bundled_model() -> None:
    result = astevo("mutate", "--block", "DW", "--n", "1", "--operator", "complexity")
    assert result.returncode == 0, result.stderr
    assert "proposal 1/1: mutate, intent complexity" in result.stdout
    assert "fast checks: " in result.stdout and "useful proposals: " in result.stdout
    if "fast checks: passed" in result.stdout:
        assert "--- DW (original)" in result.stdout and "+++ DW (proposal)" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--block", "SEX"], "no block named 'SEX'; blocks in this file: get_optimizer, pad_num, SE"),
        (["--block", "SE", "--model", "/nonexistent/model.gguf"], "/nonexistent/model.gguf"),
        (["--block", "SE", "--operator", "nonsense"], "--operator must be one of hyperparameters"),
        (["--block", "SE", "--n", "0"], "--n must be at least 1"),
        (["--block", "SE", "--answers", "guessed"], "--answers must be one of written, ranked"),
    ],
)
def test_mutate_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = astevo("mutate", *args)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_models_lists_the_bundled_ones_and_marks_the_default(tmp_path: Path) -> None:
    result = astevo("models")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    default = next(model for model in NAMED_MODELS if model.origin.available())  # this env names no model
    assert [row.split("│")[1].strip() for row in rows] == [model.name for model in NAMED_MODELS]
    assert [row.split("│")[-2].strip() for row in rows if default.name in row] == ["yes"]
    assert any("SmolLM2-135M-Instruct" in row and "ready:" in row for row in rows)
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    result = astevo("models", "--model", str(fake))
    assert result.returncode == 2 and "GGUF" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_tables_reach_a_pipe_whole_however_narrow_the_terminal_would_be() -> None:
    result = astevo("blocks", columns="40")
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    names = [line.split("│")[1].strip() for line in result.stdout.splitlines() if line.startswith("│")]
    assert [n for n in names if n] == list(ModelFile.read(default_seed_path()).blocks)


def test_blocks_json_is_the_documented_shape() -> None:
    result = astevo("blocks", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["model"] == {"class": "ExquisiteNetV2", "parameters": 518_230}
    by_name = {block["name"]: block for block in record["blocks"]}
    assert by_name["SE"]["instances"] == 0 and by_name["SE"]["used_by"] == ["DFSEBV2"]
    assert by_name["ME"]["instances"] == 3 and by_name["ME"]["parameters"] == [4_800, 18_816, 74_496]
    assert by_name["get_optimizer"]["instances"] is None and by_name["ExquisiteNetV2"]["is_model"]


def test_eval_json_carries_the_verdict_stages_and_metrics(tmp_path: Path) -> None:
    result = astevo("eval", str(default_seed_path()), "--no-train", "--no-cache", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["valid"] and record["failure"] is None and record["added_imports"] == []
    assert [s["name"] for s in record["stages"]] == ["parse", "gate", "build", "probe", "cost"]
    assert record["metrics"]["parameters"] == 518_126
    broken = tmp_path / "broken.py"
    broken.write_text(default_seed_path().read_text().replace("nn.Linear(384, class_num)", "nn.Linear(385, class_num)"))
    failed = json.loads(astevo("eval", str(broken), "--no-train", "--no-cache", "--json").stdout)
    assert not failed["valid"] and failed["failure"]["stage"] == "probe"
