"""Child side of `astevo.isolation.sandbox`: isolate, import torch, guard the interpreter, run one task.

Started as `python -m astevo.isolation.child RESULT_FD` in a fresh working directory that holds
`request.json` (a cold start), or forked by a warm worker that imported torch once (`start_forked`).
It splits into two processes. The supervisor (this process, the session leader
the parent watches) enters Linux namespaces when permitted, becomes the reaper of every orphan
below it, forks the worker and, once the worker ends, kills whatever the worker left behind and
exits the way the worker did. The worker imports torch, applies the limits, installs an audit
hook that cannot be removed, runs the task and writes its interim records and its result, each a
line prefixed by the run's token, to RESULT_FD: a channel that printing cannot reach.

Layers, strongest first, each used when the machine permits it:
- namespaces (needs CAP_SYS_ADMIN, e.g. root): no network interfaces; a PID namespace whose
  processes the kernel kills when the worker dies and from which the parent is invisible; a
  mount namespace where everything but the working directory is read-only, which also stops
  files written by native code (torch.save) that no audit hook sees;
- the audit hook: blocks processes, signals, sockets, native code via ctypes, and file changes
  outside the working directory, for Python-level calls;
- process limits: RLIMIT_AS when CUDA is not in use, no core dumps, parent-death signal.
The hook is a tripwire for ordinary code, not a wall: code in the same interpreter that sets out
to defeat it can patch what it relies on. The namespaces and the parent's watch are the boundary.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import signal
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

REQUEST_FILE = "request.json"

_CLONE_NEWNS, _CLONE_NEWPID, _CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND = 1, 2, 4, 32, 4096
_MS_REC, _MS_PRIVATE = 0x4000, 1 << 18
_SYS_MOUNT_SETATTR, _AT_FDCWD, _AT_RECURSIVE, _MOUNT_ATTR_RDONLY = 442, -100, 0x8000, 1
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE, _PR_SET_CHILD_SUBREAPER = 1, 4, 36

# Audit events refused outright (prefix match), from the CPython audit events table.
_REFUSED_EVENTS = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "pty.",
    "os.kill",
    "ctypes.",
    "syslog.",
    "fcntl.ioctl",
    "resource.setrlimit",
    "resource.prlimit",
    "os.chdir",
    "os.symlink",
    "sys.remote_exec",
)
# Events that change the file system: (path argument, its directory-fd argument or None).
_PATH_EVENTS: dict[str, tuple[tuple[int, int | None], ...]] = {
    "os.remove": ((0, 1),),
    "os.rmdir": ((0, 1),),
    "os.mkdir": ((0, 2),),
    "os.rename": ((0, 2), (1, 3)),
    "os.link": ((0, 2), (1, 3)),
    "os.truncate": ((0, None),),
    "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),),
    "os.utime": ((0, 3),),
    "os.setxattr": ((0, None),),
    "os.removexattr": ((0, None),),
    "os.chflags": ((0, None),),
    "shutil.rmtree": ((0, 1),),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_WRITABLE_DEVICES = frozenset({"/dev/null"})


_channel: tuple[int, bytes] | None = None  # (result fd, token) while a task runs in this worker


def report_progress(record: dict) -> None:
    """Send an interim record (e.g. a finished stage) before the task ends; outside a sandbox, nothing."""
    if _channel is not None:
        fd, token = _channel
        _write_all(fd, _frame(token, {"progress": record}))


def _frame(token: bytes, message: dict) -> bytes:
    return token + b"\t" + json.dumps(message, allow_nan=True).encode() + b"\n"


class ForbiddenOperation(PermissionError):
    """Raised by the audit hook; an OSError so library fallbacks treat it as a refusal."""


def main() -> NoReturn:
    """A cold start: this interpreter was started by the parent for this one task."""
    sys.modules["astevo.isolation.child"] = sys.modules[__name__]  # one channel, however tasks import it
    _supervise(int(sys.argv[1]), parent_pid=None)


def start_forked(
    workdir: str, environment: dict[str, str], result_fd: int, output_fd: int, parent_pid: int
) -> NoReturn:
    """A warm start, in a child just forked by the warm worker (`astevo.isolation.fork_server`).

    The child leaves the worker's session and takes the candidate's own output pipe and
    environment; from there on it is a cold child, and every limit is set below, after the fork.
    """
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    os.close(null)
    os.close(output_fd)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(environment)
    tempfile.tempdir = None  # the worker's own was cached at import; TMPDIR now names the working directory
    _supervise(result_fd, parent_pid=parent_pid)


def _supervise(result_fd: int, parent_pid: int | None) -> NoReturn:
    """Read the request, isolate, fork the worker and outlive it; `parent_pid` None: the request names the parent."""
    workdir = os.getcwd()
    sys.path[:] = [p for p in sys.path if p not in ("", workdir)]
    request = json.loads(Path(REQUEST_FILE).read_text())
    os.unlink(REQUEST_FILE)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # its parent killed (even by SIGKILL): this sandbox goes too
    if os.getppid() != (request["parent_pid"] if parent_pid is None else parent_pid):  # it died before that
        os._exit(1)
    if request["isolate"]:
        _enter_namespaces(workdir)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _prctl(_PR_SET_DUMPABLE, 0)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    worker = os.fork()
    if worker == 0:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        _work(request, result_fd, workdir)
    os.close(result_fd)
    _, status = os.waitpid(worker, 0)
    _kill_children()
    _exit_like(status)


# ----- supervisor (the parent reads the process table too)


def _prctl(option: int, value: int) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _enter_namespaces(workdir: str) -> None:
    """New network, PID and mount namespaces; silently nothing when not permitted."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWPID) != 0:
        return
    _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make mounts private")
    target = os.fsencode(workdir)
    _check(libc.mount(target, target, None, _MS_BIND, None), "bind the working directory")

    class MountAttr(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint64) for name in ("set", "clr", "propagation", "userns")]

    read_only = MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0)
    _check(
        libc.syscall(
            _SYS_MOUNT_SETATTR, _AT_FDCWD, b"/", _AT_RECURSIVE, ctypes.byref(read_only), ctypes.sizeof(read_only)
        ),
        "make / read-only",
    )
    _check(
        libc.mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_NOSUID | _MS_NODEV, None),
        "make the working directory writable",
    )
    os.chdir(workdir)  # the old cwd still points below the new mount, at the read-only copy


