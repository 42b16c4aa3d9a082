"""The constrained RNN module."""

from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
from torch import Tensor, nn

from .._validation import check_bool, check_finite, check_memory, suggest
from ..config import RNNConfig
from .connectivity import (
    dale_signs,
    init_input,
    init_output,
    init_recurrent,
    input_mask,
    output_mask,
    recurrent_mask,
    unit_alpha,
)
from .dynamics import Dynamics, StepNoise, reference_loop
from .fused import fused_loop, fused_unsupported_reason

__all__ = ["RNN", "Weights", "Trajectory", "WEIGHT_NAMES"]

WEIGHT_NAMES = ("w_in", "w_rec", "b_rec", "w_out", "b_out", "x0")
_TRAIN_FLAG = {
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
    x0 : (n_units,) initial state.
    """

    w_in: Tensor
    w_rec: Tensor
    b_rec: Tensor
    w_out: Tensor
    b_out: Tensor
    x0: Tensor

    def as_dict(self) -> dict[str, Tensor]:
        return dict(self._asdict())


def constrained_weights(module: nn.Module) -> Weights:
    """The constraints as a parameterisation, written once for :class:`RNN` and
    :class:`~neurornn.models.ensemble.RNNEnsemble` (whose tensors carry a leading
    networks dimension): ``W_rec = mask * |P| * sign(presynaptic unit)`` under
    Dale's law, ``mask * P`` otherwise, and the masked input and readout."""
    if module.config.dale:
        w_rec = module.rec_mask * module.w_rec.abs() * module.dale_sign.unsqueeze(-2)
    else:
        w_rec = module.rec_mask * module.w_rec
    return Weights(
        w_in=module.in_mask * module.w_in,
        w_rec=w_rec,
        b_rec=module.b_rec,
        w_out=module.out_mask * module.w_out,
        b_out=module.b_out,
        x0=module.x0,
    )


class Trajectory(NamedTuple):
    """What a forward pass returns, all batch first.

    states : (batch, time, n_units) the Euler state after each input step
        (``x`` in the current form, ``r`` in the rate form);
    rates : (batch, time, n_units) firing rates ``r``;
    outputs : (batch, time, n_outputs) readout ``W_out r + b_out``.
    """

    states: Tensor
    rates: Tensor
    outputs: Tensor


class RNN(nn.Module):
    r"""Continuous-time RNN with biological constraints, Euler-discretised.

    The equations live in :mod:`neurornn.models.dynamics` (written once):

    - current form: ``x[t] = (1-a) x[t-1] + a (W_rec r[t-1] + W_in u[t] + b_rec) + sqrt(2a) s_rec xi``,
      ``r = f(x)``;
    - rate form: ``r[t] = (1-a) r[t-1] + a f(W_rec r[t-1] + W_in u[t] + b_rec + sqrt(2/a) s_rec xi)``;

    with ``a = dt / tau`` per unit, and readout ``y = W_out r + b_out``.

    Constraints hold by construction (not by clipping): the recurrent weights the
    step uses are ``W_rec = mask * |P| * sign`` with Dale's law, ``mask * P`` without;
    input and readout weights are masked by the input and output areas. Parameters
    whose train flag is False are frozen (``requires_grad=False``).

    Parameters
    ----------
    config : RNNConfig
    weights : mapping name -> tensor, optional
        Given initial *effective* weights (any of ``w_in``, ``w_rec``, ``b_rec``,
        ``w_out``, ``b_out``, ``x0``), e.g. an identity ``w_in`` for one-to-one
        stimulation; freeze them with the config's train flags. A given ``w_rec``
        must respect the Dale signs and have no weight outside the mask.
    """

    def __init__(self, config: RNNConfig, weights: Mapping[str, Tensor] | None = None) -> None:
        super().__init__()
        if not isinstance(config, RNNConfig):
            raise TypeError(f"config must be an RNNConfig, got {type(config).__name__}")
        _check_network_memory(config)
        self.config = config
        gen = torch.Generator().manual_seed(config.seed)
        signs = dale_signs(config)
        self.register_buffer("rec_mask", recurrent_mask(config, gen))
        self.register_buffer("in_mask", input_mask(config))
        self.register_buffer("out_mask", output_mask(config))
        self.register_buffer("alpha", unit_alpha(config))
        self.register_buffer("dale_sign", signs if signs is not None else torch.ones(config.n_units))

        init = {
            "w_in": init_input(config, self.in_mask, gen),
            "w_rec": init_recurrent(config, self.rec_mask, gen),
            "b_rec": torch.zeros(config.n_units),
            "w_out": init_output(config, self.out_mask, gen),
            "b_out": torch.zeros(config.n_outputs),
            "x0": torch.zeros(config.n_units),
        }
        if weights is not None:
            self._check_given(weights, init)
            for name, value in weights.items():
                init[name] = torch.as_tensor(value, dtype=torch.float32).clone()
        for name, value in init.items():
            param = value.abs() if (name == "w_rec" and config.dale) else value
            self.register_parameter(
                name, nn.Parameter(param, requires_grad=getattr(config, _TRAIN_FLAG[name]))
            )

    # ------------------------------------------------------------------ weights
    def _check_given(self, weights: Mapping[str, Tensor], init: dict[str, Tensor]) -> None:
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
                raise ValueError(
                    f"given {name} must have shape {tuple(init[name].shape)}, got {tuple(value.shape)}"
                )
            check_finite(f"given {name}", value)
        masks = {"w_rec": self.rec_mask, "w_in": self.in_mask, "w_out": self.out_mask}
        for name, mask in masks.items():
            if name in weights and (torch.as_tensor(weights[name]).float() * (1 - mask)).abs().max() > 0:
                raise ValueError(f"given {name} has non-zero weights outside the connectivity mask")
        if "w_rec" in weights and self.config.dale:
            w = torch.as_tensor(weights["w_rec"]).float()
            if (w * self.dale_sign[None, :] < 0).any():
                raise ValueError("given w_rec breaks Dale's law: column j must have the sign of unit j")

    def effective_weights(self) -> Weights:
        """The weights exactly as the step uses them (differentiable w.r.t. the parameters)."""
        return constrained_weights(self)

    @property
    def dynamics(self) -> Dynamics:
        return Dynamics(self.config.form, self.config.activation, self.alpha)

    # ------------------------------------------------------------------ noise
    def draw_noise(
        self, batch: int, time: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor | None, StepNoise]:
        """Draw input and step noise for a trajectory from ``generator``.

        Returns ``(input_noise (batch, time, n_inputs) or None, StepNoise)``.
        """
        cfg = self.config
        device, dtype = self.alpha.device, self.alpha.dtype

        def draw(sigma: float, width: int, scale: Tensor | float = 1.0) -> Tensor | None:
            if sigma == 0:
                return None
            xi = torch.randn(batch, time, width, generator=generator, dtype=dtype, device="cpu")
            return xi.to(device) * (sigma * scale)

        if cfg.form == "current":
            rec_scale = torch.sqrt(2 * self.alpha)
        else:
            rec_scale = torch.sqrt(2 / self.alpha)
        return (
            draw(cfg.sigma_in, cfg.n_inputs),
            StepNoise(
                rec=draw(cfg.sigma_rec, cfg.n_units, rec_scale),
                pre=draw(cfg.sigma_pre, cfg.n_units),
                post=draw(cfg.sigma_post, cfg.n_units),
            ),
        )

    # ------------------------------------------------------------------ running
    def _check_inputs(self, inputs: Tensor) -> None:
        if not isinstance(inputs, Tensor):
            raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
        if inputs.ndim != 3 or inputs.shape[-1] != self.config.n_inputs:
            raise ValueError(
                f"inputs must have shape (batch, time, n_inputs={self.config.n_inputs}), "
                f"got {tuple(inputs.shape)}"
            )
        if not inputs.is_floating_point():
            raise TypeError(f"inputs must be a floating-point tensor, got dtype {inputs.dtype}")
        if inputs.shape[0] == 0 or inputs.shape[1] == 0:
            raise ValueError(f"inputs must hold at least one trial and one time step, got shape {tuple(inputs.shape)}")

    def _check_initial_state(self, initial_state: Tensor, batch: int) -> Tensor:
        n = self.config.n_units
        if not isinstance(initial_state, Tensor):
            raise TypeError(f"initial_state must be a torch.Tensor, got {type(initial_state).__name__}")
        shape = tuple(initial_state.shape)
        if shape not in ((n,), (batch, n), (1, n)):
            raise ValueError(
                f"initial_state must have shape (n_units={n},) or (batch={batch}, n_units={n}), got {shape}"
            )
        if not initial_state.is_floating_point():
            raise TypeError(f"initial_state must be a floating-point tensor, got dtype {initial_state.dtype}")
        check_finite("initial_state", initial_state)
        return initial_state.to(device=self.alpha.device, dtype=self.alpha.dtype)

    def _check_run_memory(self, batch: int, time: int) -> None:
        """Refuse a forward pass whose (batch, time, units) tensors would not fit in memory."""
        n_units, n_outputs = self.config.n_units, self.config.n_outputs
        size = self.alpha.element_size()
        # drive, states and rates (batch, time, units), outputs (batch, time, outputs), and their
        # gradients when autograd records the pass
        n_bytes = batch * time * (3 * n_units + n_outputs) * size
        backward = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        if backward:
            n_bytes *= 2
        available, where = None, "available"
        if self.alpha.device.type == "cuda":
            available, where = torch.cuda.mem_get_info(self.alpha.device)[0], "free on the GPU"
        check_memory(f"inputs of shape {(batch, time, self.config.n_inputs)}: the forward pass needs", n_bytes,
                     "run fewer trials (a smaller batch) or shorter trials at a time",
                     detail=f"drive, states, rates and outputs: {batch} trials x {time} steps x {n_units} units"
                            + (", twice over for the backward pass" if backward else ""),
                     available=available, where=where)

    def forward(
        self,
        inputs: Tensor,
        *,
        noise: bool | None = None,
        generator: torch.Generator | None = None,
        initial_state: Tensor | None = None,
    ) -> Trajectory:
        """Run the network over a batch of input sequences.

        Parameters
        ----------
        inputs : Tensor of shape (batch, time, n_inputs)
        noise : bool, optional
            Add the configured noise; default: on in training mode, off in eval mode.
        generator : torch.Generator, optional
            Source of the noise (seeded reproducibility).
        initial_state : Tensor of shape (batch, n_units) or (n_units,), optional
            Overrides ``x0``.

        Returns
        -------
        Trajectory with ``states`` and ``rates`` (batch, time, n_units) and
        ``outputs`` (batch, time, n_outputs).
        """
        self._check_inputs(inputs)
        if noise is not None:
            noise = check_bool("noise", noise)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        batch, time, _ = inputs.shape
        self._check_run_memory(batch, time)
        check_finite("inputs", inputs, verb="contain")
        if initial_state is not None:
            initial_state = self._check_initial_state(initial_state, batch)
        inputs = inputs.to(device=self.alpha.device, dtype=self.alpha.dtype)
        w = self.effective_weights()
        use_noise = self.training if noise is None else bool(noise)
        step_noise = None
        if use_noise:
            input_noise, step_noise = self.draw_noise(batch, time, generator)
            if input_noise is not None:
                inputs = inputs + input_noise
        x0 = w.x0 if initial_state is None else initial_state
        x0 = x0.expand(batch, self.config.n_units)
        n_units, n_outputs = self.config.n_units, self.config.n_outputs
        # One GEMM (bias folded in) for the input projections of all time steps; w_in.T
        # contiguous: autograd then forms dW_in as inputs^T @ dL/d(drive), 2x faster here.
        # With the fused loop, the rows go in (time, batch) order: its buffers are
        # time-major behind (batch, time, units) views, so that neither the drive, the
        # rates nor their gradients are ever transposed in memory.
        time_major = self.config.loop != "reference"
        rows = inputs.transpose(0, 1) if time_major else inputs
        drive = torch.addmm(w.b_rec, rows.reshape(batch * time, -1), w.w_in.T.contiguous())
        drive = drive.view(time, batch, n_units).transpose(0, 1) if time_major else drive.view(batch, time, n_units)
        states, rates = self.run_loop(x0, drive, w.w_rec, step_noise)
        if rates.transpose(0, 1).is_contiguous():  # time-major rates (the fused loop's)
            outputs = torch.addmm(w.b_out, rates.transpose(0, 1).reshape(time * batch, n_units), w.w_out.T)
            outputs = outputs.view(time, batch, n_outputs).transpose(0, 1).contiguous()
        else:
            outputs = torch.addmm(w.b_out, rates.reshape(batch * time, n_units), w.w_out.T)
            outputs = outputs.view(batch, time, n_outputs)
        return Trajectory(states, rates, outputs)

    def run_loop(
        self, x0: Tensor, drive: Tensor, w_rec: Tensor, noise: StepNoise | None
    ) -> tuple[Tensor, Tensor]:
        """The time loop: ``(states, rates)`` of shape (batch, time, n_units).

        Dispatches on ``config.loop``: ``"reference"`` steps :meth:`Dynamics.step`
        under autograd; ``"fused"`` runs :func:`~neurornn.models.fused.fused_loop`
        (hand-written backward through time, tested equal to the reference) and
        raises where it does not apply; ``"auto"`` runs the fused loop when it
        applies and the reference loop otherwise (same results).
        """
        loop = self.config.loop
        if loop == "reference":
            return reference_loop(self.dynamics, x0, drive, w_rec, noise)
        dynamics = self.dynamics
        reason = fused_unsupported_reason(dynamics, x0, drive, w_rec, noise)
        if reason is None:
            return fused_loop(dynamics, x0, drive, w_rec, noise)
        if loop == "fused":
            raise ValueError(
                f"loop='fused' cannot run here: {reason}; use loop='auto' or loop='reference'"
            )
        return reference_loop(dynamics, x0, drive, w_rec, noise)

    def step(self, state: Tensor, inputs_t: Tensor) -> Tensor:
        """One noise-free Euler step (for analysis): next state from a state and an input.

        Parameters
        ----------
        state : Tensor of shape (..., n_units)
        inputs_t : Tensor of shape (..., n_inputs) or (n_inputs,)

        Returns
        -------
        Tensor of shape (..., n_units)
        """
        w = self.effective_weights()
        dyn = self.dynamics
        drive = torch.matmul(inputs_t, w.w_in.T) + w.b_rec
        new_state, _ = dyn.step(state, dyn.rate(state), drive, w.w_rec)
        return new_state

    def rates_of(self, states: Tensor) -> Tensor:
        """Noise-free rates of states of shape (..., n_units)."""
        return self.dynamics.rate(states)

    def readout(self, rates: Tensor) -> Tensor:
        """Outputs ``W_out r + b_out`` of rates of shape (..., n_units)."""
        w = self.effective_weights()
        return torch.matmul(rates, w.w_out.T) + w.b_out

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"{c.n_inputs} -> {c.n_units} ({c.form} form, {c.activation}, "
            f"alpha={c.alpha:.3g}{', Dale' if c.dale else ''}) -> {c.n_outputs}"
        )


def _check_network_memory(config: RNNConfig) -> None:
    """Refuse a network whose weight matrices would not fit in memory, before allocating them."""
    n, n_in, n_out = config.n_units, config.n_inputs, config.n_outputs
    # float32: the recurrent weights, their mask and one temporary while initialising; the same for
    # the input and readout matrices
    n_bytes = 4 * 3 * (n * n + n * n_in + n * n_out)
    check_memory(f"n_units={n}: the network's weight matrices need", n_bytes, "use fewer units",
                 detail=f"recurrent weights, their mask and an initialisation temporary: 3 x {n} x {n} float32, "
                        "plus the input and readout weights")
