"""Shared fixtures and the suite's markers.

Markers: `needs_model` (loads the bundled tiny GGUF of astevo[tiny]), `needs_coder` (the code model of
astevo[coder]), `needs_data` (reads Fashion-MNIST from Debian's dataset-fashion-mnist), `slow` (more than a
few seconds). `pytest -m "not slow"` is the quick inner loop; CI runs everything.

The suite runs with $ASTEVO_MODEL naming the tiny SmolLM2, inherited by every astevo process it starts: the
tests that need more than a model that follows the grammar ask for the code model by name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from astevo.llm.gguf import MODEL_ENV, resolve_model
from astevo.llm.llama_cpp_backend import LlamaCppGenerator

TINY_MODEL = "smollm2-135m"
CODE_MODEL = "qwen2.5-coder-0.5b"  # the default of astevo evolve and mutate

os.environ[MODEL_ENV] = TINY_MODEL


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_model: loads the bundled tiny GGUF model (astevo[tiny])")
    config.addinivalue_line("markers", "needs_coder: loads the default code model (astevo[coder])")
    config.addinivalue_line("markers", "needs_data: reads the real Fashion-MNIST files")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture(scope="session")
def llm() -> LlamaCppGenerator:
    """The bundled SmolLM2, with a small context: loaded once for every test that reads its tokenizer."""
    return LlamaCppGenerator(resolve_model(TINY_MODEL), n_ctx=512)


@pytest.fixture(scope="session")
def uninterrupted_fault_run(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    """The fault tests' run, once, with no fault: the genealogy each run stopped by a fault must resume to."""
    from tests.fault_runs import uninterrupted

    return uninterrupted(tmp_path_factory.mktemp("uninterrupted-fault-run"))


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real llama-cpp-python server with the tiny model, one per test module that asks."""
    from tests.model_servers import free_port, served

    port = free_port()
    with served(port, tmp_path_factory.mktemp("server") / "server.log"):
        yield f"http://127.0.0.1:{port}/v1"
