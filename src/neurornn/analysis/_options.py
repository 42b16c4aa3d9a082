"""The options of the analysis pipeline, validated once (the flags of ``neurornn analyze``)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from .._validation import check_fraction, check_int, check_known_keys, check_positive

__all__ = ["AnalysisOptions"]


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class AnalysisOptions:
    """Settings shared by the analyses of :func:`~neurornn.analysis.analyze_run`.

    Every field is checked when the object is made; unknown names are an error.

    Attributes
    ----------
    n_trials : int
        Trials of the analysis batch (activity, PCA, fixed-point starts, trial figure); >= 2.
    score_trials : int
        Fresh trials scored by ``performance`` (2048: a sampling error of about 0.007
        on an accuracy near 0.87, against 0.02 for 256).
    seed : int
        Seed of the analysis batch (``seed``), of the scored and psychometric trials
        (``seed + 1``), of the fixed-point starts and of the graph nulls.
    fp_inputs : sequence of rows, optional
        Constant inputs of the fixed-point search, one row of ``n_inputs`` numbers each
        (or a comma-separated string, as ``--fp-input`` takes); default: the mean input
        of each task period, or zero.
    fp_starts : int
        Starting states of the fixed-point search.
    fp_tol_q : float
        q tolerance of a fixed point (> 0).
    fp_slow : float, optional
        In (0, 1): search slow points instead, keeping points whose q is below this
        fraction of the median ``1/2 |x(t+1) - x(t)|^2`` along the trajectories
        (no exact refinement); replaces ``fp_tol_q``.
    area : str, optional
        Record (and PCA) only the units of this area.
    graph_keep : float
        Graph analysis: keep the top fraction of ``|W_rec|`` (in (0, 1]).
    graph_nulls : int
        Graph analysis: random null graphs for small-worldness.
    labels : dict, optional
        How error messages name each option (``neurornn analyze`` passes its flags,
        e.g. ``{"n_trials": "--n-trials"}``); default: the field names.
    """

    n_trials: int = 256
    score_trials: int = 2048
    seed: int = 0
    fp_inputs: Any = None
    fp_starts: int = 1024
    fp_tol_q: float = 1e-12
    fp_slow: float | None = None
    area: str | None = None
    graph_keep: float = 0.1
    graph_nulls: int = 1000
    labels: Mapping[str, str] | None = field(default=None, repr=False, compare=False)
    _fp_rows: tuple | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        label = self.label
        check_int(label("n_trials"), self.n_trials, minimum=2)
        check_int(label("score_trials"), self.score_trials, minimum=1)
        check_int(label("seed"), self.seed)
        check_int(label("fp_starts"), self.fp_starts, minimum=1)
        check_positive(label("fp_tol_q"), self.fp_tol_q)
        if self.fp_slow is not None and not (_is_real(self.fp_slow) and 0.0 < self.fp_slow < 1.0):
            raise ValueError(f"{label('fp_slow')} must be in (0, 1), got {self.fp_slow!r}")
        if self.area is not None and not isinstance(self.area, str):
            raise TypeError(f"{label('area')} must be an area name (str) or None, got {self.area!r}")
        check_fraction(label("graph_keep"), self.graph_keep)
        if self.graph_keep == 0:
            raise ValueError(f"{label('graph_keep')} must be > 0, got 0")
        check_int(label("graph_nulls"), self.graph_nulls, minimum=1)
        object.__setattr__(self, "_fp_rows", self._rows(self.fp_inputs))

    @classmethod
    def of(cls, options: "AnalysisOptions | Mapping[str, Any] | None") -> "AnalysisOptions":
        """``options`` as an ``AnalysisOptions`` (from a dict of field names, or the defaults for None)."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        if not isinstance(options, Mapping):
            raise TypeError(f"options must be a dict or an AnalysisOptions, got {type(options).__name__}")
        known = [f.name for f in fields(cls) if f.init and f.name != "labels"]
        check_known_keys("analysis option", options, known)
        return cls(**options)

    def label(self, name: str, default: str | None = None) -> str:
        """How messages name the option (or parameter) ``name``: its label, else ``default`` or ``name``."""
        return (self.labels or {}).get(name, default or name)

    # ------------------------------------------------------------------ fixed-point inputs
    def _rows(self, value: Any) -> tuple | None:
        """``fp_inputs`` as a tuple of (row as given, parsed floats)."""
        if value is None:
            return None
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        if isinstance(value, np.ndarray):
            value = value.tolist() if value.ndim == 2 else [value.tolist()] if value.ndim == 1 else value
        if isinstance(value, str) or not hasattr(value, "__iter__"):
            value = [value]
        rows = list(value)
        if rows and all(_is_real(v) for v in rows):
            rows = [rows]  # one row given flat
        if not rows:
            raise ValueError(f"{self.label('fp_inputs')} must hold at least one row of inputs, got none")
        return tuple((row, self._parse(row)) for row in rows)

    def _parse(self, row: Any) -> tuple[float, ...]:
        name = self.label("fp_inputs")
        if isinstance(row, str):
            try:
                return tuple(float(v) for v in row.replace(" ", "").split(",") if v != "")
            except ValueError:
                raise ValueError(f"{name} must be comma-separated numbers, got {row!r}") from None
        if not hasattr(row, "__iter__") or not all(_is_real(v) for v in row):
            raise TypeError(f"{name} must be rows of numbers (or comma-separated strings), got {row!r}")
        return tuple(float(v) for v in row)

    def fp_input_array(self, n_inputs: int) -> np.ndarray | None:
        """The fixed-point inputs as an array of shape (conditions, n_inputs), or None."""
        if self._fp_rows is None:
            return None
        for given, values in self._fp_rows:
            if len(values) != n_inputs:
                raise ValueError(f"{self.label('fp_inputs')} must have n_inputs={n_inputs} values, got "
                                 f"{len(values)} in {given!r}")
        return np.asarray([values for _, values in self._fp_rows], dtype=np.float64)
