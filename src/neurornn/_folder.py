"""neurornn folders (a run, an ensemble, an experiment): made, locked, checked and replaced safely.

A folder is neurornn's when it holds the manifest ``.neurornn.json`` that neurornn
wrote when it made the folder (kind, a random id, when) and that lists every file
neurornn wrote in it with its sha256 (see :mod:`neurornn._files`). Replacing a
folder (``overwrite``) deletes only those files, and only when the folder holds
nothing else: any other file, or a file changed since neurornn wrote it, is
named in the error and the folder is left as it is. The current folder, the home
folder, their parents, the root and symbolic links are never replaced.

A process writing a folder holds ``.neurornn.lock`` (an advisory ``flock`` that
the system releases when the process ends, however it ends); a second writer is
refused with a message naming the first.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._version import __version__
from ._files import (MANIFEST, MANIFEST_FORMAT, find_root, is_temp_name, is_written, read_manifest, relative_name,
                     write_manifest)

__all__ = ["Folder", "make_folder", "open_folder", "prepare_experiment_folder", "only_leftovers", "remove_if_bare", "folder_kind", "verified_bytes", "CorruptFileError",
           "FolderInUseError", "LOCK"]

LOCK = ".neurornn.lock"
_VERSION = 1


class CorruptFileError(ValueError):
    """A file of a neurornn folder is missing, truncated or not what neurornn wrote."""


class FolderInUseError(RuntimeError):
    """Another process (or another writer in this one) holds the folder's lock."""


def _checked_path(path: Any, name: str = "out") -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path, got {type(path).__name__}")
    if isinstance(path, str) and not path.strip():
        raise ValueError(f"{name} must be a folder path, got an empty string")
    return Path(path)


def folder_kind(path: str | os.PathLike) -> str | None:
    """The kind (``run``, ``ensemble``, ``experiment``) of neurornn folder ``path``; ``None`` if it is not one."""
    try:
        return str(read_manifest(path).get("kind"))
    except (OSError, ValueError):
        return None


