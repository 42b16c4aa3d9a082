"""How many CPU threads torch uses for work on one network: one policy for training and analysis."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

from .train import SMALL_NETWORK_UNITS

__all__ = ["cpu_threads"]


@contextmanager
def cpu_threads(n_units: int, device: str | torch.device = "cpu", threads: int | None = None) -> Iterator[None]:
    """Run the block with ``threads`` torch threads if given; otherwise with one thread on the CPU for a
    network of up to ``SMALL_NETWORK_UNITS`` units (its per-step matrix products are too small to share,
    and a second thread slows them badly on a busy machine: see docs/speed.md), and torch's own number
    otherwise. The previous number is restored afterwards."""
    if threads is None and torch.device(device).type == "cpu" and n_units <= SMALL_NETWORK_UNITS:
        threads = 1
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
