"""The text-generation seam: what variation needs from a language model, whatever runs it.

llama.cpp in-process is one implementation (astevo.llm.llama_cpp_backend); a served model
(astevo.llm.served) is another; `astevo.llm.factory` picks one from the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from astevo.llm.identity import ModelIdentity

Finish = Literal["complete", "length", "eos"]

# A grammar marks the part of its output to return under this capture name; what the
# grammar generates after it (e.g. the token that shows a block has ended) is dropped.
KEEP_CAPTURE = "keep"


class GrammarError(RuntimeError):
    """A grammar the backend cannot compile, or a token it refused: a bug in astevo, not bad input."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do: line-scope edits need a grammar and a forbidden first token; the prefix cache
    only saves time."""

    grammar: bool  # constrains output by a Lark grammar (llguidance's dialect)
    forbid_first_token: bool  # can refuse first tokens that would repeat a given text
    prefix_cache: bool  # `restart` returns to a cached system prompt instead of evaluating it again
    body_grammar: bool = True  # also takes the whole-body grammars of block scope (llguidance's full dialect)


@dataclass(frozen=True)
class Completion:
    """One generation: the continuation after the prompt, and what it cost."""

    text: str
    prompt: str
    n_prompt_tokens: int
    n_tokens: int
    seconds: float
    prompt_seconds: float
    finish: Finish


class Generator(Protocol):
    """A language model that continues chats, optionally under a grammar."""

    @property
    def capabilities(self) -> Capabilities: ...

    @property
    def name(self) -> str:
        """What messages call the model (its file name, say)."""
        ...

    @property
    def identity(self) -> ModelIdentity:
        """What the run record stores of the model, and what a resume checks."""
        ...

    def restart(self, system: str) -> None:
        """Make the next completions independent of every earlier call, keeping only the system prompt cached."""
        ...

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        prefix: str = "",
        grammar: str | None = None,
        temperature: float = 0.2,
        max_tokens: int = 1024,
        seed: int | None = None,
        avoid: str = "",
    ) -> Completion:
        """Continue the assistant's turn after `prefix`; `avoid`: a text the first token may not start repeating."""
        ...
