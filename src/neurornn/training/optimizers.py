"""The optimiser of one or several networks: per-network gradient clipping and updates.

One network trains with ``torch.optim`` (Adam or SGD) and
``torch.nn.utils.clip_grad_norm_``. Several networks stacked in one
:class:`~neurornn.models.RNN` need a learning rate, eps and momentum per network
and updates of only some of them (those still training, with a finite loss), which
``torch.optim`` cannot do on one tensor: :class:`StackedOptimizer` computes Adam and
SGD as ``torch.optim`` does, per network. Both save and restore a network's state as
a ``torch.optim`` optimiser of that network alone (what its checkpoint holds).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..config.train import TrainConfig

__all__ = ["make_optimizer", "apply_hyperparameters", "NetworkOptimizer", "SingleOptimizer", "StackedOptimizer",
           "network_optimizer"]

_BETAS = (0.9, 0.999)  # torch.optim.Adam defaults


def make_optimizer(config: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimiser of one network."""
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.learning_rate, eps=config.adam_eps)
    return torch.optim.SGD(params, lr=config.learning_rate, momentum=config.momentum)


def apply_hyperparameters(optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
    """Set the optimiser's hyperparameters from ``config`` (after a checkpoint restored older ones)."""
    for group in optimizer.param_groups:
        group["lr"] = config.learning_rate
        if config.optimizer == "adam":
            group["eps"] = config.adam_eps
        else:
            group["momentum"] = config.momentum


class NetworkOptimizer:
    """What the training loop asks of an optimiser (see the module docstring)."""

    def clip(self) -> Tensor:
        """Clip each network's gradient to its ``grad_clip``; its norm before clipping, (networks,)."""
        raise NotImplementedError

    def step(self, update: Sequence[int]) -> None:
        """Update the networks in ``update`` (the others keep their weights and state)."""
        raise NotImplementedError

    def member(self, e: int, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """Network ``e``'s state as a ``torch.optim`` optimiser of ``params`` (network ``e``'s own)."""
        raise NotImplementedError

    def load_member(self, e: int, optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
        """Take network ``e``'s state from ``optimizer`` (as :meth:`member` gives it) and ``config``."""
        raise NotImplementedError


class SingleOptimizer(NetworkOptimizer):
    """One network: ``torch.optim`` and ``clip_grad_norm_``."""

    def __init__(self, params: list[torch.nn.Parameter], config: TrainConfig) -> None:
        self.params = params
        self.torch = make_optimizer(config, params)
        self.max_norm = config.grad_clip if config.grad_clip is not None else float("inf")

    def clip(self) -> Tensor:
        return torch.nn.utils.clip_grad_norm_(self.params, self.max_norm).reshape(1)

    def step(self, update: Sequence[int]) -> None:
        if list(update) == [0]:
            self.torch.step()

    def member(self, e: int, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        return self.torch

    def load_member(self, e: int, optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
        apply_hyperparameters(self.torch, config)


class StackedOptimizer(NetworkOptimizer):
    """Adam or SGD (as ``torch.optim`` computes them) with a learning rate, eps, momentum and gradient
    clip per network, updating only the networks asked for."""

    def __init__(self, params: list[torch.nn.Parameter], configs: Sequence[TrainConfig]) -> None:
        self.params = params
        self.configs = list(configs)
        self.kind = configs[0].optimizer
        p0 = params[0]
        vec = lambda vals: torch.tensor(vals, dtype=p0.dtype, device=p0.device)  # noqa: E731
        self.lr = vec([c.learning_rate for c in configs])
        self.eps = vec([c.adam_eps for c in configs])
        self.momentum = vec([c.momentum for c in configs])
        self.clips = vec([c.grad_clip if c.grad_clip is not None else float("inf") for c in configs])
        self.steps = [0] * len(configs)
        self.state: list[dict[str, Tensor]] = [{} for _ in params]

    @staticmethod
    def _col(v: Tensor, p: Tensor) -> Tensor:
        return v.view((-1,) + (1,) * (p.ndim - 1))

    def clip(self) -> Tensor:
        """Per-network gradient norms, as ``clip_grad_norm_`` computes them, and the clipping."""
        n_nets = len(self.steps)
        grads = [p.grad for p in self.params if p.grad is not None]
        if not grads:
            return torch.zeros(n_nets, dtype=self.params[0].dtype, device=self.params[0].device)
        per_param = torch.stack([torch.linalg.vector_norm(g.reshape(n_nets, -1), dim=1) for g in grads])
        norms = torch.linalg.vector_norm(per_param, dim=0)
        coef = torch.clamp(self.clips / (norms + 1e-6), max=1.0)
        for g in grads:
            g.mul_(self._col(coef, g))
        return norms

    @torch.no_grad()
    def step(self, update: Sequence[int]) -> None:
        mask_list = [False] * len(self.steps)
        for e in update:
            mask_list[e] = True
            self.steps[e] += 1
        if not update:
            return
        mask = torch.tensor(mask_list, device=self.params[0].device)
        b1, b2 = _BETAS
        for p, st in zip(self.params, self.state):
            g = p.grad
            if g is None:
                continue
            m = self._col(mask, p)
            if self.kind == "adam":
                if not st:
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                avg = torch.lerp(st["exp_avg"], g, 1 - b1)
                sq = (st["exp_avg_sq"] * b2).addcmul_(g, g, value=1 - b2)
                steps = torch.tensor([max(s, 1) for s in self.steps], dtype=torch.float64)
                bc1 = (1 - b1**steps).to(p.dtype).to(p.device)
                bc2_sqrt = ((1 - b2**steps) ** 0.5).to(p.dtype).to(p.device)
                step_size = self._col(self.lr / bc1, p)
                denom = (sq.sqrt() / self._col(bc2_sqrt, p)).add_(self._col(self.eps, p))
                new_p = p - step_size * avg / denom
                st["exp_avg"].copy_(torch.where(m, avg, st["exp_avg"]))
                st["exp_avg_sq"].copy_(torch.where(m, sq, st["exp_avg_sq"]))
            else:
                if "momentum_buffer" not in st:
                    st["momentum_buffer"] = torch.zeros_like(p)
                buf = st["momentum_buffer"] * self._col(self.momentum, p) + g
                new_p = p - self._col(self.lr, p) * buf
                st["momentum_buffer"].copy_(torch.where(m, buf, st["momentum_buffer"]))
            p.copy_(torch.where(m, new_p, p))

    def member(self, e: int, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
        config = self.configs[e]
        opt = make_optimizer(config, params)
        state: dict[int, dict[str, Any]] = {}
        for i, st in enumerate(self.state):
            if self.kind == "adam" and st and self.steps[e] > 0:
                state[i] = {"step": torch.tensor(float(self.steps[e])),
                            "exp_avg": st["exp_avg"][e].detach().clone(),
                            "exp_avg_sq": st["exp_avg_sq"][e].detach().clone()}
            elif self.kind == "sgd" and st and config.momentum != 0 and self.steps[e] > 0:
                state[i] = {"momentum_buffer": st["momentum_buffer"][e].detach().clone()}
        opt.load_state_dict({"state": state, "param_groups": opt.state_dict()["param_groups"]})
        return opt

    @torch.no_grad()
    def load_member(self, e: int, optimizer: torch.optim.Optimizer, config: TrainConfig) -> None:
        self.configs[e] = config
        self.lr[e], self.eps[e], self.momentum[e] = config.learning_rate, config.adam_eps, config.momentum
        self.clips[e] = config.grad_clip if config.grad_clip is not None else float("inf")
        states = optimizer.state_dict()["state"]
        for i, (p, st) in enumerate(zip(self.params, self.state)):
            own = states.get(i)
            if not own:
                continue
            for key in ("exp_avg", "exp_avg_sq", "momentum_buffer"):
                if key in own:
                    st.setdefault(key, torch.zeros_like(p))[e].copy_(own[key])
                    self.steps[e] = max(self.steps[e], 1)
            if "step" in own:
                self.steps[e] = int(float(own["step"]))


def network_optimizer(params: list[torch.nn.Parameter], configs: Sequence[TrainConfig],
                      stacked: bool) -> NetworkOptimizer:
    """The optimiser of a model's trainable parameters: one network's, or stacked networks'."""
    return StackedOptimizer(params, configs) if stacked else SingleOptimizer(params, configs[0])
