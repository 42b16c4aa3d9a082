"""The shape of a set of fixed points: isolated points, a line, a ring or a surface."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["describe_geometry"]


def describe_geometry(
    points: Any,
    multiplicity: Any = None,
    *,
    n_neighbors: int = 8,
    var_threshold: float = 0.9,
) -> dict[str, Any]:
    """Say whether a set of fixed points is isolated points, a line, a ring or a surface.

    A continuous attractor shows up as many (>= 8) distinct slow points that
    lie on a low-dimensional set, densely: the local dimension (median, over
    points, of the number of principal components of the point and its
    ``n_neighbors`` nearest neighbours needed to explain ``var_threshold`` of
    their variance) is 1 with a median nearest-neighbour distance below
    ``4 * extent / n_points`` (a sampled curve), or 2 with >= 30 points spaced
    below ``4 * extent / sqrt(n_points)`` (a sampled sheet). When
    ``multiplicity`` (how many refined starts landed on each point) is given,
    the starts must also not pile up on a few points (median <= 2). A dense
    set of >= 20 points whose first global principal component holds >= 80 % of
    their variance also counts as one-dimensional (the band of slow points of an
    approximate line attractor, as in a trained decision network). Anything
    else is reported as isolated points (such as the 2^3 corners of a flip-flop
    cube and their saddles). A one-dimensional set is a ``ring`` when it closes
    on itself in its top-2 PC plane (radius spread < 25 % and no angular gap >
    90 degrees), else a ``line``.

    Parameters
    ----------
    points : array of shape (n_points, n_units)
    multiplicity : array of shape (n_points,), optional

    Returns
    -------
    dict with ``kind`` in {"none", "isolated", "line", "ring", "surface"},
    ``dimension`` (0 for isolated points), ``n_points``, ``extent`` and
    ``median_nn_distance`` (and ``pc_fractions``, the top-3 explained variance
    ratios of the points, when there are >= 8).
    """
    p = np.asarray(points, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"points must have shape (n_points, n_units), got {p.shape}")
    m = len(p)
    out: dict[str, Any] = {"kind": "none", "dimension": 0, "n_points": m,
                           "extent": 0.0, "median_nn_distance": 0.0}
    if m == 0:
        return out
    out["kind"] = "isolated"
    if m < 2:
        return out
    d = np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)
    extent = float(d.max())
    np.fill_diagonal(d, np.inf)
    nn = float(np.median(d.min(axis=1)))
    out.update(extent=extent, median_nn_distance=nn)
    if m < 8 or extent == 0:
        return out
    if multiplicity is not None and np.median(np.asarray(multiplicity)) > 2:
        return out
    k = min(n_neighbors, m - 1)
    dims = []
    for i in range(m):
        nbr = np.argsort(d[i])[:k]
        local = np.vstack([p[i], p[nbr]])
        s = np.linalg.svd(local - local.mean(0), compute_uv=False) ** 2
        ratio = np.cumsum(s) / max(s.sum(), 1e-300)
        dims.append(int(np.searchsorted(ratio, var_threshold) + 1))
    dim = int(np.median(dims))
    s_all = np.linalg.svd(p - p.mean(0), compute_uv=False) ** 2
    evr = s_all / max(s_all.sum(), 1e-300)
    out["pc_fractions"] = [float(v) for v in evr[:3]]
    dense_curve = nn < 4.0 * extent / m
    if dim != 1 and evr[0] >= 0.8 and m >= 20 and dense_curve:
        dim = 1  # a band of slow points along one dominant direction: an approximate line
    continuous = (dim == 1 and dense_curve) or (dim == 2 and m >= 30 and nn < 4.0 * extent / np.sqrt(m))
    if not continuous:
        return out
    out["dimension"] = dim
    if dim == 1:
        centred = p - p.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T if vt.shape[0] >= 2 else np.c_[centred @ vt[0], np.zeros(m)]
        r = np.linalg.norm(xy, axis=1)
        angles = np.sort(np.arctan2(xy[:, 1], xy[:, 0]))
        gaps = np.diff(np.r_[angles, angles[0] + 2 * np.pi])
        closed = r.mean() > 0 and r.std() / r.mean() < 0.25 and gaps.max() < np.pi / 2
        out["kind"] = "ring" if closed else "line"
    else:
        out["kind"] = "surface"
    return out
