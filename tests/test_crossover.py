"""Crossover on the real seed: children are usable, merges keep both parents' edits, helpers come along."""

from __future__ import annotations

import ast
import functools
import random
from pathlib import Path

import libcst as cst
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astevo.code.blocks import ModelFile
from astevo.code.validity import child_problem
from astevo.variation.crossover import crossover, merge_block
from tests.source_strategies import programs, render, styles

ROOT = Path(__file__).parents[1]
SEED = ModelFile.read(ROOT / "seeds" / "exquisitenetv2.py")
EVOLVABLE = ("SE", "SE_LN", "DFSEBV2", "FCT", "EVE", "ME", "DW", "ExquisiteNetV2")
FORWARD_LINES = ("x = x * 1.0", "x = torch.tanh(x)", "x = x + 0.0", "x = F.relu(x)")
# Values the seed never uses, so an edit to one of them is always a change.
NEW_VALUES = st.integers(1000, 1999)
SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


class _LiteralSites(cst.CSTVisitor):
    """The simple statement (by ordinal) that holds each numeric literal, in source order."""

    def __init__(self) -> None:
        self.statement = -1
        self.sites: list[int] = []

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self.statement += 1

    def visit_Integer(self, node: cst.Integer) -> None:
        self.sites.append(self.statement)

    def visit_Float(self, node: cst.Float) -> None:
        self.sites.append(self.statement)


class _SetLiteral(cst.CSTTransformer):
    """Sets the index-th numeric literal, the way a hyper-parameter mutation does."""

    def __init__(self, index: int, value: int) -> None:
        self.index, self.value, self.seen = index, value, -1

    def leave_Integer(self, original: cst.Integer, updated: cst.Integer) -> cst.BaseExpression:
        return self._set(updated, cst.Integer(str(self.value)))

    def leave_Float(self, original: cst.Float, updated: cst.Float) -> cst.BaseExpression:
        return self._set(updated, cst.Float(f"{self.value}.5"))

    def _set(self, node: cst.BaseExpression, replacement: cst.BaseExpression) -> cst.BaseExpression:
        self.seen += 1
        return replacement if self.seen == self.index else node


@functools.cache
def literal_sites(source: str) -> tuple[int, ...]:
    visitor = _LiteralSites()
    cst.parse_module(source).visit(visitor)
    return tuple(visitor.sites)


def set_literal(source: str, index: int, value: int) -> str:
    return cst.parse_module(source).visit(_SetLiteral(index, value)).code


@functools.cache
def forward_length(source: str) -> int:
    return len(_forward(cst.parse_module(source)).body.body)


def insert_in_forward(source: str, position: int, line: str) -> str:
    module = cst.parse_module(source)
    forward = _forward(module)
    statements = list(forward.body.body)
    statements.insert(position, cst.parse_statement(line))
    return module.deep_replace(forward, forward.with_changes(body=forward.body.with_changes(body=statements))).code


def _forward(module: cst.Module) -> cst.FunctionDef:
    return next(
        node for node in module.body[0].body.body if isinstance(node, cst.FunctionDef) and node.name.value == "forward"
    )


def with_blocks(model: ModelFile, sources: dict[str, str]) -> ModelFile:
    """`model` with some blocks' text replaced, parsed once (each parse costs a good part of a second)."""
    text = model.source
    for name, source in sources.items():
        text = text.replace(model.block(name).source, source, 1)
    return ModelFile(text, "<variant>")


EDITABLE = [name for name, block in SEED.blocks.items() if literal_sites(block.source)]
CLASSES = [name for name, block in SEED.blocks.items() if block.kind == "class"]
LONG_FORWARDS = [name for name in CLASSES if forward_length(SEED.block(name).source) > 1]
MANY_STATEMENT_LITERALS = [name for name in CLASSES if len(set(literal_sites(SEED.block(name).source))) > 1]


def mutated_block(name: str, rng: random.Random) -> str:
    """One mutation of a seed block: a new hyper-parameter value, or a line added to `forward`."""
    source = SEED.block(name).source
    if name in CLASSES and rng.random() < 0.5:
        return insert_in_forward(source, rng.randrange(forward_length(source)), rng.choice(FORWARD_LINES))
    return set_literal(source, rng.randrange(len(literal_sites(source))), rng.randint(1, 9))


