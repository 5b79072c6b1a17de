"""Shared fixtures and the suite's markers.

Markers: `needs_model` (loads the bundled GGUF of astevo[tiny]), `needs_data` (reads Fashion-MNIST
from Debian's dataset-fashion-mnist), `slow` (more than a few seconds). `pytest -m "not slow"` is the
quick inner loop; CI runs everything.
"""

from __future__ import annotations

import pytest

from astevo.llm.gguf import bundled_models
from astevo.llm.llama_cpp_backend import LlamaCppGenerator


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_model: loads the bundled tiny GGUF model (astevo[tiny])")
    config.addinivalue_line("markers", "needs_data: reads the real Fashion-MNIST files")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def llm() -> LlamaCppGenerator:
    """The bundled SmolLM2, with a small context: loaded once for every test that reads its tokenizer."""
    return LlamaCppGenerator(bundled_models()[0], n_ctx=512)
