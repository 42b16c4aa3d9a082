"""Memory anti-angle (trainRNNbrain's ``MemoryAntiAngle``, seed 002; Driscoll et al. 2022).

An angle ``theta`` is shown briefly as ``(cos theta, sin theta)``; after a memory
period the network reports the opposite angle ``theta + 180 deg`` as
``(cos, sin)`` when the recall cue comes on. The circular code lets a ring
attractor form (seed 002).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import check_positive
from ._memory import PERIODS, MemoryTask
from .base import Batch
from .registry import register

__all__ = ["MemoryAntiAngle"]


@register
class MemoryAntiAngle(MemoryTask):
    """Remember an angle, recall the opposite one.

    Inputs (4): ``cos``, ``sin`` = ``amplitude * (cos theta, sin theta)`` during the
    stimulus; ``bias`` = 1 throughout (trainRNNbrain's constant channel);
    ``recall_cue`` = 1 during the recall period.

    Outputs (2, MSE, every step in the loss): ``anti_cos``, ``anti_sin`` =
    ``amplitude * (cos, sin)(theta + pi)`` during the recall period, 0 before.

    ``theta`` is uniform on the circle.

    Accuracy: fraction of trials whose decoded angle (``atan2`` of the mean recall
    output) is within ``tolerance_deg`` of ``theta + 180``.

    Parameters
    ----------
    dt_ms : float
    amplitude : float > 0
    fixation_ms, stimulus_ms, jitter_ms, memory_ms, recall_ms : float
        See :class:`~neurornn.tasks._memory.MemoryTask`.
    tolerance_deg : float in (0, 180)
    """

    name = "memory_anti_angle"
    description = "Remember an angle (cos, sin), report the opposite after a delay (trainRNNbrain, seed 002), MSE"
    input_names = ("cos", "sin", "bias", "recall_cue")
    output_names = ("anti_cos", "anti_sin")

    def __init__(
        self,
        dt_ms: float = 10.0,
        amplitude: float = 1.0,
        fixation_ms: float = 100.0,
        stimulus_ms: float = 100.0,
        jitter_ms: float = 100.0,
        memory_ms: float = 300.0,
        recall_ms: float = 200.0,
        tolerance_deg: float = 15.0,
    ) -> None:
        super().__init__(dt_ms)
        self.amplitude = float(check_positive("amplitude", amplitude))
        tol = check_positive("tolerance_deg", tolerance_deg)
        if tol >= 180:
            raise ValueError(f"tolerance_deg must be < 180, got {tolerance_deg!r}")
        self.tolerance_deg = float(tol)
        self._setup_timeline(fixation_ms, stimulus_ms, jitter_ms, memory_ms, recall_ms)
        self._params.update(amplitude=self.amplitude, tolerance_deg=self.tolerance_deg)

    def build(self, n: int, generator: torch.Generator) -> Batch:
        theta = 2 * math.pi * torch.rand(n, generator=generator)
        on, onset = self._stimulus_on(n, generator)
        rec = self.timeline.slice("recall")
        a = self.amplitude
        inputs = torch.zeros(n, self.n_steps, 4)
        inputs[..., 0] = on * (a * torch.cos(theta))[:, None]
        inputs[..., 1] = on * (a * torch.sin(theta))[:, None]
        inputs[..., 2] = 1.0
        inputs[:, rec, 3] = 1.0
        targets = torch.zeros(n, self.n_steps, 2)
        targets[:, rec, 0] = (a * torch.cos(theta + math.pi))[:, None]
        targets[:, rec, 1] = (a * torch.sin(theta + math.pi))[:, None]
        return Batch(inputs, targets, torch.ones(n, self.n_steps),
                     {"theta_deg": torch.rad2deg(theta), "stimulus_onset": onset.float()}, self._periods(n), PERIODS)

    def decode(self, outputs: Tensor) -> Tensor:
        """Reported angle in degrees in [0, 360), from the mean recall output, shape (batch,)."""
        rec = outputs[:, self.timeline.slice("recall"), :].mean(1)
        return torch.rad2deg(torch.atan2(rec[:, 1], rec[:, 0])) % 360

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Trials whose decoded angle is within ``tolerance_deg`` of ``theta + 180``; mean error."""
        want = (batch.conditions["theta_deg"] + 180) % 360
        err = ((self.decode(outputs) - want + 180) % 360 - 180).abs()
        return {"accuracy": (err < self.tolerance_deg).float().mean().item(), "mean_abs_error_deg": err.mean().item()}
