"""Block-body grammars, checked with llguidance on the real SmolLM2 tokenizer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from astevo.llm.backend import KEEP_CAPTURE, GrammarError
from astevo.llm.grammar import MAX_LINE_CHARS, body_grammar
from astevo.llm.llama_cpp_backend import LlamaCppGenerator

pytestmark = pytest.mark.needs_model

SEED = Path(__file__).resolve().parents[1] / "seeds" / "exquisitenetv2.py"
SE_FIXED = ["    def __init__(self, cin, ratio):", "        super().__init__()"]


def seed_blocks() -> list[tuple[str, str]]:
    """(kind, body text) for every top-level block of the seed model."""
    source = SEED.read_text()
    lines = source.splitlines(keepends=True)
    blocks = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            blocks.append((kind, "".join(lines[node.lineno : node.end_lineno])))
    return blocks


def feed(llm: LlamaCppGenerator, grammar: str, text: str):
    """The matcher after consuming `text`, and whether every token of it was allowed.

    Token by token, as in generation: `validate_tokens` ignores a lexeme's max_tokens.
    """
    matcher = llm.matcher(grammar)
    for token in llm.tokenizer.tokenize_str(text):
        if matcher.is_stopped() or not matcher.consume_token(token):
            return matcher, False
    return matcher, True


@pytest.mark.parametrize("kind", ["class", "function"])
@pytest.mark.parametrize("fixed", [None, SE_FIXED])
def test_templates_compile(llm: LlamaCppGenerator, kind: str, fixed: list[str] | None) -> None:
    matcher = llm.matcher(body_grammar(kind, fixed_lines=fixed))
    assert not matcher.is_error()
    assert not matcher.is_accepting()  # an empty body is not a body


def test_every_block_of_the_seed_is_accepted(llm: LlamaCppGenerator) -> None:
    blocks = seed_blocks()
    assert {kind for kind, _ in blocks} == {"class", "function"}
    for kind, body in blocks:
        matcher, ok = feed(llm, body_grammar(kind), body + "\n\nclass")
        assert ok, body
        assert matcher.is_stopped()
        assert matcher.get_capture(KEEP_CAPTURE).decode() == body


def test_end_of_generation_is_allowed_after_a_complete_body(llm: LlamaCppGenerator) -> None:
    matcher, ok = feed(llm, body_grammar("function"), "    return 1\n")
    assert ok and matcher.is_accepting() and not matcher.is_stopped()
    eos = llm.tokenizer.eos_token
    assert matcher.consume_token(eos) and matcher.is_stopped()


GOOD_CLASS = (
    "    def __init__(self, cin, ratio):\n"
    "        super().__init__()\n"
    "        self.scale = nn.Parameter(torch.ones(cin))\n"
    "\n"
    "    def forward(self, x):\n"
    "        return x * self.scale[None, :, None, None]\n"
)


@pytest.mark.parametrize(
    "bad_line",
    [
        "\tself.a = 1\n",  # tab indentation
        "        import os\n",
        "        from torch import nn\n",
        "        " + "x" * MAX_LINE_CHARS + "\n",  # too long
        "        \n",  # whitespace-only line
        "  self.a = 1\n",  # shallower than the body
        "          self.a = 1\n",  # not a whole number of indentation steps
        "                self.a = 1\n",  # two steps deeper than the line before
        "        The original block is too simple.\n",  # prose
        "        1. Add a second gate\n",  # a numbered list
        "        1.1.2\n",  # a section number
    ],
)
def test_bad_lines_are_rejected(llm: LlamaCppGenerator, bad_line: str) -> None:
    text = GOOD_CLASS.replace("        self.scale", bad_line + "        self.scale")
    _, ok = feed(llm, body_grammar("class"), text)
    assert not ok


def test_docstrings_may_span_lines_of_prose(llm: LlamaCppGenerator) -> None:
    docstring = (
        '        """Scale each channel.\n'
        "\n"
        "        The scale starts at one, so the block starts as identity.\n"
        '        """\n'
    )
    text = GOOD_CLASS.replace("        self.scale", docstring + "        self.scale")
    matcher, ok = feed(llm, body_grammar("class"), text)
    assert ok and matcher.is_accepting()


def test_keyword_statements_are_not_prose(llm: LlamaCppGenerator) -> None:
    body = (
        "    if not weight_decay:\n"
        "        raise ValueError(weight_decay)\n"
        "    for name, param in model.named_parameters():\n"
        "        assert param is not None\n"
        "    return torch.optim.SGD(model.parameters(), lr=lr)\n"
    )
    matcher, ok = feed(llm, body_grammar("function"), body)
    assert ok and matcher.is_accepting()


