"""Reading a run back: block-aware diffs, which individual a name means, exports, and the commands over them.

The runs are real RunStores written by hand: the seed and variants made by editing its text,
with fabricated metrics, so every expectation below is known exactly.
"""

from __future__ import annotations

import ast
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from astevo.cli.run_commands import diff, export, show
from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.base import MAC_UNIT
from astevo.store.run_store import SCHEMA_VERSION, RunStore
from astevo.views.run_view import (
    MODULE,
    best_individual,
    block_diffs,
    export_source,
    metric_deltas,
    resolve,
    run_figures,
)
from tests.run_builder import PROBE_FAILURE, SEED, SOURCES, add, build_run, edit, new_run


def line_of(source: str, text: str) -> int:
    return next(n for n, line in enumerate(source.splitlines(), start=1) if text in line)


@pytest.fixture()
def run(tmp_path: Path) -> Iterator[RunStore]:
    with build_run(tmp_path / "run") as store:
        yield store


def changed_lines(diff_text: str) -> list[str]:
    return [
        line.rstrip("\n") for line in diff_text.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_a_one_line_change_is_one_block_diff_numbered_as_in_the_files() -> None:
    diffs = block_diffs(SEED, SOURCES["dropout"], "#1", "#2")
    assert [(d.name, d.change) for d in diffs] == [("ExquisiteNetV2", "changed")]
    assert changed_lines(diffs[0].diff) == [
        "-        self.drop = nn.Dropout(0.5)",
        "+        self.drop = nn.Dropout(0.3)",
    ]
    block = ModelFile(SEED).block("ExquisiteNetV2")
    line = line_of(SEED, "nn.Dropout(0.5)")
    assert diffs[0].diff.splitlines()[:3] == [
        f"--- #1: ExquisiteNetV2, lines {block.first_line}-{block.last_line}",
        f"+++ #2: ExquisiteNetV2, lines {block.first_line}-{block.last_line}",
        f"@@ -{line - 3},7 +{line - 3},7 @@",  # three lines of context either side
    ]


def test_each_changed_block_gets_its_own_diff() -> None:
    diffs = block_diffs(SEED, SOURCES["two_blocks"])
    assert [d.name for d in diffs] == ["DFSEBV2", "FCT"]
    assert changed_lines(diffs[0].diff) == [
        "-        self.se = SE_LN(cin) if is_LN else SE(cin, 3)",
        "+        self.se = SE_LN(cin) if is_LN else SE(cin, 6)",
    ]
    assert "stride=2, padding=0" in changed_lines(diffs[1].diff)[1]
    assert block_diffs(SEED, SEED) == []


def test_line_numbers_follow_each_file_when_an_earlier_block_grew() -> None:
    grown = edit(
        SOURCES["dropout"],
        "        self.act = nn.ReLU()\n",
        "        self.act = nn.ReLU()\n        self.extra = nn.Identity()\n",
    )
    diffs = {d.name: d for d in block_diffs(SEED, grown)}
    assert list(diffs) == ["SE", "ExquisiteNetV2"]
    line = line_of(SEED, "nn.Dropout(0.5)")
    assert f"@@ -{line - 3},7 +{line - 2},7 @@" in diffs["ExquisiteNetV2"].diff
    assert changed_lines(diffs["SE"].diff) == ["+        self.extra = nn.Identity()"]


def test_added_removed_and_module_level_changes() -> None:
    changed = SEED.replace("import torch.nn.functional as F\n", "import torch.nn.functional as F\nimport math\n")
    changed = changed.replace("def pad_num", "def helper():\n    return 1\n\n\ndef pad_num")
    changed = changed.replace("class MinPool2d(", "class MinPool(").replace("MinPool2d(2,", "MinPool(2,")
    diffs = {d.name: d for d in block_diffs(SEED, changed)}
    assert {name: d.change for name, d in diffs.items()} == {
        "MinPool2d": "removed",
        "FCT": "changed",
        "EVE": "changed",
        "helper": "added",
        "MinPool": "added",
        MODULE: "changed",
    }
    assert changed_lines(diffs[MODULE].diff) == ["+import math"]
    import_line = line_of(SEED, "import torch")
    assert f"@@ -{import_line},3 +{import_line},4 @@" in diffs[MODULE].diff
    assert (
        f"+++ after: helper, lines {line_of(changed, 'def helper')}-{line_of(changed, 'def helper') + 1}"
        in diffs["helper"].diff
    )
    assert "+++ after: MinPool2d (absent)" in diffs["MinPool2d"].diff


def test_names_resolve_to_individuals(run: RunStore) -> None:
    assert best_individual(run).id == 4  # #3 is more accurate, but costs more than the seed
    assert resolve(run, None).id == resolve(run, "best").id == 4
    assert resolve(run, "seed").id == 1
    assert resolve(run, "3").id == 3
    with pytest.raises(AstevoError, match="give an individual's id .*'seed' or 'best'"):
        resolve(run, "newest")
    with pytest.raises(AstevoError, match="has no individual 99"):
        resolve(run, "99")


def test_best_falls_back_to_accuracy_alone_and_needs_something_valid(tmp_path: Path) -> None:
    with new_run(tmp_path / "failed-seed") as store:
        add(store, 0, 0, SEED, operator="seed", failed="out of memory")
        with pytest.raises(AstevoError, match="no valid individual"):
            best_individual(store)
        add(store, 1, 0, SOURCES["dropout"], parents=(1,), accuracy=0.7, parameters=900_000)
        add(store, 1, 1, SOURCES["two_blocks"], parents=(1,), accuracy=0.75, parameters=950_000)
        assert best_individual(store).id == 3


def test_metric_deltas(run: RunStore) -> None:
    deltas = metric_deltas(run.individual(1), run.individual(4))
    assert deltas == {"val_accuracy": pytest.approx(3.0), "parameters": -18_230, "macs": -1_000_000}
    assert metric_deltas(run.individual(3), run.individual(6)) == {
        "val_accuracy": None,
        "parameters": None,
        "macs": None,
    }


def test_export_keeps_the_blocks_and_puts_the_header_after_the_docstring(run: RunStore) -> None:
    best = run.individual(4)
    exported = export_source(run, best)
    model = ModelFile(exported)
    assert {n: b.source for n, b in model.blocks.items()} == {
        n: b.source for n, b in ModelFile(best.source).blocks.items()
    }
    assert ast.get_docstring(ast.parse(exported)) == ast.get_docstring(ast.parse(best.source))
    header = [line for line in exported.splitlines() if line.startswith("# ")]
    assert header[1] == "# individual #4, generation 2, operator crossover (parents #2, #3)"
    assert header[2] == f"# val accuracy 83.00%, 500,000 parameters, 8,000,000 {MAC_UNIT} per image"
    assert exported.index('"""\n# Exported by astevo') < exported.index("import torch")
    with pytest.raises(AstevoError, match="no code"):
        export_source(run, run.individual(5))


def test_export_follows_future_imports(tmp_path: Path) -> None:
    source = SEED.replace("import torch\n", "from __future__ import annotations\nimport torch\n", 1)
    with new_run(tmp_path / "future") as store:
        exported = export_source(store, store.individual(add(store, 0, 0, source, operator="seed", accuracy=0.8)))
    compile(exported, "exported.py", "exec")  # a comment before the future import would be fine; code would not
    lines = exported.splitlines()
    assert lines.index("from __future__ import annotations") + 1 == lines.index(
        next(line for line in lines if line.startswith("# Exported by astevo"))
    )


def test_the_exported_file_builds_and_runs_its_model(run: RunStore, tmp_path: Path) -> None:
    path = tmp_path / "best.py"
    path.write_text(export_source(run, run.individual(4)), encoding="utf-8")
    program = (
        "import importlib.util, sys, torch\n"
        "spec = importlib.util.spec_from_file_location('best', sys.argv[1])\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "model = module.ExquisiteNetV2(10, 1).eval()\n"
        "print(tuple(model(torch.randn(1, 1, 28, 28)).shape))\n"
    )
    result = subprocess.run([sys.executable, "-c", program, str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 10)"


# The commands, as the CLI registers them.

app = typer.Typer()
app.command()(diff)
app.command()(show)
app.command()(export)


def invoke(*args: object):
    """Run a command on a wide terminal, so that rich does not wrap the lines the tests look for."""
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def test_diff_defaults_to_the_best_against_its_first_parent(run: RunStore) -> None:
    result = invoke("diff", run.folder)
    assert result.exit_code == 0, result.output
    assert "#4 (generation 2, crossover of #2 and #3) against #2 (generation 1, mutate of #1): valid" in result.stdout
    assert "changed blocks: DFSEBV2\n" in result.stdout
    assert "val accuracy 83.00% (+1.00 points)" in result.stdout
    assert "parameters 500,000 (-18,230)" in result.stdout
    assert "<script>alert('x')</script>" in result.stdout  # plain text in a terminal, not markup
    assert "-        self.se = SE_LN(cin) if is_LN else SE(cin, 3)" in result.stdout
    assert "Dropout" not in result.stdout  # #2 already had the dropout change


def test_diff_against_the_seed_and_of_the_seed(run: RunStore) -> None:
    result = invoke("diff", run.folder, "4", "seed")
    assert result.exit_code == 0, result.output
    assert "changed blocks: DFSEBV2, ExquisiteNetV2" in result.stdout
    assert "+        self.drop = nn.Dropout(0.3)" in result.stdout
    seed = invoke("diff", run.folder, "seed")
    assert seed.exit_code == 0 and seed.stdout.strip().count("\n") == 0
    assert "#1 is the seed" in seed.stdout
    full = invoke("diff", run.folder, "2", "--full")
    assert "--- #1" in full.stdout and "+        self.drop = nn.Dropout(0.3)" in full.stdout


def test_nothing_sent_into_a_pipe_is_cut_at_a_narrow_width(run: RunStore) -> None:
    """A log or a pipe gets every line whole: diffs and block listings as much as tables (COLUMNS=40)."""
    changed = "        self.dw = nn.Conv2d(cin, cin, 2, stride=2, padding=0, groups=cin, bias=False)"
    narrow = {"COLUMNS": "40"}
    for command in (("diff", run.folder, "3"), ("diff", run.folder, "3", "--full"), ("show", run.folder, "3")):
        result = CliRunner().invoke(app, [str(a) for a in command], env=narrow)
        assert result.exit_code == 0, result.output
        assert changed in result.stdout, command  # with its `-`/`+` or its line number in front
    table = CliRunner().invoke(app, ["show", str(run.folder)], env=narrow)
    assert "no usable answer after 3 attempts" in table.stdout


def test_diff_of_a_failed_individual_shows_its_reason(run: RunStore) -> None:
    result = invoke("diff", run.folder, "6")
    assert result.exit_code == 0, result.output
    assert "against #3" in result.stdout and "invalid (probe: mat1 and mat2" in result.stdout
    assert "val accuracy n/a (n/a)" in result.stdout
    assert "+        self.fc = nn.Linear(385, class_num)" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("diff", "{run}", "abc"),
        ("diff", "{run}", "99"),
        ("diff", "{run}", "4", "nope"),
        ("diff", "{run}", "5"),
        ("show", "{run}", "3x"),
        ("export", "{run}", "99", "-o", "{tmp}/x.py"),
        ("diff", "{tmp}"),
    ],
    ids=["word", "missing", "bad-other", "discarded", "show", "export", "not-a-run"],
)
def test_bad_references_are_one_line_errors_with_exit_code_2(run: RunStore, tmp_path: Path, args: tuple) -> None:
    result = invoke(*(a.format(run=run.folder, tmp=tmp_path) for a in args))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.output


