"""Running a piece of neurornn in a forked child, optionally killed by the write-fault hook."""

from __future__ import annotations

import os
from typing import Callable

import neurornn as nr


def run_in_child(fn: Callable[[], object], fault: str | None = None) -> int:
    """Run ``fn()`` in a forked process with stdout and stderr silenced; its exit code (``fn``'s return
    value when it is an int, like ``cli.main``'s, else 0), or -9 when the fault hook
    ``NEURORNN_FAULT_WRITE=fault`` killed it."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            if fault is not None:
                os.environ["NEURORNN_FAULT_WRITE"] = fault
                nr._files._writes = 0  # count this run's writes only
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            result = fn()
            code = result if isinstance(result, int) else 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
