"""Who writes at a spot: the language model under the spot's grammar, the model's choice among the spot's options
ranked by their log-probabilities, or the random baseline's uniform draw over the same options. The rewriter asks
each the same way, so they differ in nothing else."""

from __future__ import annotations

import math
import random
import time
from typing import Protocol

from astevo.llm.backend import Completion, Generator
from astevo.llm.grammar import assignment_grammar, choice_grammar, continuation_grammar, layer_grammar
from astevo.llm.scoring import Scorer
from astevo.variation.edit_sites import EditSite
from astevo.variation.spot_options import insert_targets, keyword_texts, spot_options
from astevo.variation.vocabulary import edit_vocabulary

MAX_EDIT_TOKENS = 48  # one line; a longer answer is rambling and is cut
Messages = list[dict[str, str]]


class Answerer(Protocol):
    @property
    def writes_bodies(self) -> bool:
        """Whether it can write a whole new body (block scope), not only a spot or a pick."""
        ...

    def can_answer(self, file_source: str, site: EditSite) -> bool: ...

    def at_spot(
        self, messages: Messages, file_source: str, site: EditSite, prefix: str, temperature: float, seed: int
    ) -> Completion:
        """The rest of the spot's line, after `prefix` (the block up to the spot)."""
        ...

    def pick(self, messages: Messages, labels: list[str], temperature: float, seed: int) -> Completion:
        """One of `labels`, then a newline."""
        ...

    def body(
        self, messages: Messages, prefix: str, grammar: str | None, temperature: float, max_tokens: int, seed: int
    ) -> Completion:
        """A whole new body after `prefix` (the block's header)."""
        ...


class ModelAnswers:
    """The language model writes, constrained by the spot's grammar."""

    writes_bodies = True

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def can_answer(self, file_source: str, site: EditSite) -> bool:
        return True

    def at_spot(
        self, messages: Messages, file_source: str, site: EditSite, prefix: str, temperature: float, seed: int
    ) -> Completion:
        return self.generator.complete(
            messages,
            prefix=prefix,
            grammar=edit_grammar(file_source, site),
            temperature=temperature,
            max_tokens=MAX_EDIT_TOKENS,
            seed=seed,
            avoid=site.avoided,
        )

    def pick(self, messages: Messages, labels: list[str], temperature: float, seed: int) -> Completion:
        room = max([MAX_EDIT_TOKENS, *(len(label) + 1 for label in labels)])  # a token holds a character at least
        return self.generator.complete(
            messages, grammar=choice_grammar(labels), temperature=temperature, max_tokens=room, seed=seed
        )

    def body(
        self, messages: Messages, prefix: str, grammar: str | None, temperature: float, max_tokens: int, seed: int
    ) -> Completion:
        return self.generator.complete(
            messages, prefix=prefix, grammar=grammar, temperature=temperature, max_tokens=max_tokens, seed=seed
        )


class RankedAnswers(ModelAnswers):
    """The model chooses among exactly the options the random baseline draws from, each weighed by how likely
    the model finds its whole text there (at the answer's temperature), instead of writing token by token. Like
    the baseline it never writes a whole body, so the two differ only in the weights."""

    writes_bodies = False

    def __init__(self, generator: Generator, scorer: Scorer) -> None:
        super().__init__(generator)
        self.scorer = scorer

    def can_answer(self, file_source: str, site: EditSite) -> bool:
        return bool(spot_options(file_source, site))

    def at_spot(
        self, messages: Messages, file_source: str, site: EditSite, prefix: str, temperature: float, seed: int
    ) -> Completion:
        return self._ranked(messages, spot_options(file_source, site), prefix, temperature, seed)

    def pick(self, messages: Messages, labels: list[str], temperature: float, seed: int) -> Completion:
        return self._ranked(messages, [f"{label}\n" for label in labels], "", temperature, seed)

    def _ranked(self, messages: Messages, options: list[str], prefix: str, temperature: float, seed: int) -> Completion:
        started = time.perf_counter()
        scores = self.scorer.score(messages, options, prefix=prefix)
        best = max(scores)
        if not math.isfinite(best):  # the model rules every option out: nothing to weigh them by
            scores, best = [0.0] * len(options), 0.0
        weights = [math.exp((score - best) / max(temperature, 1e-3)) for score in scores]
        index = random.Random(seed).choices(range(len(options)), weights)[0]
        shown = f"{len(options)} options ranked by the model's log-probability; chose one at {scores[index]:.2f}"
        return Completion(options[index], shown, 0, 0, time.perf_counter() - started, 0.0, "complete")


class DrawnAnswers:
    """The random baseline: what the grammar would let the model write at the spot, drawn uniformly. A whole new
    body cannot be drawn, so block scope and spots with nothing to draw are left to the model."""

    writes_bodies = False

    def can_answer(self, file_source: str, site: EditSite) -> bool:
        return bool(spot_options(file_source, site))

    def at_spot(
        self, messages: Messages, file_source: str, site: EditSite, prefix: str, temperature: float, seed: int
    ) -> Completion:
        return _drawn(spot_options(file_source, site), seed)

    def pick(self, messages: Messages, labels: list[str], temperature: float, seed: int) -> Completion:
        return _drawn([f"{label}\n" for label in labels], seed)

    def body(
        self, messages: Messages, prefix: str, grammar: str | None, temperature: float, max_tokens: int, seed: int
    ) -> Completion:
        raise ValueError("the random baseline draws at spots only; it cannot write a whole body")


def _drawn(options: list[str], seed: int) -> Completion:
    text = random.Random(seed).choice(options)
    return Completion(text, f"a uniform draw from {len(options)} options", 0, 0, 0.0, 0.0, "complete")


def edit_grammar(file_source: str, site: EditSite) -> str:
    """The grammar the model writes under at the spot."""
    vocabulary = edit_vocabulary(file_source, site)
    if site.kind == "insert":
        return assignment_grammar(insert_targets(site), vocabulary)
    if site.kind == "append":
        return choice_grammar(
            keyword_texts(file_source, site),
            before=" " if site.kept_value.endswith(",") else "",
            after=")" * site.open_brackets,
        )
    if site.kind == "replace" and site.split == 0:
        return layer_grammar(vocabulary)
    return continuation_grammar(site.open_brackets, site.kept_value.endswith(","), vocabulary)
