"""astevo against a real model server: llama-cpp-python's OpenAI-compatible server with the bundled tiny model,
on 127.0.0.1 and a free port, reached through a recording proxy that can also play a server going down."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from astevo.llm.gguf import resolve_model
from tests.cli_process import astevo
from tests.conftest import TINY_MODEL
from tests.fake_model_server import Answer, Route, fake_server

pytestmark = [pytest.mark.needs_model, pytest.mark.slow]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"  # a file: llama.cpp's log would fill a pipe and block it
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(resolve_model(TINY_MODEL).path)]
    command += ["--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "the model server did not start in 120 s"
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def forwarded(url: str, method: str, path: str) -> Route:
    def answer(body: dict[str, Any]) -> Answer:
        data = json.dumps(body).encode() if method == "POST" else None
        request = urllib.request.Request(url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    return answer


def proxy_routes(url: str) -> dict[str, Route]:
    return {
        "GET /v1/models": forwarded(url, "GET", "/models"),
        "POST /v1/completions": forwarded(url, "POST", "/completions"),
    }


def processes_of(cache: Path) -> list[int]:
    """Processes still alive that inherited this test's cache folder: astevo, its workers and their children."""
    marker = f"XDG_CACHE_HOME={cache}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_mutate_proposes_in_line_scope_through_the_server_under_its_grammar(server_url: str, tmp_path: Path) -> None:
    with fake_server(proxy_routes(server_url)) as proxy:
        result = astevo("mutate", "--model-server", proxy.url, "--block", "SE_LN", "--n", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"model: smollm2 served at {proxy.url}" in result.stdout
    assert "useful proposals:" in result.stdout
    asked = [body for method, route, body in proxy.requests if route == "/v1/completions"]
    assert asked and all(body["model"] == "smollm2" and body["repeat_penalty"] == 1.0 for body in asked)
    assert all(body["grammar"].startswith("root ::= r-start\n") for body in asked)  # line scope: every call constrained
    assert all(body["prompt"].startswith("<|im_start|>system\n") for body in asked)


def test_a_server_that_stops_answering_mid_run_stops_evolve_with_a_word_and_resume_ends_it(
    server_url: str, tmp_path: Path
) -> None:
    """One answer, then the proxy plays a server that is down (503 for good); the run is resumed against the real
    server at its own address, which is also how a run follows a server that moved."""
    config = tmp_path / "server.toml"
    config.write_text("[mutation.server]\nretries = 1\ntimeout = 120\n")
    routes = proxy_routes(server_url)
    answers = {"left": 1}
    real_completion = routes["POST /v1/completions"]

    def until_down(body: dict[str, Any]) -> Answer:
        answers["left"] -= 1
        return real_completion(body) if answers["left"] >= 0 else (503, {"error": {"message": "Loading model"}})

    routes["POST /v1/completions"] = until_down
    run = tmp_path / "run"
    budget = ["--population", "2", "--generations", "1", "--limit-train", "256", "--epochs", "1"]
    with fake_server(routes) as proxy:
        stopped = astevo(
            "evolve", "--run", str(run), "--model-server", proxy.url, "--config", str(config), *budget,
            "--workers", "1", "--force", cwd=tmp_path,
        )  # fmt: skip
    assert stopped.returncode == 69, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the model server at {proxy.url} did not answer POST")
    assert last.endswith(
        f"nothing evaluated is lost. Once it answers, continue with: astevo evolve --run {run} --resume --force"
    )
    assert processes_of(tmp_path / "cache") == []
    with sqlite3.connect(run / "run.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = db.execute("SELECT count(*) FROM individuals").fetchone()[0]
    assert kept >= 1  # at least the seed, measured before the server went down

    resumed = astevo("evolve", "--run", str(run), "--resume", "--force", "--model-server", server_url, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with sqlite3.connect(run / "run.sqlite") as db:
        assert db.execute("SELECT count(*) FROM individuals").fetchone()[0] == 1 + 2
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    recorded = json.loads(meta["model"])
    assert (recorded["name"], recorded["server"]) == ("smollm2", proxy.url)  # where it was when the run started
    assert json.loads(recorded["report"]) == {"id": "smollm2", "owned_by": "me"}

    moved_to_nothing = astevo("evolve", "--run", str(run), "--resume", "--model-server", "http://127.0.0.1:9/v1",
                              "--force", cwd=tmp_path)  # fmt: skip
    assert moved_to_nothing.returncode == 2 and "Traceback" not in moved_to_nothing.stderr
    assert "did not answer GET http://127.0.0.1:9/v1/models" in moved_to_nothing.stderr
