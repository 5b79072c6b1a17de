"""`--workers auto`: the rule on given timings, a resumed run keeping what its start chose, and the measured
proposal kept as the run's first child."""

from __future__ import annotations

import random
import types
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astevo.cli.slot_choice import new_run_slots, resumed_slots, workers_flag
from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.base import Size
from astevo.evaluation.executors.local import LocalEvaluator, default_workers
from astevo.evaluation.executors.slot_plan import (
    MachineTimings,
    SlotPlan,
    individuals_per_hour,
    plan_slots,
    widest_training,
)
from astevo.evolution import machine_timings
from astevo.evolution.loop import Evolution
from astevo.evolution.run_setup import create_run, plan_run
from astevo.settings import EvolveConfig, apply
from astevo.store.run_store import RunStore
from astevo.variation.base import Proposal
from astevo.variation.reuse import ReusingFirstProposal
from tests.scripted_evolution import SEED, SETTINGS
from tests.scripted_variation import ScriptedVariation


def timings(**changes: object) -> MachineTimings:
    """This 2-core machine as measured with the 0.5B code model: one llama.cpp thread, the default budget."""
    values: dict = dict(
        cores=2,
        gpus=0,
        model_cores=0.9,
        propose_seconds=9.0,
        train_seconds={1: 11.0, 2: 7.0},
        population=4,
        further_trainings=4,
    )
    return MachineTimings(**{**values, **changes})


def test_two_cores_beside_a_one_thread_model_take_two_single_thread_slots():
    """bench_parallel measured this: 2 slots of 1 thread gave 1.28x one slot's individuals per hour."""
    plan = plan_slots(timings())
    assert (plan.slots, plan.threads) == (2, 1)
    assert plan.per_hour > 1.25 * individuals_per_hour(timings(), 1, 1)
    assert "2 slot(s) x 1 training thread(s) on 2 cores" in plan.reason and "9.0 s" in plan.reason


def test_cpu_bound_runs_spread_the_free_cores_over_slots():
    """A long training that scales poorly with threads: many single-thread slots on the cores the model leaves,
    never a thread beyond them next to a multi-thread model (its threads spin)."""
    machine = timings(cores=16, model_cores=8.0, propose_seconds=2.0, train_seconds={1: 120.0, 16: 40.0})
    plan = plan_slots(machine, threads=None)
    assert plan.slots * plan.threads <= 16 - 8
    assert plan.slots >= 4
    assert "trainings set the pace" in plan.reason


def test_llm_bound_runs_keep_one_slot():
    """When proposals take far longer than trainings, more slots only cost memory."""
    plan = plan_slots(timings(cores=16, model_cores=8.0, propose_seconds=60.0, train_seconds={1: 20.0, 16: 4.0}))
    assert plan.slots == 1
    assert "the model's proposals set the pace" in plan.reason


