"""Counting size changes: a change is at least 5% of the parameters; intents are judged by their children
and, separately, by their first answers."""

from __future__ import annotations

from pathlib import Path

from astevo.views.records import run_record
from astevo.views.size_changes import by_intent, children_by_size, direction, summary_line
from tests.run_builder import SEED, add, edit, new_run

SEED_SIZE = 518_126


def test_a_change_counts_only_from_five_percent() -> None:
    assert direction(SEED_SIZE - 700, SEED_SIZE) == "same"  # a bias toggle
    assert direction(int(SEED_SIZE * 0.95), SEED_SIZE) == "smaller"
    assert direction(int(SEED_SIZE * 1.06), SEED_SIZE) == "larger"


def test_children_and_first_answers_are_counted_per_intent(tmp_path: Path) -> None:
    store = new_run(tmp_path / "run")
    seed = add(store, 0, 0, SEED, operator="seed", accuracy=0.6, parameters=SEED_SIZE)
    kw = {"parents": (seed,), "blocks": ("ExquisiteNetV2",), "accuracy": 0.6}
    add(
        store,
        0,
        1,
        edit(SEED, "ME(48, 96)", "ME(48, 97)"),
        intent="fewer_parameters",
        parameters=213_230,
        first_answer_parameters=SEED_SIZE,
        **kw,
    )  # retried: the first answer kept the size
    add(
        store,
        0,
        2,
        edit(SEED, "ME(96, 192)", "ME(96, 191)"),
        intent="fewer_parameters",
        parameters=172_526,
        first_answer_parameters=172_526,
        **kw,
    )
    add(
        store,
        0,
        3,
        edit(SEED, "ME(192, 384)", "ME(192, 385)"),
        intent="complexity",
        parameters=823_022,
        first_answer_parameters=823_022,
        **kw,
    )
    add(
        store,
        0,
        4,
        edit(SEED, "nn.Dropout(0.5)", "nn.Dropout(0.4)"),
        intent="hyperparameters",
        parameters=SEED_SIZE,
        **kw,
    )
    everyone = store.individuals()
    assert children_by_size(everyone) == {"smaller": 2, "larger": 1, "same": 1}
    assert "2 smaller, 1 same, 1 larger" in summary_line(everyone)
    sizes = {found.intent: found for found in by_intent(everyone)}
    fewer = sizes["fewer_parameters"]
    assert fewer.children["smaller"] == 2 and fewer.first_answers == {"same": 1, "smaller": 1}
    assert "smaller: 100% of children, 50% of first answers" in fewer.line()
    assert sizes["complexity"].children["larger"] == 1 and sizes["complexity"].intended is None
    assert sum(sizes["hyperparameters"].first_answers.values()) == 0  # no measured first answer
    record = run_record(store)
    assert record["children_by_size"] == {"smaller": 2, "larger": 1, "same": 1}
    assert record["size_by_intent"]["fewer_parameters"]["first_answers"] == {"same": 1, "smaller": 1}
    store.close()
