"""Output helpers of the experiments: folders that are never overwritten unasked."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from .._validation import check_known_keys

__all__ = ["ExperimentConfig", "prepare_out", "write_json", "write_csv"]


class ExperimentConfig:
    """Base of the experiments' frozen config dataclasses: dict round trip and resolution."""

    _label = "experiment config"  # names the config in errors

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]):
        """Build from a dict, rejecting unknown keys with a suggestion."""
        check_known_keys(cls._label, data, [f.name for f in dataclasses.fields(cls)])
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def resolve(cls, config: Any):
        """``None``: the defaults; a dict: :meth:`from_dict`; an instance: itself."""
        if config is None:
            return cls()
        if isinstance(config, Mapping):
            return cls.from_dict(config)
        if not isinstance(config, cls):
            raise TypeError(f"config must be a {cls.__name__} or a dict, got {type(config).__name__}")
        return config


def prepare_out(out, overwrite: bool = False) -> Path | None:
    """Create the output folder; an existing non-empty one is an error unless ``overwrite``."""
    if out is None:
        return None
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise FileExistsError(f"output folder {str(out)!r} exists and is not empty; pass overwrite=True "
                                  "(--overwrite) to replace it")
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def write_json(path, data: Mapping[str, Any]) -> Path:
    path = Path(path)
    path.write_text(json.dumps(_plain(data), indent=2) + "\n")
    return path


def write_csv(path, rows: Sequence[Mapping[str, Any]]) -> Path:
    path = Path(path)
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _plain(v) for k, v in row.items()})
    return path
