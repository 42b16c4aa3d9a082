"""Output files, written one way everywhere: plain values, atomic writes, folders never lost.

Every folder neurornn writes (a run, an ensemble, an experiment) is created by
:func:`prepare_folder`: an existing non-empty folder is an error unless the caller asks to
overwrite it, and even then it is deleted only if it is recognisably one of ours.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

__all__ = ["to_plain", "write_text", "write_json", "write_csv", "prepare_folder", "EXPERIMENT_MARKER",
           "prepare_experiment_folder"]

EXPERIMENT_MARKER = "experiment.json"


def to_plain(obj: Any, *, finite: bool = False) -> Any:
    """Tuples, numpy/torch arrays and scalars and paths as plain YAML/JSON values.

    ``finite=True`` also turns NaN and infinities into ``None`` (JSON has no NaN).
    Other objects are returned as they are (the writer then says what it cannot write).
    """
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v, finite=finite) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v, finite=finite) for v in obj]
    if hasattr(obj, "tolist") and hasattr(obj, "ndim"):  # numpy and torch arrays and scalars
        return to_plain(obj.tolist(), finite=finite)
    if isinstance(obj, Path):
        return str(obj)
    if finite and isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically: a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def _unwritable(obj: Any) -> Any:
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, data: Any, *, indent: int = 1) -> Path:
    """Write ``data`` as JSON (plain values, NaN and infinities as ``null``), atomically."""
    return write_text(path, json.dumps(to_plain(data, finite=True), indent=indent, default=_unwritable) + "\n")


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write dict rows as CSV; the columns are every key, in order of first appearance."""
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(to_plain(dict(row), finite=True))
    return path


def prepare_folder(
    path: str | os.PathLike,
    *,
    overwrite: bool,
    what: str,
    is_ours: Callable[[Path], bool],
    hint: str = "choose another out or replace it (overwrite=True / --overwrite)",
) -> Path:
    """Create output folder ``path`` and return it.

    An existing non-empty folder is a ``FileExistsError`` unless ``overwrite``; then it is
    deleted, but only if ``is_ours(path)`` says it is a ``what`` that neurornn wrote
    (otherwise ``ValueError``: nothing of the user's is ever deleted).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"out must be a path, got {type(path).__name__}")
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise FileExistsError(f"{what} {str(path)!r} exists and is not a folder")
        if any(path.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{what} {str(path)!r} already exists; {hint}")
            if not is_ours(path):
                article = "an" if what[0] in "aeiou" else "a"
                raise ValueError(f"refusing to overwrite {str(path)!r}: it is not empty and not {article} {what}")
            shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepare_experiment_folder(path: str | os.PathLike | None, experiment: str,
                              overwrite: bool = False) -> Path | None:
    """:func:`prepare_folder` for an experiment's output, marked with ``experiment.json``."""
    if path is None:
        return None
    path = prepare_folder(path, overwrite=overwrite, what="experiment folder",
                          is_ours=lambda p: (p / EXPERIMENT_MARKER).is_file())
    write_json(path / EXPERIMENT_MARKER, {"format": "neurornn-experiment", "experiment": experiment})
    return path
