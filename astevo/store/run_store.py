"""A run's record: one SQLite database (WAL) in the run folder, committed after every step.

Every individual is written the moment it exists (as "pending", with its prompts and answers)
and again the moment its evaluation ends, so a run killed at any instant resumes without
losing or repeating an evaluation.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from astevo.errors import AstevoError
from astevo.settings import EvolveConfig, migrate_record
from astevo.store.records import (
    DISCARDED,
    EVALUATED,
    PENDING,
    SELECT_ALL,
    SELECT_RESULTS,
    FinalResult,
    Individual,
    NewIndividual,
    Training,
    individual_from_row,
    measured_accuracies,
)

DATABASE = "run.sqlite"
SCHEMA_VERSION = 4  # 2 added individuals.cached, 3 renamed settings, 4 trainings; older runs upgrade when opened

_TRAININGS = """CREATE TABLE IF NOT EXISTS trainings (
    individual INTEGER NOT NULL,
    training_seed INTEGER NOT NULL,
    metrics TEXT NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (individual, training_seed)
)"""

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS individuals (
    id INTEGER PRIMARY KEY,
    generation INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    parents TEXT NOT NULL,
    operator TEXT NOT NULL,
    blocks TEXT NOT NULL,
    intent TEXT,
    source TEXT,
    code_hash TEXT,
    exchanges TEXT NOT NULL,
    rng_seed TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    stages TEXT NOT NULL DEFAULT '[]',
    metrics TEXT NOT NULL DEFAULT '{}',
    reused_from INTEGER,
    propose_seconds REAL NOT NULL,
    evaluate_seconds REAL NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    UNIQUE (generation, slot)
);
CREATE INDEX IF NOT EXISTS individuals_by_hash ON individuals (code_hash);
CREATE TABLE IF NOT EXISTS generations (
    generation INTEGER PRIMARY KEY,
    members TEXT NOT NULL,
    finished REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS finals (
    individual INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    settings TEXT NOT NULL,
    metrics TEXT NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (individual, seed, settings)
);
"""
    + _TRAININGS
    + ";\n"
)


