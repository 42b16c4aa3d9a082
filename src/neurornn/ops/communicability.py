"""Weighted communicability of a weight matrix (Crofts & Higham 2009), differentiable.

::

    C = expm(S^-1/2 |W| S^-1/2),  S = diag(s),  s_j = sum_i |W_ij|

with ``W[i, j]`` the weight from unit j onto unit i, so ``s_j`` is the total outgoing
weight of unit j. A unit with ``s_j = 0`` gets ``s_j^-1/2 = 0`` (the pseudo-inverse
square root): its row and column of the normalised matrix are zero, and ``C`` and its
gradients stay finite. Used by the seRNN regulariser
(:mod:`neurornn.training.spatial`) and by the graph metrics (:mod:`neurornn.analysis.graph`).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["weighted_communicability"]


def weighted_communicability(w: Tensor, zero_diagonal: bool = True) -> Tensor:
    """Weighted communicability ``expm(S^-1/2 |W| S^-1/2)`` (differentiable).

    Parameters
    ----------
    w : Tensor of shape (..., n_units, n_units)
        Weights, ``W[i, j]`` from unit j onto unit i.
    zero_diagonal : bool
        Set ``C_ii = 0`` (as the seRNN regulariser does).

    Returns
    -------
    Tensor of shape (..., n_units, n_units). ``S = diag(s)`` with ``s_j = sum_i |W_ij|``;
    units with ``s_j = 0`` get ``s_j^-1/2 = 0`` (pseudo-inverse), never a NaN.
    """
    if not isinstance(w, Tensor):
        raise TypeError(f"w must be a torch.Tensor, got {type(w).__name__}")
    if w.ndim < 2 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"w must have shape (..., n_units, n_units), got {tuple(w.shape)}")
    a = w.abs()
    strength = a.sum(dim=-2)  # s_j = sum_i |W_ij|
    positive = strength > 0
    # clamp keeps the unused branch finite so that torch.where's gradient is finite too
    tiny = torch.finfo(a.dtype).tiny
    inv_sqrt = torch.where(positive, strength.clamp_min(tiny).rsqrt(), torch.zeros_like(strength))
    normalised = inv_sqrt[..., :, None] * a * inv_sqrt[..., None, :]
    comm = torch.linalg.matrix_exp(normalised)
    if zero_diagonal:
        comm = comm * (1 - torch.eye(comm.shape[-1], dtype=comm.dtype, device=comm.device))
    return comm
