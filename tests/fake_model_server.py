"""A real HTTP server on 127.0.0.1 that answers as a model server is told to: for the served backend's failures
(down, slow, garbage) and for the request each kind of server gets, without a model behind it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, Any]  # HTTP status, and a JSON value or raw bytes
Route = Callable[[dict[str, Any]], Answer]


@dataclass
class FakeServer:
    routes: dict[str, Route]
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    url: str = ""


def listing(owner: str, name: str = "served-model") -> Route:
    return lambda _: (200, {"object": "list", "data": [{"id": name, "object": "model", "owned_by": owner}]})


def completion(text: str, reason: str = "stop") -> Route:
    usage = {"prompt_tokens": 12, "completion_tokens": 3}
    return lambda _: (200, {"choices": [{"text": text, "index": 0, "finish_reason": reason}], "usage": usage})


class CutOff:
    """An answer that stops half-way, as a server that crashes or a dropped connection leaves it."""


def cut_off_once(then: Route) -> Route:
    calls = {"count": 0}

    def answer(body: dict[str, Any]) -> Answer:
        calls["count"] += 1
        return (200, CutOff()) if calls["count"] == 1 else then(body)

    return answer


def slow(seconds: float, then: Route) -> Route:
    def answer(body: dict[str, Any]) -> Answer:
        time.sleep(seconds)
        return then(body)

    return answer


@contextmanager
def fake_server(routes: dict[str, Route]) -> Iterator[FakeServer]:
    server = FakeServer(routes)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            server.requests.append((method, self.path, body))
            route = server.routes.get(f"{method} {self.path}")
            status, payload = route(body) if route else (404, {"error": {"message": f"no route {self.path}"}})
            if isinstance(payload, CutOff):
                self.send_response(status)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b'{"choices": [{"text": "nn.Re')
                self.close_connection = True
                return
            raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
                pass

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    server.url = f"http://127.0.0.1:{http.server_address[1]}/v1"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        http.shutdown()
        http.server_close()
