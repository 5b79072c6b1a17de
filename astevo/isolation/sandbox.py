"""Run one trusted task function on untrusted input in a limited child process.

The child (`astevo.isolation.child`) runs in its own session, in a fresh temporary working
directory with a minimal environment. This side enforces what the child cannot be trusted to
enforce on itself: the wall-clock limit, the resident-memory limit (summed over every process the
child starts), a bounded read of its output, and the removal of every process it leaves. The
result comes back over a dedicated pipe, prefixed by a per-run random token, so printing to
stdout cannot forge it. `run` never raises for anything the task does.

`Outcome.error` is one line, one of: "timed out after S s", "exceeded the memory limit of N MB",
"killed by signal N (NAME)", "exited with code N before reporting a result", "raised Type: text",
"forbidden at run time: EVENT" (an audit event the child refused, even if the task caught the
refusal), "returned ..." (not a JSON-able dict), "sent a forged or malformed result",
"sent a result larger than 16 MB", "could not start the sandbox: ...".
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from astevo.errors import AstevoError
from astevo.isolation.child import REQUEST_FILE, live_processes
from astevo.isolation.environment import child_environment
from astevo.isolation.warm_pool import WarmCandidate, WarmPool, WarmStartError, shared_pool
from astevo.isolation.workdirs import remove_abandoned_workdirs, working_folder

OUTPUT_TAIL_BYTES = 4096
RESULT_CAP_BYTES = 16 * 2**20
_POLL_SECONDS = 0.1
_GRACE_SECONDS = 2.0
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Limits:
    """What one run may use; `threads` sets torch/OpenMP/MKL threads in the child."""

    seconds: float = 600.0
    memory_mb: int = 6144
    threads: int = 1
    # (records, seconds): the task must have reported that many progress records within that time,
    # so one child can run quick checks and a long training, each with a time limit of its own
    milestone: tuple[int, float] | None = None
    # modules a warm worker imports once before it forks the child (torch and the tasks' module, say; see
    # warm_pool); empty: the child starts as a fresh interpreter
    preload: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.memory_mb <= 0 or self.threads < 1 or (self.milestone and self.milestone[1] <= 0):
            raise AstevoError(
                f"sandbox limits must be positive (got seconds={self.seconds}, "
                f"memory_mb={self.memory_mb}, threads={self.threads}, milestone={self.milestone}); "
                "fix the settings"
            )


@dataclass(frozen=True)
class Slot:
    """Where a child runs: its GPUs, and an event that abandons it when astevo stops mid-evaluation."""

    cuda_devices: str | None = None  # the child's CUDA_VISIBLE_DEVICES; None: this process's
    stop: threading.Event | None = None


ANYWHERE = Slot()


@dataclass(frozen=True)
class Outcome:
    """How a run ended: `value` when ok, else a one-line `error`; `output` is the output's tail."""

    ok: bool
    value: dict | None
    error: str | None
    seconds: float
    output: str
    progress: tuple[dict, ...] = ()  # interim records the task reported, in order, even when it failed later


def run(
    function: str, payload: dict, limits: Limits = Limits(), *, isolate: bool = True, slot: Slot = ANYWHERE
) -> Outcome:
    """Call `function` ("package.module:name", importable here) with `payload` in a sandbox.

    The function takes the payload dict and returns a JSON-able dict. `isolate=False` skips the
    Linux namespaces (used by tests to exercise the fallback on machines that have them).
    """
    started = time.monotonic()
    token = secrets.token_hex(16)
    remove_abandoned_workdirs()
    request = json.dumps(
        {
            "function": function,
            "payload": payload,
            "token": token,
            "isolate": isolate,
            "parent_pid": os.getpid(),
            "threads": limits.threads,
            "memory_mb": limits.memory_mb,
        }
    )
    pool = shared_pool(limits.preload) if limits.preload else None
    ran = _attempt(request, token, limits, slot, pool if pool is not None and pool.refusal is None else None)
    if ran is None:  # the warm worker could not take the task, and is closed: it starts cold, in a fresh folder
        ran = _attempt(request, token, limits, slot, None)
    if not isinstance(ran, _Watch):
        return Outcome(False, None, f"could not start the sandbox: {ran}", 0.0, "")
    return ran.outcome(token, time.monotonic() - started)


