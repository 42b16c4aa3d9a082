"""The model's checks of what it is given: configs, weights, inputs, initial states, memory."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import Tensor

from .._validation import check_finite, check_memory, check_same_fields, suggest
from ..config.model import RNNConfig

__all__ = ["SHARED_FIELDS", "per_network", "check_configs", "check_given_masks", "check_given_weights", "check_inputs",
           "check_initial_state", "check_network_memory", "check_run_memory"]

#: RNNConfig fields every network of a model of several networks must share (shapes, form, constraints).
SHARED_FIELDS = (
    "n_inputs", "n_units", "n_outputs", "dt_ms", "form", "activation", "loop",
    "train_w_in", "train_b_rec", "train_w_rec", "train_w_out", "train_b_out", "learn_x0",
)


def check_configs(configs: Sequence[RNNConfig]) -> tuple[RNNConfig, ...]:
    """The configs of a model of several networks, which must agree on :data:`SHARED_FIELDS`."""
    if isinstance(configs, RNNConfig) or not isinstance(configs, Sequence):
        raise TypeError(f"configs must be a sequence of RNNConfig, got {type(configs).__name__}")
    configs = tuple(configs)
    if not configs:
        raise ValueError("an ensemble needs at least one network, got an empty sequence of configs")
    for i, c in enumerate(configs):
        if not isinstance(c, RNNConfig):
            raise TypeError(f"configs[{i}] must be an RNNConfig, got {type(c).__name__}")
    check_same_fields(configs, SHARED_FIELDS)
    if len({c.dale for c in configs}) != 1:
        raise ValueError(
            "all networks of an ensemble must have Dale's law on or all off (exc_fraction None or a number), "
            f"got exc_fraction={[c.exc_fraction for c in configs]}"
        )
    return configs


def check_given_weights(config: RNNConfig, weights: Mapping[str, Tensor], init: dict[str, Tensor],
                        masks: dict[str, Tensor], dale_sign: Tensor) -> None:
    """Given initial effective weights: known names, shapes, finite, inside the masks, Dale's signs."""
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a mapping name -> tensor (names among {list(init)}), "
                        f"got {type(weights).__name__}")
    for name, value in weights.items():
        if name not in init:
            raise ValueError(f"unknown weight {name!r}{suggest(str(name), init)}; expected one of {list(init)}")
        try:
            value = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"given {name} must be a tensor or an array of numbers, "
                            f"got {type(value).__name__}") from None
        if value.is_complex() or value.dtype == torch.bool:
            raise TypeError(f"given {name} must hold real numbers, got dtype {value.dtype}")
        if tuple(value.shape) != tuple(init[name].shape):
            raise ValueError(f"given {name} must have shape {tuple(init[name].shape)}, got {tuple(value.shape)}")
        check_finite(f"given {name}", value)
    for name, mask in masks.items():
        if name in weights and (torch.as_tensor(weights[name]).float() * (1 - mask)).abs().max() > 0:
            raise ValueError(f"given {name} has non-zero weights outside the connectivity mask")
    if "w_rec" in weights and config.dale:
        w = torch.as_tensor(weights["w_rec"]).float()
        if (w * dale_sign[None, :] < 0).any():
            raise ValueError("given w_rec breaks Dale's law: column j must have the sign of unit j")


def check_given_masks(masks: Mapping[str, Tensor], drawn: dict[str, Tensor]) -> dict[str, Tensor]:
    """Given connectivity masks: known names, the shapes of those drawn, values 0 or 1; as float tensors."""
    if not isinstance(masks, Mapping):
        raise TypeError(f"masks must be a mapping name -> 0/1 tensor (names among {list(drawn)}), "
                        f"got {type(masks).__name__}")
    out = {}
    for name, value in masks.items():
        if name not in drawn:
            raise ValueError(f"unknown mask {name!r}{suggest(str(name), drawn)}; expected one of {list(drawn)}")
        try:
            mask = torch.as_tensor(value).detach().cpu()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"mask {name} must be a tensor or an array of 0s and 1s, "
                            f"got {type(value).__name__}") from None
        if tuple(mask.shape) != tuple(drawn[name].shape):
            raise ValueError(f"mask {name} must have shape {tuple(drawn[name].shape)}, got {tuple(mask.shape)}")
        mask = mask.to(torch.float32)
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError(f"mask {name} must hold only 0 and 1 (1: the connection exists)")
        out[name] = mask.clone()
    return out


