"""YAML as neurornn reads and writes it: plain values only (no tags, no objects), ``1e-3`` a float."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from .._files import to_plain

__all__ = ["load_yaml", "read_yaml_file", "dump_yaml"]


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads ``1e-3`` as a float (YAML 1.2 style)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str, source: str = "YAML") -> Any:
    """Parse YAML safely (no object construction); ``1e-3`` is a float.

    Broken YAML, or YAML with tags that would build objects (``!!python/...``), is a
    ``ValueError`` naming ``source`` (the file or option it came from).
    """
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(err, "problem", None) or getattr(err, "context", None) or str(err).splitlines()[0]
        raise ValueError(f"{source} is not valid YAML{at}: {problem} (only plain values are read: numbers, "
                         "strings, lists, mappings; no tags)") from None


def read_yaml_file(path: str | os.PathLike, data: bytes | None = None) -> Any:
    """Parse a YAML file (UTF-8); errors name the file."""
    path = Path(path)
    raw = path.read_bytes() if data is None else data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    return load_yaml(text, source=repr(str(path)))


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(to_plain(data), sort_keys=False, default_flow_style=None)
