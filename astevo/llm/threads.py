"""How many cores llama.cpp takes in this process, and what that leaves the trainings beside it."""

from __future__ import annotations

import os

from astevo.settings import MutationSettings


def model_threads(settings: MutationSettings) -> int:
    """The LLM's threads: half the cores by default, since llama.cpp's threads spin while they wait for each
    other, and taking every core collapses throughput (4x slower measured) when anything else runs."""
    return settings.llama_cpp.threads or max(1, (os.cpu_count() or 1) // 2)


def threads_left_for_training(settings: MutationSettings, slots: int) -> int:
    """Training threads per slot that keep the LLM's threads plus every slot's within the cores, as the model
    proposes while slots train."""
    return max(1, ((os.cpu_count() or 1) - model_threads(settings)) // slots)
