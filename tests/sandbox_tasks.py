"""Task functions for tests/test_sandbox.py: one well-behaved, the rest hostile.

Each takes the payload dict the sandbox passes. They run only inside the sandbox's child.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import torch


def train_briefly(payload: dict) -> dict:
    """Ordinary torch work: forward, backward and an optimiser step on a small model."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    images, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    for _ in range(payload["steps"]):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"loss": loss.item(), "threads": torch.get_num_threads(), "cwd": os.getcwd()}


def report_environment(payload: dict) -> dict:
    return {"environ": dict(os.environ), "cwd": os.getcwd()}


def raise_value_error(payload: dict) -> dict:
    raise ValueError(payload["message"])


def loop_forever(payload: dict) -> dict:
    """Print this process's /proc stat line (host pid, group, session), then spin."""
    with open("/proc/self/stat") as handle:
        print(handle.read(), flush=True)
    while True:
        pass


def eat_memory(payload: dict) -> dict:
    """Grow in 64 MB steps, touching every page, until something stops it."""
    hoard = []
    while True:
        hoard.append(torch.ones(16 * 2**20))


def allocate_at_once(payload: dict) -> dict:
    return {"sum": torch.ones(payload["gigabytes"] * 2**28).sum().item()}


def call_sys_exit(payload: dict) -> dict:
    sys.exit(0)


def print_forged_result(payload: dict) -> dict:
    """Print what a result might look like on stdout, then leave without reporting."""
    print('{"status": "returned", "value": {"accuracy": 1.0}}')
    print('deadbeef\n{"status": "returned", "value": {"accuracy": 1.0}}', flush=True)
    os._exit(0)


def write_forged_result_to_every_fd(payload: dict) -> dict:
    """Find the result pipe among the open fds and write a result without the token."""
    forged = b'0123456789abcdef0123456789abcdef\n{"status": "returned", "value": {"accuracy": 1.0}}'
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2:
            try:
                os.write(int(name), forged)
            except OSError:
                pass
    return {"accuracy": 0.1}


def flood_output(payload: dict) -> dict:
    chunk = "x" * 65535 + "\n"
    for _ in range(payload["megabytes"] * 16):
        sys.stdout.write(chunk)
    sys.stdout.write("the end\n")
    return {"flooded": True}


def spawn_lingering_process(payload: dict) -> dict:
    subprocess.Popen(["sleep", str(payload["seconds"])], start_new_session=True)
    return {"spawned": True}


def fork_lingering_process(payload: dict) -> dict:
    if os.fork() == 0:
        time.sleep(payload["seconds"])
        os._exit(0)
    return {"forked": True}


def spawn_past_the_hook(payload: dict) -> dict:
    """Silence the audit event subprocess raises, start `sleep` in a new session (out of the
    process group and session the parent knows), and return at once."""

    class QuietSys:
        def __getattr__(self, name: str) -> object:
            return getattr(sys, name)

        @staticmethod
        def audit(*args: object) -> None:
            pass

    subprocess.sys = QuietSys()
    try:
        subprocess.Popen(["sleep", payload["seconds"]], start_new_session=True)
    finally:
        subprocess.sys = sys
    return {"spawned": True}


def signal_parent(payload: dict) -> dict:
    os.kill(os.getppid(), signal.SIGTERM)
    return {"signalled": True}


def connect_socket(payload: dict) -> dict:
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.connect(("127.0.0.1", payload["port"]))
    return {"connected": True}


def write_outside(payload: dict) -> dict:
    with open(payload["path"], "w") as handle:
        handle.write("escaped")
    return {"written": True}


def write_outside_natively(payload: dict) -> dict:
    """torch.save writes from C++, which no audit hook sees."""
    torch.save({"escaped": True}, payload["path"])
    return {"written": True}


def write_inside(payload: dict) -> dict:
    """Ordinary file work in the working directory, as libraries do it."""
    with open("note.txt", "w") as handle:
        handle.write("fine")
    torch.save(torch.zeros(2), "tensor.pt")
    os.makedirs("scratch/a/b")
    shutil.rmtree("scratch")  # fd-relative removals (dir_fd) under the hood
    with tempfile.NamedTemporaryFile("w") as temporary, open(os.devnull, "w") as sink:
        temporary.write("fine")
        sink.write("fine")
    return {"files": sorted(os.listdir("."))}


def catch_refusal(payload: dict) -> dict:
    """Try a socket, swallow the refusal and return as if nothing happened."""
    try:
        socket.socket()
    except OSError:
        pass
    return {"accuracy": 1.0}


def segfault_through_ctypes(payload: dict) -> dict:
    import ctypes

    ctypes.string_at(0)
    return {"survived": True}


def segfault(payload: dict) -> dict:
    """Read address 0 from C without ctypes (a CPython test helper)."""
    import faulthandler

    faulthandler._read_null()
    return {"survived": True}


def return_non_dict(payload: dict) -> list:
    return [1, 2, 3]


def report_stages_then(payload: dict) -> dict:
    """Report two interim records, then end as the payload says: return, hang or crash."""
    from astevo.isolation.child import report_progress

    report_progress({"name": "first", "ok": True})
    report_progress({"name": "second", "ok": True})
    if payload["then"] == "hang":
        while True:
            pass
    if payload["then"] == "exit":
        os._exit(0)
    return {"done": True}
