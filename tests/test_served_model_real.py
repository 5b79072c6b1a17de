"""astevo against a real model server: llama-cpp-python's OpenAI-compatible server with the bundled tiny model,
on 127.0.0.1 and a free port, reached through a recording proxy that can also play a server going down."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.cli_process import astevo, user_environment
from tests.fake_model_server import Answer, Route, fake_server
from tests.model_servers import free_port, served
from tests.process_tree import alive, descendants
from tests.test_evolve_resume import genealogy
from tests.test_stop_signals import stored_individuals

pytestmark = [pytest.mark.needs_model, pytest.mark.slow]


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


def test_a_server_killed_mid_run_stops_evolve_with_a_word_and_the_resume_ends_as_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    config = tmp_path / "server.toml"
    config.write_text("[mutation.server]\nretries = 1\ntimeout = 120\n[fitness]\nval_fraction = 0.02\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    arguments = ["--model-server", url, "--config", str(config), "--population", "2", "--generations", "1"]
    arguments += ["--limit-train", "256", "--epochs", "1", "--workers", "1", "--force"]
    with served(port, tmp_path / "first.log") as server:
        uninterrupted = astevo("evolve", "--run", str(whole), *arguments, cwd=tmp_path)
        assert uninterrupted.returncode == 0, uninterrupted.stderr[-2000:]
        running = subprocess.Popen(
            [sys.executable, "-m", "astevo.cli", "evolve", "--run", str(killed), *arguments],
            cwd=tmp_path, env=user_environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        seen: set[int] = set()
        while stored_individuals(killed) < 1 and running.poll() is None and time.monotonic() < deadline:
            seen |= set(descendants(running.pid))
            time.sleep(0.2)
        assert running.poll() is None, "the run ended before its server could be killed"
        server.kill()  # what the host's OOM killer or a crash does: no goodbye
        while running.poll() is None and time.monotonic() < deadline:
            seen |= set(descendants(running.pid))
            time.sleep(0.2)
        _, stderr = running.communicate(timeout=300)
    assert running.returncode == 69, stderr[-2000:]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: the model server at {url} did not answer POST {url}/completions: ")
    advice = f"nothing evaluated is lost. Once it is back, continue with: astevo evolve --run {killed} --resume --force"
    assert last.endswith(advice)
    settle = time.monotonic() + 10  # warm workers leave when their control socket closes
    while alive(seen) and time.monotonic() < settle:
        time.sleep(0.2)
    assert seen and not alive(seen), "a process of the stopped run outlived it"
    with sqlite3.connect(killed / "run.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert stored_individuals(killed) < stored_individuals(whole)

    with served(port, tmp_path / "restarted.log"):  # the server is back, at the same address
        resumed = astevo("evolve", "--run", str(killed), "--resume", "--force", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert genealogy(killed) == genealogy(whole)
    recorded = json.loads(dict(sqlite_meta(killed))["model"])
    assert (recorded["name"], recorded["server"], json.loads(recorded["report"])) == (
        "smollm2",
        url,
        {"id": "smollm2", "owned_by": "me"},
    )

    elsewhere = astevo(
        "evolve", "--run", str(killed), "--resume", "--model-server", "http://127.0.0.1:9/v1", cwd=tmp_path
    )  # a server that moved is followed with --model-server; one that is not there is one line
    assert elsewhere.returncode == 2 and "Traceback" not in elsewhere.stderr
    assert "did not answer GET http://127.0.0.1:9/v1/models" in elsewhere.stderr.strip().splitlines()[-1]


def sqlite_meta(run: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(run / "run.sqlite") as db:
        return list(db.execute("SELECT key, value FROM meta").fetchall())
