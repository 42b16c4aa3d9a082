"""Spatial regularisers of spatially embedded RNNs (seRNN; Achterberg, Akarca et al. 2023).

Two kinds, registered with :func:`~neurornn.training.regularizers.register_regularizer`:

``"spatial_l1"`` (the seRNN code's ``SE1``)::

    strength * sum_ij |W_ij| D_ij

``"spatial_communicability"`` (the seRNN code's ``SE1_sWc``, the one seRNNs use)::

    strength * sum_ij |W_ij| C_ij**comms_factor D_ij,
    C = expm(S^-1/2 |W| S^-1/2),  C_ii = 0,

with ``W`` the effective recurrent weights (``W[i, j]`` from unit j onto unit i),
``D`` the distance matrix of the units (:func:`neurornn.models.space.config_distances`)
and ``S = diag(s)`` the node strengths ``s_j = sum_i |W_ij|`` (the total outgoing
weight of unit j). This is exactly the seRNN code: its Keras kernel is ``U = W^T``
and it sums ``|U|`` over ``axis=1``. ``C`` is the weighted communicability of
Crofts & Higham (2009), :func:`neurornn.ops.communicability.weighted_communicability`.

A unit with no outgoing weight has ``s_j = 0``; the seRNN code then divides by zero
(NaN loss). Here ``S^-1/2`` is the pseudo-inverse square root: entry 0 for such
units, so their row and column of the normalised matrix are zero and the loss and
its gradients stay finite.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_positive
from ..models import RNN, Trajectory, Weights
from ..models.space import config_distances
from ..ops.communicability import weighted_communicability
from ..config.regularizer_kinds import built_in
from .regularizers import Regularizer, register_regularizer

__all__ = ["spatial_l1", "spatial_communicability"]


class _Spatial:
    def __init__(self, name: str, model: RNN, strength: float, comms_factor: float | None) -> None:
        if not isinstance(model, RNN):
            raise TypeError(f"model must be an RNN, got {type(model).__name__}")
        self.name = name
        self.strength = strength
        self.comms_factor = comms_factor
        self.distances = torch.as_tensor(config_distances(model.config), dtype=torch.float32)

    def __call__(self, model: RNN, weights: Weights, trajectory: Trajectory) -> Tensor:
        w = weights.w_rec
        d = self.distances.to(device=w.device, dtype=w.dtype)
        cost = w.abs() * d
        if self.comms_factor is not None:
            cost = cost * weighted_communicability(w) ** self.comms_factor
        return self.strength * cost.sum()

    def __repr__(self) -> str:
        extra = "" if self.comms_factor is None else f", comms_factor={self.comms_factor}"
        return f"{self.name}(strength={self.strength}{extra})"


@register_regularizer("spatial_l1")
def spatial_l1(model: RNN, strength: float) -> Regularizer:
    """``strength * sum |W_rec| * D``: L1 weighted by the distance between units (seRNN ``SE1``).

    ``D`` comes from the model config's space fields (``grid_shape`` /
    ``coordinates`` / ``distance_metric`` / ``distance_power``).
    """
    return _Spatial("spatial_l1", model, strength, None)


@register_regularizer("spatial_communicability")
def spatial_communicability(model: RNN, strength: float, comms_factor: float = 1.0) -> Regularizer:
    """``strength * sum |W_rec| * C**comms_factor * D`` (seRNN ``SE1_sWc``), see the module docstring."""
    check_positive("spatial_communicability comms_factor", comms_factor)
    return _Spatial("spatial_communicability", model, strength, float(comms_factor))


built_in(("spatial_l1", "spatial_communicability"))
