"""One-line edit grammars and their vocabularies, on the real SmolLM2 tokenizer."""

from __future__ import annotations

import pytest

from astevo.code.blocks import ModelFile
from astevo.llm.grammar import assignment_grammar, continuation_grammar, layer_grammar
from astevo.paths import default_seed_path
from astevo.variation.edit_sites import sites
from astevo.variation.vocabulary import callee_keywords, edit_vocabulary, layer_names
from tests.test_grammar import feed

pytestmark = pytest.mark.needs_model

SEED = ModelFile.read(default_seed_path())


def spot(block: str, lead: str, kind: str):
    return next(
        s
        for group in sites(SEED.blocks[block].source).values()
        for s in group
        if s.statement.lead == lead and s.kind == kind
    )


def accepts(llm, grammar: str, text: str) -> bool:
    matcher, ok = feed(llm, grammar, text)
    return ok and matcher.is_accepting()


def test_continuation_offers_only_the_called_layers_keywords(llm) -> None:
    site = spot("ME", "self.pw = ", "append")
    assert site.kept_value == "nn.Conv2d(cin, cout, 1, bias=False,"
    vocabulary = edit_vocabulary(SEED.source, site)
    assert vocabulary.keywords == callee_keywords("nn.Conv2d", SEED.source)
    grammar = continuation_grammar(site.open_brackets, True, vocabulary)
    assert accepts(llm, grammar, " stride=1)\n")
    assert accepts(llm, grammar, " dilation=cout // 2)\n")
    assert not accepts(llm, grammar, " dh_s=1)\n")  # not a Conv2d keyword
    assert not accepts(llm, grammar, " stride=undefined_name)\n")  # not in scope
    assert not accepts(llm, grammar, " stride=1)) * 2\n")  # nothing after the call closes


def test_layer_and_new_line_grammars(llm) -> None:
    site = spot("DW", "self.act = ", "replace")
    vocabulary = edit_vocabulary(SEED.source, site)
    assert {"ReLU", "Hardswish", "Identity"} <= layer_names() and "Conv2d" not in layer_names()
    assert accepts(llm, layer_grammar(vocabulary), "nn.GELU()\n")
    assert not accepts(llm, layer_grammar(vocabulary), "nn.Conv2d()\n")
    assert not accepts(llm, layer_grammar(vocabulary), "1.0 * nn.GELU()\n")
    lines = assignment_grammar(["y"], vocabulary)
    for text in ("y = F.silu(y)\n", "y = y + F.gelu(y)\n", "y = y * 0.5\n"):
        assert accepts(llm, lines, text), text
    assert not accepts(llm, lines, "x = F.silu(x)\n")
    assert not accepts(llm, lines, "y = y.view(-1)\n")


def test_expressions_keep_brackets_balanced_and_names_in_scope(llm) -> None:
    site = spot("FCT", "self.dw = ", "replace")
    grammar = continuation_grammar(
        site.open_brackets, site.kept_value.endswith(","), edit_vocabulary(SEED.source, site)
    )
    assert accepts(llm, grammar, " max(cin // 2, 1))\n")
    assert not accepts(llm, grammar, " max(cin // 2, 1)\n")
    assert not accepts(llm, grammar, " x)\n")  # no x in __init__


def test_constructor_arguments_that_carry_structure_are_not_spots() -> None:
    kept = [s.kept_value for s in sites(SEED.blocks["DFSEBV2"].source)["arguments"] if s.kind == "replace"]
    assert "nn.Conv2d(cin, cin," in kept  # the 1x1 kernel size is a setting
    assert "nn.Conv2d(" not in kept and "nn.Conv2d(cin," not in kept  # channel counts are structure
    assert all(s.statement.function == "__init__" for s in sites(SEED.blocks["DFSEBV2"].source)["arguments"])


@pytest.mark.parametrize("block", ["SE", "SE_LN", "DFSEBV2", "FCT", "EVE", "ME", "DW", "ExquisiteNetV2"])
def test_every_class_block_of_the_seed_has_spots(block: str) -> None:
    assert any(sites(SEED.blocks[block].source).values())
