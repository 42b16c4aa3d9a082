"""One analysis pipeline for Python and ``neurornn analyze``: :func:`analyze_run`.

The analyses live in a registry (:func:`~neurornn.analysis.register_analysis`):
performance, activity, pca, psychometric, fixed_points and graph are registered
by :mod:`neurornn.analysis._builtin`; any other registered analysis runs the same
way, from Python and from the command line (``neurornn analyze RUN --only NAME``).

``analyze_run`` writes JSON summaries and npz arrays into ``RUN/analysis/``, PNG
figures into ``RUN/figures/`` and rebuilds ``RUN/report.html`` from what the folder
then holds. Existing files are never replaced unless ``overwrite=True``. With
``snapshot=I`` the weight-history snapshot ``I`` is analysed and every file name gets
a ``_snapshotI`` suffix, so analyses before and after training sit side by side.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch

from .._files import write_json
from .._validation import check_choice, check_int, suggest
from .._folder import open_folder
from ..plotting import save_figure
from ..runs import load_run, write_report
from ..config.threads import cpu_threads
from . import _builtin  # noqa: F401  (registers the built-in analyses)
from ._memory import analysis_memory, check_memory, config_units, estimate_memory
from ._model_access import resolve_model
from ._options import AnalysisOptions
from ._registry import (
    ANALYSES,
    NEEDS,
    Analysis,
    AnalysisResult,
    analysis_names,
    register_analysis,
    unregister_analysis,
)
from .activity import record_activity

__all__ = ["AnalysisOptions", "AnalysisResult", "Context", "ANALYSES", "analysis_names", "analyze_run",
           "estimate_memory", "register_analysis", "unregister_analysis"]

class Outputs:
    """Writes the files of one analysis: only those it declares, under ``RUN/analysis`` and ``RUN/figures``."""

    def __init__(self, run_dir: Path, suffix: str, analysis: Analysis) -> None:
        self.run_dir, self.suffix, self.analysis = run_dir, suffix, analysis
        self.analysis_dir, self.figures_dir = run_dir / "analysis", run_dir / "figures"
        self.written: list[Path] = []

    def path(self, entry: str) -> Path:
        """The file of a ``writes`` entry (``"analysis/pca.json"`` -> ``RUN/analysis/pca{suffix}.json``)."""
        folder, name = entry.split("/", 1)
        stem, ext = name.rsplit(".", 1)
        return self.run_dir / folder / f"{stem}{self.suffix}.{ext}"

    def _target(self, folder: str, stem: str, ext: str) -> Path:
        entry = f"{folder}/{stem}.{ext}"
        if entry not in self.analysis.writes:
            raise RuntimeError(f"analysis {self.analysis.name!r} writes {entry!r}, which it does not declare in "
                               f"writes={list(self.analysis.writes)}")
        path = self.path(entry)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.written.append(path)
        return path

    def json(self, stem: str, data: Any) -> Path:
        path = self._target("analysis", stem, "json")
        write_json(path, data, indent=2)
        return path

    def npz(self, stem: str, arrays: Mapping[str, Any]) -> Path:
        path = self._target("analysis", stem, "npz")
        np.savez_compressed(path, **{k: np.asarray(v) for k, v in arrays.items()})
        return path

    def figure(self, stem: str, fig: Any) -> Path:
        return save_figure(fig, self._target("figures", stem, "png"), dpi=110, overwrite=True)

    def record(self, paths: Iterable[str | os.PathLike]) -> None:
        """Files the analysis wrote by other means (each must be one it declares)."""
        declared = {self.path(e): e for e in self.analysis.writes}
        for p in map(Path, paths):
            if p not in declared:
                raise RuntimeError(f"analysis {self.analysis.name!r} wrote {str(p)!r}, which it does not declare "
                                   f"in writes={list(self.analysis.writes)}")
            self.written.append(p)


class Context:
    """What the analyses of one :func:`analyze_run` share.

    Always there: ``run``, ``model`` (the final network or the snapshot), ``task``,
    ``snapshot``, ``options`` (:class:`AnalysisOptions`), ``overwrite``, ``suffix``,
    ``path`` (the run folder), ``n_units`` (units recorded: of ``options.area`` or
    all), ``n_all`` (units of the network) and ``out`` (the running analysis'
    :class:`Outputs`). Prepared once when an analysis declares it in ``needs``:
    ``batch`` (``options.n_trials`` trials from ``options.seed``), ``activity`` (of
    the recorded units, with ``color_by``, the condition that colours trials) and
    ``full_activity`` (of every unit).
    """

    def __init__(self, run: Any, model: Any, snapshot: int | None, options: AnalysisOptions, overwrite: bool) -> None:
        self.run, self.model, self.task, self.snapshot = run, model, run.task, snapshot
        self.options, self.overwrite = options, overwrite
        self.path = Path(run.path)
        self.suffix = "" if snapshot is None else f"_snapshot{snapshot % len(run.history.steps)}"
        self.n_all = model.config.n_units
        area = options.area
        self.n_units = len(range(self.n_all)[model.config.area_slices()[area]]) if area else self.n_all
        self.out: Outputs | None = None
        self._allowed: tuple[str, ...] = NEEDS

    def _need(self, name: str) -> None:
        if name not in self._allowed:
            running = self.out.analysis.name if self.out is not None else "?"
            raise RuntimeError(f"analysis {running!r} uses ctx.{name} but does not declare {name!r} in needs")

    @cached_property
    def _batch(self) -> Any:
        return self.task.batch(self.options.n_trials, torch.Generator().manual_seed(self.options.seed))

    @cached_property
    def _activity(self) -> Any:
        return record_activity(self.model, self._batch, area=self.options.area)

    @cached_property
    def _full_activity(self) -> Any:
        return self._activity if self.options.area is None else record_activity(self.model, self._batch)

    @property
    def batch(self) -> Any:
        self._need("batch")
        return self._batch

    @property
    def activity(self) -> Any:
        self._need("activity")
        return self._activity

    @property
    def full_activity(self) -> Any:
        self._need("full_activity")
        return self._full_activity

    @property
    def color_by(self) -> str | None:
        """The condition that colours trials: a decision variable, else the first with <= 10 levels."""
        conditions = self.activity.conditions
        for name in ("signed_coherence", "choice", "context"):
            if name in conditions:
                return name
        for name, values in conditions.items():
            if len(np.unique(np.asarray(values))) <= 10:
                return name
        return next(iter(conditions), None)

    def prepare(self, needs: Iterable[str]) -> None:
        """Compute what ``needs`` names (before an analysis' clock starts)."""
        for need in needs:
            getattr(self, f"_{need}")

    @contextmanager
    def running(self, analysis: Analysis) -> Iterator[Outputs]:
        """While ``analysis`` runs: ``out`` writes its files, and only its ``needs`` may be used."""
        self.out, self._allowed = Outputs(self.path, self.suffix, analysis), analysis.needs
        try:
            yield self.out
        finally:
            self._allowed = NEEDS


# ---------------------------------------------------------------------- the pipeline
def _chosen(analyses: str | Iterable[str] | None) -> list[str]:
    names = analysis_names()
    if analyses is None:
        return list(names)
    if isinstance(analyses, str):
        analyses = [analyses]
    chosen: list[str] = []
    for name in analyses:
        if name not in ANALYSES:
            raise ValueError(f"unknown analysis {name!r}{suggest(str(name), names)}; registered: {list(names)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise ValueError(f"analyses must name at least one analysis (or be None: all of {list(names)})")
    return [n for n in names if n in chosen]  # registry order, as the command line runs them


def analyze_run(
    run: Any,
    analyses: str | Iterable[str] | None = None,
    *,
    snapshot: int | None = None,
    options: AnalysisOptions | Mapping[str, Any] | None = None,
    overwrite: bool = False,
    report: bool = True,
    device: str = "cpu",
    threads: int | None = None,
    callback: Callable[[AnalysisResult], None] | None = None,
    trust_code: bool = False,
) -> dict[str, AnalysisResult]:
    """Run registered analyses on a training run and write their files (what ``neurornn analyze`` does).

    Parameters
    ----------
    run : Run or path of a run folder
    analyses : list of str, optional
        Names from :func:`analysis_names` (default: all, in registry order: performance,
        activity, pca, psychometric, fixed_points, graph, then any registered later).
    snapshot : int, optional
        Analyse weight-history snapshot ``snapshot`` (0 = before training; negative counts
        from the end) instead of the final model; file names get a ``_snapshotI`` suffix.
    options : dict or AnalysisOptions, optional
        ``n_trials``, ``score_trials``, ``seed``, ``fp_inputs``, ``fp_starts``, ``fp_tol_q``,
        ``fp_slow``, ``area``, ``graph_keep``, ``graph_nulls`` (see :class:`AnalysisOptions`).
    overwrite : bool
        Replace existing analysis files (otherwise ``FileExistsError`` before anything runs).
    report : bool
        Rebuild ``RUN/report.html`` afterwards.
    device : str
        Torch device a run given as a path is loaded on.
    threads : int, optional
        Torch CPU threads while analysing (default: 1 for networks of up to 256 units,
        torch's choice otherwise); restored afterwards.
    callback : callable, optional
        Called with each :class:`AnalysisResult` as soon as its analysis is done.
    trust_code : bool
        Allow a run folder whose task is user code to import it (see :func:`neurornn.load_run`).
        The run folder's lock is held while the analyses write into it.

    Returns
    -------
    dict of name -> AnalysisResult (message, files written, seconds, value).

    Raises ``ValueError`` before loading anything when the network or the analysis
    batch would need more memory than is available (lower ``n_trials``).
    """
    opts = AnalysisOptions.of(options)
    chosen = _chosen(analyses)
    for name, value in (("overwrite", overwrite), ("report", report)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    if threads is not None:
        check_int(opts.label("threads"), threads, minimum=1)
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {type(callback).__name__}")
    run = _as_run(run, opts, device, trust_code)
    model = resolve_model(run, snapshot)
    with cpu_threads(model.config.n_units, model.alpha.device, threads), \
            open_folder(run.path, "run", what="run folder"):
        if opts.area is not None:
            check_choice(opts.label("area"), opts.area, list(model.config.area_slices()))
        opts.fp_input_array(model.config.n_inputs)  # the rows' lengths, before anything runs
        ctx = Context(run, model, snapshot, opts, overwrite)
        _check_files(ctx, chosen)
        _check_batch_memory(ctx, chosen)
        results: dict[str, AnalysisResult] = {}
        for name in chosen:
            results[name] = result = _run_one(ctx, ANALYSES[name])
            if callback is not None:
                callback(result)
        if report:
            write_report(ctx.path)
    return results


def _as_run(run: Any, options: AnalysisOptions, device: str, trust_code: bool) -> Any:
    """``run``, loaded when it is a path (once its weights are known to fit in memory)."""
    if isinstance(run, (str, os.PathLike)):
        n_units = config_units(Path(run))
        if n_units is not None:  # before the model is built: its weights alone may not fit
            check_memory(estimate_memory([], options, n_units, 0), n_units, None, options)
        run = load_run(run, device=device, trust_code=trust_code)
    elif not (hasattr(run, "model") and hasattr(run, "history") and hasattr(run, "task")):
        raise TypeError(f"run must be a Run or the path of a run folder, got {type(run).__name__}")
    if getattr(run, "path", None) is None:
        raise ValueError("run has no folder (run.path is None): analyze_run writes into RUN/analysis and RUN/figures")
    return run


def _check_files(ctx: Context, chosen: list[str]) -> None:
    """Refuse to replace existing files without ``overwrite`` (before anything runs)."""
    planned = [Outputs(ctx.path, ctx.suffix, ANALYSES[name]).path(entry)
               for name in chosen for entry in ANALYSES[name].planned(ctx)]
    existing = [p for p in planned if p.exists()]
    if existing and not ctx.overwrite:
        names = ", ".join(str(p) for p in existing)
        how = ctx.options.label("overwrite", "overwrite=True")
        raise FileExistsError(f"{names} already exist; use {how} to replace them")


def _check_batch_memory(ctx: Context, chosen: list[str]) -> None:
    opts = ctx.options
    if not any(analysis_memory(ANALYSES[name]) is not None for name in chosen):
        check_memory(estimate_memory(chosen, opts, ctx.n_all, 0), ctx.n_all, None, opts)
        return
    # Trial length from a few trials of the same seed, before the analysis batch itself is made.
    n_steps = ctx.task.batch(min(opts.n_trials, 16), torch.Generator().manual_seed(opts.seed)).n_steps
    check_memory(estimate_memory(chosen, opts, ctx.n_all, n_steps), ctx.n_all, n_steps, opts)


def _run_one(ctx: Context, analysis: Analysis) -> AnalysisResult:
    ctx.prepare(analysis.needs)  # shared, and not counted in the analysis' seconds
    with ctx.running(analysis) as out:
        t0 = time.perf_counter()
        returned = analysis.run(ctx)
        seconds = time.perf_counter() - t0
    message, value = returned if isinstance(returned, tuple) else (returned, None)
    return AnalysisResult(analysis.name, str(message), tuple(out.written), seconds, value)
