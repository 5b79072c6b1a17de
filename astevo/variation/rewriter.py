"""GE's LLM mutation of one block (with Evolution of Thought): ask, judge the answer, retry with the reason."""

from __future__ import annotations

import ast
import random
import time
from collections.abc import Callable

from astevo.code.blocks import Block, split_header
from astevo.code.canonical import canonical_hash
from astevo.llm.backend import Completion, Generator
from astevo.llm.grammar import assignment_grammar, continuation_grammar, layer_grammar
from astevo.settings import INTENTS
from astevo.variation import prompts
from astevo.variation.answers import RejectedAnswer, block_from_answer
from astevo.variation.base import Check, Exchange, Proposal
from astevo.variation.edit_sites import EditSite, sites
from astevo.variation.vocabulary import edit_vocabulary

TEMPERATURES = {"mutate": (0.05, 0.4), "eot": (0.05, 0.4)}
MAX_NEW_TOKENS = (600, 1400)
MAX_EDIT_TOKENS = 48  # one line; a longer answer is rambling and is cut
# Which spots an intent edits first: numbers and arguments for value changes, new or
# rewritten computations for added functionality.
INTENT_SPOTS = {
    "hyperparameters": ("arguments", "layers"),
    "unusual_values": ("arguments", "layers"),
    "fewer_parameters": ("arguments", "layers"),
    "complexity": ("layers", "computations", "arguments"),
    "rare_enhancement": ("layers", "computations", "arguments"),
    "bold_change": ("computations", "layers", "arguments"),
}
Scope = str  # "line": continue from one spot of the block; "block": write the whole body


class BlockRewriter:
    """Asks the model for a new version of a block until one is accepted or the retries run out."""

    def __init__(
        self,
        llm: Generator,
        rng: random.Random,
        *,
        grammar: Callable[[Block], str | None] | None = None,
        check: Check | None = None,
        max_repairs: int = 3,
        scope: Scope = "line",
    ) -> None:
        self.llm, self.rng, self.grammar, self.check, self.max_repairs = llm, rng, grammar, check, max_repairs
        self.scope = scope

    def mutate(
        self,
        block: Block,
        file_source: str,
        intent: str | None = None,
        persona: str | None = None,
        exemplar: prompts.Exemplar | None = None,
    ) -> Proposal:
        intent = intent or self.rng.choice(INTENTS)
        operator = "eot" if exemplar else "mutate"
        request = prompts.mutation_prompt(block.name, block.source, intent, persona, exemplar)
        if self.scope == "line" and any(sites(block.source).values()):  # else the whole body
            return self._propose_edits(block, file_source, operator, intent, persona, request)
        return self._propose(block, operator, intent, persona, request, avoid=(block.source,))

    def _propose_edits(
        self,
        block: Block,
        file_source: str,
        operator: str,
        intent: str,
        persona: str | None,
        request: str,
    ) -> Proposal:
        """Continue the block from one spot at a time; a rejected change moves on to another spot."""
        spots = sites(block.source)
        order = [group for group in INTENT_SPOTS[intent] if spots[group]] or [g for g in spots if spots[g]]
        low, high = TEMPERATURES[operator]
        exchanges: list[Exchange] = []
        note = ""
        tried: set[EditSite] = set()
        for attempt in range(1 + self.max_repairs):
            group = order[0] if attempt == 0 or len(order) == 1 else self.rng.choice(order)
            fresh = [spot for spot in spots[group] if spot not in tried] or spots[group]
            site = self.rng.choice(fresh)
            tried.add(site)
            messages = [
                {"role": "system", "content": prompts.system_prompt()},
                {"role": "user", "content": request + prompts.spot_prompt(site.kind, _line(block, site)) + note},
            ]
            temperature, seed = self.rng.uniform(low, high), self.rng.randrange(2**31)
            completion = self.llm.complete(
                messages,
                prefix=_prefix(block, site),
                grammar=_edit_grammar(file_source, site),
                temperature=temperature,
                max_tokens=MAX_EDIT_TOKENS,
                seed=seed,
                avoid=site.avoided,
            )
            started = time.perf_counter()
            source, verdict = self._judge_edit(block, site, completion)
            exchanges.append(
                _exchange("propose" if attempt == 0 else "repair", completion, temperature, seed, started, verdict)
            )
            if verdict is None:
                return Proposal(block.name, operator, intent, persona, source, tuple(exchanges))
            note = "\n" + prompts.retry_prompt(verdict)
        return Proposal(block.name, operator, intent, persona, None, tuple(exchanges))

    def _judge_edit(self, block: Block, site: EditSite, completion: Completion) -> tuple[str | None, str | None]:
        if completion.finish != "complete":
            return None, "the new line was not finished"
        lines = block.source.splitlines(keepends=True)
        index = site.statement.line - 1
        written = (
            site.statement.indent
            + ("" if site.kind == "insert" else site.statement.lead + site.kept_value)
            + completion.text
        )
        kept = lines[index : index + 1] if site.kind == "insert" else []
        try:
            source = block_from_answer(block, "", "".join(lines[:index] + [written] + kept + lines[index + 1 :]))
        except RejectedAnswer as error:
            return None, str(error)
        return self._accept(block, source, {canonical_hash(block.source)})

    def _propose(
        self,
        block: Block,
        operator: str,
        intent: str | None,
        persona: str | None,
        request: str,
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
                messages,
                prefix=header,
                grammar=grammar,
                temperature=temperature,
                max_tokens=self.rng.randint(*MAX_NEW_TOKENS),
                seed=seed,
            )
            started = time.perf_counter()
            source, verdict = self._judge(block, header, completion.text, forbidden)
            exchanges.append(_exchange(purpose, completion, temperature, seed, started, verdict))
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
        return self._accept(block, source, forbidden)

    def _accept(self, block: Block, source: str, forbidden: set[str]) -> tuple[str | None, str | None]:
        if canonical_hash(source) in forbidden:
            return None, f"it is a copy of the version you were shown; change {block.name} as asked"
        reason = self.check(source) if self.check else None
        return (None, reason) if reason else (source, None)


def _exchange(
    purpose: str, completion: Completion, temperature: float, seed: int, judged_from: float, verdict: str | None
) -> Exchange:
    """The record of one call; its time includes judging the answer, which started at `judged_from`."""
    seconds = completion.seconds + time.perf_counter() - judged_from
    return Exchange(
        purpose,
        completion.prompt,
        completion.text,
        temperature,
        seed,
        completion.n_tokens,
        seconds,
        completion.finish,
        verdict,
    )


def _line(block: Block, site: EditSite) -> str:
    return block.source.splitlines()[site.statement.line - 1]


def _prefix(block: Block, site: EditSite) -> str:
    """The block's text up to the spot, given to the model as already written."""
    before = "".join(block.source.splitlines(keepends=True)[: site.statement.line - 1])
    statement = site.statement
    if site.kind == "insert":
        return before + statement.indent
    return before + statement.indent + statement.lead + site.kept_value


def _edit_grammar(file_source: str, site: EditSite) -> str:
    vocabulary = edit_vocabulary(file_source, site)
    if site.kind == "insert":
        used = {node.id for node in ast.walk(ast.parse(site.statement.value)) if isinstance(node, ast.Name)}
        read = [name for name in site.statement.locals_before if name != "self" and name in used]
        return assignment_grammar(read or [n for n in site.statement.locals_before if n != "self"], vocabulary)
    if site.kind == "replace" and site.split == 0:
        return layer_grammar(vocabulary)
    return continuation_grammar(site.open_brackets, site.kept_value.endswith(","), vocabulary)
