"""Ctrl-C, SIGTERM and SIGHUP stop a run with a word: systemd, `timeout`, Slurm and `docker stop` send SIGTERM."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(BaseException):
    """A stop signal, raised where the run is, as KeyboardInterrupt is: no `except Exception` may swallow it."""


class StopSignals:
    """Which stop signal arrived, if any.

    The exception a handler raises can be replaced on its way out: CPython 3.11 turns one raised while
    ast.parse builds its tree into a SystemError. So a caller asks `received`, not the exception's type.
    """

    def __init__(self) -> None:
        self.received: signal.Signals | None = None

    @property
    def exit_code(self) -> int | None:
        """What a shell reports for a process that signal ended (130 for Ctrl-C); None when none arrived."""
        return None if self.received is None else 128 + self.received

    def said(self) -> str:
        return "interrupted" if self.received == signal.SIGINT else f"stopped by {getattr(self.received, 'name', '')}"

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Within the block each stop signal raises Stopped; the handlers before it come back after."""

        def stop(number: int, frame: FrameType | None) -> None:
            self.received = signal.Signals(number)
            raise Stopped(self.received.name)

        previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
