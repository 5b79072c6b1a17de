"""Allowed modules a file reads without importing them get their import; nothing else is touched."""

from __future__ import annotations

import ast

from hypothesis import given
from hypothesis import strategies as st

from astevo.code.blocks import ModelFile
from astevo.code.imports import IMPORT_LINES, add_missing_imports, with_block
from astevo.paths import default_seed_path

SEED = ModelFile.read(default_seed_path())


def test_the_import_goes_after_the_docstring_and_future_imports() -> None:
    source = '"""A model."""\nfrom __future__ import annotations\n\n\ndef f():\n    return math.pi\n'
    repaired = add_missing_imports(source)
    assert repaired.added == ("import math",)
    assert repaired.source.splitlines()[:3] == ['"""A model."""', "from __future__ import annotations", "import math"]


def test_aliases_get_their_usual_imports_and_bound_names_are_left_alone() -> None:
    source = "import torch\n\nclass Net(nn.Module):\n    def forward(self, x):\n        return F.relu(x)\n"
    assert add_missing_imports(source).added == ("import torch.nn.functional as F", "import torch.nn as nn")
    local = "def f(math):\n    return math.pi\n"  # a parameter, not the module
    assert add_missing_imports(local).added == ()


def test_the_seed_needs_nothing_and_unparsable_code_is_left_for_the_parse_stage() -> None:
    assert add_missing_imports(SEED.source).source == SEED.source
    assert add_missing_imports("class A(:\n").added == ()


def test_a_child_made_from_a_parent_gets_the_imports_its_new_block_needs() -> None:
    block = SEED.blocks["DW"].source.replace("self.act(self.dw(x))", "self.act(self.dw(x)) * math.sqrt(2.0)")
    child = with_block(SEED, "DW", block)
    assert "\nimport math\n" in child and ModelFile(child).blocks["DW"].source == block


@given(st.lists(st.sampled_from(sorted(IMPORT_LINES)), min_size=1, max_size=4, unique=True))
def test_after_the_repair_every_allowed_name_read_is_bound(names: list[str]) -> None:
    body = " + ".join(f"id({name})" for name in names)
    repaired = add_missing_imports(f"def f():\n    return {body}\n")
    assert set(repaired.added) == {IMPORT_LINES[name] for name in names}
    assert add_missing_imports(repaired.source).added == ()
    ast.parse(repaired.source)
