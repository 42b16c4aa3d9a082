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
5. Weighted measures on ``|W|``: :func:`~neurornn.ops.communicability.weighted_communicability`
   and the correlation of weight with distance (:func:`weight_distance`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from scipy import stats
from scipy.sparse.csgraph import connected_components

from .._validation import check_int
from ..ops.communicability import weighted_communicability
from ._graph_build import adjacency, as_matrix
from ._graph_measures import (
    characteristic_path_length,
    clustering_coefficients,
    communities,
    global_efficiency,
    modularity,
    random_graphs,
    shortest_path_lengths,
    small_worldness,
)
from ._graph_plots import plot_connectivity, plot_graph_history

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


def weight_distance(w, distances) -> dict[str, float]:
    """How connection strength depends on distance (off-diagonal entries of ``|W|``).

    Returns
    -------
    dict with ``pearson_r`` and ``spearman_rho`` between ``|W_ij|`` and ``D_ij``, and
    ``mean_connection_distance = sum |W| D / sum |W|``.
    """
    a = np.abs(as_matrix("w", w))
    d = as_matrix("distances", distances)
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
    louvain_restarts: int = 5,
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
    louvain_restarts : int
        Louvain runs (seeds ``seed``, ``seed + 1``, ...): the partition of the highest
        modularity is kept, and the spread over the runs is reported (one run can fall
        below the best of several by as much as the differences a sweep looks for).

    Returns
    -------
    dict: ``total_weight`` (sum ``|W|``), ``n_edges``, ``density``, ``modularity`` (the best
    run's) and ``modularity_runs`` (``n``, ``min``, ``mean``, ``max``, ``sd`` over the Louvain
    runs), ``n_communities`` and ``communities`` (labels), ``n_components``,
    ``largest_component`` and ``n_isolated`` (nodes without an edge), the entries of
    :func:`small_worldness`, ``communicability_mean`` (mean off-diagonal weighted
    communicability of ``|W|``) and, with distances, those of :func:`weight_distance`.
    """
    mat = as_matrix("w", w)
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
        check_int("louvain_restarts", louvain_restarts, minimum=1)
        runs = [communities(adj, seed=seed + r) for r in range(louvain_restarts)]
        qs = np.array([modularity(adj, labels) for labels in runs])
        labels = runs[int(np.argmax(qs))]
        out["modularity"] = float(qs.max())
        out["modularity_runs"] = {"n": louvain_restarts, "min": float(qs.min()), "mean": float(qs.mean()),
                                  "max": float(qs.max()), "sd": float(qs.std())}
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
