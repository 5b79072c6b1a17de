"""A real OpenAI-compatible model server for tests: llama-cpp-python's, serving the bundled tiny model on
127.0.0.1 and a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from astevo.llm.gguf import resolve_model
from tests.conftest import TINY_MODEL


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def served(port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """llama-cpp-python's server with the tiny model on 127.0.0.1:`port`, once it answers."""
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_model(TINY_MODEL).path)]
    command += ["--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    command += ["--n_threads", str(os.cpu_count() or 1)]
    with log.open("w") as output:  # a file: llama.cpp's log would fill a pipe and block the server
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=output)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "the model server did not start in 120 s"
                time.sleep(0.5)
        yield server
    finally:
        server.kill()
        server.wait(timeout=30)