class RunStore:
    """The run's database; open one per process (SQLite serialises writers)."""

    def __init__(self, connection: sqlite3.Connection, folder: Path) -> None:
        self._db, self.folder = connection, folder
        self._claim: IO[str] | None = None

    @classmethod
    def create(cls, folder: Path, meta: dict[str, Any]) -> RunStore:
        """A new run in `folder`; refuses to touch a folder that already holds one."""
        cls.refuse_existing(folder)
        path = folder / DATABASE
        draft = path.with_name(f".{DATABASE}.creating")  # renamed when complete: a kill leaves no half-made run
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for leftover in folder.glob(f"{draft.name}*"):
                leftover.unlink()
            connection = _connect(draft)
            with connection:
                connection.executescript(_SCHEMA)
                connection.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [(k, json.dumps(v)) for k, v in {**meta, "schema": SCHEMA_VERSION}.items()],
                )
            connection.close()
            draft.replace(path)
            return cls(_connect(path), folder)
        except (OSError, sqlite3.Error) as error:
            raise AstevoError(f"cannot create a run in {folder}: {error}; choose another --run folder") from None

    @staticmethod
    def refuse_existing(folder: Path) -> None:
        """A folder that holds a run is never overwritten: checked before a new run costs any work, and again
        when it is created."""
        if (folder / DATABASE).exists():
            raise AstevoError(
                f"{folder} already holds a run; add --resume to continue it, or choose another --run folder"
            )

    @classmethod
    def open(cls, folder: Path) -> RunStore:
        path = folder / DATABASE
        if not path.is_file():
            raise AstevoError(
                f"{folder} holds no astevo run (no {DATABASE}); start one with `astevo evolve --run {folder}`"
            )
        try:
            store = cls(_connect(path), folder)
            schema = store.meta().get("schema")
        except sqlite3.DatabaseError as error:
            raise AstevoError(f"{path} is not a readable astevo run database ({error})") from None
        if schema in (1, 2, 3):
            store._upgrade(schema)
        elif schema != SCHEMA_VERSION:
            raise AstevoError(
                f"{path} was written by another astevo version "
                f"(run schema {schema}, this astevo reads {SCHEMA_VERSION})"
            )
        return store

    def _upgrade(self, schema: int) -> None:
        """Bring an older run up to this schema: version 2 added individuals.cached (a version-1 run's evaluations
        count as measured in that run); version 3 stores the settings under their current names; version 4 holds
        the trainings beyond an individual's first."""
        try:
            with self._db:
                if schema == 1:
                    self._db.execute("ALTER TABLE individuals ADD COLUMN cached INTEGER NOT NULL DEFAULT 0")
                self._db.execute(_TRAININGS)
                config = self.meta().get("config")
                if isinstance(config, dict):  # a run without settings stays without; `config()` says so
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('config', ?)", (json.dumps(migrate_record(config)),)
                    )
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (json.dumps(SCHEMA_VERSION),))
        except sqlite3.Error as error:
            self._db.close()
            raise AstevoError(
                f"cannot upgrade run {self.folder} to this astevo's run schema ({error}); "
                "make its folder writable and try again"
            ) from None

    def config(self) -> EvolveConfig:
        """The settings the run was started with."""
        record = self.meta().get("config")
        if not isinstance(record, dict):
            raise AstevoError(f"run {self.folder} records no settings; it was not started by `astevo evolve`")
        return EvolveConfig.from_record(record)

    def claim(self) -> None:
        """Be the run's only writer: a second `evolve --resume` or `final` on it meanwhile is refused."""
        if self._claim is not None:
            return
        handle = (self.folder / "run.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the kernel drops it when the process dies
        except BlockingIOError:
            handle.close()
            raise AstevoError(f"run {self.folder} is in use by another astevo process; wait for it to end") from None
        self._claim = handle

    def close(self) -> None:
        self._db.close()
        if self._claim is not None:
            self._claim.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def meta(self) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in self._db.execute("SELECT key, value FROM meta")}

    def set_meta(self, key: str, value: Any) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def add(self, new: NewIndividual) -> int:
        """Record a new individual, pending evaluation (or discarded, with the reason)."""
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO individuals (generation, slot, parents, operator, blocks, intent, source, code_hash,"
                " exchanges, rng_seed, status, reason, propose_seconds, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new.generation,
                    new.slot,
                    json.dumps(list(new.parents)),
                    new.operator,
                    json.dumps(list(new.blocks)),
                    new.intent,
                    new.source,
                    new.code_hash,
                    json.dumps(new.exchanges),
                    new.rng_seed,
                    DISCARDED if new.discarded else PENDING,
                    new.discarded,
                    new.propose_seconds,
                    time.time(),
                ),
            )
        assert cursor.lastrowid is not None  # an INSERT sets it
        return cursor.lastrowid

    def record_evaluation(
        self,
        individual: int,
        stages: list[dict],
        metrics: dict,
        seconds: float,
        reused_from: int | None = None,
        cached: bool = False,
    ) -> None:
        failure = next((s for s in stages if not s["ok"]), None)
        reason = f"{failure['name']}: {failure['reason']}" if failure else None
        with self._db:
            self._db.execute(
                "UPDATE individuals SET status = ?, reason = ?, stages = ?, metrics = ?, evaluate_seconds = ?,"
                " reused_from = ?, cached = ? WHERE id = ?",
                (
                    EVALUATED,
                    reason,
                    json.dumps(stages),
                    json.dumps(metrics),
                    seconds,
                    reused_from,
                    int(cached),
                    individual,
                ),
            )

    def individual(self, individual: int) -> Individual:
        row = self._db.execute(f"{SELECT_ALL} WHERE id = ?", (individual,)).fetchone() if individual < 2**63 else None
        if row is None:
            raise AstevoError(
                f"run {self.folder} has no individual {individual}; `astevo show {self.folder}` lists them"
            )
        return individual_from_row(row)

    def individuals(self, generation: int | None = None, *, with_text: bool = True) -> list[Individual]:
        """All individuals (of one generation); without their sources, prompts and answers
        (`with_text=False`) when only results are needed: a long run's text runs to megabytes."""
        select = SELECT_ALL if with_text else SELECT_RESULTS
        if generation is None:
            rows = self._db.execute(f"{select} ORDER BY id")
        else:
            rows = self._db.execute(f"{select} WHERE generation = ? ORDER BY id", (generation,))
        return [individual_from_row(row) for row in rows]

    def at(self, generation: int, slot: int) -> Individual | None:
        row = self._db.execute(f"{SELECT_ALL} WHERE generation = ? AND slot = ?", (generation, slot)).fetchone()
        return None if row is None else individual_from_row(row)

    def evaluated_with_hash(self, code_hash: str) -> Individual | None:
        """The first evaluation of the same code (by canonical hash), to reuse instead of repeating it."""
        return self._first_with_hash(code_hash, (EVALUATED,))

    def proposed_with_hash(self, code_hash: str) -> Individual | None:
        """The first individual with the same code, evaluated or still being evaluated: proposals are stored in
        slot order, so this does not depend on which evaluations happen to have finished."""
        return self._first_with_hash(code_hash, (EVALUATED, PENDING))

    def _first_with_hash(self, code_hash: str, statuses: tuple[str, ...]) -> Individual | None:
        marks = ", ".join("?" * len(statuses))
        row = self._db.execute(
            f"{SELECT_ALL} WHERE code_hash = ? AND status IN ({marks}) AND reused_from IS NULL ORDER BY id LIMIT 1",
            (code_hash, *statuses),
        ).fetchone()
        return None if row is None else individual_from_row(row)

    def finish_generation(self, generation: int, members: list[int]) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO generations VALUES (?, ?, ?)", (generation, json.dumps(members), time.time())
            )

    def population(self, generation: int) -> list[int] | None:
        """The survivors chosen at the end of `generation`; None while it is unfinished."""
        row = self._db.execute("SELECT members FROM generations WHERE generation = ?", (generation,)).fetchone()
        return None if row is None else json.loads(row[0])

    def finished_generations(self) -> list[int]:
        return [row[0] for row in self._db.execute("SELECT generation FROM generations ORDER BY generation")]

    def record_final(self, result: FinalResult) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO finals VALUES (?, ?, ?, ?, ?)",
                (
                    result.individual,
                    result.training_seed,
                    json.dumps(result.settings, sort_keys=True),
                    json.dumps(result.metrics),
                    result.seconds,
                ),
            )

    def finals(self) -> list[FinalResult]:
        rows = self._db.execute(
            "SELECT individual, seed, settings, metrics, seconds FROM finals ORDER BY individual, seed"
        )
        return [
            FinalResult(i, s, json.loads(settings), json.loads(metrics), secs) for i, s, settings, metrics, secs in rows
        ]

    def record_training(self, training: Training) -> None:
        """Store a further training; the individual's val_accuracy becomes the mean of every successful one
        (its first is kept as first_val_accuracy, their count as trainings)."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO trainings VALUES (?, ?, ?, ?)",
                (training.individual, training.training_seed, json.dumps(training.metrics), training.seconds),
            )
            row = self._db.execute("SELECT metrics FROM individuals WHERE id = ?", (training.individual,)).fetchone()
            metrics = json.loads(row[0])
            further = self._db.execute(
                "SELECT metrics FROM trainings WHERE individual = ? ORDER BY training_seed", (training.individual,)
            )
            values = measured_accuracies(metrics, [json.loads(text) for (text,) in further])
            if not values:
                return
            metrics.update(first_val_accuracy=values[0], val_accuracy=sum(values) / len(values), trainings=len(values))
            self._db.execute(
                "UPDATE individuals SET metrics = ? WHERE id = ?", (json.dumps(metrics), training.individual)
            )

    def trainings(self, individual: int | None = None) -> list[Training]:
        """The trainings beyond individuals' evaluations (of one individual, or of all), by individual and seed."""
        rows = self._db.execute(
            "SELECT individual, training_seed, metrics, seconds FROM trainings"
            + (" WHERE individual = ?" if individual is not None else "")
            + " ORDER BY individual, training_seed",
            (individual,) if individual is not None else (),
        )
        return [Training(who, seed, json.loads(metrics), seconds) for who, seed, metrics, seconds in rows]

    def ancestors(self, individual: int) -> set[int]:
        """The individual and everyone it descends from, through every parent."""
        found, frontier = set(), [individual]
        while frontier:
            current = frontier.pop()
            if current not in found:
                found.add(current)
                frontier.extend(self.individual(current).parents)
        return found

    def lineage(self, individual: int) -> Iterator[Individual]:
        """The individual, then its first parent, and so on back to the seed."""
        current: int | None = individual
        while current is not None:
            found = self.individual(current)
            yield found
            current = found.parents[0] if found.parents else None


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30.0)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")  # a committed evaluation survives a power cut, not only kill -9
    return connection
