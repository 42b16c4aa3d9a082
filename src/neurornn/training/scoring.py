"""Scoring a network on fresh trials: the evaluations of the loop and the held-out score of a run.

The held-out score is taken once, of the final network, on trials drawn from
generators of its own (derived from ``TrainConfig.seed`` apart from the four of
the run), so that no stopping decision saw them: the last evaluation decided when
training stopped, and is biased upward by that choice.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models import RNN
from ..ops.losses import task_loss
from ..tasks.base import Task
from ._setup import metric_columns

__all__ = ["evaluate", "heldout_generators", "heldout_scores"]

_HELDOUT = 0x4E1D  # mixed into the seed: streams apart from the run's four


def evaluate(
    model: RNN,
    task: Task,
    n_trials: int,
    generator: torch.Generator | None = None,
    noise_generator: torch.Generator | None = None,
    *,
    noise: bool = True,
    loss: str | None = None,
) -> dict[str, float]:
    """Score ``model`` on a fresh batch of ``n_trials`` trials (no gradients).

    Returns the task's scores (``accuracy``, ...) and ``eval_loss`` (the masked
    task loss).
    """
    device = model.alpha.device
    batch = task.evaluation_batch(n_trials, generator).to(device)
    with torch.no_grad():
        traj = model(batch.inputs, noise=noise, generator=noise_generator)
        value = task_loss(loss or task.loss, traj.outputs, batch.targets, batch.mask)
        scores = task.scores(traj.outputs, batch)
    return {"eval_loss": float(value), **metric_columns(scores)}


def heldout_generators(seed: int, device: str | torch.device = "cpu") -> tuple[torch.Generator, torch.Generator]:
    """The trial (CPU) and noise (``device``) generators of a run's held-out score."""
    trials, noise = np.random.SeedSequence([seed, _HELDOUT]).generate_state(2, dtype=np.uint64)
    return (torch.Generator().manual_seed(int(trials)),
            torch.Generator(device=torch.device(device)).manual_seed(int(noise)))


def heldout_scores(model: RNN, task: Task, n_trials: int, seed: int, *, noise: bool, loss: str | None) -> dict:
    """``model``'s scores on ``n_trials`` held-out trials (see the module docstring)."""
    trials, noise_gen = heldout_generators(seed, model.alpha.device)
    return evaluate(model, task, n_trials, trials, noise_gen, noise=noise, loss=loss)
