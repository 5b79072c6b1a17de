"""The sandbox against hostile tasks (tests/sandbox_tasks.py), in real child processes.

Every behaviour is covered with both ways of starting a child: cold (a fresh interpreter that
imports torch, about 3 s here) and warm (forked from a warm worker that imported torch once).
The ones the namespaces change are run both with them (`isolate=True`, the default) and without
(the fallback for machines that refuse them).
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from astevo.errors import AstevoError
from astevo.evaluation.payloads import WARM_IMPORTS
from astevo.isolation.child import REQUEST_FILE
from astevo.isolation.sandbox import (
    ANYWHERE,
    OUTPUT_TAIL_BYTES,
    Limits,
    Outcome,
    Slot,
    run,
)
from astevo.isolation.warm_pool import WarmPool, WarmStartError, WarmWorker, shared_pool
from astevo.isolation.workdirs import WORKDIR_PREFIX, remove_abandoned_workdirs, working_folder
from tests import sandbox_tasks
from tests.process_tree import alive, descendants

LIMITS = Limits(seconds=20.0, memory_mb=1500)
ISOLATION = pytest.mark.parametrize("isolate", [True, False], ids=["namespaces", "fallback"])


Sandbox = Callable[..., Outcome]


def task(name: str) -> str:
    return f"{sandbox_tasks.__name__}:{name}"


@pytest.fixture(params=["cold", "warm"])
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    """`run` for a task of tests/sandbox_tasks.py, with the child started cold or warm."""

    def call(
        name: str, payload: dict, limits: Limits = LIMITS, *, isolate: bool = True, slot: Slot = ANYWHERE
    ) -> Outcome:
        return run(
            task(name),
            payload,
            replace(limits, preload=WARM_IMPORTS if request.param == "warm" else ()),
            isolate=isolate,
            slot=slot,
        )

    return call


def processes_running(command_fragment: str) -> list[int]:
    """Live processes whose command line contains `command_fragment`."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            command = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if command_fragment in command and state != "Z":
            found.append(int(name))
    return found


def unique_sleep_seconds() -> str:
    """A `sleep` argument no other process on the machine is using."""
    return f"3{secrets.randbelow(10**6)}.5"


