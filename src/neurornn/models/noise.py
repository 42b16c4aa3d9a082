"""Drawing a trajectory's noise: the input noise and the step's ``n_rec``, ``n_pre``, ``n_post``.

Each network draws from its own generator, in the order input, rec, pre, post, one
(batch, time, width) block per term that is on; networks given the *same*
generator object share one draw (each scaled by its own noise levels), which is
what separate networks with identically seeded generators would draw. The draw
happens on the generator's device (a CUDA generator draws on the GPU; nothing is
copied), then moves to the model's.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ..config.model import RNNConfig
from .dynamics import StepNoise

__all__ = ["NOISE_LEVELS", "noise_pattern", "draw_noise"]

#: The RNNConfig noise levels, in the order they are drawn.
NOISE_LEVELS = ("sigma_in", "sigma_rec", "sigma_pre", "sigma_post")


def noise_pattern(config: RNNConfig) -> tuple[bool, ...]:
    """Which of :data:`NOISE_LEVELS` are switched on."""
    return tuple(getattr(config, s) != 0 for s in NOISE_LEVELS)


def _owners(configs: Sequence[RNNConfig], generators: Sequence[torch.Generator | None]) -> list:
    """For each network, the key of the draw it uses (networks sharing a generator share a key)."""
    keys, owner = [], {}
    for e, gen in enumerate(generators):
        key = id(gen) if gen is not None else -1 - e  # None: the default generator, never shared
        if key in owner and noise_pattern(configs[owner[key]]) != noise_pattern(configs[e]):
            a, b = (dict(zip(NOISE_LEVELS, noise_pattern(configs[i]))) for i in (owner[key], e))
            raise ValueError(f"networks {owner[key]} and {e} share a generator but not the same noise terms "
                             f"({a} vs {b})")
        owner.setdefault(key, e)
        keys.append(key)
    return keys


def draw_noise(configs: Sequence[RNNConfig], levels: dict[str, Tensor], rec_scale: Tensor, batch: int, time: int,
               generators: Sequence[torch.Generator | None], *, stacked: bool) -> tuple[Tensor | None, StepNoise]:
    """The noise of a trajectory of every network.

    Parameters
    ----------
    configs : the networks' configs (one for a single network)
    levels : name -> Tensor of the networks' noise levels, (networks,) or () for one network
    rec_scale : Tensor, the ``Dynamics.rec_noise_scale`` (networks, 1, units) or (units,)
    generators : one per network (or None: the default generator of the model's device)
    stacked : whether the tensors carry a leading networks dimension

    Returns
    -------
    input_noise (batch, time, n_inputs) or None, and a StepNoise of (batch, time, n_units)
    tensors or None, each with a leading networks dimension when ``stacked`` (zeros for a
    network without that term).
    """
    first = configs[0]
    device, dtype = rec_scale.device, rec_scale.dtype
    widths = {"sigma_in": first.n_inputs, "sigma_rec": first.n_units, "sigma_pre": first.n_units,
              "sigma_post": first.n_units}
    keys = _owners(configs, generators)
    draws: dict[int, dict[str, Tensor]] = {}
    for e, (key, gen) in enumerate(zip(keys, generators)):
        if key in draws:
            continue
        draws[key] = {}
        for name, on in zip(NOISE_LEVELS, noise_pattern(configs[e])):
            if on:
                where = gen.device if gen is not None else device
                xi = torch.randn(batch, time, widths[name], generator=gen, dtype=dtype, device=where)
                draws[key][name] = xi.to(device)
    scales = rec_scale if stacked else rec_scale[None]
    out: dict[str, Tensor | None] = {}
    for name in NOISE_LEVELS:
        if not any(getattr(c, name) != 0 for c in configs):
            out[name] = None
            continue
        sigma = levels[name] if stacked else levels[name][None]
        parts = []
        for e, key in enumerate(keys):
            xi = draws[key].get(name)
            if xi is None:
                parts.append(torch.zeros(batch, time, widths[name], dtype=dtype, device=device))
            elif name == "sigma_rec":
                parts.append(xi * (sigma[e] * scales[e]))
            else:
                parts.append(xi * sigma[e])
        out[name] = torch.stack(parts) if stacked else parts[0]
    return out["sigma_in"], StepNoise(rec=out["sigma_rec"], pre=out["sigma_pre"], post=out["sigma_post"])
