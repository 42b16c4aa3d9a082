"""Executors: where a sweep's shards train. Each takes the jobs (:meth:`Plan.job`), runs
:func:`~neurornn.sweeps.shard.run_shard` on each and reports back; none decides what a
shard holds, so the executor and the number of workers never change the weights.

- ``local``: in this process, one shard after another (``workers=1``), or a pool of
  ``workers`` processes started with ``spawn`` (each trains one shard at a time).
- ``ray``: one Ray task per shard (:mod:`neurornn.sweeps._ray`); Ray schedules them.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Mapping, Sequence

from .._validation import check_int, suggest
from ._ray import RayExecutor
from .shard import failed_result, run_shard

__all__ = ["LocalExecutor", "RayExecutor", "EXECUTORS", "make_executor", "failed_result"]

Job = Mapping[str, Any]
OnStart = Callable[[Job], None]
OnDone = Callable[[Job, dict], None]


class LocalExecutor:
    """Shards in this process, one after another, or in a pool of ``workers`` spawned processes."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        self.workers = check_int("workers", workers, minimum=1)

    def __repr__(self) -> str:
        return f"LocalExecutor(workers={self.workers})"

    def run(self, jobs: Sequence[Job], on_start: OnStart, on_done: OnDone) -> None:
        if self.workers == 1 or len(jobs) <= 1:
            for job in jobs:
                on_start(job)
                try:
                    result = run_shard(job)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as err:  # noqa: BLE001 (run_shard catches training errors; this is a bug)
                    result = failed_result(job, err)
                on_done(job, result)
            return
        queue = list(jobs)
        with ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)),
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            running = {}
            try:
                while queue or running:
                    while queue and len(running) < self.workers:  # at most one shard per worker: "running" is true
                        job = queue.pop(0)
                        on_start(job)
                        running[pool.submit(run_shard, job)] = job
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        job = running.pop(future)
                        err = future.exception()
                        if isinstance(err, KeyboardInterrupt):
                            raise KeyboardInterrupt
                        on_done(job, failed_result(job, err) if err is not None else future.result())
            except KeyboardInterrupt:
                # Ctrl-C reached the workers too: each checkpoints its shard and stops; wait for them
                pool.shutdown(wait=True, cancel_futures=True)
                raise


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str = "local", workers: int | None = None, address: str | None = None):
    """The executor called ``name`` (``local`` or ``ray``)."""
    if name not in EXECUTORS:
        raise ValueError(f"unknown executor {name!r}{suggest(str(name), EXECUTORS)}; executors: {list(EXECUTORS)}")
    if name == "local":
        if address is not None:
            raise ValueError("address is for the ray executor (--executor ray --address ...)")
        return LocalExecutor(1 if workers is None else workers)
    return RayExecutor(address=address, workers=workers)
