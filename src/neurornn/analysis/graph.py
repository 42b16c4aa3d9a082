"""Graph metrics of a network's connectivity (seRNN structural analysis).

From a recurrent weight matrix ``W`` (``W[i, j]`` from unit j onto unit i) to an
undirected graph, then to its metrics:

1. :func:`adjacency` keeps the strongest connections: ``|W|`` (diagonal ignored),
   either above ``threshold`` or the top ``keep_fraction`` of off-diagonal entries
   (the seRNN analysis keeps the top 10%); binarised or with their weights; then
   symmetrised, since the metrics are those of undirected graphs:
   ``"max"`` (an edge if either direction is kept; weight the larger),
   ``"min"`` (both directions kept; weight the smaller) or ``"mean"`` (weight the
   mean of both directions, an edge if either is kept).
2. Binary metrics, vectorised over a stack of graphs ``(n_graphs, n, n)`` so that
   1000 null models take well under a second per network of 100 units:
   :func:`clustering_coefficients` (``diag(A^3) / (k (k - 1))``, 0 for ``k < 2``),
   :func:`shortest_path_lengths` (breadth-first search by boolean matrix products),
   :func:`characteristic_path_length` (mean over connected pairs),
   :func:`global_efficiency` (mean of ``1 / d``, 0 for disconnected pairs).
3. :func:`small_worldness` against seeded Erdos-Renyi null graphs with the same
   number of nodes and edges (Humphries & Gurney 2008)::

       sigma = (C / C_null) / (L / L_null)

   ``C`` is the mean clustering coefficient and ``L`` the characteristic path
   length. A small world has ``C >> C_null`` and ``L ~ L_null``: ``sigma > 1``.
   The seRNN demo divides the clustering ratio by the *efficiency* ratio
   ``E / E_null``; since efficiency is (about) the inverse of path length, that
   multiplies by ``L / L_null`` instead of dividing by it, so a graph with long
   paths scores higher. We use path length as defined; ``sigma_efficiency =
   (C / C_null) * (E / E_null)`` is the efficiency-based equivalent (defined also
   when the graph is disconnected) and both ratios are returned.
4. :func:`modularity` of a partition (Newman's Q, vectorised) and
   :func:`communities` by seeded Louvain (networkx).
5. Weighted measures on ``|W|``: :func:`~neurornn.training.spatial.weighted_communicability`
   and the correlation of weight with distance (:func:`weight_distance`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from scipy import stats
from scipy.sparse.csgraph import connected_components

from .._validation import check_choice, check_finite, check_fraction, check_int, check_nonnegative
from ..ops.communicability import weighted_communicability

__all__ = [
    "adjacency",
    "clustering_coefficients",
    "shortest_path_lengths",
    "characteristic_path_length",
    "global_efficiency",
    "random_graphs",
    "small_worldness",
    "communities",
    "modularity",
    "weight_distance",
    "graph_metrics",
    "graph_metrics_history",
    "plot_graph_history",
    "plot_connectivity",
]

SYMMETRIZE = ("max", "min", "mean")


def _as_matrix(name: str, w: Any) -> np.ndarray:
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().double().numpy()
    w = np.asarray(w, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"{name} must be a square matrix (n_units, n_units), got shape {w.shape}")
    check_finite(name, w)
    return w


def adjacency(
    w,
    keep_fraction: float | None = 0.1,
    threshold: float | None = None,
    binarize: bool = True,
    symmetrize: str = "max",
) -> np.ndarray:
    """Undirected graph of the strongest connections of ``W``.

    Parameters
    ----------
    w : array-like or Tensor of shape (n_units, n_units)
    keep_fraction : float in (0, 1], optional
        Keep the entries of ``|W|`` strictly above the ``1 - keep_fraction``
        quantile of the off-diagonal entries (seRNN: 0.1). Ignored if ``threshold``.
    threshold : float >= 0, optional
        Keep the entries with ``|W| > threshold``.
    binarize : bool
        1 for a kept connection (True) or its ``|W|`` (False).
    symmetrize : {"max", "min", "mean"}
        How the two directions ``i -> j``, ``j -> i`` make one undirected edge (see
        the module docstring).

    Returns
    -------
    ndarray of shape (n_units, n_units), symmetric, zero diagonal.
    """
    a = np.abs(_as_matrix("w", w))
    n = a.shape[0]
    check_choice("symmetrize", symmetrize, SYMMETRIZE)
    off = ~np.eye(n, dtype=bool)
    if threshold is not None:
        check_nonnegative("threshold", threshold)
        kept = a > threshold
    else:
        if keep_fraction is None:
            raise ValueError("give keep_fraction or threshold, got neither")
        check_fraction("keep_fraction", keep_fraction)
        if keep_fraction == 0:
            raise ValueError("keep_fraction must be > 0, got 0")
        kept = a > np.quantile(a[off], 1.0 - keep_fraction) if keep_fraction < 1 else a > 0
    kept &= off
    vals = np.where(kept, 1.0 if binarize else a, 0.0)
    if symmetrize == "max":
        out = np.maximum(vals, vals.T)
    elif symmetrize == "min":
        out = np.minimum(vals, vals.T)
    else:
        out = (vals + vals.T) / 2.0
        if binarize:
            out = (out > 0).astype(float)
    return out


def _binary_stack(a) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim not in (2, 3) or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"adjacency must have shape (n, n) or (n_graphs, n, n), got {a.shape}")
    return (a != 0).astype(np.float32)


def clustering_coefficients(a) -> np.ndarray:
    """Local clustering coefficients of binary undirected graphs.

    Parameters
    ----------
    a : array of shape (n, n) or (n_graphs, n, n), symmetric, zero diagonal

    Returns
    -------
    ndarray of shape (n,) or (n_graphs, n): ``diag(A^3) / (k (k - 1))``, 0 where ``k < 2``.
    """
    b = _binary_stack(a)
    k = b.sum(-1).astype(np.float64)
    triangles = ((b @ b) * b).sum(-1, dtype=np.float64)  # diag(A^3), exact in float32 for n < 2**12
    denom = k * (k - 1)
    return np.where(denom > 0, triangles / np.where(denom > 0, denom, 1), 0.0)


def _bfs_levels(b: np.ndarray):
    """Yield ``(d, new)`` for d = 1, 2, ...: boolean (..., n, n), pairs first reached at hop d."""
    n = b.shape[-1]
    reached = np.broadcast_to(np.eye(n, dtype=bool), b.shape).copy()
    frontier = reached.astype(np.float32)
    for d in range(1, n):
        new = (frontier @ b > 0) & ~reached
        if not new.any():
            return
        yield d, new
        reached |= new
        frontier = new.astype(np.float32)


def shortest_path_lengths(a) -> np.ndarray:
    """Hop distances of binary undirected graphs (breadth-first search, vectorised).

    Parameters
    ----------
    a : array of shape (n, n) or (n_graphs, n, n)

    Returns
    -------
    ndarray of the same shape, float: number of edges on a shortest path,
    ``inf`` between disconnected nodes, 0 on the diagonal.
    """
    b = _binary_stack(a)
    n = b.shape[-1]
    dist = np.where(np.broadcast_to(np.eye(n, dtype=bool), b.shape), 0.0, np.inf)
    for d, new in _bfs_levels(b):
        dist[new] = d
    return dist


def _path_stats(a) -> tuple[np.ndarray, np.ndarray]:
    """(characteristic path length, global efficiency), each of shape () or (n_graphs,)."""
    b = _binary_stack(a)
    n = b.shape[-1]
    count = np.zeros(b.shape[:-2])
    total = np.zeros(b.shape[:-2])
    inverse = np.zeros(b.shape[:-2])
    for d, new in _bfs_levels(b):
        k = new.sum((-1, -2))
        count += k
        total += d * k
        inverse += k / d
    path = np.where(count > 0, total / np.maximum(count, 1), np.inf)
    eff = inverse / max(n * (n - 1), 1)
    return path, eff


def characteristic_path_length(a) -> np.ndarray | float:
    """Mean shortest-path length over connected pairs of distinct nodes (``inf`` if none).

    Equals ``networkx.average_shortest_path_length`` on connected graphs.
    """
    path, _ = _path_stats(a)
    return float(path) if np.ndim(path) == 0 else path


def global_efficiency(a) -> np.ndarray | float:
    """Mean of ``1 / d_ij`` over ordered pairs of distinct nodes (0 when disconnected).

    Equals ``networkx.global_efficiency``.
    """
    _, eff = _path_stats(a)
    return float(eff) if np.ndim(eff) == 0 else eff


def random_graphs(n_nodes: int, n_edges: int, n_graphs: int, seed: int = 0) -> np.ndarray:
    """Erdos-Renyi ``G(n, m)`` graphs: exactly ``n_edges`` undirected edges placed at random.

    Returns
    -------
    ndarray of shape (n_graphs, n_nodes, n_nodes), float32, symmetric, zero diagonal.
    """
    check_int("n_nodes", n_nodes, minimum=1)
    check_int("n_graphs", n_graphs, minimum=1)
    iu = np.triu_indices(n_nodes, 1)
    pairs = len(iu[0])
    check_int("n_edges", n_edges, minimum=0)
    if n_edges > pairs:
        raise ValueError(f"n_edges must be <= {pairs} for {n_nodes} nodes, got {n_edges}")
    rng = np.random.default_rng(seed)
    base = np.zeros((n_graphs, pairs), dtype=np.float32)
    base[:, :n_edges] = 1.0
    upper = rng.permuted(base, axis=1)
    out = np.zeros((n_graphs, n_nodes, n_nodes), dtype=np.float32)
    out[:, iu[0], iu[1]] = upper
    return out + out.transpose(0, 2, 1)


def small_worldness(a, n_nulls: int = 1000, seed: int = 0, chunk: int = 250) -> dict[str, float]:
    """Small-world propensity of a binary undirected graph against random null graphs.

    Parameters
    ----------
    a : array of shape (n, n), symmetric, zero diagonal (see :func:`adjacency`)
    n_nulls : int
        Number of seeded ``G(n, m)`` null graphs with the same numbers of nodes and
        edges (the seRNN analysis uses 1000).
    seed : int

    Returns
    -------
    dict with ``clustering`` C, ``path_length`` L, ``efficiency`` E, their null
    means ``clustering_null``, ``path_length_null``, ``efficiency_null``, the ratios
    ``gamma = C / C_null``, ``lambda = L / L_null``, ``sigma = gamma / lambda``
    (Humphries & Gurney 2008) and ``sigma_efficiency = gamma * E / E_null``.
    Null graphs that are disconnected enter ``L_null`` by their connected pairs.
    """
    b = _binary_stack(a)
    if b.ndim != 2:
        raise ValueError(f"adjacency must have shape (n, n), got {b.shape}")
    if not np.array_equal(b, b.T):
        raise ValueError("adjacency must be symmetric (undirected); build it with adjacency()")
    check_int("n_nulls", n_nulls, minimum=1)
    n = b.shape[0]
    n_edges = int(np.triu(b, 1).sum())
    clustering = float(clustering_coefficients(b).mean())
    path, eff = _path_stats(b)
    c_null, p_null, e_null = [], [], []
    for start in range(0, n_nulls, chunk):
        count = min(chunk, n_nulls - start)
        nulls = random_graphs(n, n_edges, count, seed=seed + start)
        c_null.append(clustering_coefficients(nulls).mean(-1))
        p, e = _path_stats(nulls)
        p_null.append(p)
        e_null.append(e)
    c0 = float(np.mean(np.concatenate(c_null)))
    p_all = np.concatenate(p_null)
    p0 = float(np.mean(p_all[np.isfinite(p_all)])) if np.isfinite(p_all).any() else float("inf")
    e0 = float(np.mean(np.concatenate(e_null)))
    gamma = clustering / c0 if c0 > 0 else float("nan")
    lam = float(path) / p0 if np.isfinite(path) and np.isfinite(p0) and p0 > 0 else float("nan")
    return {
        "clustering": clustering,
        "path_length": float(path),
        "efficiency": float(eff),
        "clustering_null": c0,
        "path_length_null": p0,
        "efficiency_null": e0,
        "gamma": gamma,
        "lambda": lam,
        "sigma": gamma / lam if lam and np.isfinite(lam) else float("nan"),
        "sigma_efficiency": gamma * float(eff) / e0 if e0 > 0 else float("nan"),
        "n_nulls": n_nulls,
    }


def communities(a, seed: int = 0, resolution: float = 1.0) -> np.ndarray:
    """Community of each node by seeded Louvain (``networkx.community.louvain_communities``).

    Parameters
    ----------
    a : array of shape (n, n), symmetric (binary or weighted)

    Returns
    -------
    ndarray of shape (n,), int labels 0..n_communities-1, largest community first.
    """
    import networkx as nx

    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or not np.allclose(a, a.T):
        raise ValueError(f"adjacency must be a symmetric (n, n) matrix, got shape {a.shape}")
    graph = nx.from_numpy_array(a)
    parts = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    labels = np.zeros(a.shape[0], dtype=int)
    for k, part in enumerate(sorted(parts, key=lambda p: (-len(p), min(p)))):
        labels[list(part)] = k
    return labels


def modularity(a, labels, resolution: float = 1.0) -> float:
    """Newman's modularity ``Q = 1/(2m) sum_ij (A_ij - g k_i k_j / (2m)) [c_i == c_j]``.

    Parameters
    ----------
    a : array of shape (n, n), symmetric (binary or weighted)
    labels : array of shape (n,), community of each node
    resolution : float, ``g``

    Equals ``networkx.community.modularity``; 0 for a graph without edges.
    """
    a = np.asarray(a, dtype=float)
    labels = np.asarray(labels)
    if labels.shape != (a.shape[0],):
        raise ValueError(f"labels must have shape ({a.shape[0]},), got {labels.shape}")
    two_m = a.sum()
    if two_m == 0:
        return 0.0
    k = a.sum(1)
    same = labels[:, None] == labels[None, :]
    return float(((a - resolution * np.outer(k, k) / two_m) * same).sum() / two_m)


def weight_distance(w, distances) -> dict[str, float]:
    """How connection strength depends on distance (off-diagonal entries of ``|W|``).

    Returns
    -------
    dict with ``pearson_r`` and ``spearman_rho`` between ``|W_ij|`` and ``D_ij``, and
    ``mean_connection_distance = sum |W| D / sum |W|``.
    """
    a = np.abs(_as_matrix("w", w))
    d = _as_matrix("distances", distances)
    if d.shape != a.shape:
        raise ValueError(f"distances must have shape {a.shape}, got {d.shape}")
    off = ~np.eye(a.shape[0], dtype=bool)
    x, y = a[off], d[off]
    varies = x.std() > 0 and y.std() > 0
    return {
        "pearson_r": float(stats.pearsonr(x, y)[0]) if varies else float("nan"),
        "spearman_rho": float(stats.spearmanr(x, y)[0]) if varies else float("nan"),
        "mean_connection_distance": float((x * y).sum() / x.sum()) if x.sum() > 0 else float("nan"),
    }


def graph_metrics(
    w,
    distances=None,
    *,
    keep_fraction: float | None = 0.1,
    threshold: float | None = None,
    binarize: bool = True,
    symmetrize: str = "max",
    n_nulls: int = 1000,
    seed: int = 0,
    with_communities: bool = True,
) -> dict[str, Any]:
    """All graph metrics of one weight matrix, as a JSON-friendly dict.

    Parameters
    ----------
    w : array-like or Tensor of shape (n_units, n_units)
        Recurrent weights, ``W[i, j]`` from unit j onto unit i.
    distances : array of shape (n_units, n_units), optional
        Distances between units (adds the weight-distance measures).
    keep_fraction, threshold, binarize, symmetrize
        How the graph is built, see :func:`adjacency`. Clustering, path length,
        efficiency and small-worldness always use the graph's edges (binary);
        with ``binarize=False`` Louvain and modularity use the kept weights.
    n_nulls, seed
        Null models of :func:`small_worldness`; Louvain seed.

    Returns
    -------
    dict: ``total_weight`` (sum ``|W|``), ``n_edges``, ``density``, ``modularity`` and
    ``n_communities`` and ``communities`` (labels), ``n_components``,
    ``largest_component`` and ``n_isolated`` (nodes without an edge), the entries of
    :func:`small_worldness`, ``communicability_mean`` (mean off-diagonal weighted
    communicability of ``|W|``) and, with distances, those of :func:`weight_distance`.
    """
    mat = _as_matrix("w", w)
    n = mat.shape[0]
    adj = adjacency(mat, keep_fraction=keep_fraction, threshold=threshold, binarize=binarize,
                    symmetrize=symmetrize)
    n_edges = int(np.count_nonzero(np.triu(adj, 1)))
    out: dict[str, Any] = {
        "n_units": n,
        "total_weight": float(np.abs(mat).sum()),
        "n_edges": n_edges,
        "density": n_edges / max(n * (n - 1) / 2, 1),
        "graph": {"keep_fraction": keep_fraction, "threshold": threshold, "binarize": binarize,
                  "symmetrize": symmetrize},
    }
    if with_communities:
        labels = communities(adj, seed=seed)
        out["modularity"] = modularity(adj, labels)
        out["n_communities"] = int(labels.max() + 1)
        out["communities"] = labels.tolist()
    n_comp, comp_labels = connected_components(adj, directed=False)
    out["n_components"] = int(n_comp)
    out["largest_component"] = int(np.bincount(comp_labels).max())
    out["n_isolated"] = int((adj.sum(1) == 0).sum())
    out.update(small_worldness(adj, n_nulls=n_nulls, seed=seed))
    comm = weighted_communicability(torch.as_tensor(mat, dtype=torch.float64)).numpy()
    out["communicability_mean"] = float(comm[~np.eye(n, dtype=bool)].mean()) if n > 1 else 0.0
    if distances is not None:
        out.update(weight_distance(mat, distances))
    return out


def graph_metrics_history(
    weights: Sequence, steps: Sequence[int], distances=None, **kwargs
) -> list[dict[str, Any]]:
    """:func:`graph_metrics` of every snapshot of a weight history.

    Parameters
    ----------
    weights : sequence of arrays (n_units, n_units) (recurrent weights of each snapshot)
    steps : sequence of int, the training step of each snapshot
    kwargs : passed to :func:`graph_metrics` (e.g. ``n_nulls=100`` to go faster)

    Returns
    -------
    list of dicts, each with ``step`` and the scalar metrics (no community labels).
    """
    if len(weights) != len(steps):
        raise ValueError(f"weights and steps must have the same length, got {len(weights)} and {len(steps)}")
    records = []
    for w, step in zip(weights, steps):
        m = graph_metrics(w, distances, **kwargs)
        m.pop("communities", None)
        m.pop("graph", None)
        records.append({"step": int(step), **m})
    return records


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

    a = np.abs(_as_matrix("w", w))
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
        d = _as_matrix("distances", distances)
        off = ~np.eye(a.shape[0], dtype=bool)
        axes[1].scatter(d[off], a[off], s=2, alpha=0.4)
        axes[1].set_xlabel("distance")
        axes[1].set_ylabel("|W|")
        axes[1].set_title("weight against distance", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig
