"""The settings tree: validated when built, named by path in errors, stored and read back exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astevo.cli.terminal import user_message
from astevo.settings import (
    EvolveConfig,
    FinalSettings,
    FitnessSettings,
    LlamaCppSettings,
    MutationSettings,
    ServerSettings,
    TrainBudget,
    apply,
    migrate_record,
    read_config,
)
from astevo.typed_records import SettingsError, build


@pytest.mark.parametrize(
    "make, setting",
    [
        (lambda: TrainBudget(epochs=0), "epochs"),
        (lambda: TrainBudget(batch_size=1), "batch_size"),
        (lambda: TrainBudget(max_images=1), "max_images"),
        (lambda: TrainBudget(warmup_fraction=1.0), "warmup_fraction"),
        (lambda: FitnessSettings(dataset="mnist"), "dataset"),
        (lambda: FitnessSettings(val_fraction=0.0), "val_fraction"),
        (lambda: FitnessSettings(memory_mb=0), "memory_mb"),
        (lambda: MutationSettings(intent="faster"), "intent"),
        (lambda: MutationSettings(scope="file"), "scope"),
        (lambda: MutationSettings(backend="openai"), "backend"),
        (lambda: MutationSettings(backend="server"), "server.url"),
        (lambda: ServerSettings(url="127.0.0.1:8080"), "url"),
        (lambda: ServerSettings(retries=-1), "retries"),
        (lambda: LlamaCppSettings(context=16), "context"),
        (lambda: EvolveConfig(population=0), "population"),
        (lambda: EvolveConfig(cost="latency"), "cost"),
        (lambda: EvolveConfig(fitness=FitnessSettings(train=False)), "fitness.train"),
        (lambda: FinalSettings(seeds=0), "seeds"),
    ],
)
def test_every_settings_object_is_checked_when_built(make, setting: str) -> None:
    with pytest.raises(SettingsError) as caught:
        make()
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"{setting} ")


def test_nested_errors_name_the_whole_path_and_the_cli_names_the_flag() -> None:
    with pytest.raises(SettingsError) as caught:
        apply(EvolveConfig(), {"fitness": {"budget": {"epochs": -1}}}, "flags")
    error = caught.value
    assert error.setting == "fitness.budget.epochs" and "must be positive, got -1" in str(error)
    assert user_message(error) == "--epochs must be positive, got -1.0 (setting fitness.budget.epochs)"


def test_a_config_file_error_names_the_file_and_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text("[mutation]\nrepairs = -2\n")
    with pytest.raises(SettingsError) as caught:
        apply(EvolveConfig(), read_config(path), str(path))
    assert user_message(caught.value) == f"{path}: mutation.repairs must be 0 or more, got -2"


def test_reading_a_record_rejects_unknown_keys_at_any_depth() -> None:
    record = EvolveConfig().to_record()
    record["fitness"]["budget"]["sede"] = 3
    with pytest.raises(SettingsError, match="fitness.budget.sede is not a setting"):
        EvolveConfig.from_record(record)


def test_a_record_of_an_older_astevo_is_migrated_before_it_is_read() -> None:
    """The names runs stored before "seed" meant only the seed model file."""
    old = EvolveConfig(random_seed=7).to_record()
    old["seed"] = old.pop("random_seed")
    old["mutation"]["seed"] = old["mutation"].pop("random_seed")
    old["mutation"]["dataset"] = "fashion-mnist"
    old["fitness"]["budget"]["seed"] = old["fitness"]["budget"].pop("training_seed")
    assert EvolveConfig.from_record(old) == EvolveConfig(random_seed=7)
    assert migrate_record(EvolveConfig().to_record()) == EvolveConfig().to_record()


def test_llama_cpp_knobs_stored_before_backends_had_tables_move_into_theirs() -> None:
    old = EvolveConfig().to_record()
    del old["mutation"]["llama_cpp"], old["mutation"]["server"], old["mutation"]["backend"]
    old["mutation"].update({"threads": 3, "context": 2048, "gpu_layers": 0})
    mutation = EvolveConfig.from_record(old).mutation
    assert mutation.llama_cpp == LlamaCppSettings(threads=3, context=2048, gpu_layers=0)
    assert (mutation.backend, mutation.server) == ("llama.cpp", ServerSettings())


def test_a_config_file_written_for_an_older_astevo_still_applies(tmp_path: Path) -> None:
    path = tmp_path / "old.toml"
    path.write_text('[mutation]\nthreads = 8\nscope = "block"\n')
    applied = apply(EvolveConfig(), read_config(path), str(path)).mutation
    assert (applied.llama_cpp.threads, applied.scope) == (8, "block")


def test_values_of_the_wrong_type_are_refused_and_ints_pass_for_floats() -> None:
    with pytest.raises(SettingsError, match="population must be int, got 'three'"):
        apply(EvolveConfig(), {"population": "three"})
    with pytest.raises(SettingsError, match="fitness.train must be bool"):
        apply(EvolveConfig(), {"fitness": {"train": 1}})
    assert apply(EvolveConfig(), {"crossover_rate": 1}).crossover_rate == 1
    assert build(FitnessSettings, {"budget": {"epochs": 2}}).budget.epochs == 2


@given(
    population=st.integers(1, 50),
    generations=st.integers(1, 50),
    random_seed=st.integers(0, 2**31),
    crossover_rate=st.floats(0, 1),
    epochs=st.floats(0.01, 100),
    limit_train=st.none() | st.integers(2, 10**6),
    blocks=st.lists(st.sampled_from(["SE", "DW", "ME"]), max_size=3),
)
def test_a_stored_tree_reads_back_equal(
    population, generations, random_seed, crossover_rate, epochs, limit_train, blocks
) -> None:
    config = apply(
        EvolveConfig(),
        {
            "population": population,
            "generations": generations,
            "random_seed": random_seed,
            "crossover_rate": crossover_rate,
            "blocks": blocks,
            "fitness": {"limit_train": limit_train, "budget": {"epochs": epochs}},
        },
    )
    assert EvolveConfig.from_record(config.to_record()) == config