@functools.cache
def variants() -> tuple[ModelFile, ...]:
    """Seed variants with one to three blocks mutated, helpers (pad_num, get_optimizer) included.

    A fixed pool that the property tests draw pairs from: building a ModelFile resolves scopes,
    which costs too much to do for every generated example.
    """
    rng = random.Random(2024)
    return tuple(
        with_blocks(SEED, {name: mutated_block(name, rng) for name in rng.sample(EDITABLE, rng.randint(1, 3))})
        for _ in range(8)
    )


pool_members = st.integers(0, 7).map(lambda index: variants()[index])
rng_seeds = st.integers(0, 2**32)


def defined_names(source: str) -> list[str]:
    return [node.name for node in ast.parse(source).body if isinstance(node, (ast.ClassDef, ast.FunctionDef))]


@pytest.mark.slow
@settings(SLOW, max_examples=10)
@given(first=pool_members, second=pool_members, seed=rng_seeds)
def test_children_are_usable_and_made_of_their_parents_blocks(first: ModelFile, second: ModelFile, seed: int) -> None:
    result = crossover(first, second, SEED, EVOLVABLE, random.Random(seed))
    assert result.reason is None and result.child is not None
    defined = defined_names(result.child.source)
    assert all(defined.count(name) == 1 for name in EVOLVABLE)
    for name, block in result.child.blocks.items():
        origin = result.origins.get(name)
        if origin in ("first", "swap-first"):
            assert block.source == first.block(name).source
        elif origin in ("second", "swap-second"):
            assert block.source == second.block(name).source
        elif origin is None:  # a helper: first's, or second's brought along
            assert block.source in (first.block(name).source, second.block(name).source)
    assert set(result.changed_blocks) == {
        name for name, block in result.child.blocks.items() if block.source != first.block(name).source
    }


def test_the_pool_holds_overlapping_edits() -> None:
    """Otherwise the property above would never see a merge or a swap."""
    edited = [{name for name in EDITABLE if v.block(name).source != SEED.block(name).source} for v in variants()]
    assert any(one & other for index, one in enumerate(edited) for other in edited[index + 1 :])


@settings(SLOW, max_examples=5)
@given(first=pool_members, ancestor=pool_members, seed=rng_seeds)
def test_crossing_a_parent_with_itself_is_the_identity(first: ModelFile, ancestor: ModelFile, seed: int) -> None:
    result = crossover(first, first, ancestor, EVOLVABLE, random.Random(seed))
    assert result.child is not None and result.child.source == first.source
    assert set(result.origins.values()) == {"first"} and result.changed_blocks == ()


@st.composite
def literal_edits_in_two_statements(draw) -> tuple[str, int, int]:
    """A class block and two of its literals that sit in different statements."""
    name = draw(st.sampled_from(MANY_STATEMENT_LITERALS))
    sites = literal_sites(SEED.block(name).source)
    one = draw(st.integers(0, len(sites) - 1))
    other = draw(st.sampled_from([index for index, site in enumerate(sites) if site != sites[one]]))
    return SEED.block(name).source, one, other


@settings(SLOW, max_examples=25)
@given(edits=literal_edits_in_two_statements(), values=st.tuples(NEW_VALUES, NEW_VALUES))
def test_merge_keeps_both_sides_literal_edits(edits: tuple[str, int, int], values: tuple[int, int]) -> None:
    ancestor, one, other = edits
    first, second = set_literal(ancestor, one, values[0]), set_literal(ancestor, other, values[1])
    assert merge_block(ancestor, first, second) == set_literal(first, other, values[1])


@settings(SLOW, max_examples=25)
@given(name=st.sampled_from(LONG_FORWARDS), data=st.data())
def test_merge_keeps_lines_both_sides_added_to_forward(name: str, data: st.DataObject) -> None:
    ancestor = SEED.block(name).source
    late = data.draw(st.integers(1, forward_length(ancestor) - 1))
    early = data.draw(st.integers(0, late - 1))
    lines = data.draw(st.lists(st.sampled_from(FORWARD_LINES), min_size=2, max_size=2))
    first, second = insert_in_forward(ancestor, late, lines[0]), insert_in_forward(ancestor, early, lines[1])
    assert merge_block(ancestor, first, second) == insert_in_forward(first, early, lines[1])


@settings(SLOW, max_examples=25)
@given(name=st.sampled_from(EDITABLE), data=st.data())
def test_overlapping_edits_conflict(name: str, data: st.DataObject) -> None:
    ancestor = SEED.block(name).source
    index = data.draw(st.integers(0, len(literal_sites(ancestor)) - 1))
    one, other = data.draw(st.lists(NEW_VALUES, min_size=2, max_size=2, unique=True))
    assert merge_block(ancestor, set_literal(ancestor, index, one), set_literal(ancestor, index, other)) is None