@pytest.mark.parametrize("gpus", [1, 4])
def test_one_slot_per_gpu_with_the_cores_the_model_leaves(gpus):
    machine = timings(cores=16, gpus=gpus, model_cores=1.0, propose_seconds=3.0, train_seconds={16 // gpus: 20.0})
    plan = plan_slots(machine)
    assert (plan.slots, plan.threads) == (gpus, 15 // gpus)
    assert f"on {gpus} GPU(s)" in plan.reason


def test_a_model_on_the_cpu_leaves_the_gpus_fewer_threads():
    offloaded = plan_slots(timings(cores=16, gpus=1, model_cores=1.0, train_seconds={16: 5.0}))
    on_cpu = plan_slots(timings(cores=16, gpus=1, model_cores=8.0, train_seconds={16: 5.0}))
    assert (offloaded.threads, on_cpu.threads) == (15, 8)


def test_given_threads_are_kept_on_a_cpu_and_beside_every_gpu():
    assert (plan_slots(timings(), threads=2).slots, plan_slots(timings(), threads=2).threads) == (1, 2)
    beside_gpus = plan_slots(timings(cores=16, gpus=4, model_cores=1.0, train_seconds={2: 5.0}), threads=2)
    assert (beside_gpus.slots, beside_gpus.threads) == (4, 2)  # one slot per GPU still


def test_record_round_trips():
    plan = plan_slots(timings())
    assert SlotPlan.from_record(plan.record()) == plan


@settings(max_examples=60, deadline=None)
@given(
    cores=st.integers(1, 8),
    model=st.sampled_from([0.0, 0.9, 2.0]),
    propose=st.floats(0.5, 60.0),
    single=st.floats(1.0, 120.0),
    speedup=st.floats(1.0, 8.0),
    population=st.integers(1, 8),
)
def test_no_setting_is_predicted_faster_than_the_model_proposes(cores, model, propose, single, speedup, population):
    """Proposals are made one after another, so no setting can beat one proposal per `propose` seconds; and
    the plan is the best of the settings it weighs, up to its tie margin (3% below the best)."""
    machine = timings(
        cores=cores,
        model_cores=min(model, cores),
        propose_seconds=propose,
        train_seconds={1: single, cores: single / min(speedup, cores)},
        population=population,
        further_trainings=0,
    )
    plan = plan_slots(machine)
    assert plan.per_hour <= 3600.0 / propose * (1 + 1e-6)
    assert plan.threads <= widest_training(cores, machine.model_cores)  # so measuring trains no wider than that
    for slots in range(1, cores + 1):
        assert individuals_per_hour(machine, slots, 1) <= plan.per_hour / 0.97 + 1e-6 or (
            machine.model_cores > 1 and slots + machine.model_cores > cores  # not weighed: the model's threads spin
        )


def test_the_widest_training_is_what_the_cores_beside_the_model_hold():
    assert [widest_training(2, model) for model in (0.0, 0.1, 0.9, 1.5)] == [2, 1, 1, 1]
    assert widest_training(16, 1.0) == 15 and widest_training(16, 0.95) == 15 and widest_training(4, 3.9) == 1


def test_workers_flag():
    assert workers_flag("auto") is None and workers_flag("3") == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(AstevoError, match="--workers must be auto or a count of 1 or more"):
            workers_flag(bad)


def test_a_resumed_run_keeps_the_slots_its_start_chose(tmp_path):
    """The choice is read from the run, not made again: 3 slots on a machine with fewer cores than that, say;
    an explicit --workers still wins, and a run made before astevo chose gets one slot per GPU."""
    chosen = SlotPlan(3, 1, 200.0, "3 slot(s) x 1 training thread(s) on 4 cores")
    with RunStore.create(tmp_path / "chosen", {"config": {}, "slots": chosen.record()}) as store:
        assert resumed_slots(store, None) == 3
        assert resumed_slots(store, 1) == 1
    with RunStore.create(tmp_path / "older", {"config": {}}) as store:
        assert resumed_slots(store, None) == default_workers()


class PassingCheck:
    known: frozenset[str] = frozenset()

    def __call__(self, block_source: str) -> None:
        return None


def _proposer(reusing: ReusingFirstProposal) -> Callable[..., tuple[Proposal, float]]:
    seed = ModelFile.read(SEED)

    def propose(rng_seed: str, intent: str = "hyperparameters") -> tuple[Proposal, float]:
        rng = random.Random(rng_seed)
        proposal = reusing.mutate(seed, "SE_LN", intent, rng, None, PassingCheck())
        return proposal, rng.random()  # where the proposal left the generator

    return propose


def test_the_kept_proposal_goes_back_to_the_next_call_making_the_same_draw_and_no_later_one():
    inner = ScriptedVariation()
    propose = _proposer(ReusingFirstProposal(inner))
    first = propose("a")
    assert inner.calls == 1
    assert propose("a") == first and inner.calls == 1  # handed back, the generator left where the model left it
    assert propose("a") == first and inner.calls == 2  # nothing kept any more: the model answers


@pytest.mark.parametrize("other", [("b", "hyperparameters"), ("a", "unusual_values")], ids=["generator", "intent"])
def test_a_call_making_another_draw_goes_to_the_model_and_drops_the_kept_proposal(other):
    inner = ScriptedVariation()
    propose = _proposer(ReusingFirstProposal(inner))
    first = propose("a")
    propose(*other)
    assert inner.calls == 2
    assert propose("a") == first and inner.calls == 3


@pytest.mark.slow
def test_the_proposal_auto_measures_is_the_runs_first_child(tmp_path):
    """`--workers auto` times the model on the run's own first mutation and the run keeps it: a generation
    bred as a fixed --workers run breeds it, with one model call fewer."""
    config = apply(EvolveConfig(), {**SETTINGS, "generations": 1})
    planned = plan_run(config, ModelFile.read(SEED), None, LocalEvaluator())
    variations = {"auto": ScriptedVariation(), "fixed": ScriptedVariation()}
    bred = {}
    for name, workers in (("auto", None), ("fixed", 1)):
        run_planned, chosen, slots, variation = new_run_slots(planned, variations[name], workers)
        evaluator = LocalEvaluator(workers=slots)
        with create_run(tmp_path / name, run_planned, chosen) as store:
            Evolution(store, variation, evaluator, force=True).run()
            bred[name] = [(i.generation, i.slot, i.operator, i.code_hash, i.exchanges) for i in store.individuals()]
        evaluator.close()
    assert bred["auto"] == bred["fixed"] and len(bred["auto"]) == 1 + SETTINGS["population"]
    assert variations["auto"].calls == variations["fixed"].calls  # the measuring's call was the run's first


@pytest.mark.parametrize(
    ("cores", "model_cores", "threads", "gpus", "probed"),
    [
        (2, 0.9, 0, 0, [1]),  # this machine beside a one-thread model: no setting trains wider than 1
        (2, 0.0, 0, 0, [1, 2]),  # a served model takes no core here
        (8, 0.9, 0, 0, [1, 7]),
        (8, 0.9, 3, 0, [3]),  # given threads decide
        (8, 0.9, 0, 2, [4]),  # each GPU's share of the cores
    ],
)
def test_the_seed_trains_again_only_at_threads_a_setting_could_use(
    monkeypatch, cores, model_cores, threads, gpus, probed
):
    """The rule never gives a training more threads than the cores the model leaves, so the seed is trained
    at those only when there are two or more."""
    trained: list[int] = []

    def training_seconds(evaluator, planned, count):
        trained.append(count)
        return 10.0 / count, Size(1000, 1000)

    monkeypatch.setattr(machine_timings.os, "cpu_count", lambda: cores)
    monkeypatch.setattr(machine_timings, "_training_seconds", training_seconds)
    monkeypatch.setattr(machine_timings, "_first_proposal", lambda *arguments: (9.0, model_cores))
    fitness = {**SETTINGS["fitness"], "threads": threads}
    config = apply(EvolveConfig(), {**SETTINGS, "fitness": fitness})
    planned = types.SimpleNamespace(config=config)  # what measuring reads when the trainings are stubbed
    measured = machine_timings.measure_timings(planned, ScriptedVariation(), gpus)
    assert trained == probed and sorted(measured.timings.train_seconds) == sorted(probed)
    assert plan_slots(measured.timings, threads=threads or None).threads <= max(probed)
