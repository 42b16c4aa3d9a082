"""Context-dependent decision making (Mante, Sussillo, Shenoy & Newsome 2013).

Seeds 002 (trainRNNbrain's CDDM) and 003 (the CSHL ``mante`` task): two noisy
sensory streams (motion and colour coherence) and two context cues; the network
reports the sign of the coherence of the cued modality and ignores the other.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import check_nonnegative
from ._common import Timeline, ceiling_criterion, check_values, choose, sign_accuracy, to_steps
from .base import Batch, Task
from .registry import register

__all__ = ["ContextDependentDM"]

_PERIODS = ("fixation", "stimulus", "delay", "decision")


@register
class ContextDependentDM(Task):
    """Context-dependent integration of one of two noisy evidence streams.

    Inputs (4): ``motion``, ``colour`` = signed coherence plus gaussian noise of
    std ``sigma / sqrt(dt_ms)`` per step during the stimulus period (0 otherwise);
    ``context_motion``, ``context_colour`` = 1 for the cued modality during the
    whole trial (the cue comes on at the start of fixation, as in Mante 2013).

    Output (1, MSE): ``choice`` = 0 before the decision period, then ``+1`` or
    ``-1``: the sign of the cued modality's coherence. The loss mask is 1 on every
    step except the first ``grace_ms`` of the decision period.

    Accuracy: fraction of trials whose mean output over the decision period has the
    correct sign. The best possible accuracy (an ideal integrator of the cued
    stream) is :meth:`accuracy_ceiling`; the criterion, 0.93 with the default settings,
    keeps its ratio to the ceiling for other coherences, durations and noise.

    Parameters
    ----------
    dt_ms : float
    coherences : sequence of float > 0
        Unsigned coherences; each modality draws ``+-c`` independently per trial.
    sigma : float
        Input noise (per-step std ``sigma / sqrt(dt_ms)``).
    fixation_ms, stimulus_ms, delay_ms, decision_ms, grace_ms : float
        Multiples of ``dt_ms``; ``grace_ms`` < ``decision_ms``.
    """

    name = "context_dependent_dm"
    description = "Mante 2013 context-dependent decision: report the cued one of two noisy streams, MSE"
    input_names = ("motion", "colour", "context_motion", "context_colour")
    output_names = ("choice",)
    loss = "mse"
    criterion = 0.93
    # eval_batch_size 1024: trial accuracy near the criterion; 256 trials leave a sampling error of ~0.016.
    defaults = {
        "model": {"n_units": 128, "tau_ms": 100.0, "activation": "relu", "w_rec_gain": 0.8},
        "train": {"steps": 2000, "batch_size": 64, "learning_rate": 0.003, "eval_batch_size": 1024},
    }

    def __init__(
        self,
        dt_ms: float = 20.0,
        coherences: tuple[float, ...] = (0.05, 0.15, 0.5),
        sigma: float = 1.0,
        fixation_ms: float = 100.0,
        stimulus_ms: float = 800.0,
        delay_ms: float = 0.0,
        decision_ms: float = 300.0,
        grace_ms: float = 100.0,
    ) -> None:
        super().__init__(dt_ms)
        self.coherences = check_values("coherences", coherences, low=0.0, high=10.0, positive=True)
        self.sigma = float(check_nonnegative("sigma", sigma))
        steps = to_steps({"fixation_ms": fixation_ms, "stimulus_ms": stimulus_ms, "delay_ms": delay_ms,
                          "decision_ms": decision_ms}, self.dt_ms, required=("stimulus", "decision"))
        self.timeline = Timeline(steps)
        self.grace_steps = to_steps({"grace_ms": grace_ms}, self.dt_ms)["grace"]
        if self.grace_steps >= steps["decision"]:
            raise ValueError(f"grace_ms={grace_ms} must be shorter than decision_ms={decision_ms}")
        self._params.update(coherences=list(self.coherences), sigma=self.sigma, fixation_ms=fixation_ms,
                            stimulus_ms=stimulus_ms, delay_ms=delay_ms, decision_ms=decision_ms,
                            grace_ms=grace_ms)
        self.criterion = ceiling_criterion(type(self).criterion, self.accuracy_ceiling(), _DEFAULT_CEILING)

    @property
    def n_steps(self) -> int:
        return self.timeline.n_steps

    def signed_coherences(self) -> tuple[float, ...]:
        return tuple(sorted([-c for c in self.coherences] + list(self.coherences)))

    def condition_values(self) -> dict[str, tuple]:
        signed = self.signed_coherences()
        return {"context": (0.0, 1.0), "motion_coherence": signed, "colour_coherence": signed,
                "choice": (-1.0, 1.0)}

    def build(self, n: int, generator: torch.Generator) -> Batch:
        tl, T = self.timeline, self.n_steps
        signed = self.signed_coherences()
        motion = choose(signed, n, generator)
        colour = choose(signed, n, generator)
        context = torch.randint(0, 2, (n,), generator=generator).float()  # 0: motion, 1: colour
        noise = torch.randn(n, T, 2, generator=generator) * (self.sigma / math.sqrt(self.dt_ms))
        relevant = torch.where(context == 0, motion, colour)
        choice = torch.sign(relevant)

        inputs = torch.zeros(n, T, 4)
        stim = tl.slice("stimulus")
        inputs[:, stim, 0] = motion[:, None] + noise[:, stim, 0]
        inputs[:, stim, 1] = colour[:, None] + noise[:, stim, 1]
        inputs[:, :, 2] = (context == 0).float()[:, None]
        inputs[:, :, 3] = (context == 1).float()[:, None]
        targets = torch.zeros(n, T, 1)
        dec = tl.slice("decision")
        targets[:, dec, 0] = choice[:, None]
        mask = torch.ones(n, T)
        mask[:, dec.start : dec.start + self.grace_steps] = 0.0
        return Batch(
            inputs=inputs,
            targets=targets,
            mask=mask,
            conditions={"context": context, "motion_coherence": motion, "colour_coherence": colour,
                        "choice": choice},
            periods=tl.periods(n),
            period_names=_PERIODS,
        )

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Sign of the mean decision-period output; ceiling of an ideal integrator."""
        acc = sign_accuracy(outputs, batch.period_mask("decision"), batch.conditions["choice"])
        return {"accuracy": acc, "ceiling": self.accuracy_ceiling()}

    def accuracy_ceiling(self) -> float:
        """Ideal-observer accuracy (:func:`ideal_accuracy` of this task's settings)."""
        a, b = self.timeline.bounds["stimulus"]
        return ideal_accuracy(self.coherences, (b - a) * self.dt_ms, self.sigma)


def ideal_accuracy(coherences, stimulus_ms: float, sigma: float) -> float:
    """Ideal observer: integrate the cued stream over the stimulus period.

    The sum over ``n`` steps has mean ``n c`` and std ``sqrt(n) sigma / sqrt(dt)``,
    so P(correct | c) = ``Phi(sqrt(stimulus_ms) c / sigma)``.
    """
    if sigma == 0:
        return 1.0
    z = [math.sqrt(stimulus_ms) * c / sigma for c in coherences]
    return sum(0.5 * (1 + math.erf(v / math.sqrt(2))) for v in z) / len(z)


_DEFAULT_CEILING = ideal_accuracy((0.05, 0.15, 0.5), 800.0, 1.0)
