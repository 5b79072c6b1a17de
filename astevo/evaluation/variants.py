"""Versions of one model measured together in one sandboxed child, on torch's meta device.

Size edits are planned from these facts: which literals carry channels, and which new
values still give a model that builds and keeps its output shape.
"""

from __future__ import annotations

from collections.abc import Sequence

from astevo.code.blocks import ModelFile
from astevo.errors import AstevoError
from astevo.evaluation.base import Evaluator, SandboxTask, VariantFacts, VariantsMeasured
from astevo.evaluation.payloads import network, sandbox_limits, sandboxed_task
from astevo.evaluation.tasks import Variant, Versions, as_record
from astevo.settings import FitnessSettings


def measure_variants(
    original: ModelFile, variants: Sequence[Variant], settings: FitnessSettings, evaluator: Evaluator
) -> VariantsMeasured:
    """Build every variant (on the meta device: no memory, no training) where the evaluator runs fast checks;
    AstevoError when the original itself cannot be built there."""
    versions = Versions(network(original, settings), tuple(variants))
    limits = sandbox_limits(settings, training=False)
    outcome = evaluator.run_now(SandboxTask(sandboxed_task("measure_versions"), as_record(versions), limits))
    if not outcome.ok or outcome.value is None:
        raise AstevoError(f"{original.origin}: cannot build the model on the meta device: {outcome.error}")
    facts = tuple(
        VariantFacts(v["ok"], v["reason"], v.get("parameters"), bool(v.get("channels_changed")))
        for v in outcome.value["variants"]
    )
    return VariantsMeasured(outcome.value["parameters"], facts)
