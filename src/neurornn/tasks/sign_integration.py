"""Sign integration (Williams et al. 2018, Fig. 3; the Keras guide, seed 000).

Forty steps of uniform noise in ``[-0.5, 0.5)`` shifted by ``+-0.2``; the network
reports the sign of the shift as ``+-3``. Discrete time (recommended model:
``tau_ms == dt_ms``, the Elman RNN of the seed).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import check_choice, check_int, check_nonnegative, check_positive
from .base import Batch, Task
from .registry import register

__all__ = ["SignIntegration"]

_PERIODS = ("stimulus",)
REPORTS = ("end", "every_step")


@register
class SignIntegration(Task):
    """Report the sign of the mean of a noisy sequence.

    Input (1): ``stimulus`` = ``U[-width/2, width/2) + sign * shift`` at each of
    ``n_steps`` steps.

    Output (1, MSE): ``sign`` = ``sign * amplitude``; scored at the last step only
    (``report="end"``, as the seed's Keras model returned its last output) or at
    every step (``report="every_step"``; the mask is 1 everywhere).

    Accuracy: fraction of trials whose last output has the sign of the shift. The
    best possible accuracy is :meth:`accuracy_ceiling` (~1.0 with the defaults).

    Parameters
    ----------
    n_steps : int (seed: 40)
    dt_ms : float
        Only sets the model's ``alpha`` with ``tau_ms``; the task lives in steps.
    shift : float >= 0 (seed: 0.2)
    width : float > 0 (seed: 1.0, noise in [-0.5, 0.5))
    amplitude : float > 0 (seed: 3)
    report : {"end", "every_step"}
    """

    name = "sign_integration"
    description = "Report the sign of 40 steps of shifted uniform noise as +-3 (Williams 2018, seed 000), MSE"
    input_names = ("stimulus",)
    output_names = ("sign",)
    loss = "mse"
    criterion = 0.95
    defaults = {
        "model": {"n_units": 50, "tau_ms": 1.0, "activation": "tanh", "w_rec_gain": 0.9},
        "train": {"steps": 1000, "batch_size": 64, "learning_rate": 0.003},
    }

    def __init__(
        self,
        n_steps: int = 40,
        dt_ms: float = 1.0,
        shift: float = 0.2,
        width: float = 1.0,
        amplitude: float = 3.0,
        report: str = "end",
    ) -> None:
        super().__init__(dt_ms)
        self.n_steps = check_int("n_steps", n_steps, minimum=1)
        self.shift = float(check_nonnegative("shift", shift))
        self.width = float(check_positive("width", width))
        self.amplitude = float(check_positive("amplitude", amplitude))
        self.report = check_choice("report", report, REPORTS)
        self._params.update(n_steps=n_steps, shift=self.shift, width=self.width, amplitude=self.amplitude,
                            report=report)

    def condition_values(self) -> dict[str, tuple]:
        return {"sign": (-1.0, 1.0)}

    def build(self, n: int, generator: torch.Generator) -> Batch:
        T = self.n_steps
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
        noise = (torch.rand(n, T, 1, generator=generator) - 0.5) * self.width
        inputs = noise + self.shift * sign[:, None, None]
        targets = (self.amplitude * sign)[:, None, None].expand(n, T, 1).clone()
        if self.report == "end":
            mask = torch.zeros(n, T)
            mask[:, -1] = 1.0
        else:
            mask = torch.ones(n, T)
        return Batch(inputs, targets, mask, {"sign": sign}, torch.zeros(n, T, dtype=torch.long), _PERIODS)

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Sign of the last output; MSE at the last step."""
        last = outputs[:, -1, 0]
        sign = batch.conditions["sign"]
        return {"accuracy": (torch.sign(last) == sign).float().mean().item(),
                "final_mse": ((last - batch.targets[:, -1, 0]) ** 2).mean().item(),
                "ceiling": self.accuracy_ceiling()}

    def accuracy_ceiling(self) -> float:
        """Ideal observer: the sign of the sum; central-limit approximation.

        The mean of ``n`` steps has std ``width / sqrt(12 n)``, so P(correct) ~=
        ``Phi(shift sqrt(12 n) / width)`` (0.5 with no shift).
        """
        z = self.shift * math.sqrt(12 * self.n_steps) / self.width
        return 0.5 * (1 + math.erf(z / math.sqrt(2)))
