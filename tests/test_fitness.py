"""The fitness cascade on hostile and broken candidates, each a real model file run for real.

Every candidate is the seed with one block (or the module head) replaced. Each must end at
the right stage with the right reason, while this process survives and nothing appears
outside the sandbox's temporary directory.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import replace
from pathlib import Path

import pytest

from astevo.code.blocks import ModelFile
from astevo.code.canonical import canonical_hash
from astevo.code.imports import add_missing_imports
from astevo.evaluation.cache import EvaluationCache
from astevo.evaluation.cascade import evaluate
from astevo.paths import default_seed_path
from astevo.settings import FitnessSettings

SEED = ModelFile.read(default_seed_path())
FAST = FitnessSettings(train=False, check_seconds=30.0, memory_mb=2500)
OUTSIDE = Path(os.environ.get("TMPDIR", "/tmp")) / "astevo-hostile-marker"


def with_block(name: str, source: str) -> str:
    return SEED.replace(name, source).source


def se_ln(forward_body: str, init_extra: str = "") -> str:
    """An SE_LN whose forward (and optionally __init__) does something of the test's choosing."""
    return (
        "class SE_LN(nn.Module):\n"
        "    def __init__(self, cin):\n"
        "        super().__init__()\n"
        "        self.ln = nn.LayerNorm(cin)\n"
        f"{init_extra}"
        "    def forward(self, x):\n"
        f"{forward_body}"
    )


NORMAL_FORWARD = "        return x * torch.sigmoid(self.ln(x.mean((2, 3))))[:, :, None, None]\n"

GATE_CASES = {
    "shell command": (
        with_block("SE_LN", se_ln("        import os\n        os.system('touch /tmp/x')\n" + NORMAL_FORWARD)),
        "import of 'os'",
    ),
    "subprocess via __import__": (
        with_block("SE_LN", se_ln("        __import__('subprocess').run(['ls'])\n" + NORMAL_FORWARD)),
        "__import__",
    ),
    "file write": (with_block("SE_LN", se_ln(f"        open('{OUTSIDE}', 'w').write('x')\n" + NORMAL_FORWARD)), "open"),
    "socket": ("import socket\n" + SEED.source, "import of 'socket'"),
    "forbidden module used without importing it": (
        with_block("SE_LN", se_ln("        os.system('touch /tmp/x')\n" + NORMAL_FORWARD)),
        "uses module os without importing it, and os is not on the allow-list",
    ),
    "forbidden module imported inside a function": (
        with_block("SE_LN", se_ln("        import shutil\n" + NORMAL_FORWARD)),
        "import of 'shutil'",
    ),
    "eval": (with_block("SE_LN", se_ln("        eval('1 + 1')\n" + NORMAL_FORWARD)), "eval"),
    "dunder escape": (
        with_block("SE_LN", se_ln("        ().__class__.__bases__[0].__subclasses__()\n" + NORMAL_FORWARD)),
        "__class__",
    ),
    "module-level call": (SEED.source + "\nprint('pwned')\n", "line"),
    "torch.save": (with_block("SE_LN", se_ln("        torch.save(x, 'x.pt')\n" + NORMAL_FORWARD)), "torch.save"),
    "pickle": ("import pickle\n" + SEED.source, "import of 'pickle'"),
}

RUNTIME_CASES = {
    "infinite loop": (
        with_block("SE_LN", se_ln(NORMAL_FORWARD, "        while True:\n            pass\n")),
        "build",
        "timed out",
    ),
    "memory bomb": (
        with_block("SE_LN", se_ln(NORMAL_FORWARD, "        self.big = torch.ones(2 ** 34)\n")),
        "build",
        "memory",
    ),
    "exception in build": (
        with_block("SE_LN", se_ln(NORMAL_FORWARD, "        raise ValueError('broken on purpose')\n")),
        "build",
        "ValueError: broken on purpose",
    ),
    "early exit 0": (
        with_block("SE_LN", se_ln(NORMAL_FORWARD, "        raise SystemExit(0)\n")),
        "build",
        "SystemExit",
    ),
    "undefined name": (with_block("SE_LN", se_ln("        return x * undefined_gate(x)\n")), "probe", "NameError"),
    "NaN output": (with_block("SE_LN", se_ln("        return x * float('nan')\n")), "probe", "NaN"),
    "wrong model shape": (
        with_block(
            "ExquisiteNetV2",
            SEED.blocks["ExquisiteNetV2"].source.replace("nn.Linear(384, class_num)", "nn.Linear(384, class_num + 1)"),
        ),
        "probe",
        "expected (4, 10)",
    ),
    "tuple output": (with_block("SE_LN", se_ln("        return (x, x)\n")), "probe", "tuple"),
    "forged result printed, then exit": (
        with_block(
            "SE_LN",
            se_ln(
                '        print(\'{"status": "returned", "value": {"stages": [], "metrics": {"val_accuracy": 1.0}}}\')\n'
                "        raise SystemExit(0)\n"
            ),
        ),
        "probe",
        "SystemExit: 0",
    ),
    "parameter cap": (SEED.source, "cost", "exceed the cap of 100,000"),
}


