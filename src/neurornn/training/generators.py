"""The random generators of a run, and how the networks trained together draw from them.

A run has four independent generators derived from ``TrainConfig.seed``: training
trials, training noise, evaluation trials, evaluation noise. The noise generators
live on the model's device, so that the noise is drawn where the network runs.

Networks trained together whose generators are seeded alike share the same
generator objects, so they draw one trial batch and one noise draw per step (each
scaled by its own noise levels), exactly as their separate runs would draw them;
when their draws would diverge (one stops, or evaluates at a step the others do
not) the generators are split.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ..tasks.base import Task

__all__ = ["GENERATOR_NAMES", "make_generators", "Generators", "draw_batches", "stack_inputs"]

GENERATOR_NAMES = ("task", "noise", "eval_task", "eval_noise")


def make_generators(seed: int, device: str | torch.device = "cpu") -> dict[str, torch.Generator]:
    """The four independent generators of a run, derived from ``seed``.

    Keys: ``task`` (training trials), ``noise`` (network noise in training),
    ``eval_task`` and ``eval_noise`` (evaluation). Trials are drawn on the CPU; the
    noise generators live on ``device``.
    """
    states = np.random.SeedSequence(seed).generate_state(len(GENERATOR_NAMES), dtype=np.uint64)
    device = torch.device(device)
    return {name: torch.Generator(device=device if "noise" in name else "cpu").manual_seed(int(s))
            for name, s in zip(GENERATOR_NAMES, states)}


class Generators:
    """Per-network generators; networks seeded alike share the same objects until they diverge."""

    def __init__(self, seeds: Sequence[int], noise_patterns: Sequence[tuple], device: str | torch.device = "cpu"):
        made: dict[tuple, dict[str, torch.Generator]] = {}
        self.of: list[dict[str, torch.Generator]] = []
        for seed, pattern in zip(seeds, noise_patterns):
            gens = {}
            for name in GENERATOR_NAMES:
                key = (name, seed, pattern if "noise" in name else None)
                if key not in made:
                    made[key] = make_generators(seed, device)
                gens[name] = made[key][name]
            self.of.append(gens)

    def replace(self, e: int, gens: dict[str, torch.Generator]) -> None:
        """Network ``e`` draws from ``gens`` from now on (e.g. restored from its checkpoint)."""
        self.of[e] = dict(gens)

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
        return [gens[name] if e in dset else torch.Generator(device=gens[name].device)
                for e, gens in enumerate(self.of)]


def draw_batches(task: Task, size: int, gens: Sequence[torch.Generator], drawing: Sequence[int], device, *,
                 evaluation: bool = False):
    """One batch per distinct generator among ``drawing``; returns per-network batch (or None).

    With ``evaluation`` the batches are the task's evaluation trials (:meth:`Task.evaluation_batch`).
    """
    draw = task.evaluation_batch if evaluation else task.batch
    by_gen: dict[int, Any] = {}
    out: list = [None] * len(gens)
    for e in drawing:
        key = id(gens[e])
        if key not in by_gen:
            by_gen[key] = draw(size, gens[e]).to(device)
        out[e] = by_gen[key]
    return out


def stack_inputs(batches: Sequence, n_inputs: int) -> tuple[Tensor, list[int]]:
    """The inputs of one forward pass: (batch, time, inputs) when all networks share one batch,
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
