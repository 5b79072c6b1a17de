"""JSON over HTTP to a model server, with bounded retries: a server that is down, slow or overloaded ends in
one clear error after a known wait, never in a hang.

The standard library's urllib is enough for a few JSON requests to one host, and keeps the served backend
free of a client library whose request schema would not carry the servers' own fields (grammars, seeds).
"""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from astevo.errors import AstevoError

RETRIED_STATUSES = (408, 429, 500, 502, 503, 504)  # the server is busy, restarting or loading its model
FIRST_WAIT_SECONDS = 1.0


class ServerUnavailable(AstevoError):
    """The server did not answer, or kept failing, through every retry: stopping loses nothing, and the work can
    go on once it is back."""


class ServerAnswerError(AstevoError):
    """The server answered, but not with what the API promises: retrying would get the same answer."""


class ServerClient:
    """GET and POST JSON under one base URL; `sleep` is a seam so tests need not wait out the backoff."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        retries: int,
        api_key: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout, self.retries, self.api_key, self._sleep = timeout, retries, api_key, sleep

    @property
    def root(self) -> str:
        """The server's address without the API's version path: llama.cpp and Ollama serve their own routes there."""
        return self.url.removesuffix("/v1")

    def get(self, path: str, *, under_root: bool = False, retry: bool = True) -> Any:
        return self._send("GET", (self.root if under_root else self.url) + path, None, retry)

    def post(self, path: str, body: dict[str, Any], *, under_root: bool = False) -> Any:
        return self._send("POST", (self.root if under_root else self.url) + path, body, True)

    def _send(self, method: str, address: str, body: dict[str, Any] | None, retry: bool) -> Any:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        tries = 1 + (self.retries if retry else 0)
        waited = 0.0
        for attempt in range(tries):
            try:
                request = urllib.request.Request(address, data=data, headers=headers, method=method)
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                return _decoded(raw, address)
            except urllib.error.HTTPError as error:
                detail = _error_detail(error)
                if error.code not in RETRIED_STATUSES:
                    raise ServerAnswerError(
                        f"the model server refused {method} {address}: HTTP {error.code} {detail}"
                    ) from None
                problem = f"HTTP {error.code} {detail}"
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as error:
                reason = getattr(error, "reason", error)
                problem = f"no answer within {self.timeout:g} s" if _timed_out(reason) else str(reason)
            if attempt + 1 < tries:
                wait = FIRST_WAIT_SECONDS * 2**attempt
                self._sleep(wait)
                waited += wait
        raise ServerUnavailable(
            f"the model server at {self.url} did not answer {method} {address}: {problem} "
            f"({tries} tries over {waited:.0f} s of waiting); start it or check the URL"
        )


def _timed_out(reason: object) -> bool:
    return isinstance(reason, (TimeoutError, socket.timeout))


def _decoded(raw: bytes, address: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        shown = raw[:80].decode("utf-8", errors="replace")
        raise ServerAnswerError(f"{address} answered something that is not JSON: {shown!r}") from None


def _error_detail(error: urllib.error.HTTPError) -> str:
    """The server's own message, when its error body carries one, on one line."""
    try:
        body = json.loads(error.read() or b"{}")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return error.reason or ""
    found = body.get("error", body.get("detail", "")) if isinstance(body, dict) else body
    if isinstance(found, dict):
        found = found.get("message", found)
    return " ".join(str(found).split())[:300]
