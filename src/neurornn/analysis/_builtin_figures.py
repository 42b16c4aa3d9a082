"""Figures of the built-in analyses that have no public plotting function (drawn without pyplot)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .pca import _color_key, _colors

__all__ = ["unit_figure", "fixed_point_figure"]


def unit_figure(activity: Any, color: str | None, n_units: int = 6) -> Any:
    """Rates of the ``n_units`` most variable units over (up to) 40 trials, coloured by condition ``color``."""
    from matplotlib.figure import Figure


    rates = activity.rates
    var = rates.reshape(-1, rates.shape[-1]).var(axis=0)
    units = np.argsort(-var)[:n_units]
    n_trials = min(40, rates.shape[0])
    values = None if color is None else np.asarray(activity.conditions[color][:n_trials])
    colors, legend = _colors(values, n_trials)
    n_cols = max((len(units) + 1) // 2, 1)
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    grid = fig.subplots(2, n_cols, squeeze=False, sharex=True)
    axes = grid.ravel()
    for ax, u in zip(axes, units):
        for i in range(n_trials):
            ax.plot(activity.time_ms, rates[i, :, u], color=colors[i], lw=0.6, alpha=0.6)
        ax.set_title(f"unit {activity.units[u]}", fontsize=8)
    for ax in axes[len(units):]:
        ax.set_visible(False)
    for ax in grid[:, 0]:
        ax.set_ylabel("rate")
    for ax in grid[-1]:
        ax.set_xlabel("time (ms)")
    _color_key(fig, grid[0, -1], values, legend, color)
    fig.suptitle(f"Most variable units ({n_trials} trials)", fontsize=9)
    return fig


def fixed_point_figure(fps: Any, activity: Any, pca: Any, names: list[str], color: str | None) -> Any:
    """Fixed points on the trajectories in the states' first two PCs, one panel per input (up to 4)."""
    from matplotlib.figure import Figure


    k = min(len(fps.inputs_), 4)
    fig = Figure(figsize=(4.4 * k + 1.6, 4.4), layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    proj = pca.transform(activity.states)
    n = min(40, proj.shape[0])
    values = None if color is None else np.asarray(activity.conditions[color][:n])
    colors, legend = _colors(values, n)
    evr = pca.explained_variance_ratio_
    for c, ax in enumerate(axes):
        for i in range(n):
            ax.plot(proj[i, :, 0], proj[i, :, 1], color=colors[i], lw=0.5, alpha=0.35)
        sel = fps.select(c)
        pts = pca.transform(fps.points_[sel])
        st = fps.stable_[sel]
        ax.scatter(pts[st, 0], pts[st, 1], s=36, c="k", zorder=5, label=f"stable ({int(st.sum())})")
        ax.scatter(pts[~st, 0], pts[~st, 1], s=36, facecolors="none", edgecolors="r", zorder=5,
                   label=f"unstable ({int((~st).sum())})")
        geo = fps.geometry_[c]["kind"] if c < len(fps.geometry_) else ""
        n_sel = int(sel.sum())
        what = {"none": "no fixed point",
                "isolated": f"{n_sel} isolated point{'s' if n_sel != 1 else ''}"}.get(geo, f"{n_sel} points: {geo}")
        ax.set_title(f"{names[c] if c < len(names) else c}\n{what}", fontsize=9)
        ax.set_xlabel(f"PC1 of states ({evr[0]:.0%})")
        ax.legend(fontsize=7, loc="best")
    axes[0].set_ylabel(f"PC2 of states ({evr[1]:.0%})")
    _color_key(fig, axes[-1], values, legend, color)
    shown = "" if k == len(fps.inputs_) else f"; first {k} of {len(fps.inputs_)} inputs"
    fig.suptitle(f"Fixed points on trajectories ({fps.convention}-time stability{shown})", fontsize=10)
    return fig
