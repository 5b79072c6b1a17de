"""The run store through its public methods, on a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from astevo.errors import AstevoError
from astevo.settings import EvolveConfig
from astevo.store.records import DISCARDED, EVALUATED, PENDING, FinalResult, NewIndividual
from astevo.store.run_store import SCHEMA_VERSION, RunStore

PASSED = [{"name": "train", "ok": True, "reason": None, "seconds": 1.0}]
FAILED = [{"name": "probe", "ok": False, "reason": "shape mismatch", "seconds": 0.2}]


def new_store(folder: Path) -> RunStore:
    return RunStore.create(folder, {"config": EvolveConfig().to_record(), "seed_source": "x = 1\n"})


def add(
    store: RunStore,
    generation: int,
    slot: int,
    source: str | None,
    parents: tuple[int, ...] = (),
    discarded: str | None = None,
) -> int:
    return store.add(
        NewIndividual(
            generation=generation,
            slot=slot,
            parents=parents,
            operator="mutate" if parents else "seed",
            blocks=("SE",) if parents else (),
            intent=None,
            source=source,
            code_hash=f"hash-{source}" if source else None,
            exchanges=[{"purpose": "propose"}],
            rng_seed=f"0:{generation}:{slot}",
            propose_seconds=0.5,
            discarded=discarded,
        )
    )


def test_an_individual_is_stored_pending_then_evaluated_and_reads_back_whole(tmp_path: Path) -> None:
    with new_store(tmp_path) as store:
        first = add(store, 0, 0, "a")
        assert store.individual(first).status == PENDING and store.at(0, 0) == store.individual(first)
        store.record_evaluation(first, PASSED, {"val_accuracy": 0.6, "parameters": 10, "macs": 20}, 3.0)
    with RunStore.open(tmp_path) as store:  # committed: another connection sees it
        found = store.individual(first)
    assert (found.status, found.valid, found.val_accuracy, found.parameters, found.macs) == (
        EVALUATED,
        True,
        0.6,
        10,
        20,
    )
    assert (found.code, found.rng_seed, found.exchanges, found.evaluate_seconds) == (
        "a",
        "0:0:0",
        ({"purpose": "propose"},),
        3.0,
    )


def test_failures_and_discards_keep_their_reasons(tmp_path: Path) -> None:
    with new_store(tmp_path) as store:
        seed = add(store, 0, 0, "a")
        broken = add(store, 1, 1, "b", parents=(seed,))
        store.record_evaluation(broken, FAILED, {}, 1.0)
        dropped = add(store, 1, 2, None, parents=(seed,), discarded="no answer passed")
        assert store.individual(broken).reason == "probe: shape mismatch" and not store.individual(broken).valid
        assert (store.individual(dropped).status, store.individual(dropped).reason) == (DISCARDED, "no answer passed")
        with pytest.raises(ValueError, match="no code"):
            _ = store.individual(dropped).code


def test_reuse_finds_the_first_own_evaluation_of_the_same_code(tmp_path: Path) -> None:
    with new_store(tmp_path) as store:
        first = add(store, 0, 0, "a")
        assert store.evaluated_with_hash("hash-a") is None  # pending: nothing to reuse yet
        store.record_evaluation(first, PASSED, {"val_accuracy": 0.5}, 2.0)
        again = add(store, 1, 1, "a", parents=(first,))
        store.record_evaluation(again, PASSED, {"val_accuracy": 0.5}, 0.0, reused_from=first)
        assert store.evaluated_with_hash("hash-a").id == first


def test_generations_lineage_and_finals(tmp_path: Path) -> None:
    with new_store(tmp_path) as store:
        seed = add(store, 0, 0, "a")
        child = add(store, 1, 1, "b", parents=(seed,))
        grandchild = add(store, 2, 1, "c", parents=(child, seed))
        assert store.population(0) is None
        store.finish_generation(0, [seed])
        store.finish_generation(1, [child, seed])
        assert (store.population(1), store.finished_generations()) == ([child, seed], [0, 1])
        assert [i.id for i in store.lineage(grandchild)] == [grandchild, child, seed]
        assert [i.id for i in store.individuals(generation=1)] == [child]
        assert store.individuals(with_text=False)[0].source is None  # results only
        result = FinalResult(child, 2, {"epochs": 1.0}, {"test_accuracy": 0.7}, 9.0)
        store.record_final(result)
        assert store.finals() == [result]


def test_meta_round_trips_json(tmp_path: Path) -> None:
    with new_store(tmp_path) as store:
        store.set_meta("finished", 12.5)
        assert store.meta()["finished"] == 12.5 and store.meta()["schema"] == SCHEMA_VERSION


def test_a_folder_with_a_run_is_refused_and_a_missing_individual_is_a_user_error(tmp_path: Path) -> None:
    new_store(tmp_path).close()
    with pytest.raises(AstevoError, match="already holds a run"):
        new_store(tmp_path)
    with RunStore.open(tmp_path) as store, pytest.raises(AstevoError, match="has no individual 7"):
        store.individual(7)


def test_a_version_2_run_has_its_settings_renamed_when_opened(tmp_path: Path) -> None:
    record = EvolveConfig(random_seed=5).to_record()
    record["seed"] = record.pop("random_seed")
    record["mutation"]["dataset"] = "fashion-mnist"
    new_store(tmp_path).close()
    database = sqlite3.connect(tmp_path / "run.sqlite")
    with database:
        database.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(record),))
        database.execute("UPDATE meta SET value = '2' WHERE key = 'schema'")
    database.close()
    with RunStore.open(tmp_path) as store:
        assert store.meta()["schema"] == SCHEMA_VERSION
        assert EvolveConfig.from_record(store.meta()["config"]) == EvolveConfig(random_seed=5)
        assert "seed" not in store.meta()["config"]


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    with new_store(tmp_path) as first, RunStore.open(tmp_path) as second:
        first.claim()
        with pytest.raises(AstevoError, match="in use by another astevo process"):
            second.claim()
