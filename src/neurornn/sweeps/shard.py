"""Training one shard: what every executor's worker runs (:func:`run_shard`), and how a shard's
folder says how far it got (:func:`finished_summary`, :func:`read_recorded`).

A shard is an ensemble folder ``SWEEP/shard_NNN`` (see :func:`neurornn.training.train_ensemble`)
holding one ordinary run folder per point, plus ``recorded.json``: the scalars recorded from
each finished point's analyses. The worker writes the folder itself (on a cluster the sweep
folder must be on a file system every worker sees). Run again, it trains nothing that is
finished, resumes an interrupted ensemble from its checkpoints (bit-identical to an
uninterrupted run), starts again from step 0 one that cannot be resumed (killed before its
networks' configs were written: the same seeds give the same run), and records what is
missing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .. import tasks
from .._files import read_json, write_json
from .._folder import CorruptFileError, folder_kind, open_folder, verified_bytes
from .._validation import plain
from ..analysis import analyze_run
from ..config import RNNConfig, TrainConfig
from ..training import train_ensemble

__all__ = ["run_shard", "finished_summary", "read_recorded", "RECORDED", "one_line", "failed_result"]

RECORDED = "recorded.json"


def one_line(err: BaseException) -> str:
    """An error as one line of the points table: ``Type: first line of the message``."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def failed_result(job: Mapping[str, Any], err: BaseException | str) -> dict[str, Any]:
    """What a shard whose worker raised (or was lost) reports: every point failed with the error."""
    text = err if isinstance(err, str) else one_line(err)
    return {"shard": job["shard"], "points": {n: {"state": "failed", "error": text} for n in job["points"]},
            "wall_seconds": None}


def finished_summary(run_dir: Path) -> dict | None:
    """The ``summary.json`` of a run that finished (not interrupted, its model written); else ``None``."""
    try:
        summary = read_json(run_dir / "summary.json", verified_bytes(run_dir / "summary.json"))
        verified_bytes(run_dir / "model.safetensors")
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("stopped_because") in (None, "interrupted"):
        return None
    return summary


def read_recorded(folder: Path) -> dict[str, dict[str, Any]]:
    """``{point: {entry: value}}`` from a shard's ``recorded.json`` (empty when there is none yet)."""
    path = Path(folder) / RECORDED
    if not path.is_file():
        return {}
    data = read_json(path, verified_bytes(path, "run the sweep again to record the values again"))
    return data if isinstance(data, dict) else {}


def _lookup(value: Any, entry: str) -> Any:
    """The scalar at ``PATH`` of an analysis' value (dict keys, list indices or attributes)."""
    for part in entry.split(".")[1:]:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        elif hasattr(value, part) and not isinstance(value, (Mapping, list, tuple)):
            value = getattr(value, part)
        else:
            keys = f"; it has {sorted(map(str, value))[:12]}" if isinstance(value, Mapping) else ""
            raise ValueError(f"record {entry!r}: the analysis result has no {part!r}{keys}")
    if hasattr(value, "ndim") and getattr(value, "ndim") == 0:
        value = value.item()
    value = plain(value)
    if value is not None and not isinstance(value, (int, float, str, bool)):
        raise ValueError(f"record {entry!r} is not a scalar (a {type(value).__name__}); name one of its entries")
    return value


def _record(run_dir: Path, entries: Sequence[str], options: Mapping[str, Any], trust_code: bool) -> dict[str, Any]:
    names = list(dict.fromkeys(e.split(".", 1)[0] for e in entries))
    results = analyze_run(run_dir, names, options=dict(options), overwrite=True, report=False, trust_code=trust_code)
    return {e: _lookup(results[e.split(".", 1)[0]].value, e) for e in entries}


def _train(job: Mapping[str, Any], folder: Path) -> None:
    task = tasks.make(job["task"]["name"], trust_code=job["trust_code"], **dict(job["task"]["params"] or {}))
    models = [RNNConfig.from_dict(m) for m in job["models"]]
    trains = [TrainConfig.from_dict(t) for t in job["trains"]]
    kw = {"names": job["points"], "figures": job["figures"], "progress": False}
    if folder_kind(folder) == "ensemble" and (folder / "ensemble.json").is_file():
        try:
            train_ensemble(models, task, trains, out=folder, resume=True, **kw)
            return
        except (ValueError, FileNotFoundError, CorruptFileError):
            pass  # cannot be resumed (killed before its configs were written, ...): start again from step 0
    train_ensemble(models, task, trains, out=folder, overwrite=True, **kw)


def run_shard(job: Mapping[str, Any]) -> dict[str, Any]:
    """Train (or resume) the shard ``job`` describes (see :meth:`Plan.job`) and record its points.

    Returns ``{"shard", "points": {name: {"state": "done"|"failed", "error"}}, "wall_seconds"}``.
    An error while training fails every point of the shard that did not finish; an error while
    recording fails that point only. ``KeyboardInterrupt`` (Ctrl-C, a cancelled task) is raised
    again once every network of the shard is checkpointed.
    """
    t0 = time.perf_counter()
    folder = Path(job["folder"])
    names = list(job["points"])
    error = None
    if not all(finished_summary(folder / n) is not None for n in names):
        try:
            _train(job, folder)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001 (one failing shard never stops the sweep)
            error = one_line(err)
    recorded = read_recorded(folder) if job["record"] else {}
    points = {}
    for name in names:
        if finished_summary(folder / name) is None:
            points[name] = {"state": "failed", "error": error or "training stopped before the run finished"}
            continue
        points[name] = {"state": "done", "error": None}
        missing = [e for e in job["record"] if e not in recorded.get(name, {})]
        if not missing:
            continue
        try:
            values = _record(folder / name, missing, job["analysis"], job["trust_code"])
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001
            points[name] = {"state": "failed", "error": f"record: {one_line(err)}"}
            continue
        recorded.setdefault(name, {}).update(values)
        with open_folder(folder, "ensemble", what="shard folder"):  # after each point: nothing recorded is lost
            write_json(folder / RECORDED, recorded)
    return {"shard": job["shard"], "points": points, "wall_seconds": round(time.perf_counter() - t0, 3)}
