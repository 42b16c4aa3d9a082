"""``RNNEnsemble``: E independent networks of the same shapes, run with batched matmuls.

Every parameter and buffer of the E member networks is stacked along a leading
``networks`` dimension (``w_rec`` is (networks, units, units), states are
(networks, batch, time, units)), and one call of the time loop (fused when it
applies) runs all of them. The members may differ in anything that does not change
a shape or the step's form: seed (weights, masks), time constants, noise levels,
connection probability, fraction of excitatory units. Network ``e`` of the
ensemble computes exactly what ``RNN(configs[e])`` with the same weights computes
(tested to float32 rounding).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..config import RNNConfig
from .dynamics import Dynamics, StepNoise, reference_loop
from .fused import fused_loop, fused_unsupported_reason
from .rnn import RNN, WEIGHT_NAMES, Trajectory, Weights, _TRAIN_FLAG, constrained_weights

__all__ = ["RNNEnsemble", "SHARED_FIELDS"]

#: RNNConfig fields every member of an ensemble must share (shapes, form, constraints).
SHARED_FIELDS = (
    "n_inputs", "n_units", "n_outputs", "dt_ms", "form", "activation", "loop",
    "train_w_in", "train_b_rec", "train_w_rec", "train_w_out", "train_b_out", "learn_x0",
)
_BUFFERS = ("rec_mask", "in_mask", "out_mask", "alpha", "dale_sign")
_NOISES = ("sigma_in", "sigma_rec", "sigma_pre", "sigma_post")


def _check_configs(configs: Sequence[RNNConfig]) -> tuple[RNNConfig, ...]:
    if isinstance(configs, RNNConfig) or not isinstance(configs, Sequence):
        raise TypeError(f"configs must be a sequence of RNNConfig, got {type(configs).__name__}")
    configs = tuple(configs)
    if not configs:
        raise ValueError("an ensemble needs at least one network, got an empty sequence of configs")
    for i, c in enumerate(configs):
        if not isinstance(c, RNNConfig):
            raise TypeError(f"configs[{i}] must be an RNNConfig, got {type(c).__name__}")
    first = configs[0]
    for name in SHARED_FIELDS:
        values = [getattr(c, name) for c in configs]
        if any(v != values[0] for v in values):
            raise ValueError(
                f"all networks of an ensemble must have the same {name}, got {values}"
            )
    dale = [c.dale for c in configs]
    if any(d != dale[0] for d in dale):
        raise ValueError(
            "all networks of an ensemble must have Dale's law on or all off (exc_fraction None or a number), "
            f"got exc_fraction={[c.exc_fraction for c in configs]}"
        )
    del first
    return configs


class RNNEnsemble(nn.Module):
    """E independent RNNs of the same shapes, stacked for batched matmuls.

    Parameters
    ----------
    members : sequence of RNNConfig or of RNN
        Configs (each network initialised from its own seed as ``RNN(config)``
        would be) or existing networks (their current weights are copied).
        All must share :data:`SHARED_FIELDS` and Dale's law on/off.

    Attributes
    ----------
    configs : tuple of RNNConfig
    w_in, w_rec, b_rec, w_out, b_out, x0 : Parameter of shape (networks, ...)
        The stacked parameters of the members (same parameterisation as :class:`RNN`).
    """

    def __init__(self, members: Sequence[RNNConfig] | Sequence[RNN]) -> None:
        super().__init__()
        if isinstance(members, (RNN, RNNConfig)) or not isinstance(members, Sequence):
            raise TypeError(f"members must be a sequence of RNNConfig or RNN, got {type(members).__name__}")
        members = list(members)
        if members and all(isinstance(m, RNN) for m in members):
            nets = members
        elif members and all(isinstance(m, RNNConfig) for m in members):
            nets = None
        elif members:
            raise TypeError(f"members must be all RNNConfig or all RNN, got {[type(m).__name__ for m in members]}")
        else:
            raise ValueError("an ensemble needs at least one network, got an empty sequence")
        self.configs = _check_configs([m.config for m in nets] if nets is not None else members)
        if nets is None:
            nets = [RNN(c) for c in self.configs]
        ref = nets[0]
        device, dtype = ref.alpha.device, ref.alpha.dtype
        for name in _BUFFERS:
            self.register_buffer(name, torch.stack([getattr(n, name).detach().to(device, dtype) for n in nets]))
        for name in WEIGHT_NAMES:
            value = torch.stack([getattr(n, name).detach().to(device, dtype) for n in nets]).clone()
            flag = getattr(self.configs[0], _TRAIN_FLAG[name])
            self.register_parameter(name, nn.Parameter(value, requires_grad=flag))
        # per-network noise levels (networks,)
        for name in _NOISES:
            self.register_buffer(
                name, torch.tensor([getattr(c, name) for c in self.configs], dtype=dtype, device=device),
                persistent=False,
            )

    # ------------------------------------------------------------------ members
    @property
    def n_networks(self) -> int:
        return len(self.configs)

    @property
    def config(self) -> RNNConfig:
        """The config of network 0 (shared fields are the same for all)."""
        return self.configs[0]

    def member(self, e: int) -> RNN:
        """A new :class:`RNN` with the current weights of network ``e`` (a copy)."""
        if not isinstance(e, int) or not -self.n_networks <= e < self.n_networks:
            raise ValueError(f"network index must be an int in [0, {self.n_networks}), got {e!r}")
        net = RNN(self.configs[e]).to(device=self.alpha.device, dtype=self.alpha.dtype)
        net.load_state_dict({k: v[e].detach().clone() for k, v in self.state_dict().items()})
        net.train(self.training)
        return net

    def members(self) -> list[RNN]:
        """Copies of all networks as :class:`RNN` (see :meth:`member`)."""
        return [self.member(e) for e in range(self.n_networks)]

    def load_member(self, e: int, net: RNN) -> None:
        """Copy the weights of ``net`` into network ``e``."""
        if not isinstance(net, RNN):
            raise TypeError(f"net must be an RNN, got {type(net).__name__}")
        with torch.no_grad():
            for name in WEIGHT_NAMES:
                getattr(self, name)[e].copy_(getattr(net, name))

    # ------------------------------------------------------------------ weights
    def effective_weights(self) -> Weights:
        """Effective weights of all networks, each with a leading (networks,) dimension.

        Network ``e``'s are those of ``self.member(e).effective_weights()``.
        """
        return constrained_weights(self)

    @property
    def dynamics(self) -> Dynamics:
        """The step of all networks: ``alpha`` of shape (networks, 1, units)."""
        return Dynamics(self.config.form, self.config.activation, self.alpha[:, None, :])

    # ------------------------------------------------------------------ noise
    def draw_noise(
        self, batch: int, time: int, generators: Sequence[torch.Generator | None] | None = None
    ) -> tuple[Tensor | None, StepNoise]:
        """Draw each network's noise as :meth:`RNN.draw_noise` would from its generator.

        Parameters
        ----------
        generators : sequence of (networks,) generators, optional
            Network ``e`` draws from ``generators[e]``. Networks given the *same*
            generator object share one draw (each scaled by its own noise levels),
            which is what separate networks with identically seeded generators
            would draw; they must then have the same noise terms switched on.

        Returns
        -------
        input_noise (networks, batch, time, n_inputs) or None, and a StepNoise of
        (networks, batch, time, n_units) tensors (zeros for a network without that term).
        """
        n_nets = self.n_networks
        if generators is None:
            generators = [None] * n_nets
        if len(generators) != n_nets:
            raise ValueError(f"generators must have one entry per network ({n_nets}), got {len(generators)}")
        device, dtype = self.alpha.device, self.alpha.dtype
        cfg = self.config
        sizes = {"sigma_in": cfg.n_inputs, "sigma_rec": cfg.n_units, "sigma_pre": cfg.n_units,
                 "sigma_post": cfg.n_units}
        pattern = [tuple(getattr(c, s) != 0 for s in _NOISES) for c in self.configs]
        draws: dict[int, dict[str, Tensor]] = {}
        owner: dict[int, int] = {}
        for e, gen in enumerate(generators):
            key = id(gen) if gen is not None else -1 - e  # None: the default generator, never shared
            if key in owner:
                if pattern[owner[key]] != pattern[e]:
                    raise ValueError(
                        f"networks {owner[key]} and {e} share a generator but not the same noise terms "
                        f"({dict(zip(_NOISES, pattern[owner[key]]))} vs {dict(zip(_NOISES, pattern[e]))})"
                    )
                continue
            owner[key] = e
            draws[key] = {}
            for s, on in zip(_NOISES, pattern[e]):  # same order as RNN.draw_noise: in, rec, pre, post
                if on:
                    xi = torch.randn(batch, time, sizes[s], generator=gen, dtype=dtype, device="cpu")
                    draws[key][s] = xi.to(device)
        keys = [id(g) if g is not None else -1 - e for e, g in enumerate(generators)]
        if cfg.form == "current":
            rec_scale = torch.sqrt(2 * self.alpha)
        else:
            rec_scale = torch.sqrt(2 / self.alpha)
        out = {}
        for s in _NOISES:
            if not any(getattr(c, s) != 0 for c in self.configs):
                out[s] = None
                continue
            sigma = getattr(self, s)
            parts = []
            for e, key in enumerate(keys):
                xi = draws[key].get(s)
                if xi is None:
                    parts.append(torch.zeros(batch, time, sizes[s], dtype=dtype, device=device))
                elif s == "sigma_rec":
                    parts.append(xi * (sigma[e] * rec_scale[e]))
                else:
                    parts.append(xi * sigma[e])
            out[s] = torch.stack(parts)
        return out["sigma_in"], StepNoise(rec=out["sigma_rec"], pre=out["sigma_pre"], post=out["sigma_post"])

    # ------------------------------------------------------------------ running
    def forward(
        self,
        inputs: Tensor,
        *,
        noise: bool | None = None,
        generators: Sequence[torch.Generator | None] | None = None,
        initial_state: Tensor | None = None,
    ) -> Trajectory:
        """Run all networks.

        Parameters
        ----------
        inputs : Tensor of shape (batch, time, n_inputs) (the same trials for every
            network) or (networks, batch, time, n_inputs)
        noise : bool, optional
            Add the configured noise; default: on in training mode, off in eval mode.
        generators : sequence of (networks,) torch.Generator, optional
            Sources of each network's noise (see :meth:`draw_noise`).
        initial_state : Tensor broadcastable to (networks, batch, n_units), optional

        Returns
        -------
        Trajectory with ``states``, ``rates`` (networks, batch, time, n_units) and
        ``outputs`` (networks, batch, time, n_outputs).
        """
        cfg, n_nets = self.config, self.n_networks
        if not isinstance(inputs, Tensor):
            raise TypeError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
        if inputs.ndim == 3:
            inputs = inputs.unsqueeze(0)
        if inputs.ndim != 4 or inputs.shape[0] not in (1, n_nets) or inputs.shape[-1] != cfg.n_inputs:
            raise ValueError(
                f"inputs must have shape (batch, time, n_inputs={cfg.n_inputs}) or "
                f"(networks={n_nets}, batch, time, n_inputs={cfg.n_inputs}), got {tuple(inputs.shape)}"
            )
        if not torch.isfinite(inputs).all():
            raise ValueError("inputs contain NaN or inf")
        inputs = inputs.to(device=self.alpha.device, dtype=self.alpha.dtype)
        _, batch, time, _ = inputs.shape
        w = self.effective_weights()
        use_noise = self.training if noise is None else bool(noise)
        step_noise = None
        if use_noise:
            input_noise, step_noise = self.draw_noise(batch, time, generators)
            if input_noise is not None:
                inputs = inputs + input_noise
        x0 = w.x0[:, None, :] if initial_state is None else initial_state
        if x0.shape[-1] != cfg.n_units:
            raise ValueError(
                f"initial_state must have last dimension n_units={cfg.n_units}, got {tuple(x0.shape)}"
            )
        x0 = x0.expand(n_nets, batch, cfg.n_units)
        # the input and readout GEMMs take rows in (time, batch) order, the layout of
        # the fused loop's ensemble buffers, so that no (batch, time) transposes of
        # (networks, batch, time, units) tensors are needed (forward or backward)
        n_units, rows = cfg.n_units, time * batch
        u_tb = inputs.transpose(1, 2).reshape(-1, rows, cfg.n_inputs)  # (1 or networks, rows, n_inputs)
        drive = torch.baddbmm(w.b_rec[:, None, :], u_tb.expand(n_nets, rows, cfg.n_inputs),
                              w.w_in.transpose(-1, -2)).view(n_nets, time, batch, n_units).transpose(1, 2)
        states, rates = self.run_loop(x0, drive, w.w_rec, step_noise)
        r_tb = rates.transpose(1, 2).reshape(n_nets, rows, n_units)  # a view for the fused loop's rates
        outputs = torch.baddbmm(w.b_out[:, None, :], r_tb, w.w_out.transpose(-1, -2))
        outputs = outputs.view(n_nets, time, batch, cfg.n_outputs).transpose(1, 2).contiguous()
        return Trajectory(states, rates, outputs)

    def run_loop(
        self, x0: Tensor, drive: Tensor, w_rec: Tensor, noise: StepNoise | None
    ) -> tuple[Tensor, Tensor]:
        """The time loop of all networks, dispatched on ``config.loop`` as in :meth:`RNN.run_loop`."""
        dynamics = self.dynamics
        loop = self.config.loop
        if loop != "reference":
            reason = fused_unsupported_reason(dynamics, x0, drive, w_rec, noise)
            if reason is None:
                return fused_loop(dynamics, x0, drive, w_rec, noise)
            if loop == "fused":
                raise ValueError(f"loop='fused' cannot run here: {reason}; use loop='auto' or loop='reference'")
        return reference_loop(dynamics, x0, drive, w_rec, noise)

    def extra_repr(self) -> str:
        c = self.config
        return f"{self.n_networks} networks x ({c.n_inputs} -> {c.n_units} ({c.form}, {c.activation}) -> {c.n_outputs})"
