"""`astevo final` on a run built by hand: real trainings on Fashion-MNIST, resumed, and the command's errors.

The run holds the seed, one variant that dominates it (the Pareto front) and one variant both
dominate; their search metrics are made up, so the front is known. Four real trainings (seed
and front member, two training seeds) are shared by the tests through one module fixture.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from click.testing import Result
from typer.testing import CliRunner

from astevo.cli.final_command import final
from astevo.code.canonical import canonical_hash
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.evaluation.sandboxed import entry_points as tasks
from astevo.evaluation.tasks import Data, Network, Training, as_record
from astevo.evolution.final import FinalSummary, final_evaluation
from astevo.isolation import sandbox
from astevo.paths import default_seed_path
from astevo.settings import EvolveConfig, FinalSettings, FitnessSettings, TrainBudget
from astevo.store.records import NewIndividual
from astevo.store.run_store import RunStore

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]

SEED_SOURCE = default_seed_path().read_text(encoding="utf-8")
# A few hundred images in small batches: the test is about the plumbing, not the accuracy. One thread:
# on a busy 2-core machine two OpenMP threads per child make a training ten times slower, not faster.
FITNESS = FitnessSettings(
    limit_train=3000,
    val_fraction=0.05,
    memory_mb=3000,
    threads=1,
    budget=TrainBudget(epochs=1.0, max_images=256, batch_size=32, max_seconds=300.0),
)
DROPOUT = "nn.Dropout(0.5)"


@dataclass
class Finished:
    folder: Path
    ids: dict[str, int]
    calls: list[list[dict]]  # the payloads sent to the sandbox, per call of final_evaluation
    summaries: list[list[FinalSummary]]


def make_run(folder: Path) -> dict[str, int]:
    """The seed, a variant that dominates it (smaller and better) and one both dominate."""
    assert DROPOUT in SEED_SOURCE
    members = {
        "seed": (SEED_SOURCE, 0.80, 518_230),
        "front": (SEED_SOURCE.replace(DROPOUT, "nn.Dropout(0.2)"), 0.82, 400_000),
        "dominated": (SEED_SOURCE.replace(DROPOUT, "nn.Dropout(0.3)"), 0.70, 600_000),
    }
    ids = {}
    with RunStore.create(
        folder, {"config": EvolveConfig(fitness=FITNESS).to_record(), "seed_file": str(default_seed_path())}
    ) as store:
        for slot, (name, (source, val_accuracy, parameters)) in enumerate(members.items()):
            is_seed = name == "seed"
            ids[name] = store.add(
                NewIndividual(
                    generation=0 if is_seed else 1,
                    slot=0 if is_seed else slot,
                    parents=() if is_seed else (1,),
                    operator="seed" if is_seed else "mutate",
                    blocks=() if is_seed else ("ExquisiteNetV2",),
                    intent=None,
                    source=source,
                    code_hash=canonical_hash(source),
                    exchanges=[],
                    rng_seed=name,
                    propose_seconds=0.0,
                )
            )
            store.record_evaluation(
                ids[name],
                [{"name": "validate", "ok": True, "reason": None, "seconds": 1.0}],
                {"val_accuracy": val_accuracy, "parameters": parameters, "macs": 10 * parameters},
                1.0,
            )
    return ids


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """One training seed, then two (resuming), then two again (nothing left to train)."""
    folder = tmp_path_factory.mktemp("run")
    done = Finished(folder, make_run(folder), [], [])
    real_run = sandbox.run

    def counted(function: str, payload: dict, limits: sandbox.Limits, slot: sandbox.Slot) -> sandbox.Outcome:
        assert function == "astevo.evaluation.sandboxed.entry_points:final_candidate"
        done.calls[-1].append(payload)
        return real_run(function, payload, limits, slot=slot)

    with pytest.MonkeyPatch.context() as patch, RunStore.open(folder) as store:
        patch.setattr(sandbox, "run", counted)
        executor = LocalEvaluator(workers=2)  # the trainings of one call run side by side
        for seeds in (1, 2, 2):
            done.calls.append([])
            done.summaries.append(final_evaluation(store, FinalSettings(seeds=seeds), executor))
        executor.close()
    return done


def test_a_ray_cluster_trains_the_finalists_as_the_local_slots_do(tmp_path: Path, finished: Finished) -> None:
    """`astevo final RUN --executor ray`: the same trainings as tasks of a real local Ray cluster, and the same test
    accuracies, seed by seed."""
    make_run(tmp_path)
    result = cli(str(tmp_path), "--seeds", "1", "--executor", "ray")
    assert result.exit_code == 0, result.output
    with RunStore.open(tmp_path) as store:
        on_ray = {(r.individual, r.training_seed): r.metrics["test_accuracy"] for r in store.finals()}
    local = {(s.individual, 0): s.test_accuracy for s in finished.summaries[0]}
    assert on_ray == local


def trained(payloads: list[dict]) -> list[tuple[str, int]]:
    """Which member (by its source) and which training seed each sandbox call trained."""
    names = {SEED_SOURCE: "seed", SEED_SOURCE.replace(DROPOUT, "nn.Dropout(0.2)"): "front"}
    return sorted((names.get(p["network"]["source"], "other"), p["budget"]["training_seed"]) for p in payloads)


def test_seed_and_front_are_trained_the_dominated_never(finished: Finished) -> None:
    assert trained(finished.calls[0]) == [("front", 0), ("seed", 0)]
    assert [s.label for s in finished.summaries[-1]] == ["seed", f"#{finished.ids['front']}"]


def test_an_interrupted_evaluation_resumes_and_a_finished_one_trains_nothing(finished: Finished) -> None:
    assert trained(finished.calls[1]) == [("front", 1), ("seed", 1)]
    assert finished.calls[2] == []
    assert finished.summaries[2] == finished.summaries[1]


def test_each_training_uses_the_whole_training_split_and_is_recorded(finished: Finished) -> None:
    payloads = [p for calls in finished.calls for p in calls]
    assert {p["data"]["limit_train"] for p in payloads} == {None}
    assert {p["data"]["val_fraction"] for p in payloads} == {FITNESS.val_fraction}
    with RunStore.open(finished.folder) as store:
        results = store.finals()
    assert [(r.individual, r.training_seed) for r in results] == [
        (finished.ids["seed"], 0),
        (finished.ids["seed"], 1),
        (finished.ids["front"], 0),
        (finished.ids["front"], 1),
    ]
    for result in results:
        metrics = result.metrics
        assert 0.0 <= metrics["test_accuracy"] <= 1.0 and 0.0 <= metrics["val_accuracy"] <= 1.0
        # 10,000 test and 3,000 validation images measure the same model: they cannot disagree much
        assert abs(metrics["test_accuracy"] - metrics["val_accuracy"]) < 0.05
        assert metrics["images_seen"] == 256 and metrics["stopped_by"] == "budget" and metrics["train_seconds"] > 0
        assert result.settings["max_images"] == 256 and "training_seed" not in result.settings


def test_summaries_give_mean_sample_std_and_delta_against_the_seed(finished: Finished) -> None:
    with RunStore.open(finished.folder) as store:
        tests = {(r.individual, r.training_seed): r.metrics["test_accuracy"] for r in store.finals()}
    seed, front = finished.summaries[1]
    for summary in (seed, front):
        values = [tests[summary.individual, 0], tests[summary.individual, 1]]
        assert summary.seeds == 2 and summary.failures == () and summary.stopped_by_time == 0
        assert summary.test_accuracy == pytest.approx(statistics.fmean(values))
        assert summary.test_std == pytest.approx(statistics.stdev(values))
    assert (front.parameters, front.macs, front.search_val_accuracy) == (400_000, 4_000_000, 0.82)
    assert seed.delta_vs_seed == 0.0
    assert front.delta_vs_seed == pytest.approx(front.test_accuracy - seed.test_accuracy)
    assert all(s.test_std == 0.0 and s.seeds == 1 for s in finished.summaries[0])


def test_a_failed_training_is_reported_recorded_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = make_run(tmp_path)
    outcomes = iter([sandbox.Outcome(False, None, "timed out after 9.0 s", 9.0, "")] * 2 + [_fake_success()] * 2)
    monkeypatch.setattr(sandbox, "run", lambda function, payload, limits, slot: next(outcomes))
    with RunStore.open(tmp_path) as store:
        failed = final_evaluation(store, FinalSettings(seeds=1), LocalEvaluator())
        assert [r.metrics for r in store.finals()] == [{"error": "timed out after 9.0 s"}] * 2
        retried = final_evaluation(store, FinalSettings(seeds=1), LocalEvaluator())
    assert [(s.label, s.test_accuracy, s.delta_vs_seed, s.failures) for s in failed] == [
        ("seed", None, None, ("seed 0: timed out after 9.0 s",)),
        (f"#{ids['front']}", None, None, ("seed 0: timed out after 9.0 s",)),
    ]
    assert [(s.test_accuracy, s.failures) for s in retried] == [(0.5, ()), (0.5, ())]
    assert next(outcomes, None) is None


def _fake_success() -> sandbox.Outcome:
    metrics = {
        "test_accuracy": 0.5,
        "val_accuracy": 0.5,
        "train_seconds": 1.0,
        "images_seen": 256,
        "stopped_by": "budget",
    }
    stages = [{"name": name, "ok": True, "reason": None, "seconds": 1.0} for name in ("train", "validate", "test")]
    return sandbox.Outcome(True, {"stages": stages, "metrics": metrics}, None, 1.0, "")


def test_only_the_final_task_loads_the_test_split(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[bool] = []

    def refuse(*args: object, with_test: bool = False, **kwargs: object) -> None:
        asked.append(with_test)
        raise LookupError("stop before training")

    monkeypatch.setattr(tasks, "load_dataset", refuse)
    payload = as_record(
        Training(
            Network(SEED_SOURCE, ("ExquisiteNetV2",), ("ExquisiteNetV2",), 10, 1, 28),
            Data("fashion-mnist", None, None, 0.1, 0),
            TrainBudget(),
        )
    )
    for task in (tasks.train_candidate, tasks.final_candidate):
        with pytest.raises(LookupError):
            task(payload)
    assert asked == [False, True]


def cli(*args: str) -> Result:
    app = typer.Typer()
    app.command()(final)
    return CliRunner().invoke(app, list(args))


def test_the_command_prints_the_comparison_from_recorded_results(finished: Finished) -> None:
    result = cli(str(finished.folder), "--seeds", "2")
    assert result.exit_code == 0, result.output
    assert "training seed" not in result.output  # every training was already recorded
    assert "seed" in result.output and f"#{finished.ids['front']}" in result.output and "±" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("{missing}",), "holds no astevo run"),
        (("{missing}", "--seeds", "0"), "--seeds must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, arguments: tuple[str, ...], message: str) -> None:
    result = cli(*(a.format(missing=tmp_path / "nowhere") for a in arguments))
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
