"""What every Generator promises, run against each implementation: llama.cpp in this process, and the same tiny
model served by a real llama-cpp-python server (as Optuna runs one storage suite over every storage)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from astevo.llm.backend import Generator
from astevo.llm.factory import make_generator
from astevo.llm.grammar import choice_grammar
from astevo.settings import LlamaCppSettings, MutationSettings, ServerSettings
from tests.conftest import TINY_MODEL

pytestmark = pytest.mark.needs_model
MESSAGES = [
    {"role": "system", "content": "You are a careful PyTorch engineer."},
    {"role": "user", "content": "Name one activation function."},
]
CHOICES = ["nn.ReLU()", "nn.GELU()", "nn.SiLU()"]


@pytest.fixture(scope="module", params=["in-process", "served"])
def generator(request: pytest.FixtureRequest) -> Iterator[Generator]:
    if request.param == "in-process":
        settings = MutationSettings(model=TINY_MODEL, llama_cpp=LlamaCppSettings(context=1024))
    else:
        url = request.getfixturevalue("server_url")
        settings = MutationSettings(model="smollm2", backend="server", server=ServerSettings(url=url, retries=0))
    yield make_generator(settings)


def test_a_grammar_makes_the_answer_one_of_its_choices(generator: Generator) -> None:
    generator.restart(MESSAGES[0]["content"])
    answer = generator.complete(MESSAGES, prefix="        self.act = ", grammar=choice_grammar(CHOICES), seed=3)
    assert answer.finish == "complete" and answer.text in [f"{choice}\n" for choice in CHOICES]
    assert answer.prompt.endswith("        self.act = ") and MESSAGES[1]["content"] in answer.prompt
    assert answer.n_prompt_tokens > 0 and answer.n_tokens >= 1 and answer.seconds > 0


def test_an_answer_stops_at_its_token_budget(generator: Generator) -> None:
    generator.restart(MESSAGES[0]["content"])
    answer = generator.complete(MESSAGES, prefix="Here is a long essay about", max_tokens=4, temperature=0.8, seed=1)
    assert answer.finish in ("length", "eos") and 1 <= answer.n_tokens <= 4


def test_the_same_seed_after_a_restart_gives_the_same_answer(generator: Generator) -> None:
    answers = []
    for _ in range(2):
        generator.restart(MESSAGES[0]["content"])
        answers.append(generator.complete(MESSAGES, max_tokens=12, temperature=0.7, seed=11).text)
    assert answers[0] == answers[1]


def test_the_identity_is_a_record_that_matches_itself(generator: Generator) -> None:
    record = generator.identity.record()
    assert generator.identity.matches(record) and record["name"] and generator.name
    assert record["name"] in ("smollm2", TINY_MODEL)
