"""The served-model backend against real HTTP servers that answer as each kind of model server does: what each
request carries, what each kind can do, and a server that is down, slow or answering garbage."""

from __future__ import annotations

import re

import llama_cpp
import pytest

from astevo.errors import AstevoError
from astevo.llm.backend import GrammarError
from astevo.llm.gbnf import lark_to_gbnf, regex_to_gbnf
from astevo.llm.gguf import resolve_model
from astevo.llm.grammar import (
    Vocabulary,
    assignment_grammar,
    body_grammar,
    choice_grammar,
    continuation_grammar,
    layer_grammar,
)
from astevo.llm.identity import served_identity
from astevo.llm.served import ServedGenerator
from astevo.llm.server_client import ServerAnswerError, ServerClient, ServerUnavailable
from astevo.settings import MutationSettings, ServerSettings
from astevo.variation.llm_mutation import LLMVariation
from tests.conftest import TINY_MODEL
from tests.fake_model_server import completion, cut_off_once, fake_server, listing, slow

VOCABULARY = Vocabulary(
    names=frozenset({"x", "self", "cin"}),
    attributes=frozenset({"conv", "relu"}),
    keywords=frozenset({"inplace", "stride", "padding"}),
    layers=frozenset({"ReLU", "Sigmoid", "Hardswish"}),
)
MESSAGES = [{"role": "system", "content": "You write PyTorch."}, {"role": "user", "content": "Change it."}]


def client(url: str, retries: int = 2, timeout: float = 5.0) -> tuple[ServerClient, list[float]]:
    waits: list[float] = []
    return ServerClient(url, timeout=timeout, retries=retries, sleep=waits.append), waits


def generator(url: str) -> ServedGenerator:
    return ServedGenerator(ServerSettings(url=url), None, client(url)[0])


@pytest.fixture(scope="module")
def llama() -> llama_cpp.Llama:
    return llama_cpp.Llama(model_path=str(resolve_model(TINY_MODEL).path), n_ctx=256, verbose=False)


@pytest.mark.needs_model
@pytest.mark.parametrize("seed", range(3))
def test_the_line_grammars_in_gbnf_constrain_real_llama_cpp_sampling(llama: llama_cpp.Llama, seed: int) -> None:
    def sample(lark: str, prompt: str = "x = torch.") -> tuple[str, str]:
        grammar = llama_cpp.LlamaGrammar.from_string(lark_to_gbnf(lark), verbose=False)
        answer = llama.create_completion(prompt, grammar=grammar, max_tokens=64, seed=seed, temperature=0.7)
        return str(answer["choices"][0]["text"]), str(answer["choices"][0]["finish_reason"])

    assert sample(choice_grammar(["width 16", 'say "x"'], "pick: ", ".")) in (
        ("pick: width 16.\n", "stop"),
        ('pick: say "x".\n', "stop"),
    )
    layer, finish = sample(layer_grammar(VOCABULARY))
    assert re.fullmatch(r"nn\.(ReLU|Sigmoid|Hardswish)\(\)\n", layer) and finish == "stop"
    continued, finish = sample(continuation_grammar(2, True, VOCABULARY), "y = f(g(a,")
    assert continued.startswith(" ") and "\n" not in continued[:-1]
    if finish == "stop":  # the rest of both calls, brackets balanced (a rambling small model may run out first)
        assert continued.endswith("))\n") and continued.count(")") - continued.count("(") == 2
    assigned, finish = sample(assignment_grammar(["x", "cin"], VOCABULARY))
    assert re.fullmatch(r"(x|cin) = .*\n", assigned) and finish == "stop"


def test_what_gbnf_cannot_say_is_refused_not_loosened() -> None:
    with pytest.raises(GrammarError, match="GBNF"):
        lark_to_gbnf(body_grammar("class"))  # llguidance's & and ~ on terminals
    with pytest.raises(GrammarError, match="anchors"):
        regex_to_gbnf("^def")
    assert regex_to_gbnf(r"[0-9]{1,6}(\.[0-9]+)?") == '[0-9]{1,6} ("." [0-9]+)?'
    assert regex_to_gbnf(r'"[a-z_ .-]{0,3}"|\d') == '"\\"" [a-z_ .-]{0,3} "\\"" | [0-9]'
    assert regex_to_gbnf(r"[\-\]a]+x") == '[\\x2D\\]a]+ "x"'


@pytest.mark.parametrize(
    ("owner", "request_route", "grammar_key"),
    [("me", "/v1/completions", "grammar"), ("vllm", "/v1/completions", "structured_outputs")],
)
def test_each_kind_of_server_gets_the_grammar_its_own_way(owner: str, request_route: str, grammar_key: str) -> None:
    routes = {"GET /v1/models": listing(owner), "POST /v1/completions": completion("nn.ReLU()\n")}
    with fake_server(routes) as server:
        served = generator(server.url)
        answer = served.complete(MESSAGES, prefix="        x = ", grammar=layer_grammar(VOCABULARY), seed=7)
    assert (answer.text, answer.finish, answer.n_prompt_tokens, answer.n_tokens) == ("nn.ReLU()\n", "complete", 12, 3)
    method, route, body = server.requests[-1]
    assert (method, route, body["model"], body["seed"]) == ("POST", request_route, "served-model", 7)
    assert body["prompt"].startswith("<|im_start|>system\nYou write PyTorch.<|im_end|>")
    assert body["prompt"].endswith("<|im_start|>assistant\n        x = ")  # the answer goes on after astevo's text
    sent = body[grammar_key] if grammar_key == "grammar" else body[grammar_key]["grammar"]
    assert sent == lark_to_gbnf(layer_grammar(VOCABULARY))
    assert served.capabilities.grammar and not served.capabilities.forbid_first_token


