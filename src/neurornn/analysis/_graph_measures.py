"""Measures of binary undirected graphs, their null models and their communities.

Clustering, shortest paths, path length and efficiency are vectorised over a stack
of graphs ``(n_graphs, n, n)``; :func:`small_worldness` compares a graph with seeded
Erdos-Renyi nulls; :func:`communities` (seeded Louvain) and :func:`modularity`
(Newman's Q). The definitions and the choice of sigma are in :mod:`neurornn.analysis.graph`.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_int

__all__ = [
    "characteristic_path_length",
    "clustering_coefficients",
    "communities",
    "global_efficiency",
    "modularity",
    "random_graphs",
    "shortest_path_lengths",
    "small_worldness",
]


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
