"""The RNN step: the one place where the model's equations are written.

Current form (Song, Yang & Wang 2016)::

    x[t] = (1 - alpha) x[t-1] + alpha (W_rec r[t-1] + W_in u[t] + b_rec) + n_rec[t]
    r[t] = f(x[t] + n_pre[t]) + n_post[t]

Rate form (Yang & Wang 2020)::

    r[t] = (1 - alpha) r[t-1] + alpha (f(W_rec r[t-1] + W_in u[t] + b_rec + n_rec[t] + n_pre[t]) + n_post[t])

``alpha = dt / tau`` per unit (shape ``(n_units,)``); ``alpha = 1`` is the Elman RNN.
All functions broadcast over leading dimensions, so the same code runs one network
``(batch, units)`` or an ensemble ``(networks, batch, units)`` with weights
``(networks, units, units)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
from torch import Tensor

__all__ = ["ACTIVATION_FUNCTIONS", "StepNoise", "Dynamics", "reference_loop"]


def _rectified_tanh(x: Tensor) -> Tensor:
    return torch.relu(torch.tanh(x))


def _identity(x: Tensor) -> Tensor:
    return x


ACTIVATION_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "softplus": torch.nn.functional.softplus,
    "rectified_tanh": _rectified_tanh,
    "identity": _identity,
}


class StepNoise(NamedTuple):
    """Noise of a whole trajectory, each ``(batch, time, units)`` or ``None``.

    ``rec`` is already scaled (``sqrt(2 alpha) sigma_rec`` in the current form,
    ``sqrt(2 / alpha) sigma_rec`` inside ``f`` in the rate form).
    """

    rec: Tensor | None = None
    pre: Tensor | None = None
    post: Tensor | None = None

    def at(self, t: int) -> "StepNoise":
        """Noise of time step ``t``: each ``(batch, units)`` or ``None``."""
        return StepNoise(*(None if n is None else n[..., t, :] for n in self))

    @property
    def is_empty(self) -> bool:
        return all(n is None for n in self)


def _add(x: Tensor, noise: Tensor | None) -> Tensor:
    return x if noise is None else x + noise


@dataclass(frozen=True)
class Dynamics:
    """The Euler update of one network: its form, activation and ``alpha``.

    Attributes
    ----------
    form : {"current", "rate"}
    activation : str
        Name of the activation function ``f``.
    alpha : Tensor of shape (n_units,) (or broadcastable, e.g. (networks, 1, n_units))
    """

    form: str
    activation: str
    alpha: Tensor

    @property
    def f(self) -> Callable[[Tensor], Tensor]:
        return ACTIVATION_FUNCTIONS[self.activation]

    @property
    def rec_noise_scale(self) -> Tensor:
        """What a unit's ``sigma_rec`` is multiplied by for the Euler step's ``n_rec``:
        ``sqrt(2 alpha)`` in the current form, ``sqrt(2 / alpha)`` inside ``f`` in the rate form
        (white noise of variance ``2 sigma^2`` per unit time, integrated over one step)."""
        if self.form == "current":
            return torch.sqrt(2 * self.alpha)
        return torch.sqrt(2 / self.alpha)

    def rate(self, state: Tensor, noise: StepNoise | None = None) -> Tensor:
        """Rates of a state: ``f(x + n_pre) + n_post`` (current form) or the state (rate form)."""
        if self.form == "rate":
            return state
        pre, post = (None, None) if noise is None else (noise.pre, noise.post)
        return _add(self.f(_add(state, pre)), post)

    def step(
        self,
        state: Tensor,
        rate: Tensor,
        drive: Tensor,
        w_rec: Tensor,
        noise: StepNoise | None = None,
    ) -> tuple[Tensor, Tensor]:
        """One Euler step.

        Parameters
        ----------
        state, rate : Tensor of shape (..., batch, units)
            State and rates at ``t-1`` (``rate == self.rate(state)`` without noise).
        drive : Tensor of shape (..., batch, units)
            External drive at ``t``: ``W_in u[t] + b_rec``.
        w_rec : Tensor of shape (..., units, units)
            Effective recurrent weights, ``W[i, j]`` from unit j onto unit i.
        noise : StepNoise of tensors (..., batch, units), optional

        Returns
        -------
        (state, rate) at ``t``, each of shape (..., batch, units).
        """
        alpha = self.alpha
        recurrent = torch.matmul(rate, w_rec.transpose(-1, -2))
        if self.form == "current":
            rec = None if noise is None else noise.rec
            new_state = _add((1 - alpha) * state + alpha * (recurrent + drive), rec)
            return new_state, self.rate(new_state, noise)
        pre_activation = recurrent + drive
        if noise is not None:
            pre_activation = _add(_add(pre_activation, noise.rec), noise.pre)
            activated = _add(self.f(pre_activation), noise.post)
        else:
            activated = self.f(pre_activation)
        new_state = (1 - alpha) * state + alpha * activated
        return new_state, new_state


def reference_loop(
    dynamics: Dynamics,
    initial_state: Tensor,
    drive: Tensor,
    w_rec: Tensor,
    noise: StepNoise | None = None,
) -> tuple[Tensor, Tensor]:
    """Run :meth:`Dynamics.step` over time with autograd (the reference implementation).

    Parameters
    ----------
    initial_state : Tensor of shape (..., batch, units)
    drive : Tensor of shape (..., batch, time, units)
        ``W_in u[t] + b_rec`` for every step, computed in one GEMM by the caller.
    w_rec : Tensor of shape (..., units, units)
    noise : StepNoise of tensors (..., batch, time, units), optional

    Returns
    -------
    states, rates : Tensors of shape (..., batch, time, units)
    """
    noise = None if noise is None or noise.is_empty else noise
    state = initial_state
    rate = dynamics.rate(state)
    states, rates = [], []
    # unbind, not drive[..., t, :]: the backward of T slices would write T full-size gradients (O(T^2))
    for t, drive_t in enumerate(drive.unbind(-2)):
        state, rate = dynamics.step(state, rate, drive_t, w_rec, None if noise is None else noise.at(t))
        states.append(state)
        rates.append(rate)
    return torch.stack(states, dim=-2), torch.stack(rates, dim=-2)
