"""Warm workers on astevo's side: start them by exec, lend one per sandboxed run, and follow its candidate.

A cold sandbox child spends about 5 s importing torch and what the first optimizer pulls in; a warm
worker (`astevo.isolation.fork_server`) pays that once and forks each candidate from there. The
pool holds idle workers; a run leases one for the whole life of its candidate. Workers need no
parent-death signal (which belongs to the thread that spawned them, and a pool thread may exit
before astevo does): each exits when its control socket closes, which the kernel does when astevo
dies, however it dies.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from astevo.isolation import fork_server
from astevo.isolation.environment import child_environment

_START_SECONDS = 180.0  # importing torch on a loaded laptop
_REPLY_SECONDS = 30.0
_ERROR_TAIL_BYTES = 400


class WarmStartError(OSError):
    """A warm worker could not take a candidate; the sandbox then starts it cold."""


class WarmCandidate:
    """A candidate forked by a warm worker, seen from astevo: the parts of `subprocess.Popen` the sandbox uses.

    Its exit status comes over the worker's control socket, since astevo is not its parent.
    """

    def __init__(self, worker: WarmWorker, pid: int, shared_pages: int) -> None:
        self.worker, self.pid, self.shared_pages = worker, pid, shared_pages
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self._settle(self.worker.receive(0.0))
        return self.returncode

    def wait(self) -> int:
        while self.returncode is None:
            self._settle(self.worker.receive(_REPLY_SECONDS))
        return self.returncode

    def _settle(self, reply: dict[str, Any] | None) -> None:
        if reply is None:
            return
        if "status" in reply:
            self.returncode = os.waitstatus_to_exitcode(reply["status"])
        else:  # the worker itself died, and its candidate with it (its parent-death signal)
            self.worker.broken = True
            self.returncode = -signal.SIGKILL


class WarmWorker:
    """One warm worker process and its control socket; it forks one candidate at a time."""

    def __init__(self, preload: tuple[str, ...]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", fork_server.__name__, str(theirs.fileno()), *preload],
                cwd="/",
                env=child_environment(tempfile.gettempdir(), threads=1),  # OpenBLAS starts threads at import
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        finally:
            theirs.close()
        self.control = ours
        self.ready = False
        self.broken = False
        self.refusal: str | None = None  # why it would not fork (it runs threads): every worker of its kind would

    def start(self, workdir: str, environment: dict[str, str], result_fd: int, output_fd: int) -> WarmCandidate:
        """Fork a candidate that runs the request in `workdir`; raises WarmStartError when the worker cannot."""
        if not self.ready:
            self._await_ready()
        message = json.dumps({"workdir": workdir, "environment": environment}).encode()
        try:
            socket.send_fds(self.control, [message], [result_fd, output_fd])
        except OSError as error:
            self.broken = True
            raise WarmStartError(f"the warm worker stopped listening ({error})") from None
        reply = self.receive(_REPLY_SECONDS)
        if reply is None or "pid" not in reply:
            self.broken = True
            self.refusal = (reply or {}).get("refused")
            raise WarmStartError(self.refusal or f"the warm worker did not answer ({self._log_tail()})")
        return WarmCandidate(self, reply["pid"], reply["shared_pages"])

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The worker's next message; {} when it has died; None when nothing came within `timeout`."""
        if self.broken:
            return {}
        readable, _, _ = select.select([self.control], [], [], timeout)
        if not readable:
            return None
        try:
            data = self.control.recv(fork_server.MESSAGE_BYTES)
        except OSError:
            data = b""
        if not data:
            self.broken = True
            return {}
        reply: dict[str, Any] = json.loads(data)
        return reply

    def close(self) -> None:
        self.control.close()  # the worker exits on its own; make sure
        try:
            self.process.kill()
        except ProcessLookupError:
            pass
        self.process.wait()
        self.log.close()

    def _await_ready(self) -> None:
        until = time.monotonic() + _START_SECONDS
        while not self.ready and time.monotonic() < until:
            reply = self.receive(until - time.monotonic())
            if reply == {}:
                break
            self.ready = bool(reply and reply.get("ready"))
        if not self.ready:
            self.broken = True
            raise WarmStartError(f"the warm worker did not start ({self._log_tail()})")

    def _log_tail(self) -> str:
        self.log.seek(0, os.SEEK_END)
        self.log.seek(max(self.log.tell() - _ERROR_TAIL_BYTES, 0))
        tail = " ".join(self.log.read().decode("utf-8", errors="replace").split())
        return tail or f"exit code {self.process.poll()}"


class WarmPool:
    """Idle warm workers, lent one per sandboxed run; thread-safe, so every evaluation slot shares it."""

    def __init__(self, preload: tuple[str, ...]) -> None:
        self.preload = preload
        self.refusal: str | None = None  # why its workers cannot fork (the preload starts threads): lend no more
        self._idle: list[WarmWorker] = []
        self._lock = threading.Lock()

    @contextmanager
    def lease(self) -> Iterator[WarmWorker]:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        if worker is not None and worker.process.poll() is not None:  # died while idle (killed, out of memory)
            worker.close()
            worker = None
        if worker is None:
            worker = WarmWorker(self.preload)
        try:
            yield worker
        finally:
            self.refusal = self.refusal or worker.refusal
            if worker.broken:
                worker.close()
            else:
                with self._lock:
                    self._idle.append(worker)

    def prestart(self, count: int) -> None:
        """Start workers now, so their imports overlap other work (loading the LLM, say)."""
        with self._lock:
            self._idle.extend(WarmWorker(self.preload) for _ in range(max(count - len(self._idle), 0)))

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


_shared: dict[tuple[str, ...], WarmPool] = {}
_shared_lock = threading.Lock()


def shared_pool(preload: tuple[str, ...]) -> WarmPool:
    """The process's pool of workers that import `preload`: every caller that asks for the same modules shares it."""
    with _shared_lock:
        return _shared.setdefault(preload, WarmPool(preload))
