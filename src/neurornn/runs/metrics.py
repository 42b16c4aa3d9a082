"""``metrics.csv``: one row per evaluation of a run."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .._files import write_text
from .._validation import suggest

__all__ = ["Metrics"]


class Metrics:
    """The rows of ``metrics.csv``: one dict per evaluation.

    ``metrics["accuracy"]`` is a column as a float array (NaN where a row has no
    value); ``metrics.rows`` the rows; ``metrics.last`` the last row.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols.extend(k for k in row if k not in cols)
        return cols

    def __getitem__(self, column: str) -> np.ndarray:
        if column not in self.columns:
            raise KeyError(f"no metrics column {column!r}{suggest(column, self.columns)}; columns: {self.columns}")
        out = []
        for row in self.rows:
            value = row.get(column)
            out.append(np.nan if value is None or value == "" else float(value))
        return np.asarray(out, dtype=float)

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, column: str) -> bool:
        return column in self.columns

    @property
    def last(self) -> dict[str, Any]:
        return dict(self.rows[-1]) if self.rows else {}

    def truncate(self, max_step: int) -> "Metrics":
        """Keep the rows of steps <= ``max_step`` (in place); returns self."""
        self.rows = [r for r in self.rows if int(r["step"]) <= max_step]
        return self

    def to_csv(self, path: str | os.PathLike) -> None:
        cols = self.columns
        buf = io.StringIO(newline="")
        writer = csv.writer(buf)
        writer.writerow(cols)
        for row in self.rows:
            writer.writerow(["" if row.get(c) is None else _fmt(row.get(c)) for c in cols])
        write_text(path, buf.getvalue())

    @classmethod
    def from_csv(cls, path: str | os.PathLike, data: bytes | None = None) -> "Metrics":
        """Read ``metrics.csv`` (``data``: its bytes, already read); a malformed file is a ValueError naming it."""
        path = Path(path)
        raw = path.read_bytes() if data is None else data
        try:
            reader = csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))
            rows = []
            for raw_row in reader:
                if None in raw_row or "step" not in raw_row:
                    raise ValueError(f"line {reader.line_num} does not match the header {reader.fieldnames}")
                row: dict[str, Any] = {}
                for k, v in raw_row.items():
                    if v == "" or v is None:
                        row[k] = None
                    elif k == "step":
                        row[k] = int(v)
                    else:
                        try:
                            row[k] = float(v)
                        except ValueError:
                            row[k] = v
                rows.append(row)
        except (UnicodeDecodeError, csv.Error, ValueError) as err:
            raise ValueError(f"{str(path)!r} is not a neurornn metrics table: {err}") from None
        return cls(rows)

    def __repr__(self) -> str:
        return f"Metrics({len(self)} rows, columns={self.columns})"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)
