"""The sweep folder: the sweep file, the points table and the results table.

::

    SWEEP/
      .neurornn.json     the manifest (a neurornn folder of kind "sweep")
      sweep.yaml         the sweep, self-contained (base inlined, --set / --vary applied)
      points.csv         one row per point: point, shard, state (pending / running / done / failed),
                         error, the varied settings
      results.csv        one row per point: the varied settings, seeds, final loss and accuracy, steps,
                         stop reason, wall time, the recorded scalars (written at the end of a sweep
                         and by ``neurornn sweep collect``)
      results.png        a figure of results.csv (when a varied setting is numeric)
      shard_000/         an ensemble folder per shard (see neurornn.training.train_ensemble)
        p0000/           an ordinary run folder per point (neurornn.load_run)
        recorded.json    the recorded scalars of its points

Only the process running the sweep writes ``points.csv`` (atomically, after every shard);
each shard folder is written by the worker that trains it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._files import write_csv, write_text
from .._folder import Folder, folder_kind, make_folder, open_folder, verified_bytes
from ..runs import load_yaml, read_yaml_file
from .plan import Plan
from .shard import finished_summary, read_recorded
from .spec import SweepSpec

__all__ = ["SWEEP_FILE", "POINTS", "RESULTS", "STATES", "PointsTable", "open_sweep_folder",
           "read_saved_sweep", "read_points", "results_rows", "is_sweep"]

SWEEP_FILE, POINTS, RESULTS = "sweep.yaml", "points.csv", "results.csv"
STATES = ("pending", "running", "done", "failed")
SUMMARY_COLUMNS = ("steps", "stopped_because", "final_loss", "final_accuracy", "wall_seconds")


def is_sweep(path: str | os.PathLike) -> bool:
    """True when ``path`` is a sweep folder neurornn made."""
    return folder_kind(path) == "sweep"


def _cell(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict, tuple)) else value


def read_saved_sweep(path: str | os.PathLike) -> dict[str, Any]:
    """The ``sweep.yaml`` of sweep folder ``path`` (checked against its manifest), parsed."""
    file = Path(path) / SWEEP_FILE
    data = read_yaml_file(file, verified_bytes(file, "the sweep cannot be continued or collected without it"))
    if not isinstance(data, dict):
        raise ValueError(f"{str(file)!r} must hold a mapping (a sweep file)")
    return data


def open_sweep_folder(out: str | os.PathLike, spec: SweepSpec, overwrite: bool = False) -> tuple[Folder, bool]:
    """Hold the sweep folder ``out``: made (``False``) or, holding the same sweep, continued (``True``)."""
    path = Path(out)
    if is_sweep(path) and not overwrite:
        folder = open_folder(path, "sweep", what="sweep folder")
        try:
            saved, given = read_saved_sweep(path), load_yaml(spec.to_yaml())
            if saved != given:
                keys = [k for k in {**saved, **given} if saved.get(k) != given.get(k)]
                raise ValueError(f"sweep folder {str(path)!r} holds another sweep (its sweep.yaml differs in "
                                 f"{', '.join(map(repr, keys))}); choose another --out, or replace it with "
                                 "--overwrite")
        except BaseException:
            folder.close()
            raise
        return folder, True
    folder = make_folder(path, "sweep", overwrite=overwrite, what="sweep folder",
                         hint="choose another --out, or replace it with --overwrite")
    try:
        write_text(path / SWEEP_FILE, spec.to_yaml())
    except BaseException:
        folder.close()
        raise
    return folder, False


def _done(root: Path, shard: str, point: str, record: Sequence[str], recorded: dict) -> bool:
    return (finished_summary(root / shard / point) is not None
            and all(e in recorded.get(point, {}) for e in record))


class PointsTable:
    """The points table of a sweep being run: states read from the shard folders, written atomically."""

    def __init__(self, root: Path, plan: Plan) -> None:
        self.root, self.plan = Path(root), plan
        self.rows: dict[str, dict[str, Any]] = {}
        record = plan.spec.record
        recorded = {s.name: read_recorded(self.root / s.name) if record else {} for s in plan.shards}
        for p in plan.points:
            if p.error is not None:
                state = "failed"
            else:
                state = "done" if _done(self.root, p.shard, p.name, record, recorded[p.shard]) else "pending"
            self.rows[p.name] = {"point": p.name, "shard": p.shard or "", "state": state, "error": p.error or "",
                                 **{k: _cell(p.settings.get(k)) for k in plan.spec.varied}}

    def count(self, state: str) -> int:
        return sum(r["state"] == state for r in self.rows.values())

    def shard_done(self, shard) -> bool:
        return all(self.rows[n]["state"] == "done" for n in shard.points)

    def set(self, name: str, state: str, error: str | None = None) -> None:
        self.rows[name]["state"] = state
        self.rows[name]["error"] = error or ""

    def write(self) -> None:
        write_csv(self.root / POINTS, list(self.rows.values()))


def read_points(root: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a sweep folder's ``points.csv`` (strings)."""
    file = Path(root) / POINTS
    data = verified_bytes(file, "run the sweep again to write it")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def results_rows(root: str | os.PathLike, spec: SweepSpec, points: Sequence[Mapping[str, str]]) -> list[dict]:
    """One row of ``results.csv`` per point, read from the shard folders (the state refreshed from them)."""
    root = Path(root)
    recorded = {}
    rows = []
    for p in points:
        shard, name = p.get("shard", ""), p["point"]
        summary = finished_summary(root / shard / name) if shard else None
        if shard and shard not in recorded:
            recorded[shard] = read_recorded(root / shard) if spec.record else {}
        values = recorded.get(shard, {}).get(name, {})
        state, error = p.get("state", ""), p.get("error", "")
        if summary is not None and all(e in values for e in spec.record):
            state, error = "done", ""
        elif state in ("running", "done"):  # a sweep stopped before it could say
            state = "pending"
        row = {"point": name, "state": state, **{k: p.get(k, "") for k in spec.varied}}
        s = summary or {}
        row["model_seed"], row["train_seed"] = _seeds(root / shard / name) if summary else ("", "")
        row.update({c: s.get(c, "") for c in SUMMARY_COLUMNS})
        row.update({e: values.get(e, "") for e in spec.record})
        row.update({"run": f"{shard}/{name}" if shard else "", "error": error})
        rows.append({k: ("" if v is None else v) for k, v in row.items()})
    return rows


def _seeds(run_dir: Path) -> tuple[Any, Any]:
    from_file = read_yaml_file(run_dir / "config.yaml", verified_bytes(run_dir / "config.yaml"))
    return from_file["model"].get("seed", ""), from_file["train"].get("seed", "")
