"""Go/no-go (seed 003: the CSHL tutorial's ``go-nogo`` task, after Kim, Li & Sejnowski 2019).

A go trial shows a stimulus pulse and the network must then raise its output to 1
until the end of the trial; a no-go trial shows nothing and the output must stay 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import is_real, plain
from ._common import Timeline, check_threshold_pair, threshold_accuracy, to_steps
from .base import Batch, Task
from .registry import register

__all__ = ["GoNoGo"]

_PERIODS = ("fixation", "stimulus", "response")


@register
class GoNoGo(Task):
    """Respond (output 1) after a stimulus, withhold (output 0) without one.

    Seed 003 in steps of ``dt = 1`` with ``tau = 20``: ``T = 100``,
    ``stim_on = 50``, ``stim_dur = 25``; here in ms with ``dt_ms = 1`` (so the
    recommended model has ``tau_ms = 20``).

    Input (1): ``stimulus`` = 1 during the stimulus period of go trials, else 0.

    Output (1, MSE, every step in the loss): ``response`` = 1 from the end of the
    stimulus to the end of the trial on go trials, 0 everywhere on no-go trials.

    Accuracy (seed 003): the mean output over the response period is classed "go"
    above ``threshold_high`` (0.8) and "no-go" below ``threshold_low`` (0.2); a
    trial is right when the class matches (an output in between is wrong).

    Parameters
    ----------
    dt_ms : float
    stim_on_ms, stim_ms, duration_ms : float
        Stimulus onset, stimulus duration and trial length (multiples of ``dt_ms``).
    go_probability : float in (0, 1)
    threshold_high, threshold_low : float
    """

    name = "go_no_go"
    description = "Go/no-go: respond after a stimulus, withhold without (CSHL tutorial, seed 003), MSE"
    input_names = ("stimulus",)
    output_names = ("response",)
    loss = "mse"
    criterion = 0.95
    defaults = {
        "model": {"n_units": 64, "tau_ms": 20.0, "activation": "sigmoid", "exc_fraction": 0.8,
                  "p_connect": 0.2, "w_rec_gain": 1.5, "sigma_pre": 0.01, "sigma_post": 0.01},
        "train": {"steps": 2000, "batch_size": 64, "learning_rate": 0.01},
    }

    def __init__(
        self,
        dt_ms: float = 1.0,
        stim_on_ms: float = 50.0,
        stim_ms: float = 25.0,
        duration_ms: float = 100.0,
        go_probability: float = 0.5,
        threshold_high: float = 0.8,
        threshold_low: float = 0.2,
    ) -> None:
        super().__init__(dt_ms)
        s = to_steps({"stim_on_ms": stim_on_ms, "stim_ms": stim_ms, "duration_ms": duration_ms},
                     self.dt_ms, required=("stim", "duration"))
        if s["stim_on"] + s["stim"] >= s["duration"]:
            raise ValueError(
                f"stim_on_ms + stim_ms ({stim_on_ms} + {stim_ms}) must end before duration_ms={duration_ms} "
                "(the response period would be empty)"
            )
        if not is_real(go_probability) or not 0 < go_probability < 1:
            raise ValueError(f"go_probability must be in (0, 1), got {plain(go_probability)!r}")
        self.go_probability = float(go_probability)
        self.threshold_high, self.threshold_low = check_threshold_pair(threshold_high, threshold_low)
        self.timeline = Timeline({"fixation": s["stim_on"], "stimulus": s["stim"],
                                  "response": s["duration"] - s["stim_on"] - s["stim"]})
        self._params.update(stim_on_ms=stim_on_ms, stim_ms=stim_ms, duration_ms=duration_ms,
                            go_probability=self.go_probability, threshold_high=self.threshold_high,
                            threshold_low=self.threshold_low)

    @property
    def n_steps(self) -> int:
        return self.timeline.n_steps

    def condition_values(self) -> dict[str, tuple]:
        return {"go": (0.0, 1.0)}

    def build(self, n: int, generator: torch.Generator) -> Batch:
        tl = self.timeline
        go = (torch.rand(n, generator=generator) < self.go_probability).float()
        inputs = torch.zeros(n, tl.n_steps, 1)
        inputs[:, tl.slice("stimulus"), 0] = go[:, None]
        targets = torch.zeros(n, tl.n_steps, 1)
        targets[:, tl.slice("response"), 0] = go[:, None]
        return Batch(inputs, targets, torch.ones(n, tl.n_steps), {"go": go}, tl.periods(n), _PERIODS)

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Seed 003's threshold accuracy on the mean response-period output."""
        mean = outputs[:, self.timeline.slice("response"), 0].mean(1)
        go = batch.conditions["go"]
        return {"accuracy": threshold_accuracy(mean, go, self.threshold_high, self.threshold_low)}
