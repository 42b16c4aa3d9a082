"""The stages of the fixed-point search of :class:`~neurornn.analysis.fixed_points.FixedPointFinder`.

:func:`descend` (per-point adaptive Adam on ``q``), :func:`newton` (float64 Newton with
a Levenberg-Marquardt fallback) and :func:`unique` (greedy de-duplication per input condition).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..models import RNN
from ._jacobians import jacobians

__all__ = ["descend", "newton", "q_of", "unique"]

# A descending point stalls (stops for good) when its q fell by less than 20 % over 100 iterations.
_STALL_WINDOW, _STALL_FACTOR = 100, 0.8


def q_of(net: RNN, x: Tensor, u: Tensor) -> Tensor:
    """``q = 1/2 |step(x, u) - x|^2`` of each point: (n_points,) from ``x`` (n_points, n_units)."""
    f = net.step(x, u) - x
    return 0.5 * (f * f).sum(-1)


def descend(net: RNN, x: Tensor, u: Tensor, target: Tensor, *, learning_rate: float, max_iters: int
            ) -> tuple[Tensor, Tensor, int]:
    """Per-point adaptive Adam on q (one forward and one backward per iteration).

    A move that raises a point's q is rejected: its step halves and its Adam
    moments restart (so the next move is along ``-sign(grad q)``, a descent
    direction); an accepted move grows the step by 1.2. Points below the
    target q stop moving; points whose q fell by less than 20 % over the last
    100 iterations (stalled: a slow region, not a fixed point nearby) stop for good.
    Returns the points, their q and the number of iterations run.
    """
    b1, b2, eps = 0.9, 0.999, 1e-30

    def q_and_grad(xx: Tensor, uu: Tensor) -> tuple[Tensor, Tensor]:
        xg = xx.detach().requires_grad_(True)
        with torch.enable_grad():
            qg = q_of(net, xg, uu)
            (g,) = torch.autograd.grad(qg.sum(), xg)
        return qg.detach(), g

    x = x.clone()
    q, g = q_and_grad(x, u)
    m, v = torch.zeros_like(x), torch.zeros_like(x)
    t = torch.zeros_like(q)  # per-point Adam step count (bias correction)
    lr = torch.full_like(q, learning_rate)
    active = q > target
    stalled = torch.zeros_like(active)
    q_check = q.clone()
    it, block = 0, 50
    while it < max_iters:
        idx = active.nonzero().squeeze(1)
        if idx.numel() == 0:
            break
        xa, ua, qa, ga, ma, va, ta, la = x[idx], u[idx], q[idx], g[idx], m[idx], v[idx], t[idx], lr[idx]
        for _ in range(min(block, max_iters - it)):
            it += 1
            ta = ta + 1
            ma = b1 * ma + (1 - b1) * ga
            va = b2 * va + (1 - b2) * ga * ga
            c1 = (1 - b1 ** ta)[:, None]
            c2 = (1 - b2 ** ta)[:, None]
            step = (ma / c1) / ((va / c2).sqrt() + eps)
            x_new = xa - la[:, None] * step
            q_new, g_new = q_and_grad(x_new, ua)
            ok = q_new <= qa
            la = torch.where(ok, (la * 1.2).clamp(max=1.0), la * 0.5)
            xa = torch.where(ok[:, None], x_new, xa)
            ga = torch.where(ok[:, None], g_new, ga)
            qa = torch.where(ok, q_new, qa)
            ma = torch.where(ok[:, None], ma, 0.0)
            va = torch.where(ok[:, None], va, 0.0)
            ta = torch.where(ok, ta, 0.0)
        x[idx], q[idx], g[idx], m[idx], v[idx], t[idx], lr[idx] = xa, qa, ga, ma, va, ta, la
        if it % _STALL_WINDOW == 0:
            stalled |= q > _STALL_FACTOR * q_check
            q_check = q.clone()
        active = (q > target) & ~stalled
    return x, q, it


def newton(net: RNN, x: Tensor, u: Tensor, n_iters: int) -> tuple[Tensor, Tensor]:
    """Newton on F(x) = step(x, u) - x with the autograd Jacobian, Levenberg-Marquardt fallback.

    Each iteration tries the Newton step ``J_F delta = -F``; points where it
    fails (singular ``J_F``, or q does not fall) take a damped step
    ``(J_F^T J_F + mu I) delta = -J_F^T F`` instead. Points stop when q < 1e-28,
    when the damping has grown past 1e2, or after 3 steps that cut q by less
    than 4x (no root nearby: Newton near a root cuts q by orders of magnitude),
    or after ``n_iters`` iterations.
    """
    n = x.shape[-1]
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    mu = torch.full(x.shape[:1], 1e-6, dtype=x.dtype, device=x.device)
    stalls = torch.zeros(x.shape[:1], dtype=torch.long, device=x.device)

    def residual(xx: Tensor, uu: Tensor) -> tuple[Tensor, Tensor]:
        ff = net.step(xx, uu) - xx
        return ff, 0.5 * (ff * ff).sum(-1)

    with torch.no_grad():
        x = x.clone()
        f, q = residual(x, u)
        for _ in range(n_iters):
            active = (q > 1e-28) & (mu < 1e2) & (stalls < 3)
            if not bool(active.any()):
                break
            idx = active.nonzero().squeeze(1)
            xa, ua, fa, qa, mua = x[idx], u[idx], f[idx], q[idx], mu[idx]
            jf = jacobians(net, xa, ua) - eye
            delta, info = torch.linalg.solve_ex(jf, -fa)
            x_new = xa + torch.nan_to_num(delta, nan=0.0, posinf=0.0, neginf=0.0)
            f_new, q_new = residual(x_new, ua)
            ok = (info == 0) & torch.isfinite(q_new) & (q_new < qa)
            bad = (~ok).nonzero().squeeze(1)
            if bad.numel():
                jb = jf[bad]
                jt = jb.transpose(-1, -2)
                a = jt @ jb + mua[bad, None, None] * eye
                step = torch.linalg.solve(a, -(jt @ fa[bad][..., None]))[..., 0]
                xb = xa[bad] + step
                fb, qb = residual(xb, ua[bad])
                okb = torch.isfinite(qb) & (qb < qa[bad])
                x_new[bad] = torch.where(okb[:, None], xb, xa[bad])
                f_new[bad] = torch.where(okb[:, None], fb, fa[bad])
                q_new[bad] = torch.where(okb, qb, qa[bad])
                mua[bad] = torch.where(okb, (mua[bad] * 0.1).clamp(min=1e-12), mua[bad] * 100)
            stalls[idx] = torch.where(q_new > 0.25 * qa, stalls[idx] + 1, stalls[idx])
            x[idx], f[idx], q[idx], mu[idx] = x_new, f_new, q_new, mua
    return x, q


def _dedup(points: np.ndarray, q: np.ndarray, tol: float, weights: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """Greedy de-duplication, lowest q first: (kept indices, summed weights of each kept)."""
    if len(points) == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    weights = np.ones(len(points), dtype=int) if weights is None else np.asarray(weights)
    order = np.argsort(q, kind="stable")
    p = points[order]
    kept: list[int] = []
    owner = np.full(len(p), -1)
    for i in range(len(p)):
        if kept:
            d = np.linalg.norm(p[kept] - p[i], axis=1)
            j = int(np.argmin(d))
            if d[j] <= tol:
                owner[i] = j
                continue
        owner[i] = len(kept)
        kept.append(i)
    mult = np.bincount(owner, weights=weights[order], minlength=len(kept)).astype(int)
    return order[np.asarray(kept, dtype=int)], mult


def unique(xs: np.ndarray, qs: np.ndarray, cs: np.ndarray, tol_unique: float, weights: np.ndarray | None = None,
           tol: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """De-duplicate within each condition (``tol[c]``, default tol_unique): (indices kept, multiplicities)."""
    idx, mult = [], []
    weights = np.ones(len(xs), dtype=int) if weights is None else weights
    for c in np.unique(cs):
        where = np.nonzero(cs == c)[0]
        kept, m = _dedup(xs[where], qs[where], tol_unique if tol is None else float(tol[c]),
                         weights[where])
        idx.append(where[kept])
        mult.append(m)
    if not idx:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return np.concatenate(idx), np.concatenate(mult)
