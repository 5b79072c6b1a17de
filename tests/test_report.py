"""`astevo report`: real PNGs, one self-contained escaped HTML page, for finished, bare and running runs."""

from __future__ import annotations

import html
import re
from pathlib import Path

import typer
from typer.testing import CliRunner

from astevo.cli.report_command import report
from astevo.evaluation.base import MAC_UNIT
from astevo.views.report import write_report
from tests.run_builder import HOSTILE, SEED, SOURCES, add, build_run, new_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_complete(out_dir: Path, page: Path) -> str:
    """Both plots are PNG files, written next to the page and embedded in it; return the page."""
    assert page == out_dir / "report.html"
    text = page.read_text(encoding="utf-8")
    for name in ("pareto.png", "generations.png"):
        assert (out_dir / name).read_bytes().startswith(PNG_MAGIC)
        assert f'href="{name}"' in text
    assert text.count('src="data:image/png;base64,') == 2
    assert text.count("<table>") == text.count("</table>") > 0
    return text


def test_report_of_a_run_in_its_last_generation(tmp_path: Path) -> None:
    with build_run(tmp_path / "run") as store:
        text = assert_complete(tmp_path / "out", write_report(store, tmp_path / "out"))
    front = re.search(r"<h2>Pareto front</h2>(.*?)<h2>", text, re.S).group(1)
    assert re.findall(r"<tr><td>(#\d+)</td>", front) == ["#4", "#3"]  # cheapest first
    assert "<h3>#4 (best): 83.00%, 500,000 parameters</h3>" in text
    assert "<h3>#3 (on the Pareto front): 85.00%, 600,000 parameters</h3>" in text
    lineage = text[text.index("<h3>#4 (best)") :]
    assert re.findall(r"<tr><td>(#\d+)</td>", lineage)[:3] == ["#1", "#2", "#4"]  # seed first, by first parents
    assert "<script>" not in text and html.escape(HOSTILE) in text
    assert "<td>2</td><td>4</td><td>2</td><td>1</td>" in text.replace(' class="n"', "")  # generation 2 so far
    assert "unfinished" in text and "still running" in text
    assert (
        "<tr><td>2</td><td>4</td><td>2</td><td>1</td><td>50%</td><td>83.00%</td><td>83.00%</td><td>unfinished</td></tr>"
    ) in text.replace(' class="n"', "")
    assert "<td>#2 #3 #1</td>" in text  # generation 1's survivors
    assert "still running" in text
    assert "mean seconds per evaluation</td><td>24.4</td>" in text  # four 30 s trainings and one 2 s failure


def test_report_of_a_run_with_only_a_seed(tmp_path: Path) -> None:
    with new_run(tmp_path / "run") as store:
        add(store, 0, 0, SEED, operator="seed", accuracy=0.8)
        store.finish_generation(0, [1])
        store.set_meta("finished", 100.0)
        text = assert_complete(tmp_path / "out", write_report(store, tmp_path / "out"))
    assert "<h3>#1 (best): 80.00%, 518,230 parameters</h3>" in text
    assert "still running" not in text


def test_report_of_a_run_without_valid_offspring(tmp_path: Path) -> None:
    with new_run(tmp_path / "run", cost="macs") as store:
        add(store, 0, 0, SEED, operator="seed", accuracy=0.8)
        add(store, 1, 0, SOURCES["broken_head"], parents=(1,), blocks=("ExquisiteNetV2",), failed="shape mismatch")
        add(store, 1, 1, None, parents=(1,), blocks=("SE",), discarded="no usable answer")
        store.finish_generation(0, [1])
        store.finish_generation(1, [1])
        text = assert_complete(tmp_path / "out", write_report(store, tmp_path / "out"))
    assert f"validation accuracy against {MAC_UNIT}" in text
    assert "<tr><td>1</td><td>2</td><td>1</td><td>0</td><td>0%</td><td></td><td></td><td>#1</td></tr>" in text.replace(
        ' class="n"', ""
    )


def test_report_of_a_run_whose_seed_is_still_being_evaluated(tmp_path: Path) -> None:
    with new_run(tmp_path / "run") as store:
        add(store, 0, 0, SEED, operator="seed", pending=True)
        text = assert_complete(tmp_path / "out", write_report(store, tmp_path / "out"))
    assert "No valid individual yet" in text


def test_report_command_writes_into_the_run_folder_by_default(tmp_path: Path) -> None:
    build_run(tmp_path / "run").close()
    app = typer.Typer()
    app.command()(report)
    app.command("other")(lambda: None)  # two commands, so the report is invoked by name as in astevo
    result = CliRunner().invoke(app, ["report", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"report: {tmp_path / 'run' / 'report' / 'report.html'}" in result.stdout
    assert_complete(tmp_path / "run" / "report", tmp_path / "run" / "report" / "report.html")
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1


def test_the_page_opens_with_what_the_run_found_and_keeps_the_settings_for_last(tmp_path: Path) -> None:
    with build_run(tmp_path / "run") as store:
        text = assert_complete(tmp_path / "out", write_report(store, tmp_path / "out"))
    sections = re.findall(r"<h2>(.*?)</h2>", text)
    assert sections[0] == "What the run found" and sections[-1] == "Run"
    assert text.index("configuration") > text.index("Lineage of the best individuals")
    found = re.search(r"<h2>What the run found</h2>(.*?)<h2>", text, re.S).group(1)
    rows = re.findall(r'<tr id="individual-(\d+)">(.*?)</tr>', found, re.S)
    assert [row[0] for row in rows] == ["4", "3"]  # the best at or below the seed's size, then the rest of the front
    best = rows[0][1].replace(' class="n"', "")
    assert "<td>83.00%</td><td>+3.00 points</td><td>500,000</td><td>-18,230</td>" in best
    assert "<details><summary>DFSEBV2, ExquisiteNetV2</summary><pre>" in best  # its diff against the seed, one click
    assert html.escape("-        self.drop = nn.Dropout(0.5)") in best and "not an improvement" in found
