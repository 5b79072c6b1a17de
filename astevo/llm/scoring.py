"""The scoring seam: how likely a model finds each of a few given continuations.

A model writing under a grammar samples one token at a time and never weighs whole options against each
other; a spot whose options are a finite list can instead be ranked by each option's log-probability as the
text after the prompt. Only a backend that can read its own logits implements it (llama.cpp in-process).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Scorer(Protocol):
    def score(self, messages: list[dict[str, str]], options: Sequence[str], *, prefix: str = "") -> list[float]:
        """Each option's log-probability (natural log, summed over its tokens) as the text right after the chat
        and `prefix`."""
        ...
