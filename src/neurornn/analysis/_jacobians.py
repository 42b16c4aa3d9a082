"""Jacobians of a network's one-step map by autograd (``torch.func.jacrev`` + ``vmap``)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..models import RNN
from ._model_access import analysis_copy, check_inputs, check_states, model_device

__all__ = ["jacobians", "step_jacobians"]


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
    return jacobians(net, x, u)


def jacobians(net: RNN, x: Tensor, u: Tensor, chunk: int = 256) -> Tensor:
    """``J[p] = d net.step(x_p, u_p) / d x_p`` of shape (n_points, n_units, n_units), for ``x`` of
    shape (n_points, n_units) and ``u`` of shape (n_points, n_inputs), ``chunk`` points at a time
    (no checks and no copy: ``net`` is the analysis copy)."""
    jac = torch.func.vmap(torch.func.jacrev(lambda xi, ui: net.step(xi, ui)))
    parts = [jac(x[i : i + chunk], u[i : i + chunk]) for i in range(0, x.shape[0], chunk)]
    if not parts:
        n = net.config.n_units
        return x.new_zeros((0, n, n))
    return torch.cat(parts)