class Folder:
    """A neurornn folder held for writing (its lock is held until :meth:`close`)."""

    def __init__(self, path: Path, kind: str, lock_fd: int) -> None:
        self.path, self.kind, self._fd = path, kind, lock_fd

    def close(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> "Folder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Folder({str(self.path)!r}, kind={self.kind!r}, locked={self._fd is not None})"


def _lock(path: Path, what: str) -> int:
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
            who = (f"process {holder.get('pid')} on {holder.get('host')} ({holder.get('command')}, "
                   f"since {holder.get('since')})")
        except (ValueError, UnicodeDecodeError):
            who = "another process"
        os.close(fd)
        raise FolderInUseError(f"{what} {str(path)!r} is in use by {who}; wait for it to finish or stop it") \
            from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(Path(a).name if i == 0 else a
            for i, a in enumerate(sys.argv[:4])) or "python",
            "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
    return fd


def _refuse_special(path: Path, what: str) -> None:
    """The current folder, home, their parents and the root are never replaced; nor is a link."""
    if path.is_symlink():
        raise ValueError(f"refusing to replace {what} {str(path)!r}: it is a symbolic link; give the folder it "
                         "points to, or another out")
    real = path.resolve()
    cwd, home = Path.cwd().resolve(), Path.home().resolve()
    for special, name in ((cwd, "the current folder"), (home, "your home folder")):
        if real == special or real in special.parents:
            label = name if real == special else f"a parent of {name}"
            raise ValueError(f"refusing to replace {str(path)!r}: it is {label}; give a folder of its own as out")
    if real == Path(real.anchor):
        raise ValueError(f"refusing to replace {str(path)!r}: it is the root of the file system")


def _survey(root: Path) -> tuple[list[Path], list[str], list[Path]]:
    """(files neurornn wrote, other entries as readable reasons, neurornn sub-folders) of folder ``root``."""
    ours, others, subfolders = [], [], []
    try:
        manifest = read_manifest(root)
    except (OSError, ValueError) as err:
        return [], [f"{MANIFEST}: {err}"], []
    listed = manifest["files"]
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for d in list(dirnames):
            sub = here / d
            if sub.is_symlink():
                others.append(f"{sub.relative_to(root)} (a link)")
                dirnames.remove(d)
            elif (sub / MANIFEST).is_file():
                subfolders.append(sub)
                dirnames.remove(d)
        for name in filenames:
            file = here / name
            rel = file.relative_to(root).as_posix()
            if here == root and name in (MANIFEST, LOCK):
                continue
            if file.is_symlink():
                others.append(f"{rel} (a link)")
            elif is_temp_name(name):
                ours.append(file)
            elif rel not in listed:
                others.append(rel)
            elif not is_written(listed[rel], file.read_bytes()):
                others.append(f"{rel} (changed since neurornn wrote it)")
            else:
                ours.append(file)
    return ours, others, subfolders


def _foreign(root: Path) -> list[str]:
    """What neurornn did not write in folder ``root`` and its neurornn sub-folders."""
    _, others, subfolders = _survey(root)
    for sub in subfolders:
        others += [f"{sub.relative_to(root).as_posix()}/{o}" for o in _foreign(sub)]
    return others


def _delete(root: Path, *, keep_top: bool) -> None:
    """Delete what neurornn wrote in ``root`` (sub-folders first, each under its lock); the manifest last."""
    ours, _, subfolders = _survey(root)
    for sub in subfolders:
        fd = _lock(sub, "folder")
        try:
            _delete(sub, keep_top=False)
        finally:
            os.close(fd)
    for file in ours:
        file.unlink(missing_ok=True)
    if not keep_top:
        (root / LOCK).unlink(missing_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)
    _remove_empty_dirs(root, keep_top=keep_top)


def _remove_empty_dirs(top: Path, *, keep_top: bool) -> None:
    for dirpath, _, _ in sorted(os.walk(top), key=lambda item: -len(item[0])):
        d = Path(dirpath)
        if (d != top or not keep_top) and not any(d.iterdir()):
            d.rmdir()


def only_leftovers(path: str | os.PathLike) -> bool:
    """True when folder ``path`` holds nothing, or only what a writer killed at its very start leaves
    (its lock and temporary files): it counts as empty."""
    return all(p.name == LOCK or is_temp_name(p.name) for p in Path(path).iterdir())


def remove_if_bare(path: str | os.PathLike, *, keep_top: bool = False) -> None:
    """Remove neurornn folder ``path`` when nothing but its manifest, lock and empty folders are left
    (``keep_top``: keep the folder itself, emptied)."""
    path = Path(path)
    if not (path / MANIFEST).is_file() or read_manifest(path)["files"]:
        return
    if any(p.is_file() and p.name not in (MANIFEST, LOCK) for p in path.rglob("*")):
        return
    (path / MANIFEST).unlink()
    (path / LOCK).unlink(missing_ok=True)
    _remove_empty_dirs(path, keep_top=keep_top)


def make_folder(path: Any, kind: str, *, overwrite: bool = False, what: str | None = None,
                hint: str = "choose another out or replace it (overwrite=True / --overwrite)",
                info: dict[str, Any] | None = None) -> Folder:
    """Create neurornn folder ``path`` of ``kind`` and hold it (see the module docstring).

    An existing non-empty folder is a ``FileExistsError`` unless ``overwrite``; then it is
    replaced only if it is a neurornn folder holding nothing but what neurornn wrote.
    """
    what = what or f"{kind} folder"
    path = _checked_path(path)
    if path.is_symlink():
        _refuse_special(path, what)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{what} {str(path)!r} exists and is not a folder")
    fd = None
    if path.exists() and not only_leftovers(path):
        if not overwrite:
            raise FileExistsError(f"{what} {str(path)!r} already exists; {hint}")
        _refuse_special(path, what)
        if not (path / MANIFEST).is_file():
            raise ValueError(f"refusing to replace {str(path)!r}: neurornn did not make it (no {MANIFEST}); "
                             "choose another out")
        fd = _lock(path, what)
        try:
            others = _foreign(path)
            if others:
                shown = ", ".join(others[:8]) + (f" and {len(others) - 8} more" if len(others) > 8 else "")
                raise ValueError(f"refusing to replace {what} {str(path)!r}: it holds what neurornn did not write "
                                 f"({shown}); move those out first, or choose another out")
            _delete(path, keep_top=True)
        except BaseException:
            os.close(fd)
            raise
    path.mkdir(parents=True, exist_ok=True)
    if fd is None:
        fd = _lock(path, what)
    try:
        write_manifest(path, {"format": MANIFEST_FORMAT, "version": _VERSION, "kind": kind, "id": uuid.uuid4().hex,
                              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "neurornn_version": __version__, **(info or {}), "files": {}})
    except BaseException:
        os.close(fd)
        raise
    return Folder(path, kind, fd)


def open_folder(path: Any, kind: str, *, what: str | None = None) -> Folder:
    """Hold existing neurornn folder ``path`` of ``kind`` for writing (e.g. to resume a run)."""
    what = what or f"{kind} folder"
    path = _checked_path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{str(path)!r} is not a {what}: it does not exist")
    found = folder_kind(path)
    if found != kind:
        raise ValueError(f"{str(path)!r} is not a {what}" + (f" (it is a {found} folder)" if found else
                                                              f" (no {MANIFEST}: neurornn did not make it)"))
    return Folder(path, kind, _lock(path, what))


def verified_bytes(path: str | os.PathLike, hint: str = "") -> bytes:
    """The bytes of ``path``, checked against the sha256 its folder's manifest recorded.

    A file outside a neurornn folder is read as it is. ``CorruptFileError`` (naming the
    file, and ``hint``: how to recover) when it is missing, unlisted or changed.
    """
    path = Path(path)
    hint = f"; {hint}" if hint else ""
    root = find_root(path.parent)
    if root is None:
        if not path.is_file():
            raise FileNotFoundError(f"{str(path)!r} does not exist{hint}")
        return path.read_bytes()
    entry = read_manifest(root)["files"].get(relative_name(root, path))
    if entry is None:
        raise CorruptFileError(f"{str(path)!r} is not among the files neurornn wrote in {str(root)!r} "
                               f"(missing from {MANIFEST}){hint}")
    if not path.is_file():
        raise FileNotFoundError(f"{str(path)!r} is missing (neurornn wrote it; it was deleted since){hint}")
    data = path.read_bytes()
    if not is_written(entry, data):
        raise CorruptFileError(f"{str(path)!r} is corrupted or was changed after neurornn wrote it: its sha256 is "
                               f"not the one recorded ({len(data)} bytes, {entry.get('bytes')} written){hint}")
    return data


def prepare_experiment_folder(path: Any, experiment: str, overwrite: bool = False) -> Path | None:
    """:func:`make_folder` for an experiment's output (``None``: nothing is written)."""
    if path is None:
        return None
    with make_folder(path, "experiment", overwrite=overwrite, what="experiment folder",
                     info={"experiment": experiment}) as folder:
        return folder.path
