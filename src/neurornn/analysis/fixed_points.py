"""Fixed points, slow points and their stability (Sussillo & Barak 2013; Golub & Sussillo 2018).

For a constant input ``u`` the network is the map ``x -> step(x, u)`` computed by
the model's own :meth:`neurornn.RNN.step` (no second copy of the equations). Fixed
points minimise

    q(x) = 1/2 |F(x)|^2,   F(x) = step(x, u) - x

(``F`` per Euler step, in state units). The search runs batched from many states
sampled along real trajectories (plus noise): a per-point adaptive Adam descent
on ``q``, then optional exact refinement (Levenberg-Marquardt / Newton with the
autograd Jacobian), de-duplication and outlier removal. Each point gets its
Jacobian (``torch.func.jacrev`` + ``vmap``), eigenvalues, principal left and right
eigenvectors and its stability in two conventions:

- discrete time (the simulated map): stable when every ``|lambda(J_map)| < 1``;
- continuous time (the ODE ``dx/dt = (step(x) - x) / dt_ms``, exact for per-unit
  ``alpha = dt / tau`` in both the current and the rate form): stable when every
  ``Re lambda(J_ode) < 0`` with ``J_ode = (J_map - I) / dt_ms`` (units 1/ms).

The analysis also says how trajectories settle (fixed points or period-p
cycles, :func:`~neurornn.analysis.cycles.detect_cycles`) and whether the points form a
line, a ring or isolated points (:func:`~neurornn.analysis.geometry.describe_geometry`). It
works on a float64 deep copy on the model's device and never changes the model it analyses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._validation import check_choice, check_finite, check_int, check_nonnegative, check_positive
from ..models import RNN
from ._model_access import (
    analysis_copy,
    check_inputs,
    check_model,
    check_states,
    conditions_and_starts,
    model_device,
)
from .cycles import Cycles, detect_cycles
from .geometry import describe_geometry

__all__ = [
    "FixedPointFinder",
    "FixedPoints",
    "step_jacobians",
    "sample_states",
]

CONVENTIONS = ("discrete", "continuous")
# A descending point stalls (stops for good) when its q fell by less than 20 % over 100 iterations.
_STALL_WINDOW, _STALL_FACTOR = 100, 0.8
_FIXED_Q = 1e-10  # tol_q up to this: the points are called fixed points, above it slow points


# --------------------------------------------------------------------------- helpers
def step_jacobians(model: RNN, states: Any, inputs: Any, *, _copy: bool = True) -> Tensor:
    """Jacobians of the map ``x -> model.step(x, u)`` at each state, by autograd.

    Parameters
    ----------
    model : RNN
        Analysed through a float64 copy (left unchanged).
    states : array of shape (n_points, n_units)
    inputs : array of shape (n_inputs,) or (n_points, n_inputs)

    Returns
    -------
    Tensor of shape (n_points, n_units, n_units), float64, on the model's device:
    ``J[p, i, j] = d step(x_p)_i / d x_p_j``.
    """
    net = analysis_copy(model) if _copy else model
    device, dtype = model_device(net), torch.float64
    x = check_states("states", states, net.config.n_units, device, dtype)
    if x.ndim != 2:
        raise ValueError(f"states must have shape (n_points, n_units), got {tuple(x.shape)}")
    u = check_inputs(inputs, net.config.n_inputs, device, dtype)
    if u.shape[0] == 1:
        u = u.expand(x.shape[0], -1)
    elif u.shape[0] != x.shape[0]:
        raise ValueError(
            f"inputs must have one row or one row per state ({x.shape[0]}), got {u.shape[0]} rows"
        )
    return _jacobians(net, x, u)


def _jacobians(net: RNN, x: Tensor, u: Tensor, chunk: int = 256) -> Tensor:
    jac = torch.func.vmap(torch.func.jacrev(lambda xi, ui: net.step(xi, ui)))
    parts = [jac(x[i : i + chunk], u[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
    if not parts:
        n = net.config.n_units
        return x.new_zeros((0, n, n))
    return torch.cat(parts)


def sample_states(
    states: Any,
    n: int,
    *,
    noise_std: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Draw ``n`` starting states from trajectories, plus gaussian noise.

    Parameters
    ----------
    states : array of shape (trials, time, units) or (samples, units)
    n : int
    noise_std : float
        Std of the isotropic gaussian noise added to each drawn state.
    generator : torch.Generator, optional

    Returns
    -------
    Tensor of shape (n, units), on the device and in the dtype of ``states``
    (float64 for arrays).
    """
    n = check_int("n", n, minimum=1)
    noise_std = check_nonnegative("noise_std", noise_std)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if isinstance(states, Tensor):
        x = states.detach()
    else:
        try:
            x = torch.as_tensor(np.asarray(states, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"states must be a tensor or an array of numbers, got {type(states).__name__}") from None
    if x.ndim == 3:
        x = x.reshape(-1, x.shape[-1])
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(
            f"states must have shape (trials, time, units) or (samples, units), got {tuple(x.shape)}"
        )
    check_finite("states", x)
    idx = torch.randint(0, x.shape[0], (n,), generator=generator)
    out = x[idx.to(x.device)].clone()
    if noise_std > 0:
        out = out + noise_std * torch.randn(out.shape, generator=generator, dtype=out.dtype).to(out.device)
    return out


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


# --------------------------------------------------------------------------- results
@dataclass
class FixedPoints:
    """Fixed (or slow) points found by :class:`FixedPointFinder`.

    Attributes (P points in all, N units)
    -------------------------------------
    points_ : ndarray (P, N)             the points (float64)
    q_ : ndarray (P,)                    ``1/2 |step(x, u) - x|^2``
    input_index_ : ndarray (P,)          which input condition each point belongs to
    inputs_ : ndarray (n_conditions, n_inputs)
    multiplicity_ : ndarray (P,)         how many converged starts landed on each point
    jacobians_ : ndarray (P, N, N)       Jacobian of the map ``x -> step(x, u)``
    eigenvalues_ : ndarray (P, N) complex   of the map's Jacobian, sorted by decreasing |lambda|
    eigenvalues_continuous_ : ndarray (P, N) complex   ``(lambda - 1) / dt_ms`` (1/ms)
    right_eigenvectors_, left_eigenvectors_ : ndarray (P, N) complex
        Principal eigenvectors (of the eigenvalue with the largest ``|lambda|`` in
        the discrete convention, largest ``Re`` in the continuous one), unit norm,
        ``left @ J = lambda left`` and ``J @ right = lambda right``.
    stable_discrete_, stable_continuous_ : ndarray (P,) bool
    n_unstable_discrete_, n_unstable_continuous_ : ndarray (P,) int
    stable_, n_unstable_ : those of the chosen ``convention``
    cycles_ : Cycles or None             how trajectories from the starts settle
    geometry_ : list of dict             :func:`describe_geometry` per input condition
    n_starts_, n_converged_, n_outliers_ : int
    fit_seconds_ : float
    """

    points_: np.ndarray
    q_: np.ndarray
    input_index_: np.ndarray
    inputs_: np.ndarray
    multiplicity_: np.ndarray
    jacobians_: np.ndarray
    eigenvalues_: np.ndarray
    eigenvalues_continuous_: np.ndarray
    right_eigenvectors_: np.ndarray
    left_eigenvectors_: np.ndarray
    stable_discrete_: np.ndarray
    stable_continuous_: np.ndarray
    n_unstable_discrete_: np.ndarray
    n_unstable_continuous_: np.ndarray
    convention: str
    dt_ms: float
    tol_q: float | list
    cycles_: Cycles | None = None
    geometry_: list = field(default_factory=list)
    n_starts_: int = 0
    n_converged_: int = 0
    n_outliers_: int = 0
    fit_seconds_: float = 0.0
    timings_: dict = field(default_factory=dict)
    n_descent_iters_: int = 0

    @property
    def stable_(self) -> np.ndarray:
        return self.stable_discrete_ if self.convention == "discrete" else self.stable_continuous_

    @property
    def n_unstable_(self) -> np.ndarray:
        return self.n_unstable_discrete_ if self.convention == "discrete" else self.n_unstable_continuous_

    def __len__(self) -> int:
        return len(self.points_)

    def __repr__(self) -> str:
        n_units = self.points_.shape[1] if self.points_.ndim == 2 else 0
        return (f"FixedPoints({len(self)} points of {n_units} units, {int(self.stable_.sum())} stable "
                f"({self.convention}), {len(self.inputs_)} input condition(s), "
                f"{self.n_converged_}/{self.n_starts_} starts converged, {self.fit_seconds_:.2f} s)")

    def tol_of(self, condition: int) -> float:
        """The q tolerance used for input condition ``condition``."""
        return float(self.tol_q[condition]) if isinstance(self.tol_q, (list, tuple)) else float(self.tol_q)

    def select(self, condition: int) -> np.ndarray:
        """Boolean mask (P,) of the points of input condition ``condition``."""
        return self.input_index_ == condition

    def summary(self) -> dict[str, Any]:
        """JSON-friendly summary: counts, q range, stability, geometry, cycles, a sentence."""
        conditions = []
        for c in range(len(self.inputs_)):
            sel = self.select(c)
            n = int(sel.sum())
            stable = int(self.stable_[sel].sum())
            entry = {
                "input": [float(v) for v in self.inputs_[c]],
                "n_points": n,
                "n_stable": stable,
                "n_unstable": n - stable,
                "n_stable_discrete": int(self.stable_discrete_[sel].sum()),
                "n_stable_continuous": int(self.stable_continuous_[sel].sum()),
                "unstable_directions": {
                    str(k): int(v)
                    for k, v in zip(*np.unique(self.n_unstable_[sel], return_counts=True))
                },
                "q_max": float(self.q_[sel].max()) if n else None,
                "q_median": float(np.median(self.q_[sel])) if n else None,
                "geometry": self.geometry_[c] if c < len(self.geometry_) else None,
            }
            if self.cycles_ is not None:
                entry["settling"] = self.cycles_.counts(c)
            entry["message"] = self._message(c, entry)
            conditions.append(entry)
        return {
            "convention": self.convention,
            "dt_ms": self.dt_ms,
            "tol_q": self.tol_q,
            "n_points": len(self),
            "n_stable": int(self.stable_.sum()),
            "n_starts": self.n_starts_,
            "n_converged": self.n_converged_,
            "n_outliers": self.n_outliers_,
            "fit_seconds": self.fit_seconds_,
            "timings_seconds": self.timings_,
            "n_descent_iters": self.n_descent_iters_,
            "conditions": conditions,
            "message": " ".join(e["message"] for e in conditions),
        }

    def _message(self, c: int, e: dict[str, Any]) -> str:
        geo = e["geometry"] or {}
        kind = geo.get("kind", "isolated")
        if e["n_points"] == 0:
            text = f"Input {c}: no fixed point with q < {self.tol_of(c):.1e}."
        elif kind in ("line", "ring", "surface"):
            text = (f"Input {c}: {e['n_points']} slow points forming a {kind} "
                    f"(dimension {geo.get('dimension')}): an approximate {kind} attractor"
                    f" ({e['n_stable']} of them stable).")
        else:
            # With a loose tolerance (a slow-point search) the points need not be fixed points.
            what = "fixed point" if self.tol_of(c) <= _FIXED_Q else "slow point"
            text = (f"Input {c}: {e['n_points']} isolated {what}{'s' if e['n_points'] != 1 else ''}, "
                    f"{e['n_stable']} stable and {e['n_unstable']} unstable"
                    f"{'' if what == 'fixed point' else f' (q < {self.tol_of(c):.1e})'}.")
        settling = e.get("settling")
        if settling:
            total = sum(settling.values())
            cyc = {k: v for k, v in settling.items() if k.startswith("period_")}
            if cyc:
                parts = ", ".join(f"{v} on {k.replace('_', '-')} cycles" for k, v in cyc.items())
                text += f" Of {total} trajectories from the starts, {parts}"
                text += f" (x(t+p) = x(t) but x(t+1) != x(t)); {settling.get('fixed_point', 0)} settle on fixed points."
                if sum(cyc.values()) > total / 2:
                    text += " The network mostly uses cycles, not fixed points, under this input."
            elif settling.get("not_settled"):
                steps = self.cycles_.n_steps if self.cycles_ is not None else None
                within = "" if steps is None else f" within {steps} steps ({steps * self.dt_ms:g} ms)"
                text += f" {settling['not_settled']} of {total} trajectories from the starts had not settled{within}."
        return text

    def to_arrays(self, *, jacobians: bool = True) -> dict[str, np.ndarray]:
        """Arrays for ``numpy.savez`` / safetensors (complex split into real and imaginary parts)."""
        out = {
            "points": self.points_, "q": self.q_, "input_index": self.input_index_,
            "inputs": self.inputs_, "multiplicity": self.multiplicity_,
            "eigenvalues_real": self.eigenvalues_.real, "eigenvalues_imag": self.eigenvalues_.imag,
            "right_eigenvector_real": self.right_eigenvectors_.real,
            "right_eigenvector_imag": self.right_eigenvectors_.imag,
            "left_eigenvector_real": self.left_eigenvectors_.real,
            "left_eigenvector_imag": self.left_eigenvectors_.imag,
            "stable_discrete": self.stable_discrete_, "stable_continuous": self.stable_continuous_,
            "n_unstable_discrete": self.n_unstable_discrete_,
            "n_unstable_continuous": self.n_unstable_continuous_,
        }
        if jacobians:
            out["jacobians"] = self.jacobians_
        if self.cycles_ is not None:
            out["cycle_periods"] = self.cycles_.periods
        return out


# --------------------------------------------------------------------------- finder
class FixedPointFinder:
    """Batched search for fixed and slow points of a trained RNN.

    Parameters
    ----------
    model : RNN
        Analysed through a float64 deep copy on its own device; never changed.
    tol_q : float or sequence of float
        A point is kept when ``q = 1/2 |step(x, u) - x|^2 < tol_q``; a sequence
        gives one tolerance per input condition of :meth:`fit` (e.g. a slow-point
        search relative to each input's trajectory speed, with ``refine=False``).
    max_iters : int
        Iterations of the Adam descent on ``q``.
    learning_rate : float
        Initial per-point Adam step (adapted per point: x1.2 when q falls, x0.5 when it rises).
    refine : bool
        Refine candidates exactly with Levenberg-Marquardt / Newton on ``F(x) = 0``
        using the autograd Jacobian.
    refine_max_q : float
        Candidates for refinement: points with ``q`` below this after the descent.
    refine_iters : int
    tol_unique : float
        Points closer than this (Euclidean, state units) are one point.
    merge_radius : float or None
        Before refinement, candidates closer than ``merge_radius`` times the
        median distance of the starts to their centroid are refined once (the
        one with the lowest q; the others count in its ``multiplicity_``). This
        saves most Newton iterations (hundreds of starts descend near each point);
        distinct fixed points closer than that would be merged. ``None``: refine
        every candidate.
    outlier_scale : float or None
        Drop points farther from the centroid of the starting states than this
        times the median distance of the starts to it (``None``: keep all).
    convention : {"discrete", "continuous"}
        Which stability ``stable_`` / ``n_unstable_`` report (both are computed).
    detect_cycles : bool
        Also run the map from the starts (:func:`detect_cycles`) and report cycles.
    cycle_steps : int
    """

    def __init__(
        self,
        model: RNN,
        *,
        tol_q: float | list[float] = 1e-12,
        max_iters: int = 1000,
        learning_rate: float = 1e-2,
        refine: bool = True,
        refine_max_q: float = 1e-4,
        refine_iters: int = 20,
        tol_unique: float = 1e-3,
        merge_radius: float | None = 0.1,
        outlier_scale: float | None = 10.0,
        convention: str = "discrete",
        detect_cycles: bool = True,
        cycle_steps: int = 500,
    ) -> None:
        self.model = check_model(model)
        if isinstance(tol_q, (list, tuple, np.ndarray)):
            if len(tol_q) == 0:
                raise ValueError("tol_q must be a number or a non-empty sequence (one per input condition), got []")
            self.tol_q = [float(check_positive(f"tol_q[{i}]", v)) for i, v in enumerate(np.asarray(tol_q).tolist())]
        else:
            self.tol_q = check_positive("tol_q", tol_q)
        self.max_iters = check_int("max_iters", max_iters, minimum=0)
        self.learning_rate = check_positive("learning_rate", learning_rate)
        if not isinstance(refine, bool):
            raise TypeError(f"refine must be True or False, got {refine!r}")
        self.refine = refine
        self.refine_max_q = check_positive("refine_max_q", refine_max_q)
        self.refine_iters = check_int("refine_iters", refine_iters, minimum=0)
        self.tol_unique = check_positive("tol_unique", tol_unique)
        if merge_radius is not None:
            check_positive("merge_radius", merge_radius)
        self.merge_radius = merge_radius
        if outlier_scale is not None:
            check_positive("outlier_scale", outlier_scale)
        self.outlier_scale = outlier_scale
        self.convention = check_choice("convention", convention, CONVENTIONS)
        if not isinstance(detect_cycles, bool):
            raise TypeError(f"detect_cycles must be True or False, got {detect_cycles!r}")
        self.detect_cycles = detect_cycles
        self.cycle_steps = check_int("cycle_steps", cycle_steps, minimum=1)

    # ------------------------------------------------------------------ stages
    @staticmethod
    def _q(net: RNN, x: Tensor, u: Tensor) -> Tensor:
        f = net.step(x, u) - x
        return 0.5 * (f * f).sum(-1)

    def _descend(self, net: RNN, x: Tensor, u: Tensor, tol: Tensor) -> tuple[Tensor, Tensor]:
        """Per-point adaptive Adam on q (one forward and one backward per iteration).

        A move that raises a point's q is rejected: its step halves and its Adam
        moments restart (so the next move is along ``-sign(grad q)``, a descent
        direction); an accepted move grows the step by 1.2. Points below the
        target q stop moving; points whose q fell by less than 20 % over the last
        100 iterations (stalled: a slow region, not a fixed point nearby) stop for good.
        """
        b1, b2, eps = 0.9, 0.999, 1e-30
        target = tol.clamp_min(self.refine_max_q * 0.5) if self.refine else tol  # (points,)

        def q_and_grad(xx: Tensor, uu: Tensor) -> tuple[Tensor, Tensor]:
            xg = xx.detach().requires_grad_(True)
            with torch.enable_grad():
                qg = self._q(net, xg, uu)
                (g,) = torch.autograd.grad(qg.sum(), xg)
            return qg.detach(), g

        x = x.clone()
        q, g = q_and_grad(x, u)
        m, v = torch.zeros_like(x), torch.zeros_like(x)
        t = torch.zeros_like(q)  # per-point Adam step count (bias correction)
        lr = torch.full_like(q, self.learning_rate)
        active = q > target
        stalled = torch.zeros_like(active)
        q_check = q.clone()
        it, block = 0, 50
        while it < self.max_iters:
            idx = active.nonzero().squeeze(1)
            if idx.numel() == 0:
                break
            xa, ua, qa, ga, ma, va, ta, la = x[idx], u[idx], q[idx], g[idx], m[idx], v[idx], t[idx], lr[idx]
            for _ in range(min(block, self.max_iters - it)):
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
        self._iters = it
        return x, q

    def _newton(self, net: RNN, x: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """Newton on F(x) = step(x, u) - x with the autograd Jacobian, Levenberg-Marquardt fallback.

        Each iteration tries the Newton step ``J_F delta = -F``; points where it
        fails (singular ``J_F``, or q does not fall) take a damped step
        ``(J_F^T J_F + mu I) delta = -J_F^T F`` instead. Points stop when q < 1e-28
        when the damping has grown past 1e2, or after 3 steps that cut q by less
        than 4x (no root nearby: Newton near a root cuts q by orders of magnitude).
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
            for _ in range(self.refine_iters):
                active = (q > 1e-28) & (mu < 1e2) & (stalls < 3)
                if not bool(active.any()):
                    break
                idx = active.nonzero().squeeze(1)
                xa, ua, fa, qa, mua = x[idx], u[idx], f[idx], q[idx], mu[idx]
                jf = _jacobians(net, xa, ua) - eye
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

    # ------------------------------------------------------------------ fit
    def fit(self, inputs: Any, initial_states: Any) -> FixedPoints:
        """Find fixed points for each constant input.

        Parameters
        ----------
        inputs : array of shape (n_inputs,) or (n_conditions, n_inputs)
            Constant input(s) ``u``.
        initial_states : array of shape (n_starts, n_units) or (n_conditions, n_starts, n_units)
            Starting states (e.g. :func:`sample_states` of real trajectories), the
            same for every condition or one set per condition.

        Returns
        -------
        FixedPoints
        """
        t0 = time.perf_counter()
        net = analysis_copy(self.model)
        u, x0 = conditions_and_starts(net, inputs, initial_states)
        device, k = u.device, u.shape[0]
        n_starts, n_units = x0.shape[1], x0.shape[2]
        flat_x = x0.reshape(-1, n_units)
        flat_u = u[:, None, :].expand(-1, n_starts, -1).reshape(-1, u.shape[1])
        cond = torch.arange(k, device=device)[:, None].expand(-1, n_starts).reshape(-1)
        if isinstance(self.tol_q, list):
            if len(self.tol_q) != k:
                raise ValueError(f"tol_q has {len(self.tol_q)} values (one per input condition) but inputs has "
                                 f"{k} rows")
            tol_c = np.asarray(self.tol_q, dtype=np.float64)
        else:
            tol_c = np.full(k, float(self.tol_q))
        tol_pt = torch.as_tensor(tol_c, device=device)[cond]  # (points,)

        timings: dict[str, float] = {}
        tick = time.perf_counter()
        if self.refine:
            # The descent only brings points near candidates for the float64 Newton
            # refinement: float32 is accurate enough there and twice as fast.
            net32 = analysis_copy(self.model, torch.float32)
            x, q = self._descend(net32, flat_x.float(), flat_u.float(), tol_pt.float())
            x = x.double()
            with torch.no_grad():
                q = self._q(net, x, flat_u)
        else:
            x, q = self._descend(net, flat_x, flat_u, tol_pt)
        timings["descent"] = time.perf_counter() - tick
        tick = time.perf_counter()
        limit = tol_pt.clamp_min(self.refine_max_q) if self.refine else tol_pt
        keep = (q < limit).cpu().numpy()
        n_converged = int(keep.sum())
        xs, qs, cs = x.cpu().numpy()[keep], q.cpu().numpy()[keep], cond.cpu().numpy()[keep]

        starts_np = x0.cpu().numpy()
        centre = starts_np.mean(axis=1)  # (k, units)
        spread = np.median(np.linalg.norm(starts_np - centre[:, None], axis=-1), axis=1)  # (k,)
        weights = np.ones(len(xs), dtype=int)
        if self.refine and len(xs):
            tol = None
            if self.merge_radius is not None:
                tol = np.maximum(self.merge_radius * spread, self.tol_unique)
            sel, weights = self._unique(xs, qs, cs, tol=tol)
            xs, qs, cs = xs[sel], qs[sel], cs[sel]
            xr, qr = self._newton(
                net,
                torch.as_tensor(xs, device=device),
                u[torch.as_tensor(cs, device=device)],
            )
            xs, qs = xr.cpu().numpy(), qr.cpu().numpy()
        timings["refine"] = time.perf_counter() - tick
        ok = qs < tol_c[cs]
        xs, qs, cs, weights = xs[ok], qs[ok], cs[ok], weights[ok]
        sel, mult = self._unique(xs, qs, cs, weights)
        # How many refined candidates landed on each point (for the geometry: a continuous
        # attractor gives one point per candidate, isolated points collect several).
        hits = self._unique(xs, qs, cs)[1]
        xs, qs, cs = xs[sel], qs[sel], cs[sel]

        n_outliers = 0
        if self.outlier_scale is not None and len(xs):
            dist = np.linalg.norm(xs - centre[cs], axis=1)
            inlier = dist <= self.outlier_scale * np.maximum(spread[cs], 1e-12)
            n_outliers = int((~inlier).sum())
            xs, qs, cs, mult, hits = xs[inlier], qs[inlier], cs[inlier], mult[inlier], hits[inlier]

        order = np.lexsort((qs, cs))
        xs, qs, cs, mult, hits = xs[order], qs[order], cs[order], mult[order], hits[order]
        tick = time.perf_counter()
        result = self._characterise(net, xs, qs, cs, mult, u)
        timings["characterise"] = time.perf_counter() - tick
        if self.detect_cycles:
            tick = time.perf_counter()
            result.cycles_ = detect_cycles(net, u, x0, n_steps=self.cycle_steps, _copy=False)
            timings["cycles"] = time.perf_counter() - tick
        result.timings_ = timings
        result.n_descent_iters_ = self._iters
        result.geometry_ = [describe_geometry(xs[cs == c], hits[cs == c]) for c in range(k)]
        result.n_starts_ = int(k * n_starts)
        result.n_converged_ = n_converged
        result.n_outliers_ = n_outliers
        result.fit_seconds_ = time.perf_counter() - t0
        return result

    def _unique(self, xs: np.ndarray, qs: np.ndarray, cs: np.ndarray, weights: np.ndarray | None = None,
                tol: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """De-duplicate within each condition (``tol[c]``, default tol_unique): (indices kept, multiplicities)."""
        idx, mult = [], []
        weights = np.ones(len(xs), dtype=int) if weights is None else weights
        for c in np.unique(cs):
            where = np.nonzero(cs == c)[0]
            kept, m = _dedup(xs[where], qs[where], self.tol_unique if tol is None else float(tol[c]),
                             weights[where])
            idx.append(where[kept])
            mult.append(m)
        if not idx:
            return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
        return np.concatenate(idx), np.concatenate(mult)

    def _characterise(self, net, xs, qs, cs, mult, u) -> FixedPoints:
        n = net.config.n_units
        dt_ms = float(net.config.dt_ms)
        device = model_device(net)
        if len(xs):
            x_t = torch.as_tensor(xs, device=device)
            jac = _jacobians(net, x_t, u[torch.as_tensor(cs, device=device)]).cpu().numpy()
        else:
            jac = np.zeros((0, n, n))
        # torch's LAPACK (it honours torch.set_num_threads; NumPy's threaded OpenBLAS
        # can be 40x slower on a busy machine).
        jt = torch.as_tensor(jac)
        eig_t, vec_t = torch.linalg.eig(jt)
        eig, vec = eig_t.numpy(), vec_t.numpy()
        order = np.argsort(-np.abs(eig), axis=1, kind="stable")
        eig = np.take_along_axis(eig, order, axis=1)
        vec = np.take_along_axis(vec, order[:, None, :], axis=2)
        eig_ct = (eig - 1.0) / dt_ms
        if self.convention == "discrete":
            principal = np.zeros(len(xs), dtype=int)
        else:
            principal = np.argmax(eig.real, axis=1)
        right = np.zeros((len(xs), n), complex)
        left = np.zeros((len(xs), n), complex)
        if len(xs):
            # Rows of V^-1 are the left eigenvectors: V^-1 J = diag(lambda) V^-1.
            inv_t, info = torch.linalg.inv_ex(torch.as_tensor(vec))
            inv = inv_t.numpy()
            rows = np.arange(len(xs))
            right = vec[rows, :, principal]
            left = inv[rows, principal, :]
            for p in np.nonzero(info.numpy() != 0)[0]:  # defective: an eigenvector of J^T instead
                w, vl = np.linalg.eig(jac[p].T)
                left[p] = vl[:, np.argmin(np.abs(w - eig[p, principal[p]]))]
            right = right / np.linalg.norm(right, axis=1, keepdims=True)
            left = left / np.linalg.norm(left, axis=1, keepdims=True)
        n_unst_d = (np.abs(eig) > 1.0).sum(axis=1)
        n_unst_c = (eig_ct.real > 0.0).sum(axis=1)
        return FixedPoints(
            points_=xs, q_=qs, input_index_=cs.astype(int), inputs_=u.cpu().numpy(),
            multiplicity_=np.asarray(mult, dtype=int), jacobians_=jac,
            eigenvalues_=eig, eigenvalues_continuous_=eig_ct,
            right_eigenvectors_=right, left_eigenvectors_=left,
            stable_discrete_=(np.abs(eig) < 1.0).all(axis=1) if len(xs) else np.zeros(0, bool),
            stable_continuous_=(eig_ct.real < 0.0).all(axis=1) if len(xs) else np.zeros(0, bool),
            n_unstable_discrete_=n_unst_d.astype(int), n_unstable_continuous_=n_unst_c.astype(int),
            convention=self.convention, dt_ms=dt_ms, tol_q=self.tol_q,
        )
