"""Private parts of ``train_ensemble``: per-network generators, batches and the batched optimiser."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from ..models import Trajectory, Weights
from ..tasks.base import Task
from ._setup import make_optimizer
from ..config import TrainConfig
from .trainer import make_generators

__all__ = ["Generators", "EnsembleOptimizer", "draw_batches", "stack_inputs", "member_trajectory",
           "member_weights"]

_GEN_NAMES = ("task", "noise", "eval_task", "eval_noise")
_BETAS = (0.9, 0.999)  # torch.optim.Adam defaults, as the trainer uses them


# ---------------------------------------------------------------------- generators
class Generators:
    """Per-network generators; networks seeded alike share the same objects until they diverge."""

    def __init__(self, seeds: Sequence[int], noise_patterns: Sequence[tuple]) -> None:
        made: dict[tuple, dict[str, torch.Generator]] = {}
        self.of: list[dict[str, torch.Generator]] = []
        for seed, pattern in zip(seeds, noise_patterns):
            gens = {}
            for name in _GEN_NAMES:
                key = (name, seed, pattern if "noise" in name else None)
                if key not in made:
                    made[key] = make_generators(seed)
                gens[name] = made[key][name]
            self.of.append(gens)

    def split(self, name: str, drawing: Sequence[int]) -> None:
        """Networks not in ``drawing`` get their own copy of any generator they share with one that is."""
        drawing_ids = {id(self.of[e][name]) for e in drawing}
        clones: dict[int, torch.Generator] = {}
        dset = set(drawing)
        for e, gens in enumerate(self.of):
            g = gens[name]
            if e not in dset and id(g) in drawing_ids:
                if id(g) not in clones:
                    copy = torch.Generator(device=g.device)
                    copy.set_state(g.get_state())
                    clones[id(g)] = copy
                gens[name] = clones[id(g)]

    def for_draw(self, name: str, drawing: Sequence[int]) -> list[torch.Generator]:
        """One generator per network; those not drawing get throwaway ones."""
        self.split(name, drawing)
        dset = set(drawing)
        return [gens[name] if e in dset else torch.Generator() for e, gens in enumerate(self.of)]


def draw_batches(task: Task, size: int, gens: Sequence[torch.Generator], drawing: Sequence[int], device):
    """One batch per distinct generator among ``drawing``; returns per-network batch (or None)."""
    by_gen: dict[int, Any] = {}
    out: list = [None] * len(gens)
    for e in drawing:
        key = id(gens[e])
        if key not in by_gen:
            by_gen[key] = task.batch(size, gens[e]).to(device)
        out[e] = by_gen[key]
    return out


def stack_inputs(batches: Sequence, n_inputs: int) -> tuple[Tensor, list[int]]:
    """Inputs for the ensemble: (batch, time, inputs) when all networks share one batch,
    else (networks, batch, max_time, inputs) zero-padded at the end (the networks are causal)."""
    present = [b for b in batches if b is not None]
    first = present[0]
    if all(b is first or b is None for b in batches):
        return first.inputs, [first.n_steps] * len(batches)
    t_max = max(b.n_steps for b in present)
    parts, lengths = [], []
    for b in batches:
        b = first if b is None else b
        x = b.inputs
        if b.n_steps < t_max:
            pad = torch.zeros(x.shape[0], t_max - b.n_steps, n_inputs, dtype=x.dtype, device=x.device)
            x = torch.cat([x, pad], dim=1)
        parts.append(x)
        lengths.append(b.n_steps)
    return torch.stack(parts), lengths


def member_trajectory(traj: Trajectory, e: int, steps: int) -> Trajectory:
    return Trajectory(traj.states[e, :, :steps], traj.rates[e, :, :steps], traj.outputs[e, :, :steps])


def member_weights(weights: Weights, e: int) -> Weights:
    return Weights(*(w[e] for w in weights))


# ---------------------------------------------------------------------- optimiser
class EnsembleOptimizer:
    """Adam or SGD (as ``torch.optim`` computes them) with a learning rate, eps and momentum
    per network, updating only the networks in a mask."""

    def __init__(self, params: list[torch.nn.Parameter], configs: Sequence[TrainConfig]) -> None:
        self.params = params
        self.kind = configs[0].optimizer
        p0 = params[0]
        vec = lambda vals: torch.tensor(vals, dtype=p0.dtype, device=p0.device)  # noqa: E731
        self.lr = vec([c.learning_rate for c in configs])
        self.eps = vec([c.adam_eps for c in configs])
        self.momentum = vec([c.momentum for c in configs])
        self.steps = [0] * len(configs)
        self.state = [{} for _ in params]

    @staticmethod
    def _col(v: Tensor, p: Tensor) -> Tensor:
        return v.view((-1,) + (1,) * (p.ndim - 1))

    @torch.no_grad()
    def step(self, update: Sequence[int]) -> None:
        n_nets = len(self.steps)
        mask_list = [False] * n_nets
        for e in update:
            mask_list[e] = True
            self.steps[e] += 1
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

    def member_state(self, e: int, member_params: list[torch.nn.Parameter], config: TrainConfig):
        """A ``torch.optim`` optimiser for network ``e``'s own parameters holding its state."""
        opt = make_optimizer(config, member_params)
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