def check_inputs(inputs: Tensor, n_inputs: int, n_networks: int | None) -> Tensor:
    """Inputs (batch, time, n_inputs); for several networks also (networks, batch, time, n_inputs),
    returned as (1 or networks, batch, time, n_inputs)."""
    if not isinstance(inputs, Tensor):
        raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
    if n_networks is None:
        if inputs.ndim != 3 or inputs.shape[-1] != n_inputs:
            raise ValueError(f"inputs must have shape (batch, time, n_inputs={n_inputs}), got {tuple(inputs.shape)}")
    else:
        if inputs.ndim == 3:
            inputs = inputs.unsqueeze(0)
        if inputs.ndim != 4 or inputs.shape[0] not in (1, n_networks) or inputs.shape[-1] != n_inputs:
            raise ValueError(
                f"inputs must have shape (batch, time, n_inputs={n_inputs}) or "
                f"(networks={n_networks}, batch, time, n_inputs={n_inputs}), got {tuple(inputs.shape)}"
            )
    if not inputs.is_floating_point():
        raise TypeError(f"inputs must be a floating-point tensor, got dtype {inputs.dtype}")
    if inputs.shape[-3] == 0 or inputs.shape[-2] == 0:
        raise ValueError(f"inputs must hold at least one trial and one time step, got shape {tuple(inputs.shape)}")
    return inputs


def check_initial_state(initial_state: Tensor, lead: tuple[int, ...], batch: int, n_units: int,
                        like: Tensor) -> Tensor:
    """An initial state broadcastable to (*lead, batch, n_units), on ``like``'s device and dtype."""
    if not isinstance(initial_state, Tensor):
        raise TypeError(f"initial_state must be a torch.Tensor, got {type(initial_state).__name__}")
    shape, full = tuple(initial_state.shape), (*lead, batch, n_units)
    fits = len(shape) <= len(full) and shape[-1:] == (n_units,) and all(
        a in (1, b) for a, b in zip(reversed(shape), reversed(full)))
    if not fits:
        nets = f"networks={lead[0]}, " if lead else ""
        raise ValueError(f"initial_state must have shape (n_units={n_units},) or ({nets}batch={batch}, "
                         f"n_units={n_units}), got {shape}")
    if not initial_state.is_floating_point():
        raise TypeError(f"initial_state must be a floating-point tensor, got dtype {initial_state.dtype}")
    check_finite("initial_state", initial_state)
    return initial_state.to(device=like.device, dtype=like.dtype)


def check_network_memory(config: RNNConfig, n_networks: int = 1) -> None:
    """Refuse networks whose weight matrices would not fit in memory, before allocating them."""
    n, n_in, n_out = config.n_units, config.n_inputs, config.n_outputs
    # float32: the recurrent weights, their mask and one temporary while initialising; the same for
    # the input and readout matrices
    n_bytes = 4 * 3 * (n * n + n * n_in + n * n_out) * n_networks
    what = f"n_units={n}" + (f" x {n_networks} networks" if n_networks > 1 else "")
    check_memory(f"{what}: the network's weight matrices need", n_bytes, "use fewer units",
                 detail=f"recurrent weights, their mask and an initialisation temporary: 3 x {n} x {n} float32, "
                        "plus the input and readout weights")


def check_run_memory(config: RNNConfig, n_networks: int, batch: int, time: int, like: Tensor,
                     backward: bool) -> None:
    """Refuse a forward pass whose (batch, time, units) tensors would not fit in memory."""
    n_units, n_outputs = config.n_units, config.n_outputs
    # drive, states and rates (batch, time, units), outputs (batch, time, outputs), and their
    # gradients when autograd records the pass
    n_bytes = n_networks * batch * time * (3 * n_units + n_outputs) * like.element_size()
    if backward:
        n_bytes *= 2
    available, where = None, "available"
    if like.device.type == "cuda":
        available, where = torch.cuda.mem_get_info(like.device)[0], "free on the GPU"
    nets = f"{n_networks} networks x " if n_networks > 1 else ""
    check_memory(f"inputs of shape {(batch, time, config.n_inputs)}: the forward pass needs", n_bytes,
                 "run fewer trials (a smaller batch) or shorter trials at a time",
                 detail=f"drive, states, rates and outputs: {nets}{batch} trials x {time} steps x {n_units} units"
                        + (", twice over for the backward pass" if backward else ""),
                 available=available, where=where)


def per_network(what: str, value, n: int) -> list:
    """A per-network argument of a model of several networks: None, or one entry (or None) per network."""
    given = [None] * n if value is None else list(value)
    if isinstance(value, Mapping) or len(given) != n:
        raise ValueError(f"{what} must have one entry (a mapping or None) per network ({n}), "
                         f"got {type(value).__name__ if isinstance(value, Mapping) else len(given)}")
    return given
