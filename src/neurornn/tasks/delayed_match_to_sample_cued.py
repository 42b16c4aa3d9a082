"""Delayed match-to-sample, trainRNNbrain's version (seed 002, ``TaskDMTS``).

A sample stimulus on one of ``n_stimuli`` channels, a delay, a test stimulus on one
of the same channels, then a decision cue on its own channel: the network answers
on two outputs, ``match`` or ``non_match``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_int
from ._common import Timeline, to_steps
from .base import Batch, Task
from .registry import register

__all__ = ["DelayedMatchToSampleCued"]

_PERIODS = ("fixation", "sample", "delay", "test", "wait", "decision")


@register
class DelayedMatchToSampleCued(Task):
    """Match or non-match of two identity-coded stimuli, answered on a cue (seed 002).

    Inputs (``n_stimuli + 1``): ``stimulus_k`` = 1 while stimulus ``k`` is shown
    (the sample, then the test; each onset is jittered by an integer number of
    steps drawn uniformly in ``[-jitter_ms, jitter_ms)`` as trainRNNbrain's
    ``random_window``), and ``decision_cue`` = 1 during the decision period.

    Outputs (2, MSE, every step in the loss): ``match`` = 1 in the decision period
    when test == sample, ``non_match`` = 1 when they differ, 0 elsewhere. Half of the
    trials are matches.

    Accuracy: fraction of trials whose mean decision-period output is larger on the
    correct channel.

    Parameters
    ----------
    n_stimuli : int >= 2
    dt_ms : float
    fixation_ms, sample_ms, delay_ms, test_ms, wait_ms, decision_ms, jitter_ms : float
        Multiples of ``dt_ms``; ``jitter_ms`` must be at most ``fixation_ms`` and
        ``wait_ms`` and less than half of ``delay_ms`` (stimuli never overlap).
    """

    name = "delayed_match_to_sample_cued"
    description = "Delayed match-to-sample, identity-coded stimuli and a decision cue (trainRNNbrain, seed 002), MSE"
    output_names = ("match", "non_match")
    loss = "mse"
    criterion = 0.95
    defaults = {
        "model": {"n_units": 100, "tau_ms": 100.0, "activation": "relu", "w_rec_gain": 0.8},
        "train": {"steps": 3000, "batch_size": 64, "learning_rate": 0.003},
    }

    def __init__(
        self,
        n_stimuli: int = 2,
        dt_ms: float = 10.0,
        fixation_ms: float = 100.0,
        sample_ms: float = 100.0,
        delay_ms: float = 300.0,
        test_ms: float = 100.0,
        wait_ms: float = 100.0,
        decision_ms: float = 200.0,
        jitter_ms: float = 30.0,
    ) -> None:
        super().__init__(dt_ms)
        self.n_stimuli = check_int("n_stimuli", n_stimuli, minimum=2)
        s = to_steps({"fixation_ms": fixation_ms, "sample_ms": sample_ms, "delay_ms": delay_ms,
                      "test_ms": test_ms, "wait_ms": wait_ms, "decision_ms": decision_ms,
                      "jitter_ms": jitter_ms}, self.dt_ms, required=("sample", "test", "decision"))
        self.jitter_steps = s.pop("jitter")
        j = self.jitter_steps
        if j > s["fixation"] or j > s["wait"] or 2 * j >= max(s["delay"], 1):
            raise ValueError(
                f"jitter_ms={jitter_ms} is too large: it must be <= fixation_ms ({fixation_ms}) and wait_ms "
                f"({wait_ms}) and < delay_ms / 2 ({delay_ms} / 2), so that stimuli stay in the trial and apart"
            )
        self.timeline = Timeline(s)
        self.input_names = tuple(f"stimulus_{k}" for k in range(self.n_stimuli)) + ("decision_cue",)
        self._params.update(n_stimuli=n_stimuli, fixation_ms=fixation_ms, sample_ms=sample_ms, delay_ms=delay_ms,
                            test_ms=test_ms, wait_ms=wait_ms, decision_ms=decision_ms, jitter_ms=jitter_ms)

    @property
    def n_steps(self) -> int:
        return self.timeline.n_steps

    def condition_values(self) -> dict[str, tuple]:
        ks = tuple(float(k) for k in range(self.n_stimuli))
        return {"sample": ks, "test": ks, "match": (0.0, 1.0)}

    def build(self, n: int, generator: torch.Generator) -> Batch:
        tl, K, j = self.timeline, self.n_stimuli, self.jitter_steps
        sample = torch.randint(0, K, (n,), generator=generator)
        match = torch.rand(n, generator=generator) < 0.5
        other = (sample + torch.randint(1, K, (n,), generator=generator)) % K  # any stimulus but the sample
        test = torch.where(match, sample, other)
        if j > 0:
            offsets = torch.randint(-j, j, (n, 2), generator=generator)
        else:
            offsets = torch.zeros(n, 2, dtype=torch.long)
        t = torch.arange(tl.n_steps)[None, :]
        inputs = torch.zeros(n, tl.n_steps, K + 1)
        rows = torch.arange(n)
        for col, (period, which) in enumerate((("sample", sample), ("test", test))):
            a, b = tl.bounds[period]
            on = (t >= a + offsets[:, col : col + 1]) & (t < b + offsets[:, col : col + 1])  # (n, time)
            inputs[rows[:, None], t.expand(n, -1), which[:, None].expand(n, tl.n_steps)] += on.float()
        dec = tl.slice("decision")
        inputs[:, dec, K] = 1.0
        targets = torch.zeros(n, tl.n_steps, 2)
        targets[:, dec, 0] = match.float()[:, None]
        targets[:, dec, 1] = (~match).float()[:, None]
        return Batch(inputs, targets, torch.ones(n, tl.n_steps),
                     {"sample": sample.float(), "test": test.float(), "match": match.float()},
                     tl.periods(n), _PERIODS)

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Trials whose mean decision output is larger on the correct channel."""
        mean = outputs[:, self.timeline.slice("decision"), :].mean(1)
        predicted_match = mean[:, 0] > mean[:, 1]
        return {"accuracy": (predicted_match == batch.conditions["match"].bool()).float().mean().item()}