def _check(code: int, step: str) -> None:
    if code != 0:
        raise OSError(ctypes.get_errno(), f"sandbox isolation failed to {step}")


def live_processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, resident pages) for every process that is not a zombie."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z":
            table[int(name)] = (int(fields[1]), int(fields[21]))
    return table


def _kill_children() -> None:
    """Kill and reap everything the worker left; orphans were reparented to us (subreaper)."""
    me = os.getpid()
    while True:
        for pid in [pid for pid, (parent, _) in live_processes().items() if parent == me]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _exit_like(status: int) -> NoReturn:
    """End this process as the worker ended, so the parent reads one honest status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number != signal.SIGKILL:  # SIGKILL has no handler to reset
            signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status))


# ----- worker


def _work(request: dict[str, Any], result_fd: int, workdir: str) -> NoReturn:
    global _channel
    token = request.pop("token").encode()
    _channel = (result_fd, token)
    try:
        try:
            task = _prepare(request)
            guard = _Guard(os.path.realpath(workdir))
            sys.addaudithook(guard)
            message = _run_task(task, request["payload"], guard)
        except BaseException as error:  # noqa: BLE001 - the set-up itself failed; report it
            message = {"status": "raised", "error": _describe(error)}
        _channel = None
        _write_all(result_fd, _frame(token, message))
        os.close(result_fd)
    finally:
        os._exit(0)  # the worker must never return into the supervisor's code


def _prepare(request: dict[str, Any]) -> Callable[[dict], Any]:
    """Import torch and the task, then apply the limits that must follow those imports."""
    import torch

    threads = request["threads"]
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)
    module_name, _, function_name = request["function"].partition(":")
    task = getattr(importlib.import_module(module_name), function_name)
    if torch.cuda.is_available():
        torch.cuda.init()  # before the audit hook: driver loading is trusted work
    else:  # RLIMIT_AS would break the CUDA driver's large mappings
        ceiling = _virtual_memory_bytes() + request["memory_mb"] * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    return task


def _virtual_memory_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("VmSize missing from /proc/self/status")


def _run_task(task: Callable[[dict], Any], payload: dict, guard: _Guard) -> dict[str, Any]:
    try:
        value = task(payload)
    except BaseException as error:  # noqa: BLE001 - any failure of untrusted code is a result
        message = _failure(error)
    else:
        message = _returned(value)
    if guard.refused is not None:  # even when the task caught the refusal and carried on
        message = {"status": "forbidden", "event": guard.refused}
    return message


def _failure(error: BaseException) -> dict[str, Any]:
    if isinstance(error, MemoryError) or "can't allocate memory" in str(error):
        return {"status": "memory"}
    return {"status": "raised", "error": _describe(error)}


def _returned(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {"status": "invalid", "error": f"a {type(value).__name__}, not a dict"}
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as error:
        return {"status": "invalid", "error": f"a dict that is not JSON-able ({error})"}
    return {"status": "returned", "value": value}


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _argument(args: tuple, index: int | None) -> Any:
    """Argument `index` of an audit event, None when absent (events grow arguments over time)."""
    return args[index] if index is not None and index < len(args) else None


def _resolve(path: Any, dir_fd: int | None) -> Any:
    """The path a call with `dir_fd` really touches (fd-relative calls, as in shutil.rmtree)."""
    if dir_fd is None or dir_fd == -1 or isinstance(path, int):
        return path
    return os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), os.fsdecode(path))


class _Guard:
    """The audit hook: refuses escapes and remembers the first one for the report."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.refused: str | None = None
        self._refused_prefixes = _REFUSED_EVENTS  # held here: module globals are easy to patch
        self._path_events = dict(_PATH_EVENTS)

    def __call__(self, event: str, args: tuple) -> None:
        if event.startswith(self._refused_prefixes) or not self._allowed(event, args):
            if self.refused is None:
                self.refused = event
            raise ForbiddenOperation(f"forbidden in the astevo sandbox: {event}")

    def _allowed(self, event: str, args: tuple) -> bool:
        if event == "open":
            return self._open_allowed(*args[:3])
        if event in self._path_events:
            return all(
                self._inside(_resolve(_argument(args, path), _argument(args, dir_fd)))
                for path, dir_fd in self._path_events[event]
            )
        return True

    def _open_allowed(self, path: Any, mode: str | None, flags: int) -> bool:
        if isinstance(path, int):
            return True  # an fd this process already holds
        writing = bool(flags & _WRITE_FLAGS) or any(c in (mode or "") for c in "wax+")
        if mode is None and os.path.isdir(path):  # os.open of a directory yields a dir_fd
            return self._inside(path)
        return not writing or self._inside(path) or os.path.realpath(path) in _WRITABLE_DEVICES

    def _inside(self, path: Any) -> bool:
        """True for fd arguments and for regular files (or new names) under the working dir."""
        if isinstance(path, int):
            return True
        real = os.path.realpath(os.fsdecode(path))
        if os.path.commonpath([real, self.workdir]) != self.workdir:
            return False
        try:
            return stat.S_ISREG(os.lstat(real).st_mode) or os.path.isdir(real)
        except FileNotFoundError:
            return True


if __name__ == "__main__":
    main()