def _attempt(request: str, token: str, limits: Limits, slot: Slot, pool: WarmPool | None) -> _Watch | str | None:
    """One start of the task, in a working folder of its own, followed to its end: the finished watch; why it
    could not start; None when a warm worker could not take it (killed between its lease and the fork, or
    running threads). Whatever that worker may have forked reads and deletes the request in its own folder, and
    dies with the worker, so the cold start that follows gets a fresh folder."""
    with working_folder() as workdir:
        Path(workdir, REQUEST_FILE).write_text(request)
        environment = _child_environment(workdir, limits.threads, slot)
        with contextlib.ExitStack() as stack:
            try:
                if pool is not None:
                    worker = stack.enter_context(pool.lease())
                    process, result_read, output_read = _piped(functools.partial(worker.start, workdir, environment))
                else:
                    process, result_read, output_read = _piped(functools.partial(_start_cold, workdir, environment))
            except WarmStartError:
                return None  # leaving the stack closes the broken worker
            except OSError as error:
                return str(error)
            watch = _Watch(process, output_read, result_read, limits, token, slot.stop)
            try:
                watch.follow()
            finally:
                watch.stop()
    return watch


def _piped(start: Callable[[int, int], _Process]) -> tuple[_Process, int, int]:
    """`start(result_fd, output_fd)` on two new pipes; this side keeps only their read ends."""
    result_read, result_write = os.pipe()
    try:
        output_read, output_write = os.pipe()
    except OSError:
        os.close(result_read)
        os.close(result_write)
        raise
    try:
        return start(result_write, output_write), result_read, output_read
    except BaseException:
        os.close(result_read)
        os.close(output_read)
        raise
    finally:
        os.close(result_write)
        os.close(output_write)


