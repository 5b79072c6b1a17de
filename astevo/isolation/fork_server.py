"""A warm worker: imports torch once, then forks one sandboxed candidate per request.

Started by exec, as `python -m astevo.isolation.fork_server CONTROL_FD MODULE...`, never by forking
astevo, whose llama.cpp threads would not survive a fork. It imports the modules named (torch,
torch._dynamo, the worker's entry points) and nothing more: no tensor op runs and CUDA is never
initialised here, because OpenMP's and CUDA's state do not survive a fork, and it checks that it is
still single-threaded before each fork. Every limit (session, namespaces, rlimits, audit hook) is set
in the forked child, exactly as in a cold sandbox child (`sandbox_child.start_forked`).

The control socket (SOCK_SEQPACKET, one JSON message per packet) carries a request naming the
candidate's working directory and environment, with two fds: its result channel and its output
pipe. The worker answers with the candidate's pid and its own resident pages (the pages the
candidate shares with it), then with the candidate's wait status. When the socket closes, because
astevo exited or was killed, the worker kills its candidate and exits.
"""

from __future__ import annotations

import importlib
import json
import os
import select
import signal
import socket
import sys
from pathlib import Path
from typing import Any, NoReturn

from astevo.isolation import child as sandbox_child

MESSAGE_BYTES = 1 << 16


def main() -> NoReturn:
    control = socket.socket(fileno=int(sys.argv[1]))
    sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]
    for name in sys.argv[2:]:
        importlib.import_module(name)
    _send(control, {"ready": True})
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, MESSAGE_BYTES, 2)
        except OSError:
            break
        if not message:
            break
        _serve(control, json.loads(message), fds)
    os._exit(0)


def _serve(control: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    threads = thread_count()
    if threads != 1 or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        _send(control, {"refused": f"the warm worker runs {threads} threads, and a fork copies only one"})
        return
    me = os.getpid()
    pid = os.fork()
    if pid == 0:
        control.close()
        sandbox_child.start_forked(request["workdir"], request["environment"], fds[0], fds[1], me)
    for fd in fds:
        os.close(fd)
    _send(control, {"pid": pid, "shared_pages": _resident_pages()})
    exited = os.pidfd_open(pid)
    while True:
        readable, _, _ = select.select([control.fileno(), exited], [], [])
        if exited in readable:
            break
        if control.fileno() in readable and not control.recv(MESSAGE_BYTES):  # astevo is gone: so is its candidate
            _kill(pid)
            os._exit(0)
    os.close(exited)
    _, status = os.waitpid(pid, 0)
    _send(control, {"status": status})


def thread_count() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError("Threads missing from /proc/self/status")


def _resident_pages() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1])


def _kill(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    os.waitpid(pid, 0)


def _send(control: socket.socket, message: dict[str, Any]) -> None:
    control.send(json.dumps(message).encode())


if __name__ == "__main__":
    main()
