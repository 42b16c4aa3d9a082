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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config.threads import cpu_threads
from .._validation import check_choice, check_finite, check_int, check_nonnegative, check_positive
from ..models import RNN
from ._fixed_point_result import FixedPoints, characterise
from ._fixed_point_search import descend, newton, q_of, unique
from ._jacobians import step_jacobians
from ._model_access import analysis_copy, check_model, conditions_and_starts
from .cycles import detect_cycles
from .geometry import describe_geometry

__all__ = [
    "FixedPointFinder",
    "FixedPoints",
    "step_jacobians",
    "sample_states",
]

CONVENTIONS = ("discrete", "continuous")


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
    threads : int, optional
        CPU threads for the search; default one for a network of up to 256 units (much faster than
        two there, see :func:`~neurornn.config.threads.cpu_threads`), torch's own number otherwise.
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
        threads: int | None = None,
    ) -> None:
        self.model = check_model(model)
        self.threads = None if threads is None else check_int("threads", threads, minimum=1)
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
        with cpu_threads(self.model.config.n_units, self.model.alpha.device, self.threads):
            return self._fit(inputs, initial_states)

    def _fit(self, inputs: Any, initial_states: Any) -> FixedPoints:
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
            target = tol_pt.float().clamp_min(self.refine_max_q * 0.5)  # (points,)
            x, q, n_iters = descend(net32, flat_x.float(), flat_u.float(), target,
                                    learning_rate=self.learning_rate, max_iters=self.max_iters)
            x = x.double()
            with torch.no_grad():
                q = q_of(net, x, flat_u)
        else:
            x, q, n_iters = descend(net, flat_x, flat_u, tol_pt,
                                    learning_rate=self.learning_rate, max_iters=self.max_iters)
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
            sel, weights = unique(xs, qs, cs, self.tol_unique, tol=tol)
            xs, qs, cs = xs[sel], qs[sel], cs[sel]
            xr, qr = newton(
                net,
                torch.as_tensor(xs, device=device),
                u[torch.as_tensor(cs, device=device)],
                self.refine_iters,
            )
            xs, qs = xr.cpu().numpy(), qr.cpu().numpy()
        timings["refine"] = time.perf_counter() - tick
        ok = qs < tol_c[cs]
        xs, qs, cs, weights = xs[ok], qs[ok], cs[ok], weights[ok]
        sel, mult = unique(xs, qs, cs, self.tol_unique, weights)
        # How many refined candidates landed on each point (for the geometry: a continuous
        # attractor gives one point per candidate, isolated points collect several).
        hits = unique(xs, qs, cs, self.tol_unique)[1]
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
        result = characterise(net, xs, qs, cs, mult, u, convention=self.convention, tol_q=self.tol_q)
        timings["characterise"] = time.perf_counter() - tick
        if self.detect_cycles:
            tick = time.perf_counter()
            result.cycles_ = detect_cycles(net, u, x0, n_steps=self.cycle_steps, _copy=False)
            timings["cycles"] = time.perf_counter() - tick
        result.timings_ = timings
        result.n_descent_iters_ = n_iters
        result.geometry_ = [describe_geometry(xs[cs == c], hits[cs == c]) for c in range(k)]
        result.n_starts_ = int(k * n_starts)
        result.n_converged_ = n_converged
        result.n_outliers_ = n_outliers
        result.fit_seconds_ = time.perf_counter() - t0
        return result