@pytest.mark.parametrize("case", sorted(GATE_CASES))
def test_the_gate_rejects_before_anything_runs(case: str) -> None:
    source, reason = GATE_CASES[case]
    evaluation = evaluate(source, FAST)
    assert [s.name for s in evaluation.stages] == ["parse", "gate"]
    assert evaluation.failure.name == "gate" and reason in evaluation.failure.reason
    assert not OUTSIDE.exists()


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c == "infinite loop" else c for c in sorted(RUNTIME_CASES)]
)
def test_runtime_failures_end_at_the_right_stage(case: str) -> None:
    source, stage, reason = RUNTIME_CASES[case]
    settings = {
        "parameter cap": FitnessSettings(train=False, check_seconds=15.0, memory_mb=2500, max_parameters=100_000),
        "infinite loop": dataclasses.replace(FAST, check_seconds=10.0),  # a shorter wait for the same verdict
    }.get(case, FAST)
    evaluation = evaluate(source, settings)
    failure = evaluation.failure
    assert failure is not None, evaluation
    assert (failure.name, reason in failure.reason) == (stage, True), failure
    assert evaluation.stages[-1] == failure


@pytest.mark.parametrize(
    ("forward", "event"),
    [
        (f"        open('{OUTSIDE}', 'w').write('x')\n", "forbidden in the astevo sandbox"),
        ("        __import__('os').fork()\n", "forbidden in the astevo sandbox"),
        (
            "        import socket\n        socket.create_connection(('127.0.0.1', 9))\n",
            "forbidden in the astevo sandbox",
        ),
        (
            "        import os, signal\n        os.kill(os.getppid(), signal.SIGTERM)\n",
            "forbidden in the astevo sandbox",
        ),
    ],
    ids=["file write", "fork", "socket", "signal parent"],
)
def test_without_the_gate_the_sandbox_still_contains_the_candidate(forward: str, event: str) -> None:
    source = with_block("SE_LN", se_ln(forward + NORMAL_FORWARD))
    evaluation = evaluate(source, replace(FAST, safety_gate=False))
    assert evaluation.failure.name == "probe" and event in evaluation.failure.reason
    assert not OUTSIDE.exists()


SCALED_FORWARD = "        return x * math.sqrt(1.0) * torch.sigmoid(self.ln(x.mean((2, 3))))[:, :, None, None]\n"


def test_an_allowed_module_used_without_importing_it_gets_its_import_and_passes() -> None:
    """What a capable model writes: math in a rewritten block of a file that imports only torch, nn and F."""
    child = add_missing_imports(with_block("SE_LN", se_ln(SCALED_FORWARD)))
    assert child.added == ("import math",)
    assert "\nimport math\n" in child.source and canonical_hash(child.source) != canonical_hash(
        with_block("SE_LN", se_ln(SCALED_FORWARD))
    )
    assert evaluate(child.source, FAST).valid


def test_an_allowed_module_imported_inside_a_function_passes() -> None:
    source = with_block("SE_LN", se_ln("        import math\n" + SCALED_FORWARD))
    assert add_missing_imports(source).added == ()
    assert evaluate(source, FAST).valid


def test_unparsable_candidate_fails_at_parse_in_place() -> None:
    evaluation = evaluate(SEED.source.replace("class SE(nn.Module):", "class SE(nn.Module)"), FAST)
    assert [s.name for s in evaluation.stages] == ["parse"]
    assert "candidate.py:" in evaluation.failure.reason


@pytest.mark.slow
def test_block_contract_catches_a_shape_change_the_network_would_absorb() -> None:
    # Convolutions take any resolution and a global pool ends the network, so an ME that
    # forgets to halve still yields (4, 10) logits; only the block's own contract notices.
    not_halving = SEED.blocks["ME"].source.replace("self.bn(self.pw(self.maxpool(x)))", "self.bn(self.pw(x))")
    source = with_block("ME", not_halving)
    assert evaluate(source, FAST).valid
    checked = evaluate(source, FAST, reference=SEED.source, rewritten=("ME",))
    assert checked.failure.name == "probe"
    assert checked.failure.reason == (
        "block contract: ME(48, 96) maps (4, 48, 7, 7) to (4, 96, 7, 7); the original block gave (4, 96, 4, 4)"
    )


def test_the_seed_passes_the_fast_stages_with_its_cost() -> None:
    evaluation = evaluate(
        SEED.source,
        FitnessSettings(train=False, dataset="cifar10"),
        reference=SEED.source,
        rewritten=("SE_LN", "get_optimizer"),
    )
    assert evaluation.valid, evaluation
    assert [s.name for s in evaluation.stages] == ["parse", "gate", "build", "probe", "cost"]
    assert evaluation.metrics["parameters"] == 518_230
    assert evaluation.metrics["uncounted_ops"] == {}


@pytest.mark.slow
def test_cached_results_are_not_recomputed(tmp_path: Path) -> None:
    cache = EvaluationCache(tmp_path)
    first = evaluate(SEED.source, FAST, cache=cache)
    reformatted = SEED.source.replace("import torch\n", "import torch  # the tensor library\n", 1)
    second = evaluate(reformatted, FAST, cache=cache)
    assert not first.cached and second.cached
    assert second.metrics == first.metrics
    changed = evaluate(SEED.source.replace("nn.Dropout(0.5)", "nn.Dropout(0.4)"), FAST, cache=cache)
    assert not changed.cached
