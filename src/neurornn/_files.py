"""Output files, written one way everywhere: plain values, atomic writes.

Every file neurornn writes goes through :func:`write_bytes`: the bytes go to a
temporary file of a unique name beside the target, are flushed to disk, recorded
(with their sha256) in the manifest of the neurornn folder that holds the target
(see :mod:`neurornn._folder`), and only then renamed over the target. A reader
sees the old file or the new one, never half of one, and a process killed at any
moment leaves the target either as it was or complete.

Inside a neurornn folder a file that neurornn did not write is never replaced.

Testing hook: ``NEURORNN_FAULT_WRITE="K:PHASE"`` makes the process kill itself
with SIGKILL during its K-th file write (counted from 1) at PHASE ``partial``
(half the temporary file written), ``recorded`` (manifest updated, target not yet
renamed) or ``renamed`` (just after the rename). Used by the fault-injection tests.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
import signal
import threading
import hashlib
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["to_plain", "write_bytes", "write_text", "write_json", "write_csv", "read_json", "temp_name",
           "is_temp_name", "MANIFEST", "MANIFEST_FORMAT", "find_root", "read_manifest", "write_manifest", "forget",
           "relative_name", "is_written", "sha256"]

_TEMP_SUFFIX = ".tmp"
MANIFEST = ".neurornn.json"
MANIFEST_FORMAT = "neurornn-folder"
_MAX_DEPTH = 3  # RUN/analysis/x.json, ENSEMBLE/net_0/history/x: the nearest manifest above a file wins
_manifest_lock = threading.Lock()


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


# ---------------------------------------------------------------------- fault injection (tests)
_writes = 0


def _fault(phase: str, n: int) -> None:
    spec = os.environ.get("NEURORNN_FAULT_WRITE")
    if not spec:
        return
    at, _, when = spec.partition(":")
    if when == phase and str(n) == at:
        os.kill(os.getpid(), signal.SIGKILL)


def temp_name(path: Path) -> Path:
    """A unique temporary name beside ``path`` (``.NAME.PID-TOKEN.tmp``)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{_TEMP_SUFFIX}")


def is_temp_name(name: str) -> bool:
    """True for a name :func:`temp_name` makes (left behind by a killed writer)."""
    if not (name.startswith(".") and name.endswith(_TEMP_SUFFIX)):
        return False
    tag = name[: -len(_TEMP_SUFFIX)].rsplit(".", 1)[-1]
    pid, _, token = tag.partition("-")
    return pid.isdigit() and len(token) == 8 and all(c in "0123456789abcdef" for c in token)


def write_bytes(path: str | os.PathLike, data: bytes, *, record: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (unique temporary file, fsync, rename).

    Inside a neurornn folder the file and its sha256 are recorded in the folder's
    manifest before the rename (``record=False``: the manifest itself), and an
    existing file there that neurornn did not write is refused (``FileExistsError``,
    and nothing is changed).
    """
    global _writes
    path = Path(path)
    root = find_root(path.parent) if record else None
    _writes += 1
    n = _writes
    tmp = temp_name(path)
    try:
        with open(tmp, "xb") as fh:
            half = len(data) // 2
            fh.write(data[:half])
            _fault("partial", n)
            fh.write(data[half:])
            fh.flush()
            os.fsync(fh.fileno())
        if root is not None:
            _record(root, path, data)
        _fault("recorded", n)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fault("renamed", n)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically; see :func:`write_bytes`."""
    return write_bytes(path, text.encode("utf-8"))


def _unwritable(obj: Any) -> Any:
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: str | os.PathLike, data: Any, *, indent: int = 1) -> Path:
    """Write ``data`` as JSON (plain values, NaN and infinities as ``null``), atomically."""
    return write_text(path, json.dumps(to_plain(data, finite=True), indent=indent, default=_unwritable) + "\n")


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write dict rows as CSV; the columns are every key, in order of first appearance."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow(to_plain(dict(row), finite=True))
    return write_text(path, buf.getvalue())


def read_json(path: str | os.PathLike, data: bytes | None = None) -> Any:
    """Parse a JSON file; a file that is not UTF-8 JSON is a ``ValueError`` naming it."""
    path = Path(path)
    try:
        raw = path.read_bytes() if data is None else data
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON: {err.msg} at line {err.lineno}, "
                         f"column {err.colno}") from None


# ---------------------------------------------------------------------- the manifest
def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_root(directory: str | os.PathLike) -> Path | None:
    """The nearest folder at or above ``directory`` (up to 3 levels) that holds a neurornn manifest."""
    directory = Path(directory)
    for candidate in [directory, *directory.parents][: _MAX_DEPTH + 1]:
        if (candidate / MANIFEST).is_file():
            return candidate
    return None


def read_manifest(root: str | os.PathLike) -> dict[str, Any]:
    """The manifest of neurornn folder ``root`` (``ValueError`` naming it when unreadable)."""
    path = Path(root) / MANIFEST
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT \
            or not isinstance(manifest.get("files"), dict):
        raise ValueError(f"{str(path)!r} is not a neurornn folder manifest (format {MANIFEST_FORMAT!r} with files)")
    return manifest


def write_manifest(root: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
    write_bytes(Path(root) / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"), record=False)


def relative_name(root: str | os.PathLike, path: str | os.PathLike) -> str:
    """``path`` as the manifest of folder ``root`` names it (relative, with ``/``)."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()


def is_written(entry: Mapping[str, Any] | None, data: bytes) -> bool:
    """True when ``data`` is what a manifest ``entry`` says neurornn wrote (its last or previous content)."""
    return entry is not None and sha256(data) in (entry.get("sha256"), entry.get("previous"))


def _record(root: Path, path: Path, data: bytes) -> None:
    """Record ``path`` in the manifest; refuse to replace a link, a folder or a file neurornn did not write."""
    with _manifest_lock:
        manifest = read_manifest(root)
        rel = relative_name(root, path)
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise FileExistsError(f"refusing to write {str(path)!r}: it is a link or a folder, not a file "
                                  "neurornn wrote")
        if path.exists() and rel not in manifest["files"]:
            raise FileExistsError(f"refusing to replace {str(path)!r}: neurornn did not write it (it is not in "
                                  f"{str(root / MANIFEST)!r}); move it out of the folder")
        entry = {"sha256": sha256(data), "bytes": len(data)}
        old = manifest["files"].get(rel)
        if old is not None and old.get("sha256") != entry["sha256"]:
            entry["previous"] = old["sha256"]  # what the file holds until the rename: also ours, also whole
        manifest["files"][rel] = entry
        write_manifest(root, manifest)


def _inside(root: Path, rel: str) -> bool:
    """True when ``rel`` names a plain file or nothing strictly inside ``root`` (no ``..``, no link)."""
    target = Path(os.path.abspath(root / rel))
    return (not Path(rel).is_absolute() and ".." not in Path(rel).parts
            and Path(os.path.abspath(root)) in target.parents and not target.is_symlink())


def forget(root: str | os.PathLike, paths: Sequence[str | os.PathLike]) -> None:
    """Delete files neurornn wrote in folder ``root`` and drop them from its manifest.

    Only files the manifest lists are deleted; other paths are left alone.
    """
    root = Path(root)
    with _manifest_lock:
        manifest = read_manifest(root)
        gone = [rel for rel in (relative_name(root, p) for p in paths)
                if rel in manifest["files"] and _inside(root, rel)]
        for rel in gone:  # files first: a kill in between leaves listed files missing, never unlisted ones
            (root / rel).unlink(missing_ok=True)
        if gone:
            for rel in gone:
                manifest["files"].pop(rel)
            write_manifest(root, manifest)
