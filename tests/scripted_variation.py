"""A scripted stand-in for the local model: swaps one activation of the block for another.

Evolution-loop tests use it where the point is the loop (store, resume, selection,
determinism), not the model; the real tiny GGUF is exercised by the end-to-end test.
Like any variation, it returns only what the run's fast checks accept.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from astevo.code.blocks import ModelFile
from astevo.llm.identity import ModelIdentity
from astevo.variation.base import Check, Exchange, Proposal
from astevo.variation.edit_outcomes import EditOutcome
from astevo.variation.prompts import Exemplar

ACTIVATIONS = ("ReLU", "SiLU", "Hardswish", "Sigmoid", "GELU", "Mish", "ReLU6", "Tanh")
_CALL = re.compile(r"nn\.(" + "|".join(ACTIVATIONS) + r")\(\)")


class ScriptedVariation:
    identity: ModelIdentity | None = None

    def __init__(self) -> None:
        self.calls = 0

    def mutate(
        self,
        model_file: ModelFile,
        name: str,
        intent: str,
        rng: random.Random,
        exemplar: Exemplar | None,
        check: Check,
        outcomes: Sequence[EditOutcome] = (),
    ) -> Proposal:
        self.calls += 1
        source = model_file.block(name).source
        found = list(_CALL.finditer(source))
        operator = "eot" if exemplar else "mutate"
        if not found:
            exchange = Exchange("propose", f"rewrite {name}", "", 0.0, 0, 0, 0.0, "stop", "no activation to swap")
            return Proposal(name, operator, intent, None, None, (exchange,))
        spot = rng.choice(found)
        replacement = rng.choice([a for a in ACTIVATIONS if a != spot.group(1)])
        new = f"{source[: spot.start()]}nn.{replacement}(){source[spot.end() :]}"
        verdict = check(new)
        exchange = Exchange(
            "propose", f"rewrite {name}", f"nn.{replacement}()", 0.2, rng.randrange(2**31), 5, 0.0, "stop", verdict
        )
        return Proposal(name, operator, "hyperparameters", None, None if verdict else new, (exchange,))
