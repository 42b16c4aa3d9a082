"""``run_sweep``: train every point of a sweep file, resumably; ``collect_sweep``: its results table."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from tqdm.auto import tqdm

from .._files import write_csv
from .._folder import open_folder
from ._figure import write_results_figure
from .executors import make_executor
from .plan import plan_sweep
from .spec import SweepSpec, read_sweep
from .table import RESULTS, PointsTable, is_sweep, open_sweep_folder, read_points, read_saved_sweep, results_rows

__all__ = ["run_sweep", "collect_sweep", "SweepResult"]


@dataclass
class SweepResult:
    """What :func:`run_sweep` and :func:`collect_sweep` return.

    Attributes
    ----------
    path : Path
        The sweep folder.
    rows : list of dict
        One row of ``results.csv`` per point, in sweep order.
    wall_seconds : float
    """

    path: Path
    rows: list[dict[str, Any]]
    wall_seconds: float

    def count(self, state: str) -> int:
        """How many points are in ``state`` (pending, running, done, failed)."""
        return sum(r["state"] == state for r in self.rows)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["state"] == "failed"]

    def run_path(self, point: str) -> Path:
        """The run folder of ``point`` (e.g. ``"p0003"``)."""
        for row in self.rows:
            if row["point"] == point and row["run"]:
                return self.path / row["run"]
        raise KeyError(f"no run folder for point {point!r} (a failed point trains nowhere)")

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return (f"SweepResult({str(self.path)!r}, {len(self.rows)} points: {self.count('done')} done, "
                f"{self.count('failed')} failed, {self.count('pending')} pending)")


def _spec_of(sweep: Any, sets: Sequence[str], vary: Sequence[str]) -> SweepSpec:
    if isinstance(sweep, SweepSpec):
        if sets or vary:
            raise ValueError("give sets and vary to read_sweep, or a sweep file to run_sweep, not with a SweepSpec")
        return sweep
    if isinstance(sweep, (str, os.PathLike)) and is_sweep(sweep):  # a sweep folder: its own sweep.yaml
        return read_sweep(read_saved_sweep(sweep), sets=sets, vary=vary)
    return read_sweep(sweep, sets=sets, vary=vary)


def run_sweep(
    sweep: str | os.PathLike | Mapping[str, Any] | SweepSpec,
    out: str | os.PathLike | None = None,
    *,
    executor: str = "local",
    workers: int | None = None,
    address: str | None = None,
    overwrite: bool = False,
    sets: Sequence[str] = (),
    vary: Sequence[str] = (),
    trust_code: bool = False,
    progress: bool = True,
) -> SweepResult:
    """Train every point of a sweep; again on the same folder, continue it.

    Parameters
    ----------
    sweep : path of a sweep file, its mapping, a SweepSpec, or a sweep folder (its sweep.yaml)
    out : path
        The sweep folder (default: ``sweep`` itself when it is a sweep folder). A folder that
        holds the same sweep is continued: done points are skipped, interrupted shards resume
        from their checkpoints, failed points are tried again.
    executor : "local" or "ray"
    workers : int, optional
        ``local``: processes training shards at once (default 1: in this process).
    address : str, optional
        ``ray``: the cluster to join (default: start a local one when none runs).
    overwrite : bool
        Replace the folder ``out`` (only what neurornn wrote) instead of continuing it.
    sets, vary : ``section.key=value`` items for the base, ``KEY=VALUES`` items added to the grid.
    trust_code : bool
        Allow the base to name task code (``module:Class``).
    progress : bool
        A progress bar over the points (failures counted).

    Returns
    -------
    SweepResult (``results.csv`` is written too). Ctrl-C stops every shard at a checkpoint, writes
    the points table and raises ``KeyboardInterrupt``.
    """
    t0 = time.perf_counter()
    if out is None:
        if not (isinstance(sweep, (str, os.PathLike)) and is_sweep(sweep)):
            raise ValueError("out must name the sweep folder (or give a sweep folder as sweep)")
        out = sweep
    spec = _spec_of(sweep, sets, vary)
    run_executor = make_executor(executor, workers, address)
    plan = plan_sweep(spec, trust_code=trust_code)
    folder, _ = open_sweep_folder(out, spec, overwrite=overwrite)
    with folder:
        table = PointsTable(folder.path, plan)
        table.write()
        jobs = [plan.job(s, folder.path, trust_code) for s in plan.shards if not table.shard_done(s)]
        bar = tqdm(total=len(plan.points), initial=table.count("done") + table.count("failed"), unit="point",
                   desc="sweep", disable=not progress, file=sys.stderr, dynamic_ncols=True)
        bar.set_postfix(failed=table.count("failed"), refresh=False)

        def on_start(job):
            for name in job["points"]:
                table.set(name, "running")
            table.write()

        def on_done(job, result):
            for name, point in result["points"].items():
                table.set(name, point["state"], point.get("error"))
            table.write()
            bar.update(len(result["points"]))
            bar.set_postfix(failed=table.count("failed"))

        try:
            run_executor.run(jobs, on_start, on_done)
        finally:
            bar.close()
            for name, row in table.rows.items():
                if row["state"] == "running":  # interrupted: resumable
                    table.set(name, "pending")
            table.write()
        rows = _write_results(folder.path, spec)
    return SweepResult(folder.path, rows, round(time.perf_counter() - t0, 3))


def _write_results(root: Path, spec: SweepSpec) -> list[dict[str, Any]]:
    rows = results_rows(root, spec, read_points(root))
    write_csv(root / RESULTS, rows)
    write_results_figure(root, spec, rows)
    return rows


def collect_sweep(out: str | os.PathLike) -> SweepResult:
    """Write ``results.csv`` (and ``results.png``) of sweep folder ``out`` from its shard folders."""
    t0 = time.perf_counter()
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a path, got {type(out).__name__}")
    if not is_sweep(out):
        raise ValueError(f"{str(out)!r} is not a sweep folder (no .neurornn.json of kind 'sweep')")
    with open_folder(out, "sweep", what="sweep folder") as folder:
        spec = read_sweep(read_saved_sweep(folder.path))
        rows = _write_results(folder.path, spec)
    return SweepResult(folder.path, rows, round(time.perf_counter() - t0, 3))

