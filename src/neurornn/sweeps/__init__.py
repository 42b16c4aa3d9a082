"""Sweeps: many points of settings, each an ordinary run folder, trained as ensembles (shards) by an
executor (in this process, a pool of processes, or a Ray cluster), resumable, with one results table.

``run_sweep(sweep_file, out)`` trains a sweep (again: continues it), ``collect_sweep(out)`` writes its
``results.csv``; ``read_sweep`` and ``plan_sweep`` say what a sweep file holds and how it is sharded.
See ``docs/sweeps.md``.
"""

from .executors import EXECUTORS, LocalExecutor, RayExecutor, make_executor
from .plan import Plan, Point, Shard, plan_sweep
from .runner import SweepResult, collect_sweep, run_sweep
from .shard import run_shard
from .spec import SweepSpec, read_sweep
from .table import POINTS, RESULTS, STATES, SWEEP_FILE, is_sweep

__all__ = [
    "EXECUTORS",
    "LocalExecutor",
    "POINTS",
    "Plan",
    "Point",
    "RESULTS",
    "RayExecutor",
    "STATES",
    "SWEEP_FILE",
    "Shard",
    "SweepResult",
    "SweepSpec",
    "collect_sweep",
    "is_sweep",
    "make_executor",
    "plan_sweep",
    "read_sweep",
    "run_shard",
    "run_sweep",
]
