"""How the LLM mutation operator runs, as plain settings.

Kept apart from astevo.mutation (which loads llama.cpp and torch's vocabulary) so that configs
and the command line can hold these settings without importing either.
"""
from __future__ import annotations

from dataclasses import dataclass

from astevo.errors import AstevoError
from astevo.prompts import INTENTS, PERSONAS

SCOPES = ("line", "block")


@dataclass(frozen=True)
class MutationSettings:
    model: str | None = None
    intent: str | None = None
    persona: str | None = None
    scope: str = "line"
    repairs: int = 3
    seed: int = 0
    threads: int = 0  # 0: llama.cpp's default share of the cores
    context: int = 4096
    gpu_layers: int | None = None  # None: all layers when llama.cpp was built with GPU support
    dataset: str = "fashion-mnist"  # fixes the probe's input shape

    def check(self) -> None:
        if self.intent is not None and self.intent not in INTENTS:
            raise AstevoError(f"unknown operator {self.intent!r}; choose one of: {', '.join(INTENTS)}")
        if self.persona is not None and self.persona not in PERSONAS:
            raise AstevoError(f"unknown persona {self.persona!r}; choose one of: {', '.join(PERSONAS)}")
        if self.scope not in SCOPES:
            raise AstevoError(f"unknown scope {self.scope!r}; choose one of: {', '.join(SCOPES)}")
        if self.repairs < 0:
            raise AstevoError("repairs must be 0 or more")
