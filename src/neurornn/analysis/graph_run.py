"""Graph analysis of a training run: final weights, weight history, files in ``RUN/analysis/``.

:func:`analyze_run_graph` is what ``neurornn analyze RUN --graph`` calls. It writes

- ``analysis/graph.json``: :func:`~neurornn.analysis.graph.graph_metrics` of the final
  recurrent weights (with community labels) and the settings used;
- ``analysis/graph_history.csv``: the scalar metrics of every weight snapshot;
- ``analysis/space.npz``: ``coordinates`` (n_units, dims) and ``distances``
  (n_units, n_units) of the units;
- ``graph_connectivity.png`` and ``graph_history.png`` (in ``analysis/``, or in
  ``figures/`` when called by ``neurornn analyze``).

Existing files are never overwritten unless ``overwrite=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._validation import check_int
from ..models.space import config_distances, unit_coordinates
from .._files import write_csv, write_json
from ..runs import load_run
from .graph import graph_metrics, graph_metrics_history, plot_connectivity, plot_graph_history

__all__ = ["analyze_run_graph", "graph_files"]


def graph_files(out_dir, figures_dir=None, suffix: str = "", history: bool = True) -> list[Path]:
    """The files :func:`analyze_run_graph` writes (JSON/CSV/npz in ``out_dir``, PNGs in ``figures_dir``)."""
    out_dir = Path(out_dir)
    fig_dir = out_dir if figures_dir is None else Path(figures_dir)
    files = [out_dir / f"graph{suffix}.json", out_dir / f"space{suffix}.npz",
             fig_dir / f"graph_connectivity{suffix}.png"]
    if history:
        files += [out_dir / f"graph_history{suffix}.csv", fig_dir / f"graph_history{suffix}.png"]
    return files


def _resolve_run(run):
    if isinstance(run, (str, Path)):
        return load_run(run)
    if not hasattr(run, "model") or not hasattr(run, "history"):
        raise TypeError(f"run must be a Run or a run folder path, got {type(run).__name__}")
    return run


def analyze_run_graph(
    run,
    out_dir=None,
    *,
    figures_dir=None,
    suffix: str = "",
    model=None,
    keep_fraction: float = 0.1,
    threshold: float | None = None,
    binarize: bool = True,
    symmetrize: str = "max",
    n_nulls: int = 1000,
    history: bool = True,
    history_nulls: int = 100,
    seed: int = 0,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Graph metrics of a run's final weights and of its weight history, written to disk.

    Parameters
    ----------
    run : Run or path of a run folder
    out_dir : path, optional
        Folder of ``graph.json``, ``graph_history.csv`` and ``space.npz``; default
        ``RUN/analysis`` (nothing is written for an in-memory run without one).
    figures_dir : path, optional
        Folder of the PNG figures; default ``out_dir``.
    suffix : str
        Appended to every file name (e.g. ``"_snapshot0"``).
    model : RNN, optional
        Analyse this network's weights instead of the run's final model (e.g. a
        snapshot); the history is the run's.
    keep_fraction, threshold, binarize, symmetrize
        How the graph is built (:func:`~neurornn.analysis.graph.adjacency`).
    n_nulls : int
        Null models for the final weights' small-worldness.
    history : bool
        Also analyse every weight snapshot (with ``history_nulls`` null models each).
    seed : int
        Null models and Louvain.
    overwrite : bool
        Replace existing output files.

    Returns
    -------
    dict with ``final`` (metrics of the final weights), ``history`` (list of
    per-snapshot records) and ``files`` (paths written).
    """
    run = _resolve_run(run)
    check_int("history_nulls", history_nulls, minimum=1)
    model = run.model if model is None else model
    config = model.config
    if config.n_units < 3:
        raise ValueError(f"graph analysis needs at least 3 units, got n_units={config.n_units}")
    history = bool(history and run.history is not None and len(run.history))
    if out_dir is None and getattr(run, "path", None) is not None:
        out_dir = Path(run.path) / "analysis"
    files = [] if out_dir is None else graph_files(out_dir, figures_dir, suffix, history)
    if not overwrite:
        existing = [str(p) for p in files if p.exists()]
        if existing:
            raise FileExistsError(f"graph analysis files exist: {existing}; pass overwrite=True (--overwrite)")
    distances = config_distances(config)
    coordinates = unit_coordinates(config)
    settings = dict(keep_fraction=keep_fraction, threshold=threshold, binarize=binarize, symmetrize=symmetrize)
    w = model.effective_weights().w_rec.detach().cpu().double().numpy()
    final = graph_metrics(w, distances, n_nulls=n_nulls, seed=seed, **settings)
    records: list[dict[str, Any]] = []
    if history:
        snaps = [run.history[i].w_rec.double().numpy() for i in range(len(run.history))]
        records = graph_metrics_history(snaps, run.history.steps, distances, n_nulls=history_nulls, seed=seed,
                                        louvain_restarts=1, **settings)  # a curve: one Louvain run a snapshot
    if out_dir is None:
        return {"final": final, "history": records, "files": []}
    for folder in {f.parent for f in files}:
        folder.mkdir(parents=True, exist_ok=True)
    write_json(files[0], {"settings": {**settings, "n_nulls": n_nulls, "seed": seed}, "final": final}, indent=2)
    np.savez(files[1], coordinates=coordinates, distances=distances)
    labels = np.asarray(final["communities"]) if "communities" in final else None
    fig = plot_connectivity(w, labels, distances, title=f"Q = {final['modularity']:.3f}, sigma = {final['sigma']:.2f}")
    fig.savefig(files[2], dpi=100)
    if history:
        write_csv(files[3], records)
        plot_graph_history(records).savefig(files[4], dpi=100)
    return {"final": final, "history": records, "files": [str(f) for f in files]}
