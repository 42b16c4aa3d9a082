"""Private helpers: get a model out of a run, copy it for analysis, check inputs."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._validation import check_finite, check_int
from ..models import RNN

__all__ = ["analysis_copy", "resolve_model", "model_device", "as_tensor", "check_model", "check_inputs",
           "check_states", "conditions_and_starts"]


def check_model(model: Any, name: str = "model") -> RNN:
    """``model`` must be a :class:`neurornn.RNN`."""
    if not isinstance(model, RNN):
        raise TypeError(f"{name} must be a neurornn.RNN, got {type(model).__name__}")
    if model.stacked:
        raise ValueError(f"{name} holds {model.n_networks} networks; analyses take one: {name}.member(i)")
    return model


def model_device(model: RNN) -> torch.device:
    """The device the model lives on (that of its ``alpha`` buffer)."""
    return model.alpha.device


def analysis_copy(model: RNN, dtype: torch.dtype = torch.float64) -> RNN:
    """A deep copy of ``model`` in ``dtype``, eval mode, no gradients on its parameters.

    The analysed model itself is never touched (parameters, ``requires_grad``
    flags and training mode stay as they were).
    """
    check_model(model)
    clone = copy.deepcopy(model)
    clone = clone.to(dtype=dtype)
    clone.eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def resolve_model(source: Any, snapshot: int | None = None) -> RNN:
    """The model to analyse: an ``RNN``, or a run's final model / snapshot ``snapshot``.

    Parameters
    ----------
    source : RNN or Run (anything with ``.model`` and ``.history``)
    snapshot : int, optional
        Index into ``run.history`` (0 = before training; negative counts from the end).
    """
    if isinstance(source, RNN):
        if snapshot is not None:
            raise ValueError("snapshot needs a run (with a weight history), got a bare RNN model")
        return check_model(source)
    if not hasattr(source, "model"):
        raise TypeError(f"expected a neurornn.RNN or a training run, got {type(source).__name__}")
    if snapshot is None:
        return check_model(source.model, "run.model")
    check_int("snapshot", snapshot)
    history = getattr(source, "history", None)
    if history is None:
        raise ValueError("this run has no weight history; snapshot must be None")
    n = len(history.steps)
    if not -n <= snapshot < n:
        raise ValueError(
            f"snapshot must be in [0, {n - 1}] (or [-{n}, -1]): this run kept {n} snapshots "
            f"at steps {list(history.steps)}, got {snapshot}"
        )
    return check_model(history.model_at(snapshot % n), "run.history.model_at(...)")


def as_tensor(name: str, value: Any, *, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Turn a tensor / array / sequence into a finite tensor on ``device``."""
    if isinstance(value, Tensor):
        out = value.detach()
        if out.is_complex():
            raise TypeError(f"{name} must hold real numbers, got dtype {out.dtype}")
    elif isinstance(value, (np.ndarray, np.number, list, tuple, float, int)) and not isinstance(value, bool):
        try:
            out = torch.as_tensor(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a tensor or an array of numbers, got {value!r}") from None
    else:
        raise TypeError(f"{name} must be a tensor or an array, got {type(value).__name__}")
    check_finite(name, out)
    return out.to(device=device, dtype=dtype)


def check_inputs(inputs: Any, n_inputs: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Constant inputs as a (n_conditions, n_inputs) tensor."""
    u = as_tensor("inputs", inputs, device=device, dtype=dtype)
    given = tuple(u.shape)
    if u.ndim == 1:
        u = u[None, :]
    if u.ndim != 2 or u.shape[-1] != n_inputs or u.shape[0] == 0:
        raise ValueError(
            f"inputs must be one input vector of n_inputs={n_inputs} entries or an array of shape "
            f"(n_conditions, {n_inputs}), got shape {given}"
        )
    return u


def check_states(name: str, states: Any, n_units: int, device, dtype) -> Tensor:
    x = as_tensor(name, states, device=device, dtype=dtype)
    given = tuple(x.shape)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim not in (2, 3) or x.shape[-1] != n_units or x.shape[-2] == 0:
        raise ValueError(
            f"{name} must have shape (n_states, n_units={n_units}) or "
            f"(n_conditions, n_states, {n_units}), got shape {given}"
        )
    return x


def conditions_and_starts(net: RNN, inputs: Any, initial_states: Any) -> tuple[Tensor, Tensor]:
    """Inputs (n_conditions, n_inputs) and starting states (n_conditions, n_states, n_units), float64
    on the model's device; one set of starts is shared by every condition."""
    device, dtype = model_device(net), torch.float64
    u = check_inputs(inputs, net.config.n_inputs, device, dtype)
    x = check_states("initial_states", initial_states, net.config.n_units, device, dtype)
    k = u.shape[0]
    if x.ndim == 2:
        x = x[None].expand(k, -1, -1)
    elif x.shape[0] != k:
        raise ValueError(f"initial_states has {x.shape[0]} conditions but inputs has {k} rows")
    return u, x
