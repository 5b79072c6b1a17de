"""What scripts read (`--json`): blocks, evaluations, individuals and runs as plain JSON-ready records.

The keys documented in README are a stable contract: fields may be added, never renamed.
"""

from __future__ import annotations

from typing import Any

from astevo.code.blocks import ModelFile
from astevo.evaluation.anatomy import Anatomy
from astevo.evaluation.base import Evaluation
from astevo.store.records import DISCARDED, PENDING, Individual
from astevo.store.run_store import RunStore
from astevo.views.run_view import run_noise_of
from astevo.views.size_changes import by_intent, children_by_size


def status(individual: Individual) -> str:
    """One word for where an individual stands: valid, invalid, discarded or pending."""
    if individual.status in (PENDING, DISCARDED):
        return individual.status
    return "valid" if individual.valid else "invalid"


def individual_record(individual: Individual, *, with_text: bool) -> dict[str, Any]:
    """One individual; `with_text` adds its source, every stage, every metric and every model call."""
    record: dict[str, Any] = {
        "id": individual.id,
        "generation": individual.generation,
        "slot": individual.slot,
        "parents": list(individual.parents),
        "operator": individual.operator,
        "intent": individual.intent,
        "changed_blocks": list(individual.blocks),
        "status": status(individual),
        "reason": individual.reason,
        "val_accuracy": individual.val_accuracy,
        "parameters": individual.parameters,
        "macs": individual.macs,
        "seconds": individual.propose_seconds + individual.evaluate_seconds,
        "propose_seconds": individual.propose_seconds,
        "evaluate_seconds": individual.evaluate_seconds,
        "reused_from": individual.reused_from,
        "cached": individual.cached,
        "code_hash": individual.code_hash,
    }
    if with_text:
        record.update(
            source=individual.source,
            stages=list(individual.stages),
            metrics=individual.metrics,
            exchanges=list(individual.exchanges),
        )
    return record


def run_record(store: RunStore) -> dict[str, Any]:
    """A run: where it is, its settings, and every individual without its text."""
    meta = store.meta()
    everyone = store.individuals(with_text=True)
    noise = run_noise_of(store)
    return {
        "run": str(store.folder),
        "seed_file": meta.get("seed_file"),
        "finished": "finished" in meta,
        "config": meta.get("config"),
        "data": meta.get("data"),
        "children_by_size": dict(children_by_size(everyone)),
        "size_by_intent": {
            sizes.intent: {"children": dict(sizes.children), "first_answers": dict(sizes.first_answers)}
            for sizes in by_intent(everyone)
        },
        "noise": None
        if noise is None
        else {"seed_val_accuracies": list(noise.accuracies), "std": noise.std, "within_noise_below": noise.margin},
        "individuals": [individual_record(i, with_text=False) for i in everyone],
    }


def blocks_record(model_file: ModelFile, anatomy: Anatomy | None) -> dict[str, Any]:
    """A model file's blocks, with what the built network makes of each (when it builds)."""
    blocks = []
    for block in model_file.blocks.values():
        use = anatomy.uses.get(block.name) if anatomy else None
        blocks.append(
            {
                "name": block.name,
                "kind": block.kind,
                "first_line": block.first_line,
                "last_line": block.last_line,
                "is_model": anatomy is not None and block.name == anatomy.model_class,
                "instances": None if anatomy is None or block.kind != "class" else len(use.parameters) if use else 0,
                "parameters": list(use.parameters) if use else [],
                "uses": list(block.uses),
                "used_by": list(block.used_by),
            }
        )
    model = None if anatomy is None else {"class": anatomy.model_class, "parameters": anatomy.parameters}
    return {"file": model_file.origin, "model": model, "blocks": blocks}


def evaluation_record(
    evaluation: Evaluation, rewritten: tuple[str, ...], added_imports: tuple[str, ...]
) -> dict[str, Any]:
    """One run of the fitness cascade: the verdict, every stage, and the metrics."""
    failure = evaluation.failure
    return {
        "valid": evaluation.valid,
        "failure": None if failure is None else {"stage": failure.name, "reason": failure.reason},
        "cached": evaluation.cached,
        **evaluation.to_record(),  # stages and metrics
        "rewritten_blocks": list(rewritten),
        "added_imports": list(added_imports),
    }
