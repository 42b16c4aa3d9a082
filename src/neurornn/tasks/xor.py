"""XOR of two binary stimuli (named among seed 003's tasks).

Each of two input channels carries a pulse or not; after a delay the network must
output 1 when exactly one pulse was shown and 0 otherwise, the classic problem a
linear readout of the inputs cannot solve.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import is_real, plain
from ._common import Timeline, check_threshold_pair, threshold_accuracy, to_steps
from .base import Batch, Task
from .registry import register

__all__ = ["XOR"]

_PERIODS = ("fixation", "stimulus", "delay", "response")


@register
class XOR(Task):
    """Respond 1 when exactly one of two stimuli was on, 0 otherwise.

    Inputs (2): ``stimulus_a``, ``stimulus_b`` = ``amplitude`` during the stimulus
    period if that stimulus is on (each on with probability 1/2), else 0.

    Output (1, MSE, every step in the loss): ``response`` = ``a XOR b`` during the
    response period, 0 before.

    Accuracy (as seed 003's go/no-go): the mean response-period output is classed 1
    above ``threshold_high`` and 0 below ``threshold_low``; right when it matches.

    Parameters
    ----------
    dt_ms : float
    fixation_ms, stimulus_ms, delay_ms, response_ms : float (multiples of ``dt_ms``)
    amplitude : float > 0
    threshold_high, threshold_low : float
    """

    name = "xor"
    description = "XOR of two binary stimuli after a delay (seed 003's list), MSE"
    input_names = ("stimulus_a", "stimulus_b")
    output_names = ("response",)
    loss = "mse"
    criterion = 0.95
    defaults = {
        "model": {"n_units": 64, "tau_ms": 20.0, "activation": "relu", "w_rec_gain": 0.8},
        "train": {"steps": 2000, "batch_size": 64, "learning_rate": 0.003},
    }

    def __init__(
        self,
        dt_ms: float = 5.0,
        fixation_ms: float = 50.0,
        stimulus_ms: float = 50.0,
        delay_ms: float = 50.0,
        response_ms: float = 100.0,
        amplitude: float = 1.0,
        threshold_high: float = 0.8,
        threshold_low: float = 0.2,
    ) -> None:
        super().__init__(dt_ms)
        s = to_steps({"fixation_ms": fixation_ms, "stimulus_ms": stimulus_ms, "delay_ms": delay_ms,
                      "response_ms": response_ms}, self.dt_ms, required=("stimulus", "response"))
        if not is_real(amplitude) or not math.isfinite(amplitude) or amplitude <= 0:
            raise ValueError(f"amplitude must be a number > 0, got {plain(amplitude)!r}")
        self.amplitude = float(amplitude)
        self.threshold_high, self.threshold_low = check_threshold_pair(threshold_high, threshold_low)
        self.timeline = Timeline(s)
        self._params.update(fixation_ms=fixation_ms, stimulus_ms=stimulus_ms, delay_ms=delay_ms,
                            response_ms=response_ms, amplitude=self.amplitude,
                            threshold_high=self.threshold_high, threshold_low=self.threshold_low)

    @property
    def n_steps(self) -> int:
        return self.timeline.n_steps

    def condition_values(self) -> dict[str, tuple]:
        return {"a": (0.0, 1.0), "b": (0.0, 1.0), "xor": (0.0, 1.0)}

    def build(self, n: int, generator: torch.Generator) -> Batch:
        tl = self.timeline
        bits = (torch.rand(n, 2, generator=generator) < 0.5).float()
        xor = (bits[:, 0] != bits[:, 1]).float()
        inputs = torch.zeros(n, tl.n_steps, 2)
        inputs[:, tl.slice("stimulus"), :] = self.amplitude * bits[:, None, :]
        targets = torch.zeros(n, tl.n_steps, 1)
        targets[:, tl.slice("response"), 0] = xor[:, None]
        return Batch(inputs, targets, torch.ones(n, tl.n_steps),
                     {"a": bits[:, 0].clone(), "b": bits[:, 1].clone(), "xor": xor}, tl.periods(n), _PERIODS)

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Threshold accuracy on the mean response-period output."""
        mean = outputs[:, self.timeline.slice("response"), 0].mean(1)
        return {"accuracy": threshold_accuracy(mean, batch.conditions["xor"], self.threshold_high,
                                               self.threshold_low)}