def test_merge_shortcuts_return_the_changed_side_verbatim() -> None:
    ancestor = SEED.block("SE").source
    changed = set_literal(ancestor, 0, 5).replace("    def forward", "    # reformatted\n    def forward")
    assert merge_block(ancestor, changed, ancestor) == changed
    assert merge_block(ancestor, ancestor, changed) == changed
    assert merge_block(changed, ancestor, ancestor) == ancestor


def test_lines_added_at_the_same_spot_conflict() -> None:
    ancestor = SEED.block("DFSEBV2").source
    first, second = (insert_in_forward(ancestor, 1, line) for line in FORWARD_LINES[:2])
    assert merge_block(ancestor, first, second) is None


def test_crossover_swaps_a_conflicting_block_whole() -> None:
    name = "SE"
    first, second = (with_blocks(SEED, {name: set_literal(SEED.block(name).source, 0, v)}) for v in (1001, 1002))
    seen = set()
    for seed in range(4):
        result = crossover(first, second, SEED, [name], random.Random(seed))
        origin = result.origins[name]
        parent = {"swap-first": first, "swap-second": second}[origin]
        assert result.child is not None and result.child.block(name).source == parent.block(name).source
        seen.add(origin)
    assert seen == {"swap-first", "swap-second"}


def test_crossover_merges_when_parents_changed_different_statements() -> None:
    source = SEED.block("DFSEBV2").source
    first = with_blocks(SEED, {"DFSEBV2": set_literal(source, 0, 2)})
    second = with_blocks(SEED, {"DFSEBV2": insert_in_forward(source, 3, "x = x * 1.0")})
    result = crossover(first, second, SEED, EVOLVABLE, random.Random(0))
    assert result.origins["DFSEBV2"] == "merged" and result.child is not None
    merged = result.child.block("DFSEBV2").source
    assert merged == insert_in_forward(set_literal(source, 0, 2), 3, "x = x * 1.0")


HELPER_FIRST = """import torch
from torch import nn


def act(x):
    return torch.relu(x)


class Block(nn.Module):
    def forward(self, x):
        return act(x) + 1


class Head(nn.Module):
    def forward(self, x):
        return Block()(x)
"""

# Second rewrote Block, its helper act (which now needs a new helper, scale), and added a base class.
HELPER_SECOND = """import torch
from torch import nn


def act(x):
    return torch.tanh(x) * scale(x)


def scale(x):
    return 0.5


class Base(nn.Module):
    gain = 2


class Block(Base):
    def forward(self, x):
        return act(x) + self.gain
"""


def test_a_block_taken_from_second_brings_its_helpers() -> None:
    first = ModelFile(HELPER_FIRST)
    second = ModelFile(HELPER_SECOND + HELPER_FIRST[HELPER_FIRST.index("\n\nclass Head") :])
    outcomes = set()
    for seed in range(10):
        result = crossover(first, second, first, ["Block", "Head"], random.Random(seed))
        assert result.child is not None, result.reason
        child = result.child
        if result.origins["Block"] == "second":
            # Each new helper lands just above the block that needs it: Base must exist when Block's class is built.
            assert list(child.blocks) == ["scale", "act", "Base", "Block", "Head"]
            taken = ("scale", "act", "Base", "Block")
            assert all(child.block(name).source == second.block(name).source for name in taken)
            assert result.changed_blocks == ("Base", "Block", "act", "scale")
        else:
            assert child.source == first.source
        outcomes.add(result.origins["Block"])
    assert outcomes == {"first", "second"}


def test_a_block_kept_from_first_ignores_seconds_helpers() -> None:
    first = ModelFile(HELPER_FIRST)
    second = ModelFile(HELPER_FIRST.replace("torch.relu", "torch.sigmoid"))
    result = crossover(first, second, first, ["Block", "Head"], random.Random(0))
    assert result.child is not None and result.child.source == first.source


