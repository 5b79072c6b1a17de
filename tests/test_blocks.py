from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import hypothesmith
import libcst as cst
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from astevo.code.blocks import BlockShapeError, ModelFile, SourceParseError, UnknownBlockError
from astevo.code.canonical import canonical_hash
from astevo.errors import AstevoError
from astevo.paths import default_seed_path
from tests.source_strategies import definitions, programs, render, render_definition, styles

MODELS = Path(__file__).parent / "models"
SEED_BLOCKS = [
    "get_optimizer",
    "pad_num",
    "SE",
    "SE_LN",
    "DFSEBV2",
    "MinPool2d",
    "FCT",
    "EVE",
    "ME",
    "DW",
    "ExquisiteNetV2",
]


@pytest.fixture(scope="module")
def seed() -> ModelFile:
    return ModelFile.read(default_seed_path())


def test_seed_has_the_eleven_blocks_in_file_order(seed: ModelFile) -> None:
    assert list(seed.blocks) == SEED_BLOCKS
    assert [seed.blocks[n].kind for n in ("get_optimizer", "pad_num", "SE")] == ["function", "function", "class"]


def test_seed_dependencies(seed: ModelFile) -> None:
    uses = {name: block.uses for name, block in seed.blocks.items()}
    assert uses["DFSEBV2"] == ("pad_num", "SE", "SE_LN")
    assert uses["ExquisiteNetV2"] == ("DFSEBV2", "FCT", "EVE", "ME", "DW")
    assert uses["FCT"] == uses["EVE"] == ("MinPool2d",)
    assert uses["DW"] == ("pad_num",)
    assert uses["SE"] == uses["SE_LN"] == uses["get_optimizer"] == ()
    used_by = {name: block.used_by for name, block in seed.blocks.items()}
    assert used_by["pad_num"] == ("DFSEBV2", "DW")
    assert used_by["SE"] == used_by["SE_LN"] == ("DFSEBV2",)
    assert used_by["MinPool2d"] == ("FCT", "EVE")
    assert used_by["ExquisiteNetV2"] == used_by["get_optimizer"] == ()


def test_dependencies_of_a_differently_written_file_include_forward_references() -> None:
    model = ModelFile.read(MODELS / "residual_net.py")
    uses = {name: block.uses for name, block in model.blocks.items()}
    assert uses == {
        "Stem": ("conv3x3", "activation"),
        "Residual": ("conv3x3", "activation"),
        "ScaledResidual": ("Residual", "activation"),
        "padding_for": (),
        "conv3x3": ("padding_for",),
        "activation": (),
        "Net": ("Stem", "Residual", "ScaledResidual"),
    }
    assert model.blocks["Residual"].used_by == ("ScaledResidual", "Net")
    assert model.blocks["activation"].used_by == ("Stem", "Residual", "ScaledResidual")


def test_block_source_and_lines_cover_decorators(seed: ModelFile) -> None:
    model = ModelFile.read(MODELS / "residual_net.py")
    padding = model.blocks["padding_for"]
    assert padding.source.startswith("@lru_cache(maxsize=None)\ndef padding_for")
    lines = model.source.splitlines()
    assert lines[padding.first_line - 1] == "@lru_cache(maxsize=None)"
    assert lines[padding.last_line - 1].strip() == "return kernel // 2"
    se = seed.blocks["SE"]
    assert seed.source.splitlines()[se.first_line - 1] == "class SE(nn.Module):"


def test_unknown_block_lists_the_real_ones(seed: ModelFile) -> None:
    with pytest.raises(UnknownBlockError) as caught:
        seed.block("SEX")
    assert str(caught.value) == f"no block named 'SEX'; blocks in this file: {', '.join(SEED_BLOCKS)}"