def test_show_lists_every_individual(run: RunStore) -> None:
    result = invoke("show", run.folder)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("│")]
    assert [row.split("│")[1].strip() for row in rows] == [str(i) for i in range(1, 8)]
    status = {row.split("│")[1].strip(): row.split("│")[5].strip() for row in rows}
    assert status == {
        "1": "valid",
        "2": "valid",
        "3": "valid",
        "4": "valid",
        "5": "discarded",
        "6": "invalid",
        "7": "pending",
    }
    assert "…" not in result.stdout and PROBE_FAILURE in result.stdout  # not a terminal: reasons stay whole


def test_show_one_individual_in_detail(run: RunStore) -> None:
    result = invoke("show", run.folder, "2")
    assert result.exit_code == 0, result.output
    assert "#2 (generation 1, mutate of #1): valid" in result.stdout
    assert "intent: unusual values" in result.stdout
    assert "model calls: 1" in result.stdout and "answer for slot 0" in result.stdout
    assert "self.drop = nn.Dropout(0.3)" in result.stdout  # the changed block's source
    assert f"{MAC_UNIT}: 9,000,000" in result.stdout and "val accuracy: 82.00%" in result.stdout
    failed = invoke("show", run.folder, "6")
    assert "probe" in failed.stdout and "invalid" in failed.stdout and "mat1 and mat2" in failed.stdout


