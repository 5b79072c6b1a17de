"""GE's variation operators on one block: LLM mutation (with Evolution of Thought) and LLM merge.

An operator returns a Proposal that carries every prompt and answer, so the run record
shows exactly what the model was asked and said, including resamples and repairs.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

from astevo import prompts
from astevo.answers import RejectedAnswer, block_from_answer
from astevo.blocks import Block, split_header
from astevo.canonical import canonical_hash

TEMPERATURES = {"mutate": (0.05, 0.4), "eot": (0.05, 0.4), "merge": (0.05, 0.1)}
MAX_NEW_TOKENS = (600, 1400)

Check = Callable[[str], "str | None"]  # a block's new source -> why it fails the fast checks, or None


class Completion(Protocol):
    text: str
    prompt: str
    n_tokens: int
    seconds: float
    finish: str


class Generator(Protocol):
    def complete(
        self, messages: list[dict[str, str]], *, prefix: str, grammar: str | None, temperature: float,
        max_tokens: int, seed: int | None,
    ) -> Completion: ...


@dataclass(frozen=True)
class Exchange:
    """One call to the model: why it was made, what it was shown and what it wrote."""

    purpose: str  # "propose", "resample" or "repair"
    prompt: str
    answer: str
    temperature: float
    seed: int
    tokens: int
    seconds: float
    finish: str
    verdict: str | None  # why the answer was not accepted, or None


@dataclass(frozen=True)
class Proposal:
    block: str
    operator: str  # "mutate", "eot" or "merge"
    intent: str | None
    persona: str | None
    source: str | None
    exchanges: tuple[Exchange, ...] = field(default_factory=tuple)

    @property
    def accepted(self) -> bool:
        return self.source is not None

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.exchanges)

    @property
    def error(self) -> str | None:
        return None if self.accepted or not self.exchanges else self.exchanges[-1].verdict


class BlockRewriter:
    """Asks the model for a new version of a block until one is accepted or the retries run out."""

    def __init__(
        self, llm: Generator, rng: random.Random, *, grammar: Callable[[Block], str | None] | None = None,
        check: Check | None = None, max_repairs: int = 2,
    ) -> None:
        self.llm, self.rng, self.grammar, self.check, self.max_repairs = llm, rng, grammar, check, max_repairs

    def mutate(
        self, block: Block, intent: str | None = None, persona: str | None = None,
        exemplar: prompts.Exemplar | None = None,
    ) -> Proposal:
        intent = intent or self.rng.choice(prompts.INTENTS)
        operator = "eot" if exemplar else "mutate"
        request = prompts.mutation_prompt(block.name, block.source, intent, persona, exemplar)
        return self._propose(block, operator, intent, persona, request, avoid=(block.source,))

    def merge(self, block: Block, other_source: str) -> Proposal:
        request = prompts.merge_prompt(block.name, block.source, other_source)
        return self._propose(block, "merge", None, None, request, avoid=(block.source, other_source))

    def _propose(
        self, block: Block, operator: str, intent: str | None, persona: str | None, request: str,
        avoid: tuple[str, ...],
    ) -> Proposal:
        header, _ = split_header(block.source)
        grammar = self.grammar(block) if self.grammar else None
        messages = [{"role": "system", "content": prompts.system_prompt()}, {"role": "user", "content": request}]
        low, high = TEMPERATURES[operator]
        exchanges: list[Exchange] = []
        forbidden = {canonical_hash(source) for source in avoid}
        purpose = "propose"
        for _ in range(1 + self.max_repairs):
            temperature = self.rng.uniform(low, high)
            seed = self.rng.randrange(2**31)
            completion = self.llm.complete(
                messages, prefix=header, grammar=grammar, temperature=temperature,
                max_tokens=self.rng.randint(*MAX_NEW_TOKENS), seed=seed,
            )
            started = time.perf_counter()
            source, verdict = self._judge(block, header, completion.text, forbidden)
            exchanges.append(Exchange(
                purpose, completion.prompt, completion.text, temperature, seed, completion.n_tokens,
                completion.seconds + time.perf_counter() - started, completion.finish, verdict,
            ))
            if verdict is None:
                return Proposal(block.name, operator, intent, persona, source, tuple(exchanges))
            messages = [
                *messages,
                {"role": "assistant", "content": header + completion.text},
                {"role": "user", "content": prompts.repair_prompt(block.name, verdict)},
            ]
            purpose = "repair"
        return Proposal(block.name, operator, intent, persona, None, tuple(exchanges))

    def _judge(self, block: Block, header: str, answer: str, forbidden: set[str]) -> tuple[str | None, str | None]:
        try:
            source = block_from_answer(block, header, answer)
        except RejectedAnswer as error:
            return None, str(error)
        if canonical_hash(source) in forbidden:
            return None, f"it is a copy of the version you were shown; change {block.name} as asked"
        reason = self.check(source) if self.check else None
        return (None, reason) if reason else (source, None)
