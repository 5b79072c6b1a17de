"""The fast checks a variation is judged by, through the real sandboxed evaluator.

A block-scope answer that uses an allowed module the file does not import is accepted: the child
gets the import, and the verdict on that child is what its training later carries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from astevo.code.blocks import ModelFile, split_header
from astevo.code.imports import with_block
from astevo.evaluation.anatomy import inspect_model
from astevo.evaluation.base import SandboxTask
from astevo.evaluation.checks import BlockCheck
from astevo.evaluation.executors.local import LocalEvaluator
from astevo.isolation.sandbox import Outcome
from astevo.llm.backend import Capabilities, Completion
from astevo.paths import default_seed_path
from astevo.settings import FitnessSettings, MutationSettings
from astevo.variation.llm_mutation import LLMVariation
from tests.conftest import TINY_MODEL

SEED = ModelFile.read(default_seed_path())

pytestmark = pytest.mark.slow
FAST = FitnessSettings(train=False, check_seconds=60.0)


@dataclass
class WritesBodies:
    """A Generator stand-in that answers each call with the next body from a list."""

    bodies: list[str]
    capabilities: Capabilities = Capabilities(grammar=True, forbid_first_token=True, prefix_cache=True)
    name: str = "scripted"

    def restart(self, system: str) -> None:
        pass

    def complete(self, messages, *, prefix="", grammar=None, temperature=0.2, max_tokens=1024, seed=None, avoid=""):
        return Completion(self.bodies.pop(0), prefix, 10, 10, 0.01, 0.0, "complete")


def test_a_block_scope_answer_using_math_passes_and_its_child_imports_math() -> None:
    _, body = split_header(SEED.blocks["DW"].source)
    new_body = body.replace("self.act(self.dw(x))", "self.act(self.dw(x)) * math.sqrt(2.0)")
    variation = LLMVariation(WritesBodies([new_body]), MutationSettings(scope="block", repairs=0))
    check = BlockCheck(LocalEvaluator(), FAST, SEED, "DW")
    proposal = variation.mutate(SEED, "DW", "complexity", random.Random(0), None, check)
    assert proposal.source is not None, proposal.error
    child = with_block(SEED, "DW", proposal.source)
    assert "\nimport math\n" in child
    verdict = check.verdict(child)
    assert verdict is not None and verdict.valid and verdict.metrics["parameters"] == SEED_PARAMETERS_FASHION


def test_a_block_using_a_forbidden_module_is_refused_with_the_module_named() -> None:
    block = SEED.blocks["DW"].source.replace(
        "return self.act(self.dw(x))", "os.getcwd()\n        return self.act(self.dw(x))"
    )
    check = BlockCheck(LocalEvaluator(), FAST, SEED, "DW")
    problem = check(block)
    assert problem is not None and problem.startswith("gate: ") and "uses module os without importing it" in problem
    assert check.verdict(with_block(SEED, "DW", block)) is None


SEED_PARAMETERS_FASHION = 518_126  # one input channel


class CountingEvaluator(LocalEvaluator):
    """The local evaluator, noting the entry point of every sandboxed task it is asked to run."""

    def __init__(self) -> None:
        super().__init__()
        self.entry_points: list[str] = []

    def run_now(self, task: SandboxTask) -> Outcome:
        self.entry_points.append(task.entry_point.rsplit(":", 1)[1])
        return super().run_now(task)


def test_a_model_build_and_its_versions_measured_go_through_the_evaluator() -> None:
    """No sandboxed task skips the evaluator seam, so whatever runs evaluations (slots, a cluster) runs these too."""
    evaluator = CountingEvaluator()
    anatomy = inspect_model(SEED, evaluator, FAST)
    scaled = SEED.blocks["DW"].source.replace("self.act(self.dw(x))", "self.act(self.dw(x)) * 2")
    measured = BlockCheck(evaluator, FAST, SEED, "DW").measure([(scaled, True)])
    assert evaluator.entry_points == ["inspect_model", "measure_versions"]
    assert anatomy.parameters == measured.parameters == SEED_PARAMETERS_FASHION
    assert [(v.ok, v.parameters) for v in measured.variants] == [(True, SEED_PARAMETERS_FASHION)]


@pytest.mark.needs_model
def test_the_bundled_model_asked_for_fewer_parameters_makes_the_top_level_measurably_smaller() -> None:
    """Real llama.cpp, real meta-device measurements, real fast checks: the size edit it picks shrinks the model."""
    from astevo.llm.gguf import resolve_model
    from astevo.llm.llama_cpp_backend import LlamaCppGenerator

    variation = LLMVariation(LlamaCppGenerator(resolve_model(TINY_MODEL), n_ctx=4096), MutationSettings(repairs=2))
    check = BlockCheck(LocalEvaluator(), FAST, SEED, "ExquisiteNetV2")
    proposal = variation.mutate(SEED, "ExquisiteNetV2", "fewer_parameters", random.Random(4), None, check)
    assert proposal.source is not None, proposal.error
    final = proposal.exchanges[-1]
    assert final.edit in ("width", "depth", "size of dw_s", "arguments", "layers")
    assert final.parameters is not None and final.macs is not None
    parent = check.parent_size()
    assert parent is not None and (final.parameters < parent.parameters or final.macs < parent.macs)
    assert check(proposal.source) is None
