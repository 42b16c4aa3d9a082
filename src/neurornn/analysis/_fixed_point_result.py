"""The result of a fixed-point search: :class:`FixedPoints`, and :func:`characterise`, which
gives found points their Jacobians, eigenvalues, principal eigenvectors and stability."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..models import RNN
from ._jacobians import jacobians
from ._model_access import model_device
from .cycles import Cycles

__all__ = ["FixedPoints", "characterise"]

_FIXED_Q = 1e-10  # tol_q up to this: the points are called fixed points, above it slow points


@dataclass
class FixedPoints:
    """Fixed (or slow) points found by :class:`~neurornn.analysis.fixed_points.FixedPointFinder`.

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
    geometry_ : list of dict             :func:`~neurornn.analysis.geometry.describe_geometry` per input condition
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


def characterise(net: RNN, xs: np.ndarray, qs: np.ndarray, cs: np.ndarray, mult: np.ndarray, u: Tensor, *,
                 convention: str, tol_q: float | list) -> FixedPoints:
    """:class:`FixedPoints` of the points ``xs`` (P, N) of input conditions ``cs`` (P,), with q ``qs`` (P,)
    and multiplicities ``mult`` (P,): their Jacobians, eigen-decomposition and stability."""
    n = net.config.n_units
    dt_ms = float(net.config.dt_ms)
    device = model_device(net)
    if len(xs):
        x_t = torch.as_tensor(xs, device=device)
        jac = jacobians(net, x_t, u[torch.as_tensor(cs, device=device)]).cpu().numpy()
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
    if convention == "discrete":
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
        convention=convention, dt_ms=dt_ms, tol_q=tol_q,
    )
