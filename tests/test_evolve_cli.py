"""`astevo evolve` settings and refusals: everything a user can get wrong ends in one line and exit 2."""

from __future__ import annotations

import hashlib

import pytest
from typer.testing import CliRunner

from astevo.cli import app
from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.anatomy import inspect_model
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evolution.evolvable import evolvable_blocks
from astevo.evolution.loop import check_model
from astevo.llm.gguf import checked_model
from astevo.llm.identity import file_identity, served_identity
from astevo.paths import default_seed_path
from astevo.settings import EvolveConfig, FitnessSettings, apply, read_config
from astevo.store.run_store import RunStore

runner = CliRunner()


@pytest.fixture(scope="module")
def seed() -> ModelFile:
    return ModelFile.read(default_seed_path())


@pytest.fixture(scope="module")
def anatomy(seed):
    return inspect_model(seed, LocalEvaluator(), FitnessSettings())


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_default_blocks_are_the_modules_the_model_builds(seed, anatomy):
    chosen = evolvable_blocks(seed, anatomy, ())
    assert "SE" not in chosen and "get_optimizer" not in chosen and "pad_num" not in chosen
    assert {"SE_LN", "DW", "ME", "DFSEBV2", "FCT", "EVE", "ExquisiteNetV2"} <= set(chosen)


def test_an_unbuilt_block_is_refused_with_what_to_do_instead(seed, anatomy):
    with pytest.raises(AstevoError, match=r"SE is never built by ExquisiteNetV2.*--block SE --block DFSEBV2"):
        evolvable_blocks(seed, anatomy, ("SE",))
    assert evolvable_blocks(seed, anatomy, ("SE", "DFSEBV2", "SE")) == ("SE", "DFSEBV2")


def test_evolve_block_se_alone_stops_before_any_evaluation(tmp_path):
    line = one_line_error(runner.invoke(app, ["evolve", "--block", "SE", "--run", str(tmp_path / "run")]))
    assert "--block SE --block DFSEBV2" in line
    assert not (tmp_path / "run").exists()  # nothing was started


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--block", "Nope"], "no block named 'Nope'"),
        (["--population", "0"], "--population must be at least 1, got 0 (setting population)"),
        (["--cost", "latency"], "--cost must be one of parameters, macs"),
        (["--dataset", "mnist"], "mnist"),
        (["--resume"], "--resume needs --run"),
        (["--variation", "genetic"], "--variation must be one of llm, random, best-of-n"),
        (["--evaluations", "3"], "--evaluations must exceed noise_seeds (3), the seed's own trainings, got 3"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, arguments, message):
    assert message in one_line_error(
        runner.invoke(
            app,
            ["evolve", *arguments, "--run", str(tmp_path / "r")]
            if "--resume" not in arguments
            else ["evolve", *arguments],
        )
    )


def test_resume_refuses_new_settings_and_folders_without_a_run(tmp_path):
    assert "leave out" in one_line_error(
        runner.invoke(app, ["evolve", "--run", str(tmp_path), "--resume", "--population", "3"])
    )
    assert "holds no astevo run" in one_line_error(runner.invoke(app, ["evolve", "--run", str(tmp_path), "--resume"]))


def test_a_folder_holding_a_run_is_never_overwritten(tmp_path):
    RunStore.create(tmp_path, {"config": EvolveConfig().to_record()}).close()
    before = (tmp_path / "run.sqlite").read_bytes()
    line = one_line_error(runner.invoke(app, ["evolve", "--block", "SE_LN", "--run", str(tmp_path)]))
    assert "already holds a run" in line and "--resume" in line
    assert (tmp_path / "run.sqlite").read_bytes() == before


def test_toml_config_sets_nested_settings_and_flags_win(tmp_path):
    path = tmp_path / "evolve.toml"
    path.write_text(
        'population = 6\ncost = "macs"\n[fitness]\nlimit_train = 500\n[fitness.budget]\nepochs = 2\n'
        '[mutation]\nscope = "block"\n'
    )
    config = apply(apply(EvolveConfig(), read_config(path), str(path)), {"population": 8}, "flags")
    assert (config.population, config.cost, config.fitness.limit_train) == (8, "macs", 500)
    assert config.fitness.budget.epochs == 2 and config.mutation.scope == "block"
    assert EvolveConfig.from_record(config.to_record()) == config


@pytest.mark.parametrize(
    "text, message",
    [
        ("populaton = 3\n", "populaton is not a setting"),
        ("population = 'three'\n", "population must be int"),
        ("[fitness.budget]\nepochs = -1\n", "fitness.budget.epochs must be positive"),
        ("population = \n", "is not valid TOML"),
    ],
)
def test_bad_config_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    line = one_line_error(runner.invoke(app, ["evolve", "--config", str(path), "--run", str(tmp_path / "r")]))
    assert message in line


def test_a_missing_config_file_is_a_one_line_error(tmp_path):
    line = one_line_error(runner.invoke(app, ["evolve", "--config", str(tmp_path / "nope.toml")]))
    assert "cannot read config file" in line


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"blocks": "SE"}, "blocks must be a list of str"),
        ({"fitness": {"data_dir": 5}}, "data_dir must be str or nothing"),
        ({"fitness": {"train": False}}, "fitness.train must be true"),
        ({"fitness": {"val_fraction": 1.5}}, "val_fraction must lie between 0 and 1"),
        ({"fitness": {"limit_train": 1}}, "at least 2 images"),
    ],
)
def test_settings_are_checked_before_a_run_exists(overrides, message):
    with pytest.raises(AstevoError, match=message):
        apply(EvolveConfig(), overrides)


def test_a_run_has_one_writer_at_a_time(tmp_path):
    with RunStore.create(tmp_path, {"config": EvolveConfig().to_record()}) as first:
        first.claim()
        with RunStore.open(tmp_path) as second, pytest.raises(AstevoError, match="in use by another astevo process"):
            second.claim()
    with RunStore.open(tmp_path) as later:
        later.claim()  # released when the first writer closed (or died)


def test_a_resume_refuses_another_model_file(tmp_path):
    model, other = tmp_path / "model.gguf", tmp_path / "other.gguf"
    model.write_bytes(b"GGUF one")
    other.write_bytes(b"GGUF two")
    meta = {"model": {"path": str(model), "sha256": hashlib.sha256(b"GGUF one").hexdigest()}}  # as 0.3 stored it
    with RunStore.create(tmp_path / "run", meta) as store:
        check_model(store, file_identity(checked_model(model, "--model")))
        with pytest.raises(
            AstevoError, match=r"made with the model .*model.gguf \(sha256 .*\), and other .* differs; restore"
        ):
            check_model(store, file_identity(checked_model(other, "--model")))
        with pytest.raises(AstevoError, match="and no model is given; restore"):
            check_model(store, None)
        pinned = checked_model(other, "test", "named", pinned_sha256=hashlib.sha256(b"GGUF one").hexdigest())
        check_model(store, file_identity(pinned))  # a pinned hash is trusted: the join checked it
        served = served_identity("http://127.0.0.1:8080/v1", "named", {"id": "named"})
        with pytest.raises(AstevoError, match="and named served at http://127.0.0.1:8080/v1 differs"):
            check_model(store, served)