@pytest.mark.parametrize("field", ["seconds", "memory_mb", "threads"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(AstevoError, match=f"sandbox limits must be positive .*{field}=0"):
        Limits(**{field: 0})


def test_ordinary_torch_work_returns_its_value_and_cleans_up(sandbox: Sandbox) -> None:
    outcome = sandbox("train_briefly", {"steps": 3}, Limits(seconds=60.0, memory_mb=1500, threads=2))
    assert outcome.ok, outcome.error
    assert outcome.error is None
    assert math.isfinite(outcome.value["loss"])
    assert outcome.value["threads"] == 2
    workdir = outcome.value["cwd"]
    assert workdir != os.getcwd()
    assert not os.path.exists(workdir), "the temporary working directory must be removed"


def test_child_environment_is_minimal(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("ASTEVO_TEST_SECRET", "do-not-leak")
    outcome = sandbox("report_environment", {}, Limits(seconds=20.0, memory_mb=1500, threads=3))
    environ = outcome.value["environ"]
    assert "HTTPS_PROXY" not in environ and "ASTEVO_TEST_SECRET" not in environ
    assert environ["HOME"] == environ["TMPDIR"] == outcome.value["cwd"]
    assert environ["OMP_NUM_THREADS"] == environ["MKL_NUM_THREADS"] == "3"


def test_a_slot_gives_the_child_its_own_gpus(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert sandbox("report_environment", {}, slot=Slot("1")).value["environ"]["CUDA_VISIBLE_DEVICES"] == "1"
    assert sandbox("report_environment", {}).value["environ"]["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_a_slot_stopped_by_astevo_abandons_its_child_at_once(sandbox: Sandbox) -> None:
    stop = threading.Event()
    threading.Timer(4.0, stop.set).start()
    started = time.monotonic()
    outcome = sandbox("loop_forever", {}, Limits(seconds=120.0, memory_mb=1500), slot=Slot(None, stop))
    assert outcome.error == "abandoned: astevo is stopping"
    assert time.monotonic() - started < 30


def test_exception_is_reported_in_one_line(sandbox: Sandbox) -> None:
    outcome = sandbox("raise_value_error", {"message": "bad\nthings"}, LIMITS)
    assert not outcome.ok and outcome.value is None
    assert outcome.error == "raised ValueError: bad things"


def test_non_dict_value_is_rejected(sandbox: Sandbox) -> None:
    assert sandbox("return_non_dict", {}, LIMITS).error == "returned a list, not a dict"


@pytest.mark.slow
@ISOLATION
def test_infinite_loop_times_out_and_its_process_group_is_gone(sandbox: Sandbox, isolate: bool) -> None:
    outcome = sandbox("loop_forever", {}, Limits(seconds=6.0, memory_mb=1500), isolate=isolate)
    assert outcome.error == "timed out after 6.0 s"
    stat_line = next(line for line in outcome.output.splitlines() if "(python" in line)
    pid, _, fields = stat_line.partition(" (")
    group = int(fields.rsplit(")", 1)[1].split()[2])
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)
    assert not os.path.exists(f"/proc/{pid}")


def test_memory_growth_hits_the_limit(sandbox: Sandbox) -> None:
    outcome = sandbox("eat_memory", {}, LIMITS)
    assert outcome.error == "exceeded the memory limit of 1500 MB"


def test_single_huge_allocation_hits_the_limit(sandbox: Sandbox) -> None:
    outcome = sandbox("allocate_at_once", {"gigabytes": 8}, LIMITS)
    assert outcome.error == "exceeded the memory limit of 1500 MB"


def test_sys_exit_is_not_a_result(sandbox: Sandbox) -> None:
    assert sandbox("call_sys_exit", {}, LIMITS).error == "raised SystemExit: 0"


def test_result_printed_on_stdout_then_os_exit_zero_is_not_a_result(sandbox: Sandbox) -> None:
    outcome = sandbox("print_forged_result", {}, LIMITS)
    assert not outcome.ok
    assert outcome.error == "exited with code 0 before reporting a result"
    assert '"accuracy": 1.0' in outcome.output


def test_result_written_to_the_pipe_without_the_token_is_rejected(sandbox: Sandbox) -> None:
    outcome = sandbox("write_forged_result_to_every_fd", {}, LIMITS)
    assert outcome.error == "sent a forged or malformed result"


def test_output_flood_is_capped_and_the_run_finishes(sandbox: Sandbox) -> None:
    outcome = sandbox("flood_output", {"megabytes": 100}, LIMITS)
    assert outcome.ok and outcome.value == {"flooded": True}
    assert len(outcome.output.encode()) <= OUTPUT_TAIL_BYTES
    assert outcome.output.endswith("the end\n")


@pytest.mark.parametrize(
    ("name", "event"), [("spawn_lingering_process", "subprocess.Popen"), ("fork_lingering_process", "os.fork")]
)
def test_starting_processes_is_refused(sandbox: Sandbox, name: str, event: str) -> None:
    seconds = unique_sleep_seconds()
    outcome = sandbox(name, {"seconds": seconds}, LIMITS)
    assert outcome.error == f"forbidden at run time: {event}"
    assert processes_running(f"sleep {seconds}") == []


@ISOLATION
def test_process_started_past_the_hook_does_not_outlive_the_run(sandbox: Sandbox, isolate: bool) -> None:
    seconds = unique_sleep_seconds()
    outcome = sandbox("spawn_past_the_hook", {"seconds": seconds}, LIMITS, isolate=isolate)
    assert outcome.value == {"spawned": True}
    assert processes_running(f"sleep {seconds}") == []


def test_signalling_the_parent_is_refused(sandbox: Sandbox) -> None:
    outcome = sandbox("signal_parent", {}, LIMITS)
    assert outcome.error == "forbidden at run time: os.kill"


def test_socket_to_localhost_is_refused(sandbox: Sandbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        outcome = sandbox("connect_socket", {"port": server.getsockname()[1]}, LIMITS)
        assert outcome.error == "forbidden at run time: socket.__new__"
        with pytest.raises(BlockingIOError):
            server.accept()


def test_refusal_caught_by_the_task_still_fails_the_run(sandbox: Sandbox) -> None:
    outcome = sandbox("catch_refusal", {}, LIMITS)
    assert outcome.error == "forbidden at run time: socket.__new__"


def test_writing_outside_the_working_directory_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    outcome = sandbox("write_outside", {"path": str(target)}, LIMITS)
    assert outcome.error == "forbidden at run time: open"
    assert not target.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mount namespaces need root (CAP_SYS_ADMIN)")
def test_native_write_outside_is_stopped_by_the_read_only_mount(sandbox: Sandbox, tmp_path: Path) -> None:
    target = tmp_path / "escaped.pt"
    outcome = sandbox("write_outside_natively", {"path": str(target)}, LIMITS)
    assert outcome.error.startswith("raised RuntimeError")
    assert "Read-only file system" in outcome.error
    assert not target.exists()


def test_files_inside_the_working_directory_are_allowed(sandbox: Sandbox) -> None:
    outcome = sandbox("write_inside", {}, LIMITS)
    assert outcome.value == {"files": ["note.txt", "tensor.pt"]}


def test_ctypes_is_refused(sandbox: Sandbox) -> None:
    outcome = sandbox("segfault_through_ctypes", {}, LIMITS)
    assert outcome.error == "forbidden at run time: ctypes.string_at"


@ISOLATION
def test_segfault_is_reported_as_a_signal(sandbox: Sandbox, isolate: bool) -> None:
    outcome = sandbox("segfault", {}, LIMITS, isolate=isolate)
    assert outcome.error == "killed by signal 11 (SIGSEGV)"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("then", "error"),
    [("return", None), ("hang", "timed out after 6.0 s"), ("exit", "exited with code 0 before reporting a result")],
)
def test_interim_records_arrive_even_when_the_task_dies_later(sandbox: Sandbox, then: str, error: str | None) -> None:
    outcome = sandbox("report_stages_then", {"then": then}, Limits(seconds=6.0, memory_mb=1500))
    assert outcome.error == error
    assert outcome.ok == (error is None)
    assert [record["name"] for record in outcome.progress] == ["first", "second"]


def test_interim_records_are_ignored_outside_a_sandbox(sandbox: Sandbox) -> None:
    assert sandbox_tasks.report_stages_then({"then": "return"}) == {"done": True}


@pytest.mark.slow
def test_a_milestone_holds_the_first_records_to_their_own_time_limit(sandbox: Sandbox) -> None:
    """Checks and training share one child: the checks must report within their limit, the rest gets the whole time."""
    outcome = sandbox("report_stages_then", {"then": "hang"}, Limits(seconds=60.0, memory_mb=1500, milestone=(3, 4.0)))
    assert outcome.error == "timed out after 4.0 s"  # not the 60 s of the whole run
    assert [record["name"] for record in outcome.progress] == ["first", "second"]


def test_a_reached_milestone_lets_the_task_run_on(sandbox: Sandbox) -> None:
    outcome = sandbox(
        "report_stages_then", {"then": "return"}, Limits(seconds=60.0, memory_mb=1500, milestone=(2, 4.0))
    )
    assert outcome.ok and outcome.value == {"done": True}


def test_a_warm_worker_serves_one_candidate_after_another() -> None:
    pool = WarmPool(WARM_IMPORTS)
    try:
        with pool.lease() as first:
            pass
        with pool.lease() as second:
            assert second is first
        outcome = run(task("train_briefly"), {"steps": 2}, replace(LIMITS, preload=WARM_IMPORTS))
        assert outcome.ok, outcome.error
    finally:
        pool.close()
    assert first.process.poll() is not None


def test_a_worker_that_died_while_idle_is_closed_and_replaced() -> None:
    pool = WarmPool(preload=("json",))
    try:
        with pool.lease() as first:
            pass
        first.process.kill()
        first.process.wait()
        with pool.lease() as second:
            assert second is not first
        assert first.control.fileno() == -1 and first.log.closed  # its socket and log are not left open
    finally:
        pool.close()


@pytest.mark.parametrize("when", ["before the request", "after the fork"])
def test_a_worker_killed_after_its_lease_costs_the_task_nothing(when: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The out-of-memory killer, say, ends a worker between its lease and the fork, or after the fork but before
    its reply (when the candidate may have taken the request already): the task runs cold instead, and the dead
    worker goes back to no pool."""
    workers: list[WarmWorker] = []
    fork = WarmWorker.start

    def killed(worker: WarmWorker, workdir: str, environment: dict[str, str], result: int, output: int) -> object:
        workers.append(worker)
        if when == "after the fork":
            fork(worker, workdir, environment, result, output)
            request = Path(workdir, REQUEST_FILE)
            deadline = time.monotonic() + 30
            while request.exists() and time.monotonic() < deadline:  # the candidate has read it, and deleted it
                time.sleep(0.01)
        worker.process.kill()
        worker.process.wait()
        if when == "after the fork":
            worker.broken = True
            raise WarmStartError("the warm worker did not answer (killed)")
        return fork(worker, workdir, environment, result, output)

    monkeypatch.setattr(WarmWorker, "start", killed)
    preload = ("json",)  # a worker that starts in a blink, and is no torch-importing worker of another test
    try:
        outcome = run(task("report_environment"), {}, replace(LIMITS, preload=preload))
        assert outcome.ok, outcome.error
        assert len(workers) == 1 and workers[0].broken and workers[0].control.fileno() == -1
        monkeypatch.undo()
        with shared_pool(preload).lease() as next_worker:
            assert next_worker is not workers[0]
    finally:
        shared_pool(preload).close()


def test_a_worker_that_refuses_to_fork_sends_this_and_every_later_task_cold(monkeypatch: pytest.MonkeyPatch) -> None:
    preload = ("json", "tests.thread_at_import")
    started: list[WarmWorker] = []
    make = WarmWorker.__init__

    def counted(worker: WarmWorker, modules: tuple[str, ...]) -> None:
        started.append(worker)
        make(worker, modules)

    monkeypatch.setattr(WarmWorker, "__init__", counted)
    try:
        for _ in range(2):
            outcome = run(task("report_environment"), {}, replace(LIMITS, preload=preload))
            assert outcome.ok, outcome.error
        assert len(started) == 1  # refused once: the second task did not wait for a worker's imports again
        assert shared_pool(preload).refusal == "the warm worker runs 2 threads, and a fork copies only one"
    finally:
        shared_pool(preload).close()


def test_pages_shared_with_the_warm_worker_are_not_counted_against_the_candidate() -> None:
    """torch alone holds more than 400 MB resident; a warm candidate adds only its own pages."""
    outcome = run(task("train_briefly"), {"steps": 2}, Limits(seconds=60.0, memory_mb=400, preload=WARM_IMPORTS))
    assert outcome.ok, outcome.error
    assert run(task("eat_memory"), {}, Limits(seconds=60.0, memory_mb=400, preload=WARM_IMPORTS)).error == (
        "exceeded the memory limit of 400 MB"
    )


def test_a_warm_worker_that_runs_threads_refuses_to_fork() -> None:
    """A fork copies only the calling thread: a worker with others (an OpenMP pool, say) must not fork."""
    worker = WarmWorker((*WARM_IMPORTS, "tests.thread_at_import"))
    try:
        read, write = os.pipe()
        with pytest.raises(WarmStartError, match="the warm worker runs 2 threads, and a fork copies only one"):
            worker.start("/nonexistent", {}, write, write)
        os.close(read)
        os.close(write)
    finally:
        worker.close()


@pytest.mark.slow
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_sandbox_dies_with_astevo_even_when_astevo_is_killed_with_sigkill(warm: bool) -> None:
    """A killed run must not leave training children competing with the resumed run."""
    caller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "from astevo.isolation.sandbox import Limits, run; "
                f"run('{task('report_stages_then')}', {{'then': 'hang'}}, "
                f"Limits(seconds=300.0, memory_mb=1500, preload={WARM_IMPORTS if warm else ()!r}))"
            ),
        ],
        cwd=Path(__file__).resolve().parents[1],
    )
    depth = 3 if warm else 2  # (warm worker,) supervisor, worker
    try:
        for _ in range(300):  # the sandbox appears, and its worker at the bottom
            sandbox = list(descendants(caller.pid))
            if len(sandbox) >= depth:
                break
            time.sleep(0.1)
        assert len(sandbox) == depth
        time.sleep(5)  # past torch's import: the task is spinning, writing nothing that could fail
    finally:
        caller.kill()
        caller.wait()
    for _ in range(100):
        left = alive(sandbox)
        if not left:
            break
        time.sleep(0.1)
    assert not left


def test_only_working_folders_that_no_live_astevo_holds_are_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder whose astevo died (nothing holds its lock) is removed; one in use, and an older astevo's, are kept."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    abandoned = tmp_path / f"{WORKDIR_PREFIX}999999-abc123"
    older = tmp_path / f"{WORKDIR_PREFIX}xyz789"  # made by an astevo that locked nothing
    for folder in (abandoned, older):
        folder.mkdir()
        (folder / "request.json").write_text("{}")
    with working_folder() as live:
        remove_abandoned_workdirs.__wrapped__()
        assert Path(live).is_dir() and not abandoned.exists() and older.is_dir()
    assert not Path(live).exists()
