"""GE's vocabulary for what a mutation is asked to do: the intents, the personas, and what each intent edits first.

One place for it, so the settings that validate an intent, the rewriter that follows one and the block choice
that weighs blocks by size all read the same words.
"""

from __future__ import annotations

INTENTS = ("hyperparameters", "unusual_values", "complexity", "fewer_parameters", "rare_enhancement", "bold_change")
SMALLER = "fewer_parameters"  # the intent whose answers must measurably shrink the model
SIZE_STEP = 0.05  # the least change of the parameter count that counts as a change of size
PERSONAS = ("expert", "innovator", "researcher")

SIZES = "sizes"  # the measured size edits: width, depth, sizes inside blocks
# Which kinds of spot an intent edits first: sizes when the intent is about size or boldness, numbers and
# arguments for value changes, new or rewritten computations for added functionality.
INTENT_SPOTS = {
    "hyperparameters": ("arguments", SIZES, "layers"),
    "unusual_values": (SIZES, "arguments", "layers"),
    "fewer_parameters": (SIZES, "arguments", "layers"),
    "complexity": ("layers", "computations", SIZES, "arguments"),
    "rare_enhancement": ("layers", "computations", "arguments"),
    "bold_change": (SIZES, "computations", "layers", "arguments"),
}
SIZE_FIRST = tuple(intent for intent, spots in INTENT_SPOTS.items() if spots[0] == SIZES)
