"""Selection over stored individuals: DEAP's NSGA-II tournament for parents, SPEA2 for elites, the Pareto front."""

from __future__ import annotations

import random

import pytest

from astevo.errors import AstevoError
from astevo.evolution.selection import best_within_seed_cost, parents, pareto_front, survivors
from astevo.store.records import DISCARDED, EVALUATED, Individual


def individual(
    id_: int,
    accuracy: float | None,
    parameters: int,
    *,
    operator: str = "mutate",
    code: str | None = None,
    status: str = EVALUATED,
) -> Individual:
    stages = ({"name": "validate", "ok": accuracy is not None, "reason": None, "seconds": 0.1},)
    metrics = {"parameters": parameters, "macs": parameters * 10}
    if accuracy is not None:
        metrics["val_accuracy"] = accuracy
    return Individual(
        id_,
        0,
        id_,
        (),
        operator,
        (),
        None,
        "x = 1\n",
        code or f"hash{id_}",
        (),
        "0",
        status,
        None,
        stages,
        metrics,
        None,
        0.0,
        0.0,
    )


POPULATION = [
    individual(1, 0.80, 1000, operator="seed"),
    individual(2, 0.85, 1200),  # more accurate, bigger: on the front
    individual(3, 0.78, 900),  # smaller, less accurate: on the front
    individual(4, 0.79, 1100),  # dominated by 1
    individual(5, 0.90, 5000),  # most accurate: on the front
    individual(6, None, 10),  # failed training: never selected
    individual(7, 0.99, 1, status=DISCARDED),
]


def test_pareto_front_holds_exactly_the_non_dominated_valid_individuals_cheapest_first():
    assert [i.id for i in pareto_front(POPULATION)] == [3, 1, 2, 5]


def test_pareto_front_uses_the_chosen_cost_and_counts_identical_code_once():
    twin = individual(8, 0.80, 1000, code="hash1")
    assert [i.id for i in pareto_front([*POPULATION, twin], "macs")] == [3, 1, 2, 5]
    with pytest.raises(AstevoError, match="unknown cost objective"):
        pareto_front(POPULATION, "latency")


def test_survivors_keep_the_front_and_never_an_invalid_individual():
    kept = survivors(POPULATION, 4, "parameters")
    assert {i.id for i in kept} == {1, 2, 3, 5}
    assert {i.id for i in survivors(POPULATION, 10, "parameters")} == {1, 2, 3, 4, 5}


def test_parents_are_reproducible_and_leave_the_global_random_state_alone():
    random.seed(123)
    expected_next = random.random()
    random.seed(123)
    first = [i.id for i in parents(POPULATION, 8, "parameters", "7:1:parents")]
    assert random.random() == expected_next
    assert first == [i.id for i in parents(POPULATION, 8, "parameters", "7:1:parents")]
    assert len(first) == 8 and set(first) <= {1, 2, 3, 4, 5}
    others = {tuple(i.id for i in parents(POPULATION, 8, "parameters", f"7:{g}:parents")) for g in range(2, 8)}
    assert len(others) > 1  # the seed string matters


def test_crowded_tournament_prefers_non_dominated_parents():
    picks = [i.id for seed in range(30) for i in parents(POPULATION, 4, "parameters", str(seed))]
    assert picks.count(4) < picks.count(1)  # 4 is dominated by 1 and loses every tournament against it


def test_a_single_valid_individual_is_every_parent():
    assert [i.id for i in parents(POPULATION[:1], 3, "parameters", "s")] == [1, 1, 1]


def test_no_valid_individual_is_a_clear_error():
    with pytest.raises(AstevoError, match="no valid individual"):
        parents([individual(6, None, 10)], 2, "parameters", "s")


def test_best_within_seed_cost_is_ges_equal_size_criterion():
    assert best_within_seed_cost(POPULATION, "parameters").id == 1  # 2 and 5 are bigger than the seed
    better_and_smaller = individual(9, 0.81, 999)
    assert best_within_seed_cost([*POPULATION, better_and_smaller], "parameters").id == 9
