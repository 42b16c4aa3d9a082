"""Task losses, both averaged under the task's per-time-step mask.

With outputs ``y`` and targets ``z`` of shape (batch, time, n_outputs) and mask
``m`` of shape (batch, time)::

    mse           = sum_{b,t} m[b,t] * mean_k (y[b,t,k] - z[b,t,k])^2 / sum_{b,t} m[b,t]
    cross_entropy = sum_{b,t} m[b,t] * (-sum_k z[b,t,k] log softmax(y[b,t])_k) / sum_{b,t} m[b,t]

Cross-entropy takes soft targets (a one-hot class per step is the usual case);
the outputs are logits.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_choice

__all__ = ["masked_cross_entropy", "masked_mse", "task_loss", "LOSS_FUNCTIONS", "LOSSES"]


def masked_mse(outputs: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over the masked time steps (mask shape (batch, time))."""
    err = ((outputs - targets) ** 2).mean(-1)
    return (err * mask).sum() / mask.sum().clamp_min(1e-12)


def masked_cross_entropy(outputs: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Soft-target cross-entropy of logits (batch, time, k) against targets (batch, time, k).

    Averaged over the steps weighted by ``mask`` (batch, time).
    """
    per_step = -(targets * torch.log_softmax(outputs, dim=-1)).sum(-1)
    return (per_step * mask).sum() / mask.sum().clamp_min(1e-12)


LOSS_FUNCTIONS = {"mse": masked_mse, "cross_entropy": masked_cross_entropy}
LOSSES = tuple(LOSS_FUNCTIONS)  # the loss names a task or TrainConfig.loss may give


def task_loss(kind: str, outputs: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """The masked loss ``kind`` ("mse" or "cross_entropy") as a scalar tensor.

    Parameters
    ----------
    outputs, targets : Tensor of shape (batch, time, n_outputs)
    mask : Tensor of shape (batch, time)
    """
    check_choice("loss", kind, LOSS_FUNCTIONS)
    if outputs.shape != targets.shape:
        raise ValueError(f"outputs {tuple(outputs.shape)} and targets {tuple(targets.shape)} must have the same shape")
    if mask.shape != outputs.shape[:2]:
        raise ValueError(f"mask must have shape (batch, time) = {tuple(outputs.shape[:2])}, got {tuple(mask.shape)}")
    return LOSS_FUNCTIONS[kind](outputs, targets.to(outputs.dtype), mask.to(outputs.dtype))