class _Process(Protocol):
    """What the watch needs of a child: `subprocess.Popen` (cold) or a warm worker's candidate."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


def _start_cold(workdir: str, environment: dict[str, str], result_fd: int, output_fd: int) -> _Process:
    """A fresh interpreter for this one task: it imports torch itself (about 5 s with the first optimizer)."""
    return subprocess.Popen(
        [sys.executable, "-m", "astevo.isolation.child", str(result_fd)],
        cwd=workdir,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=output_fd,
        stderr=subprocess.STDOUT,
        pass_fds=(result_fd,),
        start_new_session=True,
    )


def _child_environment(workdir: str, threads: int, slot: Slot) -> dict[str, str]:
    environment = child_environment(workdir, threads)
    devices = slot.cuda_devices if slot.cuda_devices is not None else os.environ.get("CUDA_VISIBLE_DEVICES")
    if devices is not None:
        environment["CUDA_VISIBLE_DEVICES"] = devices
    return environment


class _Watch:
    """Follows one child: drains its pipes, enforces the limits, then removes every process."""

    def __init__(
        self,
        process: _Process,
        output_fd: int,
        result_fd: int,
        limits: Limits,
        token: str,
        stop: threading.Event | None,
    ) -> None:
        self.process = process
        self.stop_event = stop
        self.limits = limits
        self.token = token
        self.output_fd = output_fd
        # pages a warm candidate shares with its worker are the worker's: counted once, there
        self.shared_pages = process.shared_pages if isinstance(process, WarmCandidate) else 0
        self.result_fd = result_fd
        self.open_fds = {self.output_fd, result_fd}
        self.output = bytearray()
        self.result = bytearray()
        self.stop_reason: str | None = None

    def follow(self) -> None:
        deadline = time.monotonic() + self.limits.seconds
        milestone = self.limits.milestone
        milestone_deadline = time.monotonic() + milestone[1] if milestone else deadline
        next_check = 0.0
        while self.process.poll() is None:
            if self.result_fd not in self.open_fds and self.result:
                return  # the worker reported and closed its channel; it exits right after
            now = time.monotonic()
            if now >= deadline:
                self.stop_reason = f"timed out after {float(self.limits.seconds)} s"
                return
            if milestone and len(self._messages(self.token)[0]) >= milestone[0]:
                deadline, milestone = now + self.limits.seconds, None  # what follows gets the whole time of its own
            elif milestone and now >= milestone_deadline:
                self.stop_reason = f"timed out after {float(milestone[1])} s"
                return
            if now >= next_check:  # a /proc scan costs about a millisecond: not per read
                next_check = now + _POLL_SECONDS
                if self.stop_event is not None and self.stop_event.is_set():
                    self.stop_reason = "abandoned: astevo is stopping"
                    return
                self.stop_reason = self._limit_breach()
                if self.stop_reason:
                    return
            self._read(min(_POLL_SECONDS, deadline - now))

    def _limit_breach(self) -> str | None:
        if _resident_bytes(_tree(self.process.pid), self.shared_pages) > self.limits.memory_mb * 2**20:
            return f"exceeded the memory limit of {self.limits.memory_mb} MB"
        if len(self.result) > RESULT_CAP_BYTES:
            return f"sent a result larger than {RESULT_CAP_BYTES // 2**20} MB"
        return None

    def _read(self, timeout: float) -> None:
        if not self.open_fds:
            time.sleep(timeout)
            return
        readable, _, _ = select.select(list(self.open_fds), [], [], timeout)
        for fd in readable:
            data = os.read(fd, 65536)
            if not data:
                self.open_fds.discard(fd)
            elif fd == self.output_fd:
                self.output += data
                del self.output[:-OUTPUT_TAIL_BYTES]
            elif len(self.result) <= RESULT_CAP_BYTES:
                self.result += data

    def stop(self) -> None:
        """Kill everything below the child, let it exit, then drain what is left of its pipes."""
        self._wait_for_exit(_GRACE_SECONDS if self.stop_reason is None else 0.0)
        if self.process.poll() is None:
            _kill_tree(self.process.pid, spare_root=True)
            self._wait_for_exit(_GRACE_SECONDS)
        _kill_tree(self.process.pid, spare_root=False)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # anything that left the tree
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        drain_until = time.monotonic() + _GRACE_SECONDS
        while self.open_fds and time.monotonic() < drain_until:
            self._read(drain_until - time.monotonic())
        for fd in self.open_fds:
            os.close(fd)

    def _wait_for_exit(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while self.process.poll() is None and time.monotonic() < until:
            self._read(min(0.02, max(until - time.monotonic(), 0.0)))

    def outcome(self, token: str, seconds: float) -> Outcome:
        output = self.output.decode("utf-8", errors="replace")
        progress, message, forged = self._messages(token)
        if self.stop_reason is None and message is not None:
            status = message.get("status")
            if status == "returned" and isinstance(message.get("value"), dict):
                return Outcome(True, message["value"], None, seconds, output, progress)
            return Outcome(False, None, self._reported_error(message), seconds, output, progress)
        reason = self.stop_reason or ("sent a forged or malformed result" if forged else self._exit_reason())
        return Outcome(False, None, reason, seconds, output, progress)

    def _messages(self, token: str) -> tuple[tuple[dict, ...], dict | None, bool]:
        """Interim records and the final message, up to the first frame not signed by the token.

        The third value says whether unsigned or malformed bytes were found on the channel.
        """
        progress: list[dict] = []
        lines = bytes(self.result).split(b"\n")
        for line in lines[:-1]:  # a frame ends with a newline; the last piece is empty when all are whole
            head, _, body = line.partition(b"\t")
            try:
                message = json.loads(body) if secrets.compare_digest(head, token.encode()) else None
            except ValueError:
                message = None
            if not isinstance(message, dict):
                return tuple(progress), None, True
            if "progress" not in message:
                return tuple(progress), message, False
            progress.append(message["progress"])
        return tuple(progress), None, lines[-1] != b""

    def _reported_error(self, message: dict) -> str:
        status = message.get("status")
        if status == "memory":
            return f"exceeded the memory limit of {self.limits.memory_mb} MB"
        if status == "forbidden":
            return f"forbidden at run time: {message.get('event')}"
        if status == "invalid":
            return f"returned {message.get('error')}"
        return f"raised {message.get('error')}"

    def _exit_reason(self) -> str:
        code = self.process.wait()  # the child has exited: stop() waited for it
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:  # real-time signals have no name
                name = f"SIGRT {-code}"
            return f"killed by signal {-code} ({name})"
        return f"exited with code {code} before reporting a result"


def _tree(root: int) -> dict[int, int]:
    """pid -> resident pages for `root` and all its live descendants."""
    table = live_processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, pending = {}, [root]
    while pending:
        pid = pending.pop()
        if pid in table:
            found[pid] = table[pid][1]
            pending.extend(children.get(pid, ()))
    return found


def _resident_bytes(tree: dict[int, int], shared_pages: int) -> int:
    """Resident memory of a tree of processes, less in each the pages it may share with a warm worker."""
    return sum(max(pages - shared_pages, 0) for pages in tree.values()) * _PAGE_BYTES


def _kill_tree(root: int, *, spare_root: bool) -> None:
    """SIGKILL the descendants of `root` (and `root` unless spared) until none is left."""
    for _ in range(100):
        victims = [pid for pid in _tree(root) if not (spare_root and pid == root)]
        if not victims:
            return
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