def test_parse_error_is_located(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import torch\n\nclass A:\n    def f(self):\n        return (1 +\n")
    with pytest.raises(SourceParseError) as caught:
        ModelFile.read(path)
    error = caught.value
    assert str(error).startswith(f"{path}:")
    assert (error.line, error.column) >= (5, 1) and "cannot parse" in str(error)
    assert "\n" not in str(error)


def test_missing_and_binary_files_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(AstevoError, match="no such file"):
        ModelFile.read(tmp_path / "absent.py")
    binary = tmp_path / "weights.py"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(AstevoError, match="not a UTF-8 text file"):
        ModelFile.read(binary)


def test_duplicate_definitions_are_refused() -> None:
    with pytest.raises(BlockShapeError, match="defines A more than once"):
        ModelFile("def A():\n    pass\n\n\nclass A:\n    pass\n")


@pytest.mark.parametrize(
    ("new_source", "message"),
    [
        ("class SE(nn.Module):\n    pass\n\nclass Extra:\n    pass\n", "exactly one class definition"),
        ("class Squeeze(nn.Module):\n    pass\n", "must define class SE, found class Squeeze"),
        ("def SE(x):\n    return x\n", "must define class SE, found function SE"),
        ("x = 1\n", "found a SimpleStatementLine statement"),
        ("", "found nothing"),
    ],
)
def test_replacement_must_be_one_definition_of_same_name_and_kind(seed: ModelFile, new_source, message) -> None:
    with pytest.raises(BlockShapeError, match=message):
        seed.replace("SE", new_source)


def test_replacement_that_does_not_parse_is_located(seed: ModelFile) -> None:
    with pytest.raises(SourceParseError, match=r"^<new SE>:2:"):
        seed.replace("SE", "class SE(nn.Module):\n    def (\n")


def test_replacing_a_seed_block_keeps_every_other_byte(seed: ModelFile) -> None:
    block = seed.blocks["SE"]
    new = "class SE(nn.Module):\n    def __init__(self, cin, ratio):\n        super().__init__()\n"
    child = seed.replace("SE", new)
    before, after = seed.source.split(block.source)
    assert child.source == before + new + after
    assert child.blocks["SE"].source == new
    for name in SEED_BLOCKS:
        if name != "SE":
            assert child.blocks[name].source == seed.blocks[name].source


@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(source=hypothesmith.from_grammar())
def test_arbitrary_python_keeps_its_bytes_and_self_replacement_is_identity(source: str) -> None:
    try:
        cst.parse_module(source)
    except cst.ParserSyntaxError:
        assume(False)  # Python accepts it but libcst cannot parse it (a line continuation right before the end)
    try:
        model = ModelFile(source)
    except BlockShapeError:
        assume(False)  # generated code that defines one name twice has no addressable blocks
    assert model.source == source
    for name, block in model.blocks.items():
        assert model.replace(name, block.source).source == source


@settings(max_examples=30, deadline=None)
@given(program=programs(), style=styles)
def test_model_files_round_trip_and_self_replacement_is_identity(program, style) -> None:
    source = render(program, style)
    model = ModelFile(source)
    assert model.module.code == source
    assert list(model.blocks) == [d.name for d in program]
    for name, block in model.blocks.items():
        assert model.replace(name, block.source).source == source


@settings(max_examples=40, deadline=None)
@given(data=st.data(), program=programs(min_size=2), style=styles)
def test_replacing_block_k_leaves_every_other_block_and_byte(data, program, style) -> None:
    model = ModelFile(render(program, style))
    target = data.draw(st.sampled_from([d.name for d in program]))
    fresh = data.draw(definitions(target))
    fresh = replace(fresh, kind=model.blocks[target].kind)
    new_source = render_definition(fresh, data.draw(styles))
    child = model.replace(target, new_source)
    old_block = model.blocks[target]
    start = _offset(model.source, old_block.first_line)
    end = start + len(old_block.source)
    new_block = child.blocks[target]
    new_start = _offset(child.source, new_block.first_line)
    assert child.source[:new_start] == model.source[:start]
    assert child.source[new_start + len(new_block.source) :] == model.source[end:]
    assert canonical_hash(new_block.source) == canonical_hash(new_source)
    for name in model.blocks:
        if name != target:
            assert child.blocks[name].source == model.blocks[name].source


def _offset(source: str, line: int) -> int:
    return sum(len(text) for text in source.splitlines(keepends=True)[: line - 1])


@pytest.mark.slow
@settings(max_examples=80, deadline=None)
@given(program=programs(), first=styles, second=styles)
def test_canonical_hash_ignores_layout_comments_and_docstring_wrapping(program, first, second) -> None:
    a, b = ModelFile(render(program, first)), ModelFile(render(program, second))
    assert canonical_hash(a.source) == canonical_hash(b.source)
    for name in a.blocks:
        assert canonical_hash(a.blocks[name].source) == canonical_hash(b.blocks[name].source)


@settings(max_examples=80, deadline=None)
@given(data=st.data(), program=programs(), style=styles)
def test_canonical_hash_notices_real_edits(data, program, style) -> None:
    index = data.draw(st.integers(0, len(program) - 1))
    definition = program[index]
    edited = data.draw(st.sampled_from(["constant", "operator", "target"]))
    statement = definition.statements[0]
    if edited == "constant":
        changed = replace(statement, constant=statement.constant + 1)
    elif edited == "operator":
        changed = replace(statement, operator={"+": "-", "-": "*", "*": "+"}[statement.operator])
    elif edited == "target":
        changed = replace(statement, target=statement.target + "_")
    else:
        changed = statement
    new_definition = replace(definition, statements=(changed, *definition.statements[1:]))
    edited_program = (*program[:index], new_definition, *program[index + 1 :])
    assert canonical_hash(render(program, style)) != canonical_hash(render(edited_program, style))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), program=programs(), style=styles)
def test_an_edit_of_docstrings_alone_is_a_copy(data, program, style) -> None:
    """Dropping or rewording a docstring (GE's small models do both) must not count as a new individual."""
    index = data.draw(st.integers(0, len(program) - 1))
    definition = program[index]
    docstring = data.draw(st.sampled_from([None, "Reworded entirely.", "x"]))
    edited_program = (*program[:index], replace(definition, docstring=docstring), *program[index + 1 :])
    assert canonical_hash(render(program, style)) == canonical_hash(render(edited_program, style))


def test_canonical_hash_on_the_seed_ignores_comments_but_not_code(seed: ModelFile) -> None:
    se = seed.blocks["SE"].source
    commented = se.replace("        super().__init__()", "        super().__init__()  # set up\n\n        # layers")
    assert canonical_hash(commented) == canonical_hash(se)
    assert canonical_hash(se.replace("bias=False)", "bias=True)", 1)) != canonical_hash(se)
    assert canonical_hash(se.replace("nn.ReLU()", "nn.GELU()")) != canonical_hash(se)
