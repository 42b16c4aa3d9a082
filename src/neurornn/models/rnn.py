"""The constrained RNN module: one network, or several of the same shapes run at once."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor, nn

from .._files import write_bytes
from .._validation import check_bool, check_finite
from ._checks import (check_configs, check_given_masks, check_given_weights, check_initial_state, check_inputs,
                      check_network_memory, check_run_memory, per_network)
from .backends import select_backend
from ..config.model import RNNConfig
from .connectivity import (dale_signs, init_input, init_output, init_recurrent, input_mask, output_mask,
                           recurrent_mask, unit_alpha)
from .dynamics import Dynamics, StepNoise
from .noise import NOISE_LEVELS, draw_noise
from ._safetensors_meta import model_format, safetensors_metadata
from .weights import TRAIN_FLAGS, WEIGHT_NAMES, Trajectory, Weights, affine, from_rows, to_rows

__all__ = ["RNN", "Weights", "Trajectory", "WEIGHT_NAMES", "MODEL_FORMAT"]

MODEL_FORMAT = "neurornn-model"

_BUFFERS = ("rec_mask", "in_mask", "out_mask", "alpha", "dale_sign")
#: The masks a model may be given, by the weight they mask.
MASKS = {"w_rec": "rec_mask", "w_in": "in_mask", "w_out": "out_mask"}


def _initial_tensors(config: RNNConfig, weights: Mapping[str, Tensor] | None,
                     masks: Mapping[str, Tensor] | None) -> tuple[dict, dict]:
    """One network's buffers and initial parameters (from its seed, or the given masks and effective weights)."""
    gen = torch.Generator().manual_seed(config.seed)
    signs = dale_signs(config)
    buffers = {"rec_mask": recurrent_mask(config, gen), "in_mask": input_mask(config),
               "out_mask": output_mask(config), "alpha": unit_alpha(config),
               "dale_sign": signs if signs is not None else torch.ones(config.n_units)}
    if masks is not None:  # they replace the config's (drawn all the same: the weights' draws stay the same)
        for name, mask in check_given_masks(masks, {w: buffers[b] for w, b in MASKS.items()}).items():
            buffers[MASKS[name]] = mask
    init = {
        "w_in": init_input(config, buffers["in_mask"], gen),
        "w_rec": init_recurrent(config, buffers["rec_mask"], gen),
        "b_rec": torch.zeros(config.n_units),
        "w_out": init_output(config, buffers["out_mask"], gen),
        "b_out": torch.zeros(config.n_outputs),
        "x0": torch.zeros(config.n_units),
    }
    if weights is not None:
        masks = {"w_rec": buffers["rec_mask"], "w_in": buffers["in_mask"], "w_out": buffers["out_mask"]}
        check_given_weights(config, weights, init, masks, buffers["dale_sign"])
        for name, value in weights.items():
            init[name] = torch.as_tensor(value, dtype=torch.float32).clone()
    if config.dale:
        init["w_rec"] = init["w_rec"].abs()
    return buffers, init


