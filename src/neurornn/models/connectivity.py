"""Initial weights, fixed masks, Dale signs and areas of a network.

Everything here is computed once, at construction, from an :class:`RNNConfig`
and a seeded ``torch.Generator``; the step only ever sees the effective weights.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..config import RNNConfig

__all__ = [
    "dale_signs",
    "unit_alpha",
    "recurrent_mask",
    "input_mask",
    "output_mask",
    "init_recurrent",
    "init_input",
    "init_output",
    "spectral_radius",
]


def dale_signs(config: RNNConfig) -> Tensor | None:
    """Presynaptic signs, shape (n_units,): +1 excitatory, -1 inhibitory; ``None`` without Dale.

    In each area the first ``round(exc_fraction * size)`` units are excitatory.
    """
    if not config.dale:
        return None
    signs = torch.empty(config.n_units)
    for sl in config.area_slices().values():
        size = sl.stop - sl.start
        n_exc = int(round(config.exc_fraction * size))
        signs[sl.start : sl.start + n_exc] = 1.0
        signs[sl.start + n_exc : sl.stop] = -1.0
    return signs


def unit_alpha(config: RNNConfig) -> Tensor:
    """``dt / tau`` per unit, shape (n_units,); inhibitory units use ``tau_inh_ms`` when set."""
    alpha = torch.full((config.n_units,), config.dt_ms / config.tau_ms)
    signs = dale_signs(config)
    if signs is not None and config.tau_inh_ms is not None:
        alpha[signs < 0] = config.dt_ms / config.tau_inh_ms
    return alpha


def recurrent_mask(config: RNNConfig, generator: torch.Generator) -> Tensor:
    """Fixed binary mask (n_units, n_units): sparse connections x area blocks x autapses."""
    n = config.n_units
    mask = (torch.rand(n, n, generator=generator) < config.p_connect).float()
    if config.areas is not None and config.area_projections is not None:
        slices = config.area_slices()
        block = torch.zeros(n, n)
        for src, dst in config.area_projections:
            block[slices[dst], slices[src]] = 1.0  # W[i, j]: from j (src) onto i (dst)
        mask = mask * block
    if not config.autapses:
        mask.fill_diagonal_(0.0)
    return mask


def _area_rows(config: RNNConfig, names) -> Tensor:
    """Indicator (n_units,) of the units of the named areas (all units when ``names`` is None)."""
    ind = torch.zeros(config.n_units)
    if names is None:
        ind[:] = 1.0
        return ind
    slices = config.area_slices()
    for name in names:
        ind[slices[name]] = 1.0
    return ind


def input_mask(config: RNNConfig) -> Tensor:
    """Binary mask (n_units, n_inputs): only units of the input areas receive input."""
    rows = _area_rows(config, config.input_areas)
    return rows[:, None].expand(config.n_units, config.n_inputs).clone()


def output_mask(config: RNNConfig) -> Tensor:
    """Binary mask (n_outputs, n_units): only units of the output areas are read out."""
    cols = _area_rows(config, config.output_areas)
    return cols[None, :].expand(config.n_outputs, config.n_units).clone()


def spectral_radius(w: Tensor) -> float:
    """Largest absolute eigenvalue of a square matrix."""
    return float(torch.linalg.eigvals(w.double()).abs().max())


def init_recurrent(config: RNNConfig, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Initial *effective* recurrent weights (n_units, n_units), masked and Dale-signed.

    - gaussian: entries ``N(0, g^2 / (N p))``;
    - gamma: magnitudes ``Gamma(k=2, theta=g / (2 sqrt(N p)))`` with random signs (or Dale signs);
    - orthogonal: a random orthogonal matrix times ``g``;
    - kaiming: ``N(0, 2 g^2 / N)``.

    With Dale's law magnitudes are kept and multiplied by the presynaptic sign;
    inhibitory columns are scaled by ``n_exc / n_inh`` so that inputs balance on average.
    Finally, if ``spectral_radius`` is set, the matrix is rescaled to it.
    """
    n = config.n_units
    g = config.w_rec_gain
    fan_in = max(n * config.p_connect, 1.0)
    if config.w_rec_init == "gaussian":
        w = torch.randn(n, n, generator=generator) * (g / math.sqrt(fan_in))
    elif config.w_rec_init == "gamma":
        theta = g / (2.0 * math.sqrt(fan_in))
        # Gamma(2, theta) is the sum of two exponentials: exact and seeded.
        u = torch.rand(2, n, n, generator=generator).clamp_min(1e-12)
        w = -theta * torch.log(u).sum(0)
        w = w * torch.where(torch.rand(n, n, generator=generator) < 0.5, -1.0, 1.0)
    elif config.w_rec_init == "orthogonal":
        a = torch.randn(n, n, generator=generator, dtype=torch.float64)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))[None, :]
        w = (q * g).float()
    else:  # kaiming
        w = torch.randn(n, n, generator=generator) * (g * math.sqrt(2.0 / n))
    signs = dale_signs(config)
    if signs is not None:
        w = w.abs()
        n_exc, n_inh = int((signs > 0).sum()), int((signs < 0).sum())
        if n_exc and n_inh:
            w[:, signs < 0] *= n_exc / n_inh
        w = w * signs[None, :]
    w = w * mask
    if config.spectral_radius is not None:
        rho = spectral_radius(w)
        if rho > 0:
            w = w * (config.spectral_radius / rho)
    return w


def init_input(config: RNNConfig, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Initial effective input weights (n_units, n_inputs)."""
    n, m = config.n_units, config.n_inputs
    if config.w_in_init == "identity":
        rows = torch.nonzero(mask[:, 0]).flatten()
        if len(rows) != m:
            raise ValueError(
                f"w_in_init='identity' needs n_inputs equal to the number of input-area units "
                f"({len(rows)}), got n_inputs={m}"
            )
        w = torch.zeros(n, m)
        w[rows, torch.arange(m)] = 1.0
        return w
    if config.w_in_init == "kaiming":
        w = torch.randn(n, m, generator=generator) * math.sqrt(2.0 / m)
    else:
        w = torch.randn(n, m, generator=generator) * (config.w_in_scale / math.sqrt(m))
    return w * mask


def init_output(config: RNNConfig, mask: Tensor, generator: torch.Generator) -> Tensor:
    """Initial readout weights (n_outputs, n_units)."""
    w = torch.randn(config.n_outputs, config.n_units, generator=generator)
    return w * (config.w_out_scale / math.sqrt(config.n_units)) * mask
