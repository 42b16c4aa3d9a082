"""The Ray executor: one Ray task per shard, a thin layer over Ray core (``pip install neurornn[ray]``).

``ray.init()`` starts a local cluster when none runs (and stops it afterwards), or joins the
one at ``address`` (``"auto"``, ``"HOST:6379"`` or ``"ray://HOST:10001"``); a cluster already
joined in this process (``ray.init`` called before) is used as it is. Every shard is one task
asking for as many CPUs as its networks train with (``train.threads``, 1 by default); Ray
places and runs them. A task whose worker or node is lost is retried by Ray
(``max_retries``), and the retried shard resumes from its checkpoints. The workers write
the shard folders themselves: the sweep folder must be on a file system every node sees,
at the same path. Ray is imported only here, and only when the executor runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .shard import failed_result, one_line, run_shard

__all__ = ["RayExecutor", "MAX_RETRIES"]

#: How many times Ray retries a shard whose worker process or node died.
MAX_RETRIES = 3
_CANCEL_WAIT_S = 120


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ImportError("the ray executor needs Ray: pip install 'neurornn[ray]' (or pip install 'ray>=2.9')") \
            from None
    return ray


class RayExecutor:
    """Shards as Ray tasks on a local or existing cluster (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        if workers is not None:
            raise ValueError("--workers is for the local executor; with ray every shard is one task and the "
                             "cluster runs as many at once as it has CPUs (start it with fewer: ray start "
                             "--num-cpus N)")
        if address is not None and (not isinstance(address, str) or not address.strip()):
            raise ValueError(f"address must name a Ray cluster ('auto', 'HOST:6379', 'ray://HOST:10001'), "
                             f"got {address!r}")
        self.address = address

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r})"

    def run(self, jobs: Sequence[Mapping[str, Any]], on_start: Callable, on_done: Callable) -> None:
        if not jobs:
            return
        ray = _import_ray()
        started = not ray.is_initialized()
        if started:
            kw = {}
            if self.address is None:  # a local cluster: its workers import the neurornn this process runs
                kw["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(
                    p for p in (str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH"))
                    if p)}}
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, **kw)
        # the failure of a shard in its code is its result (run_shard catches it); Ray retries lost workers only
        task = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False)(run_shard)
        try:
            refs = {}
            for job in jobs:
                cpus = max(1, int(job["trains"][0].get("threads") or 1))
                refs[task.options(num_cpus=cpus, name=f"neurornn-sweep-{job['shard']}").remote(dict(job))] = job
                on_start(job)
            pending = list(refs)
            try:
                while pending:
                    finished, pending = ray.wait(pending, num_returns=1)
                    for ref in finished:
                        job = refs[ref]
                        try:
                            result = ray.get(ref)
                        except ray.exceptions.TaskCancelledError:
                            raise KeyboardInterrupt from None
                        except ray.exceptions.RayError as err:  # a worker or node lost more often than retried
                            cause = getattr(err, "cause", None)
                            if isinstance(cause, KeyboardInterrupt):
                                raise KeyboardInterrupt from None
                            result = failed_result(job, f"ray: {one_line(cause or err)}")
                        on_done(job, result)
            except KeyboardInterrupt:
                for ref in pending:  # each running shard checkpoints its networks and stops
                    ray.cancel(ref)
                ray.wait(pending, num_returns=len(pending), timeout=_CANCEL_WAIT_S)
                raise
        finally:
            if started:
                ray.shutdown()

