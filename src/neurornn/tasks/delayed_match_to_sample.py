"""Delayed match-to-sample, seed 003's version (CSHL tutorial ``dmts``, after Kim et al. 2019).

Two stimuli of sign +1 or -1 arrive on two input channels, separated by a delay;
after a short gap the network outputs +1 if their signs match, -1 if not.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_positive
from ._common import Timeline, to_steps
from .base import Batch, Task
from .registry import register

__all__ = ["DelayedMatchToSample"]

_PERIODS = ("fixation", "sample", "delay", "test", "gap", "response", "end")


@register
class DelayedMatchToSample(Task):
    """Same or different: the sign of two stimuli separated by a delay (seed 003).

    Seed 003 in steps of ``dt = 1`` (``tau = 20``): ``T = 300``, ``stim_on = 50``,
    ``stim_dur = 50``, ``delay = 10``; the response window starts 10 steps after
    the second stimulus and lasts 100 steps. Here in ms with ``dt_ms = 1``.

    Inputs (2): ``sample`` = +-1 during the sample period, ``test`` = +-1 during the
    test period.

    Output (1, MSE, every step in the loss): ``match`` = +1 in the response window
    when the signs match, -1 when they differ, 0 elsewhere.

    Accuracy: a trial is right when its mean output over the response window is
    beyond ``threshold`` on the correct side (``target * mean > threshold``).
    Seed 003 tested ``|mean| > threshold``, which also counted confident wrong
    answers as right; ``seed_accuracy`` reports that score too.

    Parameters
    ----------
    dt_ms : float
    stim_on_ms, stim_ms, delay_ms, gap_ms, response_ms, duration_ms : float
        Multiples of ``dt_ms``; everything must fit in ``duration_ms``.
    threshold : float > 0
    """

    name = "delayed_match_to_sample"
    description = "Delayed match-to-sample on the sign of two stimuli (CSHL tutorial dmts, seed 003), MSE"
    input_names = ("sample", "test")
    output_names = ("match",)
    loss = "mse"
    criterion = 0.95
    defaults = {
        "model": {"n_units": 64, "tau_ms": 20.0, "activation": "sigmoid", "exc_fraction": 0.8,
                  "p_connect": 0.2, "w_rec_gain": 1.5},
        "train": {"steps": 3000, "batch_size": 64, "learning_rate": 0.01},
    }

    def __init__(
        self,
        dt_ms: float = 1.0,
        stim_on_ms: float = 50.0,
        stim_ms: float = 50.0,
        delay_ms: float = 10.0,
        gap_ms: float = 10.0,
        response_ms: float = 100.0,
        duration_ms: float = 300.0,
        threshold: float = 0.8,
    ) -> None:
        super().__init__(dt_ms)
        s = to_steps({"stim_on_ms": stim_on_ms, "stim_ms": stim_ms, "delay_ms": delay_ms, "gap_ms": gap_ms,
                      "response_ms": response_ms, "duration_ms": duration_ms}, self.dt_ms,
                     required=("stim", "response", "duration"))
        used = s["stim_on"] + 2 * s["stim"] + s["delay"] + s["gap"] + s["response"]
        if used > s["duration"]:
            raise ValueError(
                f"the periods (stim_on_ms + 2 stim_ms + delay_ms + gap_ms + response_ms = {used * self.dt_ms:g} ms) "
                f"do not fit in duration_ms={duration_ms}"
            )
        self.threshold = float(check_positive("threshold", threshold))
        self.timeline = Timeline({"fixation": s["stim_on"], "sample": s["stim"], "delay": s["delay"],
                                  "test": s["stim"], "gap": s["gap"], "response": s["response"],
                                  "end": s["duration"] - used})
        self._params.update(stim_on_ms=stim_on_ms, stim_ms=stim_ms, delay_ms=delay_ms, gap_ms=gap_ms,
                            response_ms=response_ms, duration_ms=duration_ms, threshold=self.threshold)

    @property
    def n_steps(self) -> int:
        return self.timeline.n_steps

    def condition_values(self) -> dict[str, tuple]:
        return {"sample": (-1.0, 1.0), "test": (-1.0, 1.0), "match": (0.0, 1.0)}

    def build(self, n: int, generator: torch.Generator) -> Batch:
        tl = self.timeline
        signs = torch.where(torch.rand(n, 2, generator=generator) < 0.5, 1.0, -1.0)
        match = (signs[:, 0] == signs[:, 1]).float()
        inputs = torch.zeros(n, tl.n_steps, 2)
        inputs[:, tl.slice("sample"), 0] = signs[:, :1]
        inputs[:, tl.slice("test"), 1] = signs[:, 1:]
        targets = torch.zeros(n, tl.n_steps, 1)
        targets[:, tl.slice("response"), 0] = (2 * match - 1)[:, None]
        return Batch(inputs, targets, torch.ones(n, tl.n_steps),
                     {"sample": signs[:, 0].clone(), "test": signs[:, 1].clone(), "match": match},
                     tl.periods(n), _PERIODS)

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Signed threshold accuracy on the mean response-window output (and seed 003's |mean|)."""
        mean = outputs[:, self.timeline.slice("response"), 0].mean(1)
        target = 2 * batch.conditions["match"] - 1
        return {
            "accuracy": (target * mean > self.threshold).float().mean().item(),
            "seed_accuracy": (mean.abs() > self.threshold).float().mean().item(),
        }