class RNN(nn.Module):
    r"""Continuous-time RNN with biological constraints, Euler-discretised: one network, or several.

    The equations live in :mod:`neurornn.models.dynamics` (written once):

    - current form: ``x[t] = (1-a) x[t-1] + a (W_rec r[t-1] + W_in u[t] + b_rec) + sqrt(2a) s_rec xi``,
      ``r = f(x)``;
    - rate form: ``r[t] = (1-a) r[t-1] + a f(W_rec r[t-1] + W_in u[t] + b_rec + sqrt(2/a) s_rec xi)``;

    with ``a = dt / tau`` per unit, and readout ``y = W_out r + b_out``.

    Constraints hold by construction (not by clipping): the recurrent weights the
    step uses are ``W_rec = mask * |P| * sign`` with Dale's law, ``mask * P`` without;
    input and readout weights are masked by the input and output areas. Parameters
    whose train flag is False are frozen (``requires_grad=False``).

    Several networks: ``RNN([config_0, config_1, ...])`` holds E networks of the same
    shapes (see :data:`~neurornn.models._checks.SHARED_FIELDS`) with every parameter
    and buffer stacked along a leading ``networks`` dimension (``w_rec`` is (E, units,
    units), trajectories (E, batch, time, units)); one call of the time loop runs them
    all. They may differ in seed, time constants, noise levels, connection probability,
    fraction of excitatory units. Network ``e`` computes exactly what
    ``RNN(configs[e])`` with the same weights computes; :meth:`member` gives it back.

    Parameters
    ----------
    config : RNNConfig, or a sequence of RNNConfig (several networks)
    weights : mapping name -> tensor, optional
        Given initial *effective* weights (any of ``w_in``, ``w_rec``, ``b_rec``,
        ``w_out``, ``b_out``, ``x0``), e.g. an identity ``w_in`` for one-to-one
        stimulation; freeze them with the config's train flags. A given ``w_rec``
        must respect the Dale signs and have no weight outside the mask. For several
        networks, a sequence of such mappings (or None), one per network.
    masks : mapping name -> 0/1 tensor, optional
        Connectivity masks that replace those the config draws (``p_connect``, areas,
        autapses): any of ``w_rec`` (n_units, n_units), ``w_in``, ``w_out``, e.g. a
        connectome. A masked weight is zero in every step and stays zero through
        training; the masks are saved with the model. For several networks, one
        mapping (or None) per network.
    """

    def __init__(self, config: RNNConfig | Sequence[RNNConfig],
                 weights: Mapping[str, Tensor] | Sequence[Mapping[str, Tensor] | None] | None = None,
                 masks: Mapping[str, Tensor] | Sequence[Mapping[str, Tensor] | None] | None = None) -> None:
        super().__init__()
        self.stacked = not isinstance(config, RNNConfig)
        if self.stacked:
            if not isinstance(config, Sequence) or isinstance(config, (str, bytes)):
                raise TypeError(f"config must be an RNNConfig, got {type(config).__name__}")
            self.configs = check_configs(config)
            given, given_masks = (per_network(what, value, len(self.configs))
                                  for what, value in (("weights", weights), ("masks", masks)))
        else:
            self.configs, given, given_masks = (config,), [weights], [masks]
        check_network_memory(self.configs[0], len(self.configs))
        parts = [_initial_tensors(c, w, m) for c, w, m in zip(self.configs, given, given_masks)]
        join = (lambda xs: torch.stack(xs)) if self.stacked else (lambda xs: xs[0])
        for name in _BUFFERS:
            self.register_buffer(name, join([b[name] for b, _ in parts]))
        for name in WEIGHT_NAMES:
            self.register_parameter(name, nn.Parameter(join([p[name] for _, p in parts]),
                                                       requires_grad=getattr(self.config, TRAIN_FLAGS[name])))
        for name in NOISE_LEVELS:  # (networks,) or (): what draw_noise scales by
            levels = [getattr(c, name) for c in self.configs]
            self.register_buffer(name, torch.tensor(levels if self.stacked else levels[0]), persistent=False)

    # ------------------------------------------------------------------ networks
    @property
    def config(self) -> RNNConfig:
        """The network's config (network 0's for several networks: the shared fields are the same)."""
        return self.configs[0]

    @property
    def n_networks(self) -> int:
        return len(self.configs)

    @classmethod
    def stack(cls, networks: Sequence["RNN"]) -> "RNN":
        """One model of several networks holding copies of the current weights of ``networks``."""
        if isinstance(networks, RNN) or not isinstance(networks, Sequence) or not networks:
            raise TypeError(f"networks must be a non-empty sequence of RNN, got {type(networks).__name__}")
        for i, net in enumerate(networks):
            if not isinstance(net, RNN) or net.stacked:
                raise TypeError(f"networks[{i}] must be a single-network RNN, got {net!r:.60}")
        model = cls([net.config for net in networks]).to(device=networks[0].alpha.device,
                                                         dtype=networks[0].alpha.dtype)
        for e, net in enumerate(networks):
            model.load_member(e, net)
        return model

    def member(self, e: int) -> "RNN":
        """A new single-network :class:`RNN` with the current weights of network ``e`` (a copy)."""
        if isinstance(e, bool) or not isinstance(e, int) or not -self.n_networks <= e < self.n_networks:
            raise ValueError(f"network index must be an int in [0, {self.n_networks}), got {e!r}")
        net = RNN(self.configs[e]).to(device=self.alpha.device, dtype=self.alpha.dtype)
        state = self.state_dict()
        net.load_state_dict({k: (v[e] if self.stacked else v).detach().clone() for k, v in state.items()})
        return net.train(self.training)

    def members(self) -> list["RNN"]:
        """Copies of all networks as single-network :class:`RNN` (see :meth:`member`)."""
        return [self.member(e) for e in range(self.n_networks)]

    def load_member(self, e: int, net: "RNN") -> None:
        """Copy the weights and masks of the single-network ``net`` into network ``e``."""
        if not isinstance(net, RNN) or net.stacked:
            raise TypeError(f"net must be a single-network RNN, got {type(net).__name__}")
        with torch.no_grad():
            for name in (*WEIGHT_NAMES, *_BUFFERS):
                target = getattr(self, name)
                (target[e] if self.stacked else target).copy_(getattr(net, name))

    def masks(self) -> dict[str, Tensor]:
        """The connectivity masks by the weight they mask (CPU copies): ``w_rec``, ``w_in``, ``w_out``."""
        return {name: getattr(self, buffer).detach().cpu().clone() for name, buffer in MASKS.items()}

    # ------------------------------------------------------------------ saving
    def to_bytes(self) -> bytes:
        """The model as one safetensors file: parameters and buffers, and its config(s) as JSON metadata."""
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        configs = [c.to_dict() for c in self.configs]
        return save_safetensors(tensors, metadata={"format": MODEL_FORMAT, "stacked": json.dumps(self.stacked),
                                                   "configs": json.dumps(configs)})

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to ``path`` (see :meth:`to_bytes`; atomic). A file there is replaced only if
        neurornn wrote it; :meth:`load` reads it back."""
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"cannot save the model to {str(path)!r}: it is a folder; give a file name "
                                    "such as model.safetensors")
        if path.exists() and model_format(path) != MODEL_FORMAT:
            raise FileExistsError(f"cannot save the model to {str(path)!r}: a file neurornn did not write is "
                                  "there; choose another name")
        return write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "RNN":
        """A model written by :meth:`save` (or a run's ``model.safetensors``), in eval mode."""
        path = Path(path)
        if path.is_dir():
            raise IsADirectoryError(f"{str(path)!r} is a folder; give a model file (for a run folder: "
                                    "neurornn.load_run(path).model)")
        try:
            data = path.read_bytes()
            tensors = load_safetensors(data)
            meta = safetensors_metadata(data)
            configs = [RNNConfig.from_dict(c) for c in json.loads(meta["configs"])]
            stacked = bool(json.loads(meta["stacked"]))
        except FileNotFoundError:
            raise FileNotFoundError(f"model file {str(path)!r} does not exist") from None
        except (SafetensorError, KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{str(path)!r} is not a model file written by RNN.save ({err.__class__.__name__}: "
                             f"{err})") from None
        model = cls(configs if stacked else configs[0])
        model.load_state_dict(tensors)
        return model.eval()

    # ------------------------------------------------------------------ weights
    def effective_weights(self) -> Weights:
        """The weights exactly as the step uses them (differentiable w.r.t. the parameters):
        ``W_rec = mask * |P| * sign(presynaptic unit)`` under Dale's law, ``mask * P`` otherwise,
        and the masked input and readout."""
        if self.config.dale:
            w_rec = self.rec_mask * self.w_rec.abs() * self.dale_sign.unsqueeze(-2)
        else:
            w_rec = self.rec_mask * self.w_rec
        return Weights(w_in=self.in_mask * self.w_in, w_rec=w_rec, b_rec=self.b_rec,
                       w_out=self.out_mask * self.w_out, b_out=self.b_out, x0=self.x0)

    @property
    def dynamics(self) -> Dynamics:
        """The step; ``alpha`` of shape (units,), or (networks, 1, units) for several networks."""
        alpha = self.alpha[:, None, :] if self.stacked else self.alpha
        return Dynamics(self.config.form, self.config.activation, alpha)

    # ------------------------------------------------------------------ noise
    def draw_noise(
        self, batch: int, time: int,
        generator: torch.Generator | Sequence[torch.Generator | None] | None = None,
    ) -> tuple[Tensor | None, StepNoise]:
        """Draw input and step noise for a trajectory (see :mod:`neurornn.models.noise`).

        ``generator``: one generator, or for several networks one per network (networks
        given the same generator object share one draw, each scaled by its own levels;
        one generator for all draws the networks' noise one after the other).
        Returns ``(input_noise (batch, time, n_inputs) or None, StepNoise)``, with a
        leading networks dimension for several networks.
        """
        levels = {name: getattr(self, name) for name in NOISE_LEVELS}
        return draw_noise(self.configs, levels, self.dynamics.rec_noise_scale, batch, time,
                          self._generators(generator), stacked=self.stacked)

    def _generators(self, generator) -> list:
        if generator is None:
            return [None] * self.n_networks
        if isinstance(generator, torch.Generator):
            if self.stacked:
                raise TypeError(f"a model of {self.n_networks} networks draws its noise from one generator per "
                                f"network: give a sequence of {self.n_networks} torch.Generator, got one")
            return [generator]
        if isinstance(generator, Sequence) and not isinstance(generator, (str, bytes)):
            gens = list(generator)
            if len(gens) != self.n_networks:
                raise ValueError(f"generators must have one entry per network ({self.n_networks}), got {len(gens)}")
            for i, g in enumerate(gens):
                if g is not None and not isinstance(g, torch.Generator):
                    raise TypeError(f"generators[{i}] must be a torch.Generator or None, got {type(g).__name__}")
            return gens
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")

    # ------------------------------------------------------------------ running
    def forward(
        self,
        inputs: Tensor,
        *,
        noise: bool | None = None,
        generator: torch.Generator | Sequence[torch.Generator | None] | None = None,
        generators: Sequence[torch.Generator | None] | None = None,
        initial_state: Tensor | None = None,
    ) -> Trajectory:
        """Run the network(s) over a batch of input sequences.

        Parameters
        ----------
        inputs : Tensor of shape (batch, time, n_inputs)
            For several networks also (networks, batch, time, n_inputs): each its own trials.
        noise : bool, optional
            Add the configured noise; default: on in training mode, off in eval mode.
        generator : torch.Generator, optional
            Source of the noise (seeded reproducibility); for several networks one per
            network (see :meth:`draw_noise`). ``generators=`` is the same argument.
        initial_state : Tensor broadcastable to (batch, n_units), optional
            Overrides ``x0``; for several networks broadcastable to (networks, batch, n_units).

        Returns
        -------
        Trajectory with ``states`` and ``rates`` (batch, time, n_units) and ``outputs``
        (batch, time, n_outputs), each with a leading networks dimension for several networks.
        """
        if generators is not None:
            if generator is not None:
                raise TypeError("give generator= or generators=, not both")
            generator = generators
        cfg = self.config
        inputs = check_inputs(inputs, cfg.n_inputs, self.n_networks if self.stacked else None)
        if noise is not None:
            noise = check_bool("noise", noise)
        gens = self._generators(generator)
        batch, time = inputs.shape[-3], inputs.shape[-2]
        backward = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
        check_run_memory(cfg, self.n_networks, batch, time, self.alpha, backward)
        check_finite("inputs", inputs, verb="contain")
        lead = (self.n_networks,) if self.stacked else ()
        if initial_state is not None:
            initial_state = check_initial_state(initial_state, lead, batch, cfg.n_units, self.alpha)
        inputs = inputs.to(device=self.alpha.device, dtype=self.alpha.dtype)
        w = self.effective_weights()
        step_noise = None
        if self.training if noise is None else noise:
            input_noise, step_noise = self.draw_noise(batch, time, gens)
            if input_noise is not None:
                inputs = inputs + input_noise
        x0 = w.x0.unsqueeze(-2) if initial_state is None else initial_state
        x0 = x0.expand(*lead, batch, cfg.n_units)
        dynamics = self.dynamics
        shape = (*lead, batch, time, cfg.n_units)
        backend = select_backend(cfg.loop, dynamics, x0, self.alpha.new_zeros(()).expand(shape), w.w_rec, step_noise)
        # One GEMM (bias folded in) for the input projections of all time steps, its rows in the
        # order the backend lays its buffers out (time-major for the fused loop), so that neither the
        # drive, the rates nor their gradients are ever transposed in memory. One network: w_in.T
        # contiguous, autograd then forms dW_in as inputs^T @ dL/d(drive), 2x faster here.
        rows = affine(to_rows(inputs, backend.time_major), w.w_in, w.b_rec, contiguous_weight=not self.stacked)
        drive = from_rows(rows, lead, batch, time, backend.time_major)
        states, rates = backend.run(dynamics, x0, drive, w.w_rec, step_noise)
        rates_time_major = rates.transpose(-3, -2).is_contiguous()
        rows = affine(to_rows(rates, rates_time_major), w.w_out, w.b_out)
        outputs = from_rows(rows, lead, batch, time, rates_time_major)
        return Trajectory(states, rates, outputs.contiguous())

    def step(self, state: Tensor, inputs_t: Tensor) -> Tensor:
        """One noise-free Euler step (for analysis): next state from a state and an input.

        Parameters
        ----------
        state : Tensor of shape (..., n_units); (networks, ..., n_units) for several networks
        inputs_t : Tensor of shape (..., n_inputs) or (n_inputs,); likewise

        Returns
        -------
        Tensor of shape (..., n_units)
        """
        w = self.effective_weights()
        dyn = self.dynamics
        drive = self._project(inputs_t, w.w_in, w.b_rec)
        if not self.stacked:
            return dyn.step(state, dyn.rate(state), drive, w.w_rec)[0]
        flat = state.reshape(self.n_networks, -1, state.shape[-1])
        drive = torch.broadcast_to(drive, state.shape).reshape(flat.shape)
        return dyn.step(flat, dyn.rate(flat), drive, w.w_rec)[0].reshape(state.shape)

    def rates_of(self, states: Tensor) -> Tensor:
        """Noise-free rates of states of shape (..., n_units)."""
        return self.dynamics.rate(states)

    def readout(self, rates: Tensor) -> Tensor:
        """Outputs ``W_out r + b_out`` of rates of shape (..., n_units); (networks, ..., n_units) for
        several networks."""
        w = self.effective_weights()
        return self._project(rates, w.w_out, w.b_out)

    def _project(self, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        """``x @ weight^T + bias`` over any leading dimensions (after the networks one, if stacked)."""
        if not self.stacked:
            return torch.matmul(x, weight.T) + bias
        n = self.n_networks
        flat = x.reshape(n, -1, x.shape[-1])
        out = torch.matmul(flat, weight.transpose(-1, -2)) + bias.unsqueeze(-2)
        return out.reshape(*x.shape[:-1], weight.shape[-2])

    def extra_repr(self) -> str:
        c = self.config
        one = (f"{c.n_inputs} -> {c.n_units} ({c.form} form, {c.activation}, "
               f"alpha={c.alpha:.3g}{', Dale' if c.dale else ''}) -> {c.n_outputs}")
        return f"{self.n_networks} networks x ({one})" if self.stacked else one

