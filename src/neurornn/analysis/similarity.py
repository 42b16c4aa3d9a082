"""Similarity of two activities: linear CKA, Procrustes shape distance, dynamical similarity analysis.

Each takes two activities over the same samples (an :class:`Activity`, an array of shape
(trials, time, units) or (samples, units): two networks on the same trials, or a network
and recorded data); the numbers of units may differ.

- :func:`linear_cka` (Kornblith et al. 2019): ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` of the
  centred data; 1 for identical data, invariant to orthogonal transforms and isotropic scaling.
- :func:`procrustes_distance` (Williams et al. 2021): the generalised shape metric
  ``min_Q ||phi(X) - phi(Y) Q||`` over orthogonal ``Q`` with partial whitening
  ``phi(X) = X_c (alpha I + (1 - alpha) Sigma_X)^(-1/2)`` (``alpha = 1``: Procrustes; ``alpha = 0``: CCA);
  angular (default, also scale invariant) or Euclidean.
- :func:`dsa` (Ostrow et al. 2023): each system's trajectories are delay-embedded (Hankel),
  reduced to ``rank`` SVD components, fitted with a linear operator ``A`` (DMD,
  ``v[t+1] = A v[t]``), and the two operators compared by the Procrustes distance over vector fields
  ``min_{C in O(r)} ||A_x - C A_y C^T||_F`` (optimised over rotations and reflections from random starts).

:func:`pairwise_distances` and :func:`compare_runs` build distance matrices (e.g. the networks of an
ensemble folder) and a classical MDS embedding (:func:`mds`, :func:`plot_similarity`).
Registered in the pipeline as ``similarity`` (the network against each snapshot of its weight history).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from .._validation import check_choice, check_int
from ..runs import load_run
from ..plotting import new_figure, tight_layout
from ._registry import register_analysis
from .activity import Activity, record_activity

__all__ = ["compare_runs", "delay_embed", "dmd_operator", "dsa", "linear_cka", "mds", "pairwise_distances",
           "plot_similarity", "procrustes_distance", "vector_field_procrustes"]


def _samples(x: Any, name: str) -> np.ndarray:
    """(samples, units) float64 from an Activity (rates), (trials, time, units) or (samples, units)."""
    a = np.asarray(x.rates if isinstance(x, Activity) else x, dtype=float)
    if a.ndim == 3:
        a = a.reshape(-1, a.shape[-1])
    if a.ndim != 2 or min(a.shape) < 1:
        raise ValueError(f"{name} must have shape (trials, time, units) or (samples, units), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _pair(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _samples(x, "x"), _samples(y, "y")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"x and y must hold the same samples (trials x time), got {a.shape[0]} and {b.shape[0]}")
    return a - a.mean(0), b - b.mean(0)


def linear_cka(x: Any, y: Any) -> float:
    """Linear centred kernel alignment of two activities over the same samples (in [0, 1])."""
    a, b = _pair(x, y)
    num = np.linalg.norm(b.T @ a) ** 2
    den = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    if den == 0:
        raise ValueError("linear CKA is undefined for constant activity")
    return float(num / den)


def _whiten(a: np.ndarray, alpha: float) -> np.ndarray:
    if alpha == 1.0:
        return a
    cov = a.T @ a / a.shape[0]
    vals, vecs = np.linalg.eigh(alpha * np.eye(cov.shape[0]) + (1 - alpha) * cov)
    inv_sqrt = np.where(vals > 1e-12 * max(vals.max(), 1e-300), 1 / np.sqrt(np.maximum(vals, 1e-300)), 0.0)
    return a @ (vecs * inv_sqrt) @ vecs.T


def procrustes_distance(x: Any, y: Any, *, alpha: float = 1.0, kind: str = "angular") -> float:
    """Shape distance of Williams et al. (2021) between two activities over the same samples.

    Parameters
    ----------
    x, y : Activity or arrays of shape (trials, time, units) / (samples, units)
        Centred over samples; different numbers of units are zero-padded (implicitly).
    alpha : float in [0, 1]
        Partial whitening ``phi(X) = X (alpha I + (1 - alpha) Sigma_X)^(-1/2)``: 1 = Procrustes
        (rotation only), 0 = CCA.
    kind : {"angular", "euclidean"}
        ``arccos(||phi(X)^T phi(Y)||_* / (||phi(X)|| ||phi(Y)||))`` (radians, in [0, pi/2]; also invariant
        to isotropic scaling), or ``min_Q ||phi(X) - phi(Y) Q||_F / sqrt(samples)``. Both are metrics.
    """
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    check_choice("kind", kind, ("angular", "euclidean"))
    a, b = (_whiten(m, float(alpha)) for m in _pair(x, y))
    nuc = np.linalg.svd(a.T @ b, compute_uv=False).sum()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if kind == "angular":
        if na == 0 or nb == 0:
            raise ValueError("the angular shape distance is undefined for constant activity")
        return float(np.arccos(np.clip(nuc / (na * nb), -1.0, 1.0)))
    return float(np.sqrt(max(na ** 2 + nb ** 2 - 2 * nuc, 0.0) / a.shape[0]))


# ---------------------------------------------------------------------- dynamical similarity
def _trials(x: Any, name: str) -> np.ndarray:
    a = np.asarray(x.rates if isinstance(x, Activity) else x, dtype=float)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[1] < 3:
        raise ValueError(f"{name} must have shape (trials, time >= 3, units) or (time, units), got {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def delay_embed(x: Any, n_delays: int) -> np.ndarray:
    """Delay (Hankel) embedding: ``[x(t), x(t-1), ..., x(t-d+1)]``, shape (trials, time - d + 1, units * d)."""
    a = _trials(x, "x")
    check_int("n_delays", n_delays, minimum=1)
    if n_delays >= a.shape[1]:
        raise ValueError(f"n_delays must be < the number of time steps ({a.shape[1]}), got {n_delays}")
    t = a.shape[1] - n_delays + 1
    return np.concatenate([a[:, n_delays - 1 - k: n_delays - 1 - k + t] for k in range(n_delays)], axis=2)


def dmd_operator(x: Any, *, n_delays: int = 1, rank: int | None = None, whiten: bool = False) -> np.ndarray:
    """Linear operator ``A`` (rank, rank) with ``v[t+1] ~ A v[t]`` in the top SVD components of the embedding.

    ``whiten=True`` scales each component to unit variance, which makes ``A`` equal up to an orthogonal
    similarity for two systems related by any invertible linear change of basis (at full rank).
    """
    h = delay_embed(x, n_delays)
    flat = h.reshape(-1, h.shape[2])
    # Right singular vectors from the (features, features) Gram matrix: much cheaper than an SVD of
    # the (samples, features) embedding.
    vals, vecs = np.linalg.eigh(flat.T @ flat)
    order = np.argsort(vals)[::-1][:min(flat.shape)]
    s, vt = np.sqrt(np.maximum(vals[order], 0.0)), vecs[:, order].T
    r = len(s) if rank is None else min(int(rank), len(s))
    v = h @ vt[:r].T
    if whiten:
        v = v / np.maximum(s[:r], 1e-300) * np.sqrt(flat.shape[0])
    x0, x1 = v[:, :-1].reshape(-1, r), v[:, 1:].reshape(-1, r)
    at, *_ = np.linalg.lstsq(x0, x1, rcond=None)
    return at.T


def vector_field_procrustes(a: Any, b: Any, *, n_restarts: int = 16, n_iter: int = 300,
                            seed: int = 0) -> tuple[float, np.ndarray]:
    """``min_{C in O(n)} ||A - C B C^T||_F`` for square ``a``, ``b`` (n, n); returns (distance, C).

    Optimised by Adam (cosine-decaying step) over ``C = expm(K - K^T)``, times a reflection for half of
    the starts, from the identity, its reflection and random starts, all at once; the best is polished by L-BFGS-B.
    """
    A = torch.as_tensor(np.asarray(a, dtype=float))
    B = torch.as_tensor(np.asarray(b, dtype=float))
    if A.ndim != 2 or A.shape != B.shape or A.shape[0] != A.shape[1]:
        raise ValueError(f"a and b must be square matrices of the same shape, got {tuple(A.shape)} and {tuple(B.shape)}")
    check_int("n_restarts", n_restarts, minimum=1)
    check_int("n_iter", n_iter, minimum=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: threads only contend (tens of times slower on 2 cores)
    try:
        return _vector_field_procrustes(A, B, n_restarts, n_iter, seed)
    finally:
        torch.set_num_threads(threads)


def _vector_field_procrustes(A: torch.Tensor, B: torch.Tensor, n_restarts: int, n_iter: int,
                             seed: int) -> tuple[float, np.ndarray]:
    n = A.shape[0]
    g = torch.Generator().manual_seed(int(seed))
    k = torch.randn(n_restarts, n, n, generator=g, dtype=torch.float64) * 1.5
    k[0], k[min(1, n_restarts - 1)] = 0.0, 0.0  # the identity and its reflection
    flip = torch.ones(n_restarts, n, dtype=torch.float64)
    flip[1::2, 0] = -1.0  # half of the starts in the reflected component of O(n)

    def rotations(kk: torch.Tensor) -> torch.Tensor:
        return torch.matrix_exp(kk - kk.transpose(-1, -2)) * flip[:, None, :]

    def losses(kk: torch.Tensor) -> torch.Tensor:
        c = rotations(kk)
        return ((A - c @ B @ c.transpose(1, 2)) ** 2).sum((1, 2))

    # Adam (written out: torch.optim's first use imports torch._dynamo, seconds) with a cosine-decaying
    # step, each start on its own.
    m, v = torch.zeros_like(k), torch.zeros_like(k)
    b1, b2, iters = 0.9, 0.999, int(n_iter)
    for it in range(1, iters + 1):
        kk = k.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(losses(kk).sum(), kk)
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad ** 2
        lr = 1e-4 + 0.5 * (0.05 - 1e-4) * (1 + np.cos(np.pi * it / iters))
        k = k - lr * (m / (1 - b1 ** it)) / ((v / (1 - b2 ** it)).sqrt() + 1e-12)
    with torch.no_grad():
        i = int(torch.argmin(losses(k)))
    # Polish the best start with SciPy's L-BFGS-B (Adam converges slowly near the minimum).
    from scipy.optimize import minimize

    fb = flip[i]

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        kk = torch.as_tensor(flat.reshape(n, n)).requires_grad_(True)
        c = torch.matrix_exp(kk - kk.T) * fb
        loss = ((A - c @ B @ c.T) ** 2).sum()
        (grad,) = torch.autograd.grad(loss, kk)
        return float(loss.detach()), grad.numpy().ravel()

    res = minimize(fun, k[i].numpy().ravel(), jac=True, method="L-BFGS-B",
                   options={"maxiter": 500, "ftol": 1e-16, "gtol": 1e-12})
    with torch.no_grad():
        kk = torch.as_tensor(res.x.reshape(n, n))
        c = torch.matrix_exp(kk - kk.T) * fb
        return float(((A - c @ B @ c.T) ** 2).sum().sqrt()), c.numpy()


def dsa(x: Any, y: Any, *, n_delays: int = 5, rank: int = 10, whiten: bool = False, n_restarts: int = 16,
        n_iter: int = 300, seed: int = 0) -> float:
    """Dynamical similarity analysis (Ostrow et al. 2023) of two sets of trajectories.

    Parameters
    ----------
    x, y : Activity or arrays of shape (trials, time, units) or (time, units)
        Need not share trials or units.
    n_delays : int
        Delays of the Hankel embedding.
    rank : int
        SVD components kept of each embedding (the smaller available rank of the two is used).
    whiten : bool
        Unit-variance components (see :func:`dmd_operator`).

    Returns
    -------
    float: ``min_{C in O(r)} ||A_x - C A_y C^T||_F`` of the two fitted DMD operators.

    Simplified from Ostrow et al.: plain least squares (no reduced-rank regression), the same rank for
    both, and a random-restart Adam search over O(r) instead of their optimiser.
    """
    check_int("rank", rank, minimum=1)
    hx, hy = delay_embed(x, n_delays), delay_embed(y, n_delays)
    r = min(rank, hx.shape[2], hy.shape[2], hx.shape[0] * hx.shape[1] - 1, hy.shape[0] * hy.shape[1] - 1)
    ax = dmd_operator(x, n_delays=n_delays, rank=r, whiten=whiten)
    ay = dmd_operator(y, n_delays=n_delays, rank=r, whiten=whiten)
    return vector_field_procrustes(ax, ay, n_restarts=n_restarts, n_iter=n_iter, seed=seed)[0]


# ---------------------------------------------------------------------- many activities
_METRICS = ("cka", "procrustes", "dsa")


def _distance(metric: str, x: Any, y: Any, kwargs: dict) -> float:
    if metric == "cka":
        return 1.0 - linear_cka(x, y)
    if metric == "procrustes":
        return procrustes_distance(x, y, **kwargs)
    return dsa(x, y, **kwargs)


def pairwise_distances(activities: Sequence[Any], metric: str = "procrustes", **kwargs: Any) -> np.ndarray:
    """Symmetric matrix (K, K) of distances between K activities (``"cka"``: ``1 - CKA``)."""
    check_choice("metric", metric, _METRICS)
    acts = list(activities)
    if len(acts) < 2:
        raise ValueError(f"activities must hold at least 2 activities, got {len(acts)}")
    d = np.zeros((len(acts), len(acts)))
    for i in range(len(acts)):
        for j in range(i + 1, len(acts)):
            d[i, j] = d[j, i] = _distance(metric, acts[i], acts[j], kwargs)
    return d


def mds(distances: Any, dims: int = 2) -> np.ndarray:
    """Classical (Torgerson) MDS: coordinates (K, dims) whose distances approximate ``distances``."""
    d = np.asarray(distances, dtype=float)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square matrix, got shape {d.shape}")
    n = d.shape[0]
    j = np.eye(n) - 1.0 / n
    vals, vecs = np.linalg.eigh(-0.5 * j @ (d ** 2) @ j)
    order = np.argsort(vals)[::-1][:dims]
    coords = vecs[:, order] * np.sqrt(np.maximum(vals[order], 0.0))
    return np.pad(coords, ((0, 0), (0, max(0, dims - coords.shape[1]))))


def _run_list(runs: Any) -> list:
    if isinstance(runs, (str, os.PathLike)):
        root = Path(runs)
        index = root / "ensemble.json"
        if not index.is_file():
            raise ValueError(f"{str(root)!r} is not an ensemble folder (no ensemble.json); pass a list of runs")
        return [root / name for name in json.loads(index.read_text())["networks"]]
    return list(runs)


def compare_runs(runs: Any, metric: str = "procrustes", *, n_trials: int = 64, seed: int = 0,
                 names: Sequence[str] | None = None, **kwargs: Any) -> dict:
    """Distance matrix and 2D MDS embedding of the activity of several runs on the same trials.

    Parameters
    ----------
    runs : ensemble folder path, or a sequence of Run / run folder paths
        All on one task; the trials are drawn from the first run's task (``n_trials`` from ``seed``).
    metric : {"procrustes", "cka", "dsa"}
    kwargs : passed to the metric (e.g. ``alpha=0.5``, ``n_delays=3``).

    Returns
    -------
    dict with ``names``, ``distances`` (K, K), ``embedding`` (K, 2), ``metric``.
    """
    check_choice("metric", metric, _METRICS)
    check_int("n_trials", n_trials, minimum=2)
    items = _run_list(runs)
    loaded = [load_run(r) if isinstance(r, (str, os.PathLike)) else r for r in items]
    if names is None:
        names = [Path(getattr(r, "path", None) or f"run {i}").name for i, r in enumerate(loaded)]
    batch = loaded[0].task.batch(n_trials, torch.Generator().manual_seed(seed))
    acts = [record_activity(r, batch) for r in loaded]
    d = pairwise_distances(acts, metric, **kwargs)
    return {"names": list(names), "distances": d, "embedding": mds(d, 2), "metric": metric}


def plot_similarity(distances: Any, names: Sequence[str], *, metric: str = "distance",
                    embedding: Any = None, color: Any = None) -> Any:
    """The distance matrix and its 2D MDS embedding (points labelled by name, coloured by ``color``)."""

    d = np.asarray(distances, dtype=float)
    emb = mds(d, 2) if embedding is None else np.asarray(embedding)
    fig = new_figure(8.0, 3.5)
    ax = fig.add_subplot(1, 2, 1)
    im = ax.imshow(d, cmap="magma")
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_title(f"pairwise {metric}", fontsize=9)
    ax2 = fig.add_subplot(1, 2, 2)
    c = np.arange(len(names)) if color is None else color
    sc = ax2.scatter(emb[:, 0], emb[:, 1], c=c, cmap="viridis")
    for (px, py), label in zip(emb, names):
        ax2.annotate(str(label), (px, py), fontsize=6)
    fig.colorbar(sc, ax=ax2, label="index" if color is None else "colour")
    ax2.set_xlabel("MDS 1")
    ax2.set_ylabel("MDS 2")
    ax2.set_title("classical MDS of the distances", fontsize=9)
    tight_layout(fig)
    return fig


# ---------------------------------------------------------------------- the pipeline analysis
_MAX_SNAPSHOTS = 12


def _similarity_plan(ctx):
    entries = ["analysis/similarity.json"]
    if len(ctx.run.history.steps) > 0:
        entries += ["analysis/similarity.npz", "figures/similarity.png"]
    return entries


@register_analysis("similarity", needs=("batch", "activity"), plan=_similarity_plan,
                   writes=("analysis/similarity.json", "analysis/similarity.npz", "figures/similarity.png"),
                   help="linear CKA, Procrustes shape distance and DSA of the network's activity against each "
                        "weight-history snapshot, with their distance matrix and MDS embedding")
def _similarity_analysis(ctx) -> tuple[str, dict]:
    act, history = ctx.activity, ctx.run.history
    steps = list(history.steps)
    if not steps:
        msg = "Similarity skipped: the run has no weight history to compare with."
        ctx.out.json("similarity", {"message": msg, "snapshot": ctx.snapshot})
        return msg, {"message": msg}
    chosen = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), _MAX_SNAPSHOTS)).round().astype(int))
    acts = [record_activity(ctx.run, ctx.batch, area=ctx.options.area, snapshot=int(i)) for i in chosen]
    n_delays = max(1, min(5, act.rates.shape[1] // 4))
    dsa_kw = {"n_delays": n_delays, "rank": 8, "n_restarts": 8, "n_iter": 200}
    rows = [{"step": steps[i], "cka": linear_cka(act, a), "procrustes": procrustes_distance(act, a),
             "dsa": dsa(act, a, **dsa_kw)} for i, a in zip(chosen, acts)]
    names = [f"step {steps[i]}" for i in chosen] + ["analysed"]
    d = pairwise_distances(acts + [act], "procrustes")
    first = rows[0]
    msg = (f"Similarity to the first snapshot (step {first['step']}): CKA {first['cka']:.3f}, Procrustes angle "
           f"{first['procrustes']:.3f} rad, DSA {first['dsa']:.3g} ({len(rows)} snapshots compared).")
    data = {"message": msg, "snapshot": ctx.snapshot, "dsa": dsa_kw, "snapshots": rows, "names": names}
    ctx.out.json("similarity", data)
    ctx.out.npz("similarity", {"steps": np.array([steps[i] for i in chosen]), "procrustes_distances": d,
                               "embedding": mds(d, 2), "cka": np.array([r["cka"] for r in rows]),
                               "dsa": np.array([r["dsa"] for r in rows])})
    ctx.out.figure("similarity", plot_similarity(d, names, metric="Procrustes angle (rad)"))
    return msg, data
