"""The model's tensors by name: its weights as the step uses them, and what a forward pass returns.

One network's tensors have the shapes given below; a model of several networks
(``RNN`` built from a sequence of configs) adds a leading ``networks`` dimension
to every one of them, and :meth:`Weights.member` / :meth:`Trajectory.member`
take network ``e``'s back out.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["WEIGHT_NAMES", "TRAIN_FLAGS", "Weights", "Trajectory", "affine", "to_rows", "from_rows"]

WEIGHT_NAMES = ("w_in", "w_rec", "b_rec", "w_out", "b_out", "x0")

#: The RNNConfig flag that says whether each parameter is trained.
TRAIN_FLAGS = {
    "w_in": "train_w_in",
    "w_rec": "train_w_rec",
    "b_rec": "train_b_rec",
    "w_out": "train_w_out",
    "b_out": "train_b_out",
    "x0": "learn_x0",
}


class Weights(NamedTuple):
    """Effective weights: exactly the matrices the step uses.

    w_in : (n_units, n_inputs); w_rec : (n_units, n_units), ``W[i, j]`` from j onto i;
    b_rec : (n_units,); w_out : (n_outputs, n_units); b_out : (n_outputs,);
    x0 : (n_units,) initial state. Each with a leading (networks,) dimension in a
    model of several networks.
    """

    w_in: Tensor
    w_rec: Tensor
    b_rec: Tensor
    w_out: Tensor
    b_out: Tensor
    x0: Tensor

    def as_dict(self) -> dict[str, Tensor]:
        return dict(self._asdict())

    def member(self, e: int) -> "Weights":
        """Network ``e``'s weights (views) of a model of several networks."""
        return Weights(*(w[e] for w in self))


class Trajectory(NamedTuple):
    """What a forward pass returns, all batch first.

    states : (batch, time, n_units) the Euler state after each input step
        (``x`` in the current form, ``r`` in the rate form);
    rates : (batch, time, n_units) firing rates ``r``;
    outputs : (batch, time, n_outputs) readout ``W_out r + b_out``.
    Each with a leading (networks,) dimension in a model of several networks.
    """

    states: Tensor
    rates: Tensor
    outputs: Tensor

    def member(self, e: int, steps: int | None = None) -> "Trajectory":
        """Network ``e``'s trajectory (views), its first ``steps`` time steps when given."""
        end = slice(None) if steps is None else slice(None, steps)
        return Trajectory(*(x[e, :, end] for x in self))


def affine(rows: Tensor, weight: Tensor, bias: Tensor, *, contiguous_weight: bool = False) -> Tensor:
    """``rows @ weight^T + bias`` in one GEMM: rows (R, in) with weight (out, in) and bias (out,),
    or, for several networks, rows (networks or 1, R, in) with weight (networks, out, in) and bias
    (networks, out). ``contiguous_weight`` lays ``weight^T`` out contiguously first (faster for
    the weight's gradient when ``rows`` is tall)."""
    weight_t = weight.transpose(-1, -2)
    if contiguous_weight:
        weight_t = weight_t.contiguous()
    if weight.ndim == 2:
        return torch.addmm(bias, rows, weight_t)
    return torch.baddbmm(bias.unsqueeze(-2), rows.expand(weight.shape[0], *rows.shape[-2:]), weight_t)


def to_rows(x: Tensor, time_major: bool) -> Tensor:
    """(*lead, batch, time, width) -> (*lead, rows, width), the rows in (time, batch) or (batch, time) order."""
    if time_major:
        x = x.transpose(-3, -2)
    return x.reshape(*x.shape[:-3], -1, x.shape[-1])


def from_rows(y: Tensor, lead: tuple, batch: int, time: int, time_major: bool) -> Tensor:
    """The inverse of :func:`to_rows`: a (*lead, batch, time, width) view."""
    if time_major:
        return y.view(*lead, time, batch, y.shape[-1]).transpose(-3, -2)
    return y.view(*lead, batch, time, y.shape[-1])