def test_same_inputs_and_rng_state_give_the_same_child() -> None:
    first = with_blocks(
        SEED,
        {"SE": set_literal(SEED.block("SE").source, 0, 2), "pad_num": set_literal(SEED.block("pad_num").source, 1, 3)},
    )
    second = with_blocks(
        SEED,
        {
            "SE": insert_in_forward(SEED.block("SE").source, 1, "x = x * 1.0"),
            "DW": set_literal(SEED.block("DW").source, 0, 4),
            "ME": set_literal(SEED.block("ME").source, 0, 4),
        },
    )
    results = [crossover(first, second, SEED, EVOLVABLE, random.Random(7)) for _ in range(2)]
    one, other = ((r.child.source if r.child else None, r.origins, r.reason) for r in results)
    assert one == other and results[0].child is not None


def test_an_unusable_child_is_returned_with_the_reason_not_raised() -> None:
    first = ModelFile("def Block(x):\n    return x\n")
    second = ModelFile("def Block(x):\n    return undefined(x)\n")
    results = [crossover(first, second, first, ["Block"], random.Random(seed)) for seed in range(6)]
    taken = [r for r in results if r.origins["Block"] == "second"]
    assert taken and all(r.child is None and "undefined" in r.reason for r in taken)
    assert all(r.changed_blocks == () for r in taken)


@pytest.mark.parametrize("path", [ROOT / "seeds" / "exquisitenetv2.py", ROOT / "tests" / "models" / "residual_net.py"])
def test_child_problem_accepts_real_model_files(path: Path) -> None:
    model = ModelFile.read(path)
    assert child_problem(model.source, model.blocks) is None


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (SEED.source.replace("nn.Sigmoid()", "nn_Sigmoid()", 1), "undefined names: nn_Sigmoid"),
        (SEED.source + "\n\n" + SEED.block("DW").source, "block DW defined 2 times"),
        (SEED.source.replace("class DW(", "class DW2(", 1), "missing block DW"),
        (SEED.source.replace("def forward(self, x):", "def forward(self, x)", 1), "cannot parse"),
    ],
)
def test_child_problem_names_what_is_wrong(source: str, words: str) -> None:
    problem = child_problem(source, EVOLVABLE)
    assert problem is not None and words in problem and "\n" not in problem


SCOPES_OK = """import math
from torch import nn as torch_nn

COUNT = 0


def uses_later_helper(values, *extra, scale=2, **options):
    global COUNT
    COUNT += 1
    squares = [value * scale for value in values if value]
    table = {key: option for key, option in options.items()}
    try:
        total = sum(squares) + len(extra) + later(table)
    except ValueError as error:
        raise RuntimeError(error)
    previous = None
    for value in values:
        if previous is not None:
            total += previous
        previous = value
    return lambda shift: total + shift + math.pi + __name__.count("x")


class Layer(torch_nn.Module):
    width = 4
    doubled = width * 2

    def forward(self, x):
        def inner(y):
            return y + x
        return inner(self.width) + len(__file__)


def later(table):
    return len(table)
"""


def test_child_problem_understands_python_scopes() -> None:
    assert child_problem(SCOPES_OK, ["uses_later_helper", "Layer", "later"]) is None


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("class Layer:\n    width = 4\n\n    def forward(self):\n        return width\n", "width"),
        ("class Layer(Base):\n    pass\n\n\nclass Base:\n    pass\n", "Base"),
        ("def f(values):\n    return [v for v in values] + [v]\n", "v"),
    ],
)
def test_child_problem_flags_names_python_would_not_find(source: str, name: str) -> None:
    assert child_problem(source, []) == f"uses undefined names: {name}"


def test_a_star_import_can_define_any_name() -> None:
    assert child_problem("from torch.nn import *\n\n\ndef f():\n    return Conv2d\n", ["f"]) is None


@settings(SLOW, max_examples=25)
@given(program=programs(), style=styles)
def test_child_problem_accepts_generated_model_files(program, style) -> None:
    assert child_problem(render(program, style), [definition.name for definition in program]) is None


def test_a_block_taken_from_a_parent_that_imports_math_brings_the_import_along() -> None:
    """The second parent's DW uses math, which only that parent imports: the child needs the import too."""
    dw = SEED.blocks["DW"].source.replace("self.act(self.dw(x))", "self.act(self.dw(x)) * math.sqrt(2.0)")
    second = ModelFile("import math\n" + SEED.replace("DW", dw).source)
    result = crossover(SEED, second, SEED, ["DW"], random.Random(1))  # the one draw takes DW from second
    assert result.origins == {"DW": "second"} and result.child is not None, result.reason
    assert "\nimport math\n" in result.child.source and result.child.blocks["DW"].source == dw
    assert child_problem(result.child.source, ["DW"]) is None