def test_export_writes_a_model_file_and_never_overwrites_unasked(run: RunStore, tmp_path: Path) -> None:
    target = tmp_path / "best.py"
    result = invoke("export", run.folder, "best", "-o", target)
    assert result.exit_code == 0, result.output
    assert "DFSEBV2" in ModelFile.read(target).blocks
    target.write_text("mine\n")
    refused = invoke("export", run.folder, "seed", "-o", target)
    assert refused.exit_code == 2 and "--force" in refused.stderr
    assert target.read_text() == "mine\n"
    forced = invoke("export", run.folder, "seed", "-o", target, "--force")
    assert forced.exit_code == 0, forced.output
    assert "individual #1, generation 0, operator seed" in target.read_text()


def test_run_figures_count_offspring_once_each(run: RunStore) -> None:
    figures = run_figures(run.individuals(with_text=False))
    assert (figures.offspring, figures.valid, figures.pending, figures.discarded) == (6, 3, 1, 1)
    assert figures.evaluations == 5  # the seed and #2, #3, #4, #6; nothing reused
    assert figures.valid_share == 0.5
    assert figures.seconds_per_evaluation == pytest.approx((4 * 30.0 + 2.0) / 5)
    assert figures.seconds_per_proposal == 1.5
    assert figures.from_cache == 0


