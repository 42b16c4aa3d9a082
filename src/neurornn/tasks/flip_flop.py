"""N-bit flip-flop (Sussillo & Barak 2013; trainRNNbrain's 3-bit flip-flop, seed 002).

Each input channel receives brief +1 or -1 pulses at random times; the matching
output must hold the sign of the last pulse on its channel (0 before the first).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._validation import check_int, check_positive
from ._common import to_steps
from .base import Batch, Task
from .registry import register

__all__ = ["FlipFlop"]

_PERIODS = ("hold", "pulse")


@register
class FlipFlop(Task):
    """N-bit flip-flop memory.

    Time is cut into slots of ``pulse_ms``; in each slot a pulse starts on each
    channel independently with probability ``pulse_rate_hz * pulse_ms / 1000``,
    with a random sign. So pulses on one channel never overlap, and on average a
    channel gets ``pulse_rate_hz`` pulses per second.

    Inputs (n_bits): ``input_k`` = +1 or -1 while a pulse is on, else 0.

    Outputs (n_bits, MSE): ``output_k`` = the sign of the last pulse on channel
    ``k`` from its onset on (0 before the first pulse). Every step is in the loss
    (``mask`` is all ones).

    Accuracy: fraction of scored (trial, step, bit) entries with ``|y - target| <
    0.5``; an entry is scored from its bit's first pulse on, except during the
    ``settle_ms`` after each pulse onset on that bit (the network needs a few steps
    to flip). ``trial_accuracy``: fraction of trials with every scored entry right.

    Parameters
    ----------
    n_bits : int
        Number of independent bits (channels), default 3.
    dt_ms : float
    duration_ms : float
        Trial length.
    pulse_ms : float
        Duration of one pulse (a multiple of ``dt_ms``).
    pulse_rate_hz : float
        Mean number of pulses per second on each channel; needs
        ``pulse_rate_hz * pulse_ms / 1000 <= 1``.
    settle_ms : float
        Unscored time after each pulse onset (>= ``pulse_ms`` is sensible).
    """

    name = "flip_flop"
    description = "N-bit flip-flop: hold the sign of the last pulse on each channel (Sussillo & Barak 2013), MSE"
    loss = "mse"
    # 0.98 of the scored entries: at 0.95 the default network stopped after 100 steps with only 0.62 of its
    # trials right at every step; at 0.98 seeds 0-2 stop after 150-300 steps with 0.84-0.91 (2,000 trials).
    criterion = 0.98
    defaults = {
        "model": {"n_units": 128, "tau_ms": 20.0, "activation": "tanh", "w_rec_gain": 0.9},
        "train": {"steps": 1500, "batch_size": 64, "learning_rate": 0.003},
    }

    def __init__(
        self,
        n_bits: int = 3,
        dt_ms: float = 10.0,
        duration_ms: float = 1000.0,
        pulse_ms: float = 20.0,
        pulse_rate_hz: float = 2.0,
        settle_ms: float = 50.0,
    ) -> None:
        super().__init__(dt_ms)
        self.n_bits = check_int("n_bits", n_bits, minimum=1)
        steps = to_steps({"duration_ms": duration_ms, "pulse_ms": pulse_ms, "settle_ms": settle_ms},
                         self.dt_ms, required=("duration", "pulse"))
        self.n_steps, self.pulse_steps, self.settle_steps = steps["duration"], steps["pulse"], steps["settle"]
        if self.pulse_steps > self.n_steps:
            raise ValueError(f"pulse_ms={pulse_ms} is longer than the trial (duration_ms={duration_ms})")
        if self.settle_steps >= self.n_steps:
            raise ValueError(f"settle_ms={settle_ms} must be shorter than the trial (duration_ms={duration_ms})")
        self.pulse_rate_hz = float(check_positive("pulse_rate_hz", pulse_rate_hz))
        self.p_slot = self.pulse_rate_hz * self.pulse_steps * self.dt_ms / 1000.0
        if self.p_slot > 1:
            raise ValueError(
                f"pulse_rate_hz={pulse_rate_hz} is impossible with pulse_ms={pulse_ms}: pulses would overlap "
                f"(need pulse_rate_hz * pulse_ms / 1000 <= 1, got {self.p_slot:g})"
            )
        self.input_names = tuple(f"input_{k}" for k in range(self.n_bits))
        self.output_names = tuple(f"output_{k}" for k in range(self.n_bits))
        self._params.update(n_bits=n_bits, duration_ms=duration_ms, pulse_ms=pulse_ms,
                            pulse_rate_hz=self.pulse_rate_hz, settle_ms=settle_ms)

    def condition_values(self) -> dict[str, tuple]:
        return {f"final_{k}": (-1.0, 0.0, 1.0) for k in range(self.n_bits)}

    def build(self, n: int, generator: torch.Generator) -> Batch:
        T, P, B = self.n_steps, self.pulse_steps, self.n_bits
        n_slots = T // P
        fire = torch.rand(n, n_slots, B, generator=generator) < self.p_slot
        sign = torch.where(torch.rand(n, n_slots, B, generator=generator) < 0.5, -1.0, 1.0)
        onset = torch.zeros(n, T, B)
        onset[:, torch.arange(n_slots) * P, :] = torch.where(fire, sign, torch.zeros(()))  # signed pulse onsets
        inputs = torch.zeros(n, T, B)
        for k in range(P):  # each pulse lasts P steps from its onset
            inputs[:, k : n_slots * P : P, :] = onset[:, 0 : n_slots * P : P, :]
        # Forward-fill the sign of the last onset (0 before the first).
        steps = torch.arange(T)[None, :, None].expand(n, T, B)
        last = torch.where(onset != 0, steps, torch.full_like(steps, -1)).cummax(dim=1).values
        targets = torch.where(last >= 0, onset.gather(1, last.clamp_min(0)), torch.zeros(()))
        periods = (inputs != 0).any(-1).long()
        return Batch(
            inputs=inputs,
            targets=targets,
            mask=torch.ones(n, T),
            conditions={"n_pulses": fire.sum((1, 2)).float(),
                        **{f"final_{k}": targets[:, -1, k].clone() for k in range(B)}},
            periods=periods,
            period_names=_PERIODS,
        )

    def scored(self, batch: Batch) -> Tensor:
        """Boolean (batch, time, n_bits): the entries the accuracy scores."""
        previous = torch.nn.functional.pad(batch.inputs, (0, 0, 1, 0))[:, :-1]
        onset = (batch.inputs != 0) & (batch.inputs != previous)  # a pulse starts or flips sign
        started = onset.cumsum(1) > 0
        settling = torch.zeros_like(started)
        for k in range(self.settle_steps):
            settling[:, k:] |= onset[:, : onset.shape[1] - k]
        return started & ~settling

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Entry accuracy (|y - target| < 0.5 on scored entries), trial accuracy, MSE."""
        scored = self.scored(batch)
        right = (outputs - batch.targets).abs() < 0.5
        n_scored = scored.sum().clamp_min(1)
        acc = (right & scored).sum() / n_scored
        trial_ok = ((right | ~scored).flatten(1).all(1)).float().mean()
        mse = ((outputs - batch.targets) ** 2).mean()
        return {"accuracy": acc.item(), "trial_accuracy": trial_ok.item(), "mse": mse.item()}