def test_llama_server_renders_with_its_own_template_and_keeps_the_prompt_cached() -> None:
    props = {"chat_template": "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"}
    routes = {
        "GET /v1/models": listing("llamacpp"),
        "GET /props": lambda _: (200, props),
        "POST /v1/completions": completion("x", reason="length"),
    }
    with fake_server(routes) as server:
        answer = generator(server.url).complete(MESSAGES, prefix="class SE", max_tokens=1)
    body = server.requests[-1][2]
    assert body["prompt"] == "[system] You write PyTorch.\n[user] Change it.\nclass SE"
    assert body["cache_prompt"] is True and "grammar" not in body
    assert answer.finish == "length"


def test_ollama_takes_no_grammar_so_line_scope_is_refused_and_block_scope_runs_raw() -> None:
    routes = {
        "GET /v1/models": listing("library", "qwen2.5-coder:7b"),
        "GET /api/version": lambda _: (200, {"version": "0.12.0"}),
        "POST /api/generate": lambda _: (200, {"response": "    pass\n", "done_reason": "stop", "eval_count": 2}),
    }
    with fake_server(routes) as server:
        served = generator(server.url)
        with pytest.raises(AstevoError, match="cannot constrain its output.*use --scope block"):
            LLMVariation(served, MutationSettings(scope="line"))
        LLMVariation(served, MutationSettings(scope="block"))
        answer = served.complete(MESSAGES, prefix="def f(x):\n", temperature=0.5, max_tokens=64, seed=3)
        with pytest.raises(AstevoError, match="cannot constrain output by a grammar"):
            served.complete(MESSAGES, grammar=layer_grammar(VOCABULARY))
    body = server.requests[-1][2]
    assert body["raw"] is True and body["options"]["num_predict"] == 64 and body["options"]["seed"] == 3
    assert (answer.text, answer.finish, answer.n_tokens) == ("    pass\n", "eos", 2)


def test_a_model_the_server_does_not_serve_is_a_one_line_error_naming_those_it_does() -> None:
    with fake_server({"GET /v1/models": listing("me", "smollm2")}) as server:
        with pytest.raises(ServerAnswerError, match="does not serve 'qwen'; pass --model with one of: smollm2"):
            ServedGenerator(ServerSettings(url=server.url), "qwen", client(server.url)[0])


def test_a_server_that_is_down_is_tried_with_doubling_waits_then_one_error() -> None:
    with fake_server({}) as server:
        url = server.url
    down, waits = client(url, retries=3)
    with pytest.raises(ServerUnavailable, match=r"did not answer GET .*/v1/models: .*\(4 tries over 7 s of waiting\)"):
        down.get("/models")
    assert waits == [1.0, 2.0, 4.0]


def test_a_busy_server_is_asked_again_and_its_answer_used() -> None:
    statuses = iter([503, 429, 200])
    routes = {"GET /v1/models": lambda _: (next(statuses), {"object": "list", "data": []})}
    with fake_server(routes) as server:
        busy, waits = client(server.url, retries=2)
        assert busy.get("/models") == {"object": "list", "data": []}
    assert waits == [1.0, 2.0]


def test_an_answer_cut_off_half_way_is_asked_again_and_never_used() -> None:
    routes = {"GET /v1/models": listing("me"), "POST /v1/completions": cut_off_once(completion("nn.GELU()\n"))}
    with fake_server(routes) as server:
        served = ServedGenerator(ServerSettings(url=server.url), None, client(server.url, retries=2)[0])
        answer = served.complete(MESSAGES, grammar=layer_grammar(VOCABULARY))
    assert answer.text == "nn.GELU()\n" and answer.finish == "complete"
    assert sum(route == "/v1/completions" for _, route, _ in server.requests) == 2


def test_a_slow_server_ends_in_an_error_after_its_timeout_not_a_hang() -> None:
    with fake_server({"GET /v1/models": slow(2.0, listing("me"))}) as server:
        patient, waits = client(server.url, retries=1, timeout=0.3)
        with pytest.raises(ServerUnavailable, match="no answer within 0.3 s"):
            patient.get("/models")
    assert waits == [1.0]


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((200, b"<html>gateway</html>"), "not JSON"),
        ((200, {"choices": []}), "answered without a completion"),
        ((400, {"error": {"message": "failed to parse grammar"}}), "HTTP 400 failed to parse grammar"),
    ],
)
def test_garbage_is_one_error_at_once_without_retries(answer: tuple[int, object], message: str) -> None:
    routes = {"GET /v1/models": listing("me"), "POST /v1/completions": lambda _: answer}
    with fake_server(routes) as server:
        served = ServedGenerator(ServerSettings(url=server.url), None, client(server.url, retries=3)[0])
        with pytest.raises(ServerAnswerError, match=message):
            served.complete(MESSAGES)
    assert sum(route == "/v1/completions" for _, route, _ in server.requests) == 1


def test_a_served_model_is_recorded_by_what_the_server_reports_not_by_where_it_is() -> None:
    here = served_identity("http://127.0.0.1:8080/v1", "coder", {"id": "coder", "owned_by": "me"})
    moved = served_identity("http://10.0.0.2:9000/v1", "coder", {"owned_by": "me", "id": "coder"})
    other = served_identity("http://127.0.0.1:8080/v1", "coder", {"id": "coder", "owned_by": "vllm"})
    assert moved.matches(here.record()) and not other.matches(here.record())
    assert not here.matches({"name": "coder", "path": "/models/coder.gguf", "sha256": "ab" * 32})
    with fake_server({"GET /v1/models": listing("me", "smollm2")}) as server:
        assert generator(server.url).identity.record() == {
            "name": "smollm2",
            "server": server.url,
            "report": '{"id": "smollm2", "owned_by": "me"}',
        }