def test_results_from_the_evaluation_cache_are_counted_apart(tmp_path: Path) -> None:
    with new_run(tmp_path / "run") as store:
        add(store, 0, 0, SEED, operator="seed", accuracy=0.80)  # measured here: 30 s
        cached = add(store, 1, 0, SOURCES["dropout"], parents=(1,), pending=True)
        store.record_evaluation(cached, [], {"val_accuracy": 0.81}, 0.01, cached=True)
        assert store.individual(cached).cached and not store.individual(1).cached
        figures = run_figures(store.individuals(with_text=False))
    assert (figures.evaluations, figures.from_cache, figures.seconds_per_evaluation) == (1, 1, 30.0)


def test_a_version_1_run_is_upgraded_when_opened_and_keeps_its_individuals(tmp_path: Path) -> None:
    with build_run(tmp_path / "run") as store:
        before = store.individuals()
    database = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    with database:  # what astevo before version 2 of the schema wrote
        database.execute("ALTER TABLE individuals DROP COLUMN cached")
        database.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    database.close()
    with RunStore.open(tmp_path / "run") as store:
        assert store.individuals() == before
        assert store.meta()["schema"] == SCHEMA_VERSION
    with RunStore.open(tmp_path / "run") as store:  # and opens again as a current run
        assert len(store.individuals()) == len(before)


def test_a_version_1_run_that_cannot_be_upgraded_is_a_one_line_error(tmp_path: Path) -> None:
    build_run(tmp_path / "run").close()
    database = sqlite3.connect(tmp_path / "run" / "run.sqlite")
    with database:
        database.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")  # the column exists: ALTER fails
    database.close()
    with pytest.raises(AstevoError, match="cannot upgrade run .* make its folder writable"):
        RunStore.open(tmp_path / "run")


def test_show_json_lists_every_individual_with_the_documented_fields(run: RunStore) -> None:
    result = CliRunner().invoke(app, ["show", str(run.folder), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    rows = {row["id"]: row for row in record["individuals"]}
    required = {
        "id",
        "generation",
        "parents",
        "operator",
        "intent",
        "changed_blocks",
        "status",
        "reason",
        "val_accuracy",
        "parameters",
        "macs",
        "seconds",
    }
    assert all(required <= set(row) for row in rows.values())
    assert [rows[i]["status"] for i in sorted(rows)] == [
        "valid",
        "valid",
        "valid",
        "valid",
        "discarded",
        "invalid",
        "pending",
    ]
    assert rows[4]["parents"] == [2, 3] and rows[4]["changed_blocks"] == ["DFSEBV2"] and rows[4]["macs"] == 8_000_000
    assert rows[6]["reason"] == f"probe: {PROBE_FAILURE}" and rows[1]["seconds"] == 31.5
    one = json.loads(CliRunner().invoke(app, ["show", str(run.folder), "4", "--json"]).stdout)
    assert (
        one["id"] == 4
        and one["source"] == SOURCES["crossover"]
        and [s["name"] for s in one["stages"]][-1] == "validate"
    )


def test_show_sends_every_reason_whole_into_a_pipe(run: RunStore) -> None:
    result = CliRunner().invoke(app, ["show", str(run.folder)], env={"COLUMNS": "60"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout and "the head expects 385 features" in result.stdout.replace("\n", "")
