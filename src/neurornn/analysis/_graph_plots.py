"""Figures of a network's graph: :func:`plot_connectivity` and :func:`plot_graph_history`.

matplotlib is imported when a figure is drawn, not with this module.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._graph_build import as_matrix

__all__ = ["plot_connectivity", "plot_graph_history"]


_HISTORY_PANELS = (
    ("total_weight", "total |W|"),
    ("modularity", "modularity Q"),
    ("sigma", "small-worldness sigma"),
    ("clustering", "clustering C"),
    ("path_length", "path length L"),
    ("mean_connection_distance", "mean connection distance"),
)


def plot_graph_history(records: Sequence[dict[str, Any]], title: str = ""):
    """Graph metrics against training step (one panel per metric).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    if not records:
        raise ValueError("records must not be empty")
    panels = [(k, lab) for k, lab in _HISTORY_PANELS if k in records[0]]
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(3.6 * ncols, 2.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    steps = [r["step"] for r in records]
    for ax, (key, label) in zip(axes, panels):
        ax.plot(steps, [r[key] for r in records], "o-", ms=3, label=key)
        if key == "sigma" and "sigma_efficiency" in records[0]:
            ax.plot(steps, [r["sigma_efficiency"] for r in records], "s--", ms=3, label="sigma_efficiency")
            ax.legend(fontsize=7)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_xlabel("training step")
        ax.set_title(label, fontsize=9)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def plot_connectivity(w, labels=None, distances=None, title: str = ""):
    """``|W|`` ordered by community, and weight against distance.

    Parameters
    ----------
    w : array of shape (n_units, n_units)
    labels : array of shape (n_units,), optional; community of each unit
    distances : array of shape (n_units, n_units), optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    a = np.abs(as_matrix("w", w))
    order = np.argsort(labels, kind="stable") if labels is not None else np.arange(a.shape[0])
    ncols = 2 if distances is not None else 1
    fig = Figure(figsize=(4.2 * ncols, 3.8), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    im = axes[0].imshow(a[np.ix_(order, order)], cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=axes[0], shrink=0.8)
    axes[0].set_title("|W| (ordered by community)" if labels is not None else "|W|", fontsize=9)
    axes[0].set_xlabel("from unit")
    axes[0].set_ylabel("to unit")
    if labels is not None:
        bounds = np.flatnonzero(np.diff(np.asarray(labels)[order])) + 0.5
        for b in bounds:
            axes[0].axhline(b, color="w", lw=0.5)
            axes[0].axvline(b, color="w", lw=0.5)
    if distances is not None:
        d = as_matrix("distances", distances)
        off = ~np.eye(a.shape[0], dtype=bool)
        axes[1].scatter(d[off], a[off], s=2, alpha=0.4)
        axes[1].set_xlabel("distance")
        axes[1].set_ylabel("|W|")
        axes[1].set_title("weight against distance", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
