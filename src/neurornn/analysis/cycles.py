"""Where trajectories of a network settle under a constant input: fixed points or period-p cycles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._validation import check_int, check_positive
from ..models import RNN
from ._model_access import analysis_copy, conditions_and_starts

__all__ = ["Cycles", "detect_cycles"]


@dataclass
class Cycles:
    """How trajectories of the map settle under a constant input.

    Attributes
    ----------
    periods : ndarray of shape (n_conditions, n_starts), int
        1: settled on a fixed point; p > 1: on a period-p cycle; 0: not settled
        within the simulated steps (slow drift, longer cycle or chaos).
    final_states : ndarray of shape (n_conditions, n_starts, n_units)
    n_steps, max_period : int
    tol : float
    """

    periods: np.ndarray
    final_states: np.ndarray
    n_steps: int
    max_period: int
    tol: float

    def __repr__(self) -> str:
        return f"Cycles({self.counts()}, over {self.n_steps} steps)"

    def counts(self, condition: int | None = None) -> dict[str, int]:
        """``{"fixed_point": k, "period_2": k, ..., "not_settled": k}`` (non-zero entries)."""
        per = self.periods if condition is None else self.periods[condition]
        out: dict[str, int] = {}
        for p in range(1, self.max_period + 1):
            k = int((per == p).sum())
            if k:
                out["fixed_point" if p == 1 else f"period_{p}"] = k
        k = int((per == 0).sum())
        if k:
            out["not_settled"] = k
        return out

    @property
    def n_cycling(self) -> int:
        """Number of trajectories that settled on a cycle of period > 1."""
        return int((self.periods > 1).sum())


def detect_cycles(
    model: RNN,
    inputs: Any,
    initial_states: Any,
    *,
    n_steps: int = 500,
    max_period: int = 8,
    tol: float = 1e-5,
    _copy: bool = True,
) -> Cycles:
    """Run the noise-free map from each start and classify where it settles.

    A trajectory has period ``p`` (the smallest in ``1..max_period``) when
    ``|x(T - k) - x(T - k - p)| <= tol * (1 + |x(T)|)`` for ``k = 0..p-1``
    at the last step ``T``; period 1 is a fixed point, period 2 means
    ``x(t+2) = x(t)`` but ``x(t+1) != x(t)``.

    Parameters
    ----------
    model : RNN (left unchanged)
    inputs : array of shape (n_inputs,) or (n_conditions, n_inputs)
    initial_states : array of shape (n_starts, n_units) or (n_conditions, n_starts, n_units)
    n_steps, max_period : int
    tol : float
        Relative tolerance on the state.

    Returns
    -------
    Cycles
    """
    net = analysis_copy(model) if _copy else model
    check_int("n_steps", n_steps, minimum=1)
    check_int("max_period", max_period, minimum=1)
    check_positive("tol", tol)
    u, x = conditions_and_starts(net, inputs, initial_states)
    device = u.device
    window = 2 * max_period
    tail: list[Tensor] = []
    with torch.no_grad():
        uu = u[:, None, :]
        for t in range(n_steps + window):
            x = net.step(x, uu)
            if t >= n_steps:
                tail.append(x)
    traj = torch.stack(tail, dim=-2)  # (k, starts, window, units)
    last = traj[..., -1, :]
    scale = tol * (1 + last.norm(dim=-1))
    periods = torch.zeros(last.shape[:-1], dtype=torch.long, device=device)
    for p in range(max_period, 0, -1):  # descending so the smallest period wins
        ok = torch.ones_like(periods, dtype=torch.bool)
        for j in range(p):
            a = traj[..., window - 1 - j, :]
            b = traj[..., window - 1 - j - p, :]
            ok &= (a - b).norm(dim=-1) <= scale
        periods = torch.where(ok, torch.full_like(periods, p), periods)
    return Cycles(
        periods=periods.cpu().numpy(),
        final_states=last.cpu().numpy(),
        n_steps=n_steps,
        max_period=max_period,
        tol=tol,
    )
