"""Memory anti-number (trainRNNbrain's ``MemoryAntiNumber``, seed 002).

A number ``x`` in ``[-max_number, max_number]`` is shown briefly, as its positive
and negative parts on two channels; after a memory period the network reports
``-x`` in the same two-channel code when the recall cue comes on. Trained networks
form line attractors (seed 002).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_positive
from ._memory import PERIODS, MemoryTask
from .base import Batch
from .registry import register

__all__ = ["MemoryAntiNumber"]


@register
class MemoryAntiNumber(MemoryTask):
    """Remember a number, recall its negative.

    Inputs (3): ``positive`` = ``max(x, 0)`` and ``negative`` = ``max(-x, 0)``
    during the stimulus; ``recall_cue`` = 1 during the recall period.

    Outputs (2, MSE, every step in the loss): ``anti_positive`` = ``max(-x, 0)``
    and ``anti_negative`` = ``max(x, 0)`` during the recall period, 0 before.

    ``x`` is drawn uniformly in ``[-max_number, max_number]``.

    Accuracy: fraction of trials whose decoded answer, the mean recall-period
    ``anti_positive - anti_negative``, is within ``tolerance`` of ``-x``.

    Parameters
    ----------
    dt_ms : float
    max_number : float > 0 (trainRNNbrain: 2)
    fixation_ms, stimulus_ms, jitter_ms, memory_ms, recall_ms : float
        See :class:`~neurornn.tasks._memory.MemoryTask`.
    tolerance : float > 0
    """

    name = "memory_anti_number"
    description = "Remember a number, report its negative after a delay (trainRNNbrain, seed 002), MSE"
    input_names = ("positive", "negative", "recall_cue")
    output_names = ("anti_positive", "anti_negative")

    def __init__(
        self,
        dt_ms: float = 10.0,
        max_number: float = 2.0,
        fixation_ms: float = 100.0,
        stimulus_ms: float = 100.0,
        jitter_ms: float = 100.0,
        memory_ms: float = 300.0,
        recall_ms: float = 200.0,
        tolerance: float = 0.2,
    ) -> None:
        super().__init__(dt_ms)
        self.max_number = float(check_positive("max_number", max_number))
        self.tolerance = float(check_positive("tolerance", tolerance))
        self._setup_timeline(fixation_ms, stimulus_ms, jitter_ms, memory_ms, recall_ms)
        self._params.update(max_number=self.max_number, tolerance=self.tolerance)

    def build(self, n: int, generator: torch.Generator) -> Batch:
        x = (2 * torch.rand(n, generator=generator) - 1) * self.max_number
        on, onset = self._stimulus_on(n, generator)
        rec = self.timeline.slice("recall")
        inputs = torch.zeros(n, self.n_steps, 3)
        inputs[..., 0] = on * x.clamp_min(0)[:, None]
        inputs[..., 1] = on * (-x).clamp_min(0)[:, None]
        inputs[:, rec, 2] = 1.0
        targets = torch.zeros(n, self.n_steps, 2)
        targets[:, rec, 0] = (-x).clamp_min(0)[:, None]
        targets[:, rec, 1] = x.clamp_min(0)[:, None]
        return Batch(inputs, targets, torch.ones(n, self.n_steps),
                     {"number": x, "stimulus_onset": onset.float()}, self._periods(n), PERIODS)

    def decode(self, outputs: Tensor) -> Tensor:
        """The reported number ``anti_positive - anti_negative`` averaged over recall, shape (batch,)."""
        rec = outputs[:, self.timeline.slice("recall"), :].mean(1)
        return rec[:, 0] - rec[:, 1]

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Trials whose decoded answer is within ``tolerance`` of ``-x``; mean absolute error."""
        err = (self.decode(outputs) + batch.conditions["number"]).abs()
        return {"accuracy": (err < self.tolerance).float().mean().item(), "mean_abs_error": err.mean().item()}
