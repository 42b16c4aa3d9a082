"""Ctrl-C during training: deferred to the end of the current step (main thread only)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

__all__ = ["Interrupt"]


class Interrupt:
    """Defers SIGINT to the end of the current step; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):  # noqa: ARG001
            self.requested = True
            signal.signal(signal.SIGINT, previous)

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
