"""Principal component analysis of population activity and state-space plots.

``PCA`` is a small scikit-learn-style fitted object (float64 SVD) with
deterministic signs: each component's largest-|loading| entry is positive, so
the same activity always gives the same picture.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._validation import check_finite, check_int
from ..plotting import new_figure, tight_layout
from .activity import Activity

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure

__all__ = ["PCA", "plot_trajectories", "plot_explained_variance", "plot_fixed_points"]


def _check_dims(dims: Any) -> None:
    if dims not in (2, 3) or isinstance(dims, bool):
        raise ValueError(f"dims must be one of [2, 3], got {dims!r}")


def _as_float_array(x: Any, name: str) -> np.ndarray:
    """An Activity's rates, a tensor or an array-like as a float64 array, or a TypeError naming it."""
    if isinstance(x, Activity):
        x = x.rates
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an array of numbers (or an Activity), got {type(x).__name__}") from None


def _as_activity_array(x: Any, name: str = "activity") -> np.ndarray:
    arr = _as_float_array(x, name)
    if arr.ndim not in (2, 3):
        raise ValueError(
            f"{name} must have shape (trials, time, units) or (samples, units), got {arr.shape}"
        )
    check_finite(name, arr)
    return arr


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` in float64 through torch, which honours ``torch.set_num_threads``.

    NumPy's threaded OpenBLAS spins on a busy machine: projecting (25600, 128)
    activity took 4 s with NumPy and milliseconds with torch on one thread.
    """
    return torch.matmul(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64)),
                        torch.from_numpy(np.ascontiguousarray(b, dtype=np.float64))).numpy()


class PCA:
    """PCA of activity of shape (trials, time, units) or (samples, units).

    Parameters
    ----------
    n_components : int, optional
        Components to keep (default: all, ``min(samples, units)``).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, units)
        Principal axes, unit norm, largest-|loading| entry positive.
    mean_ : ndarray of shape (units,)
    explained_variance_ : ndarray of shape (n_components,)
        Variance along each axis (``ddof=1``, as scikit-learn).
    explained_variance_ratio_ : ndarray of shape (n_components,)
    singular_values_ : ndarray of shape (n_components,)
    n_components_, n_features_in_, n_samples_ : int
    """

    def __init__(self, n_components: int | None = None) -> None:
        if n_components is not None:
            n_components = check_int("n_components", n_components, minimum=1)
        self.n_components = n_components

    def fit(self, activity: Any) -> "PCA":
        """Fit on activity (trials, time, units), (samples, units) or an :class:`Activity` (rates)."""
        x = _as_activity_array(activity)
        x = x.reshape(-1, x.shape[-1])
        n, d = x.shape
        if n < 2:
            raise ValueError(f"PCA needs at least 2 samples, got {n}")
        k = min(n, d) if self.n_components is None else self.n_components
        if k > min(n, d):
            raise ValueError(f"n_components must be <= min(samples, units) = {min(n, d)}, got {k}")
        self.mean_ = x.mean(axis=0)
        # torch's LAPACK honours torch.set_num_threads; NumPy's threaded OpenBLAS took 4.7 s
        # instead of 0.13 s for (25600, 128) on a busy 2-core machine.
        _, s_t, vt_t = torch.linalg.svd(torch.from_numpy(np.ascontiguousarray(x - self.mean_)), full_matrices=False)
        s, vt = s_t.numpy(), vt_t.numpy()
        signs = np.sign(vt[np.arange(len(vt)), np.argmax(np.abs(vt), axis=1)])
        signs[signs == 0] = 1.0
        vt = vt * signs[:, None]
        var = s**2 / (n - 1)
        total = var.sum()
        self.components_ = vt[:k]
        self.singular_values_ = s[:k]
        self.explained_variance_ = var[:k]
        self.explained_variance_ratio_ = var[:k] / total if total > 0 else np.zeros(k)
        self.n_components_, self.n_features_in_, self.n_samples_ = k, d, n
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "components_"):
            raise ValueError("this PCA is not fitted yet; call fit(activity) first")

    def transform(self, activity: Any) -> np.ndarray:
        """Project activity (..., units) onto the components: (..., n_components)."""
        self._check_fitted()
        x = _as_float_array(activity, "activity")
        if x.ndim == 0 or x.shape[-1] != self.n_features_in_:
            raise ValueError(
                f"activity must have {self.n_features_in_} units (last dimension), got shape {x.shape}"
            )
        check_finite("activity", x)
        return _matmul(x - self.mean_, self.components_.T)

    def fit_transform(self, activity: Any) -> np.ndarray:
        return self.fit(activity).transform(activity)

    def inverse_transform(self, projected: Any) -> np.ndarray:
        """Back to unit space: (..., n_components) -> (..., units)."""
        self._check_fitted()
        z = _as_float_array(projected, "projected")
        if z.ndim == 0 or z.shape[-1] != self.n_components_:
            raise ValueError(f"projected must have {self.n_components_} components (last dimension), "
                             f"got shape {z.shape}")
        check_finite("projected", z)
        return _matmul(z, self.components_) + self.mean_

    def summary(self) -> dict[str, Any]:
        """JSON-friendly: explained variance ratios and how many PCs reach 50/90/95 %."""
        self._check_fitted()
        cum = np.cumsum(self.explained_variance_ratio_)
        reach = {f"pcs_for_{int(p * 100)}pct": int(np.searchsorted(cum, p - 1e-12) + 1)
                 if cum[-1] >= p - 1e-12 else None for p in (0.5, 0.9, 0.95)}
        pr = float(self.explained_variance_.sum() ** 2 / max((self.explained_variance_**2).sum(), 1e-300))
        return {"n_components": self.n_components_, "n_units": self.n_features_in_,
                "explained_variance_ratio": [float(v) for v in self.explained_variance_ratio_[:10]],
                "participation_ratio": pr, **reach}


def _colors(values: np.ndarray | None, n: int):
    """Colours of ``n`` trials: (colours, legend entries [(value, colour)] or None)."""
    import matplotlib

    if values is None:
        return [matplotlib.colormaps["tab10"](0)] * n, None
    values = np.asarray(values)
    levels = np.unique(values)
    if len(levels) <= 10:
        cmap = matplotlib.colormaps["coolwarm" if np.issubdtype(levels.dtype, np.number) else "tab10"]
        pos = {v: (i / max(len(levels) - 1, 1)) for i, v in enumerate(levels)}
        return [cmap(pos[v]) for v in values], [(v, cmap(pos[v])) for v in levels]
    lo, hi = float(values.min()), float(values.max())
    cmap = matplotlib.colormaps["viridis"]
    return [cmap((v - lo) / (hi - lo if hi > lo else 1.0)) for v in values], None


def _color_key(fig: Figure, ax: Any, values: np.ndarray | None, legend: list | None, label: str | None,
               extra_handles: list | None = None) -> None:
    """Explain the trial colours: a legend beside the axes (<= 10 levels) or a colour bar."""
    import matplotlib
    from matplotlib.lines import Line2D

    name = label or "condition"
    handles = []
    if legend:
        for v, c in legend:
            text = f"{float(v) + 0.0:g}" if isinstance(v, (int, float, np.number)) else str(v)  # no "-0"
            handles.append(Line2D([], [], color=c, lw=1.5, label=text))
    handles += list(extra_handles or [])
    if handles:
        previous = ax.get_legend()
        if previous is not None:  # keep the axes' own legend beside the colour key
            ax.add_artist(previous)
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  title=name if legend else None, title_fontsize=7, borderaxespad=0.0, frameon=False)
    if values is not None and not legend and len(values):
        lo, hi = float(np.min(values)), float(np.max(values))
        mappable = matplotlib.cm.ScalarMappable(norm=matplotlib.colors.Normalize(lo, hi),
                                                cmap=matplotlib.colormaps["viridis"])
        fig.colorbar(mappable, ax=ax, label=name, shrink=0.7, pad=0.1 if handles else 0.05)


def plot_trajectories(
    activity: Any,
    pca: PCA | None = None,
    *,
    color_by: Any = None,
    dims: int = 2,
    max_trials: int = 50,
    title: str | None = None,
    fixed_points: Any = None,
    color_label: str | None = None,
) -> Figure:
    """Trajectories in the top-2 or top-3 PC space, coloured by a trial condition.

    Parameters
    ----------
    activity : Activity or array of shape (trials, time, units)
    pca : PCA, optional
        Fitted PCA (default: fitted on ``activity``).
    color_by : str or array of shape (trials,), optional
        A condition name of the :class:`Activity`, or values per trial.
    dims : {2, 3}
    max_trials : int
    fixed_points : FixedPoints, optional
        Drawn on top: filled = stable, open = unstable (``stable_``). Fixed
        points are states: give state trajectories (``activity.states``) with them.
    color_label : str, optional
        Title of the colour legend when ``color_by`` is an array.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_dims(dims)
    x = _as_activity_array(activity)
    if x.ndim == 2:
        x = x[None]
    if x.shape[-1] < dims:
        raise ValueError(f"a {dims}D plot needs at least {dims} units, got {x.shape[-1]}")
    if pca is None:
        pca = PCA(n_components=dims).fit(x)
    if pca.n_components_ < dims:
        raise ValueError(f"a {dims}D plot needs a PCA with >= {dims} components, got {pca.n_components_}")
    label = color_label
    if isinstance(color_by, str):
        if not isinstance(activity, Activity) or color_by not in activity.conditions:
            known = list(activity.conditions) if isinstance(activity, Activity) else []
            raise ValueError(f"color_by must be one of the conditions {known}, got {color_by!r}")
        label, color_by = color_by, activity.conditions[color_by]
    if color_by is not None and len(np.asarray(color_by)) != x.shape[0]:
        raise ValueError(f"color_by must have one value per trial ({x.shape[0]}), got {len(np.asarray(color_by))}")
    n = min(x.shape[0], max_trials)
    proj = pca.transform(x[:n])[..., :dims]
    values = None if color_by is None else np.asarray(color_by)[:n]
    colors, legend = _colors(values, n)
    fig = new_figure(7.5, 5.2, layout="constrained")
    ax = fig.add_subplot(projection="3d" if dims == 3 else None)
    for i in range(n):
        ax.plot(*proj[i].T, color=colors[i], lw=0.8, alpha=0.7)
        ax.scatter(*proj[i, :1].T, color=colors[i], s=8, marker="o")
    handles = []
    if n:
        handles.append(ax.scatter([], [], *([[]] if dims == 3 else []), color="0.4", s=8, label="trial start"))
    if fixed_points is not None and len(fixed_points):
        fp = pca.transform(fixed_points.points_)[..., :dims]
        stable = np.asarray(fixed_points.stable_)
        handles.append(ax.scatter(*fp[stable].T, s=40, c="k", marker="o", zorder=5,
                                  label=f"stable fixed point ({int(stable.sum())})"))
        handles.append(ax.scatter(*fp[~stable].T, s=40, facecolors="none", edgecolors="r", marker="o",
                                  zorder=5, label=f"unstable fixed point ({int((~stable).sum())})"))
    _color_key(fig, ax, values, legend, label, handles)
    evr = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({evr[0]:.0%})")
    ax.set_ylabel(f"PC2 ({evr[1]:.0%})")
    if dims == 3:
        ax.set_zlabel(f"PC3 ({evr[2]:.0%})")
        ax.set_box_aspect(None, zoom=0.85)  # room for the z label inside the figure
    ax.set_title(title or "State-space trajectories")
    return fig


def plot_explained_variance(pca: PCA, max_components: int = 20) -> Figure:
    """Bar plot of explained variance ratio with its cumulative sum."""
    from matplotlib.ticker import MaxNLocator

    pca._check_fitted()
    k = min(pca.n_components_, max_components)
    fig = new_figure(5, 3.5)
    ax = fig.add_subplot()
    idx = np.arange(1, k + 1)
    ax.bar(idx, pca.explained_variance_ratio_[:k], color="C0", label="per PC")
    ax.plot(idx, np.cumsum(pca.explained_variance_ratio_[:k]), "k.-", label="cumulative")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    tight_layout(fig)
    return fig


def plot_fixed_points(
    fixed_points: Any,
    activity: Any = None,
    *,
    pca: PCA | None = None,
    condition: int | None = None,
    dims: int = 2,
    color_by: Any = None,
    title: str | None = None,
) -> Figure:
    """Fixed points in the PC space of the trajectories, marked by stability.

    Parameters
    ----------
    fixed_points : FixedPoints
    activity : Activity or array (trials, time, units), optional
        Trajectories drawn behind the points (of an :class:`Activity`, its
        ``states``: fixed points live in state space); the PCA is fitted on
        them (else on the points themselves).
    condition : int, optional
        Only the points of this input condition.
    dims : {2, 3}
    color_by : str or array of shape (trials,), optional
        A condition name of the :class:`Activity`, or values per trial.
    """
    _check_dims(dims)
    fps = fixed_points
    if condition is not None:
        fps = _subset(fps, fps.select(condition))
    if activity is not None:
        label = None
        if isinstance(activity, Activity):
            if isinstance(color_by, str):
                if color_by not in activity.conditions:
                    raise ValueError(f"color_by must be one of the conditions {list(activity.conditions)}, "
                                     f"got {color_by!r}")
                label, color_by = color_by, activity.conditions[color_by]
            activity = activity.states
        return plot_trajectories(activity, pca, color_by=color_by, dims=dims, fixed_points=fps,
                                 title=title or "Fixed points and trajectories", color_label=label)
    pts = np.asarray(fps.points_)
    if pts.shape[-1] < dims:
        raise ValueError(f"a {dims}D plot needs at least {dims} units, got {pts.shape[-1]}")
    if pca is None:
        if len(pts) < 2:
            raise ValueError("need trajectories (activity) or at least 2 fixed points to fit a PCA")
        pca = PCA(n_components=min(dims, len(pts))).fit(pts)
    proj = pca.transform(pts)
    if proj.shape[-1] < dims:
        proj = np.pad(proj, ((0, 0), (0, dims - proj.shape[-1])))
    fig = new_figure(6, 5)
    ax = fig.add_subplot(projection="3d" if dims == 3 else None)
    st = np.asarray(fps.stable_)
    ax.scatter(*proj[st, :dims].T, s=40, c="k", label="stable")
    ax.scatter(*proj[~st, :dims].T, s=40, facecolors="none", edgecolors="r", label="unstable")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.legend(fontsize=8)
    ax.set_title(title or "Fixed points")
    return fig


def _subset(fps: Any, mask: np.ndarray) -> Any:
    changes = {}
    for f in dataclasses.fields(fps):
        value = getattr(fps, f.name)
        if f.name.endswith("_") and isinstance(value, np.ndarray) and value.shape[:1] == mask.shape \
                and f.name != "inputs_":
            changes[f.name] = value[mask]
    return dataclasses.replace(fps, **changes)
