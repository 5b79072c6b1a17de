"""Runs written by hand for the inspection and report tests: the seed and variants made by editing its text,
with fabricated metrics, so every expectation is known exactly."""

from __future__ import annotations

from pathlib import Path

from astevo.code.canonical import canonical_hash
from astevo.evaluation.base import FAST_STAGES, TRAIN_STAGES
from astevo.settings import EvolveConfig
from astevo.store.records import NewIndividual
from astevo.store.run_store import RunStore

SEED = (Path(__file__).parents[1] / "seeds" / "exquisitenetv2.py").read_text(encoding="utf-8")
HOSTILE = "<script>alert('x')</script> merge both"
PASSED = [{"name": name, "ok": True, "reason": None, "seconds": 0.5} for name in (*FAST_STAGES, *TRAIN_STAGES)]
PROBE_FAILURE = "mat1 and mat2 shapes cannot be multiplied (1x384 and 385x10); " + "the head expects 385 features " * 3


def edit(source: str, old: str, new: str) -> str:
    """`source` with `old`, which must occur exactly once, replaced: a change to one known spot."""
    assert source.count(old) == 1, old
    return source.replace(old, new)


def new_run(folder: Path, cost: str = "parameters") -> RunStore:
    config = EvolveConfig(cost=cost).to_record()
    return RunStore.create(
        folder,
        {
            "config": config,
            "seed_file": "seeds/exquisitenetv2.py",
            "versions": {"astevo": "0.1.0", "torch": "2.14.1"},
            "model": {"path": "/models/tiny.gguf"},
            "started": 0.0,
        },
    )


def add(
    store: RunStore,
    generation: int,
    slot: int,
    source: str | None,
    *,
    parents: tuple[int, ...] = (),
    operator: str = "mutate",
    blocks: tuple[str, ...] = (),
    intent: str | None = None,
    accuracy: float | None = None,
    parameters: int = 518_230,
    macs: int = 9_000_000,
    failed: str | None = None,
    discarded: str | None = None,
    pending: bool = False,
    first_answer_parameters: int | None = None,
    edit: str | None = None,
) -> int:
    """Store an individual the way evolution does: proposed, then (unless discarded or pending) evaluated."""
    answer = {
        "purpose": operator,
        "prompt": f"rewrite {', '.join(blocks)}",
        "answer": f"answer for slot {slot}",
        "parameters": first_answer_parameters,
        "edit": edit,
    }
    individual = store.add(
        NewIndividual(
            generation=generation,
            slot=slot,
            parents=parents,
            operator=operator,
            blocks=blocks,
            intent=intent,
            source=source,
            code_hash=canonical_hash(source) if source else None,
            exchanges=[answer] if parents else [],
            rng_seed=f"0-{generation}-{slot}",
            propose_seconds=1.5,
            discarded=discarded,
        )
    )
    if discarded or pending:
        return individual
    if failed:
        stages = [*PASSED[:3], {"name": "probe", "ok": False, "reason": failed, "seconds": 0.2}]
        store.record_evaluation(individual, stages, {}, 2.0)
    else:
        store.record_evaluation(
            individual, PASSED, {"parameters": parameters, "macs": macs, "val_accuracy": accuracy}, 30.0
        )
    return individual


SOURCES = {
    "dropout": edit(SEED, "nn.Dropout(0.5)", "nn.Dropout(0.3)"),
    "two_blocks": edit(
        edit(SEED, "SE(cin, 3)", "SE(cin, 6)"),
        "nn.Conv2d(cin, cin, 4, stride=2, padding=1",
        "nn.Conv2d(cin, cin, 2, stride=2, padding=0",
    ),
    "broken_head": edit(SEED, "nn.Linear(384, class_num)", "nn.Linear(385, class_num)"),
}
SOURCES["crossover"] = edit(SOURCES["dropout"], "SE(cin, 3)", "SE(cin, 6)")  # #2's file with #3's DFSEBV2


def build_run(folder: Path) -> RunStore:
    """Seed #1; #2 changes a dropout; #3 two blocks, costlier and best in accuracy; #4 crosses #2 with #3's
    DFSEBV2 and is the best at no more than the seed's cost; #5 discarded; #6 fails its probe; #7 pending."""
    store = new_run(folder)
    assert add(store, 0, 0, SEED, operator="seed", accuracy=0.80) == 1
    add(
        store,
        1,
        0,
        SOURCES["dropout"],
        parents=(1,),
        blocks=("ExquisiteNetV2",),
        intent="unusual values",
        accuracy=0.82,
    )
    add(
        store,
        1,
        1,
        SOURCES["two_blocks"],
        parents=(1,),
        blocks=("DFSEBV2", "FCT"),
        intent="hyperparameters",
        accuracy=0.85,
        parameters=600_000,
        macs=11_000_000,
    )
    add(
        store,
        2,
        0,
        SOURCES["crossover"],
        parents=(2, 3),
        operator="crossover",
        blocks=("DFSEBV2",),
        intent=HOSTILE,
        accuracy=0.83,
        parameters=500_000,
        macs=8_000_000,
    )
    add(store, 2, 1, None, parents=(2,), blocks=("SE_LN",), discarded="no usable answer after 3 attempts")
    add(store, 2, 2, SOURCES["broken_head"], parents=(3,), blocks=("ExquisiteNetV2",), failed=PROBE_FAILURE)
    add(store, 2, 3, SOURCES["dropout"], parents=(2,), blocks=("ExquisiteNetV2",), pending=True)
    store.finish_generation(0, [1])
    store.finish_generation(1, [2, 3, 1])
    return store