def test_names_merely_starting_like_import_are_fine(llm: LlamaCppGenerator) -> None:
    statement = "        from_logits = imports = 1\n"
    text = GOOD_CLASS.replace("        self.scale", statement + "        self.scale")
    matcher, ok = feed(llm, body_grammar("class"), text)
    assert ok and matcher.is_accepting()


def test_a_column_zero_line_ends_the_body_and_nothing_follows(llm: LlamaCppGenerator) -> None:
    _, ok = feed(llm, body_grammar("class"), GOOD_CLASS + "x = 1\n")
    assert not ok
    matcher, ok = feed(llm, body_grammar("class"), GOOD_CLASS + "```")
    assert ok and matcher.is_stopped()


def test_indentation_may_deepen_one_step_and_return_to_any_outer_level(llm: LlamaCppGenerator) -> None:
    body = (
        "    for stage in range(3):\n"
        "        if stage:\n"
        "            layers = nn.Sequential(\n"
        "                nn.ReLU(),\n"
        "            )\n"
        "    return layers\n"
    )
    matcher, ok = feed(llm, body_grammar("function"), body)
    assert ok and matcher.is_accepting()
    _, ok = feed(llm, body_grammar("function"), "    if a:\n            return 1\n")
    assert not ok


def test_at_most_two_blank_lines_in_a_row(llm: LlamaCppGenerator) -> None:
    _, ok = feed(llm, body_grammar("function"), "    a = 1\n\n\n    return a\n")
    assert ok
    _, ok = feed(llm, body_grammar("function"), "    a = 1\n\n\n\n    return a\n")
    assert not ok


def test_a_class_body_needs_forward(llm: LlamaCppGenerator) -> None:
    without = GOOD_CLASS.replace("def forward(self, x)", "def call(self, x)")
    matcher, ok = feed(llm, body_grammar("class"), without)
    assert ok and not matcher.is_accepting()
    _, ok = feed(llm, body_grammar("class"), without + "\nclass")
    assert not ok
    matcher, _ = feed(llm, body_grammar("function"), without)
    assert matcher.is_accepting()


def test_forward_must_sit_at_method_level(llm: LlamaCppGenerator) -> None:
    nested = GOOD_CLASS.replace("    def forward", "        def forward")
    matcher, ok = feed(llm, body_grammar("class"), nested)
    assert ok and not matcher.is_accepting()


def test_fixed_lines_are_forced_first(llm: LlamaCppGenerator) -> None:
    grammar = body_grammar("class", fixed_lines=SE_FIXED)
    matcher = llm.matcher(grammar)
    forced = matcher.compute_ff_bytes().decode()
    fixed_text = "".join(line + "\n" for line in SE_FIXED)
    assert fixed_text.startswith(forced) and len(forced) >= len(fixed_text) - 1
    matcher, ok = feed(llm, grammar, GOOD_CLASS + "\n\nclass")
    assert ok and matcher.is_stopped()
    changed_signature = GOOD_CLASS.replace("(self, cin, ratio)", "(self, cin)")
    _, ok = feed(llm, grammar, changed_signature)
    assert not ok
    swapped = GOOD_CLASS.replace("super().__init__()\n", "", 1).replace(
        "ones(cin))\n", "ones(cin))\n        super().__init__()\n"
    )
    _, ok = feed(llm, grammar, swapped)
    assert not ok


def test_fixed_lines_are_taken_literally(llm: LlamaCppGenerator) -> None:
    line = '    label = "a\\"b" + \'é\' + r"\\d{2}"'
    grammar = body_grammar("function", fixed_lines=[line])
    matcher, ok = feed(llm, grammar, line + "\n    return label\n")
    assert ok and matcher.is_accepting()


@pytest.mark.parametrize(
    ("kind", "indent", "fixed"),
    [
        ("module", "    ", None),
        ("class", "\t", None),
        ("class", "", None),
        ("class", "    ", ["def __init__(self):"]),  # not indented
        ("class", "    ", ["      x = 1"]),  # not whole steps
        ("class", "    ", ["    a = 1\n    b = 2"]),  # two lines in one
    ],
)
def test_bad_arguments_are_refused(kind: str, indent: str, fixed: list[str] | None) -> None:
    with pytest.raises(ValueError):
        body_grammar(kind, indent, fixed)  # type: ignore[arg-type]


def test_invalid_lark_is_a_grammar_error(llm: LlamaCppGenerator) -> None:
    with pytest.raises(GrammarError, match="invalid grammar"):
        llm.matcher("start: (")
