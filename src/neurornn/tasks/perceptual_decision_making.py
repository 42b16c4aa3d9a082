"""Perceptual decision making (NeuroGym's PerceptualDecisionMaking; Yang & Wang 2020).

Two noisy stimulus channels, one per choice; the network holds fixation while the
stimulus is on and reports which channel is stronger in the decision period.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._validation import check_nonnegative
from ._common import ceiling_criterion, check_values
from .base import Batch, Task, ms_to_steps
from .registry import register

__all__ = ["PerceptualDecisionMaking"]

_PERIODS = ("fixation", "stimulus", "delay", "decision")


@register
class PerceptualDecisionMaking(Task):
    """Two-alternative forced choice on noisy evidence.

    Inputs (3): ``fixation`` (1 until the decision period), ``stimulus_1``,
    ``stimulus_2`` = ``0.5 +/- coherence / 200`` plus gaussian noise of std
    ``sigma / sqrt(dt_ms)`` per step, during the stimulus period (as NeuroGym).

    Outputs (3 classes, cross-entropy): ``fixation``, ``choice_1``, ``choice_2``;
    the target is fixation until the decision period, then the correct choice.

    Accuracy (seed 004): fraction of decision-period steps whose argmax output is
    the correct choice. The best possible accuracy is :meth:`accuracy_ceiling`
    (0.896 with the default timing: zero-coherence trials are at chance). The criterion,
    0.87 with the default settings, keeps that ratio to the ceiling for other
    coherences, stimulus durations and noise (0.728 for coherences (0, 51.2)).

    Parameters
    ----------
    dt_ms : float
    coherences : sequence of float, in percent (default NeuroGym's 0-51.2)
    sigma : float
        Input noise (NeuroGym's ``sigma``; per-step std ``sigma / sqrt(dt_ms)``).
    fixation_ms, stimulus_ms, delay_ms, decision_ms : float
        Period durations, multiples of ``dt_ms`` (NeuroGym's defaults).
    """

    name = "perceptual_decision_making"
    description = "2-choice decision on noisy evidence (NeuroGym / Yang 2020), cross-entropy"
    input_names = ("fixation", "stimulus_1", "stimulus_2")
    output_names = ("fixation", "choice_1", "choice_2")
    loss = "cross_entropy"
    # 0.87 on 1024 fresh trials, so that the network's true accuracy is >= 0.85: measured over model
    # seeds 0-3, stopping at 0.85 left two networks at 0.846-0.847 on 20,000 trials, stopping at 0.87
    # gave 0.865-0.884 after 100-300 steps (ceiling 0.896). Other settings scale it with the ceiling
    # (an instance's ``criterion``; see ``ceiling_criterion``).
    criterion = 0.87
    defaults = {
        "model": {"n_units": 128, "tau_ms": 100.0, "activation": "relu", "exc_fraction": 0.8,
                  "p_connect": 0.2, "w_rec_init": "gaussian", "w_rec_gain": 1.0},
        # eval_batch_size 1024: the accuracy criterion is checked on a fresh batch; 256 trials have a
        # sampling error of ~0.02.
        "train": {"steps": 3000, "batch_size": 64, "learning_rate": 0.01, "eval_batch_size": 1024},
    }

    def __init__(
        self,
        dt_ms: float = 20.0,
        coherences: tuple[float, ...] = (0.0, 6.4, 12.8, 25.6, 51.2),
        sigma: float = 1.0,
        fixation_ms: float = 100.0,
        stimulus_ms: float = 2000.0,
        delay_ms: float = 0.0,
        decision_ms: float = 100.0,
    ) -> None:
        super().__init__(dt_ms)
        coherences = check_values("coherences", coherences, low=0.0, high=100.0)
        self.coherences = coherences
        self.sigma = float(check_nonnegative("sigma", sigma))
        self.durations = {
            "fixation": ms_to_steps("fixation_ms", fixation_ms, self.dt_ms),
            "stimulus": ms_to_steps("stimulus_ms", stimulus_ms, self.dt_ms, allow_zero=False),
            "delay": ms_to_steps("delay_ms", delay_ms, self.dt_ms),
            "decision": ms_to_steps("decision_ms", decision_ms, self.dt_ms, allow_zero=False),
        }
        self._params.update(coherences=list(coherences), sigma=self.sigma, fixation_ms=fixation_ms,
                            stimulus_ms=stimulus_ms, delay_ms=delay_ms, decision_ms=decision_ms)
        self.criterion = ceiling_criterion(type(self).criterion, self.accuracy_ceiling(), _DEFAULT_CEILING)

    @property
    def n_steps(self) -> int:
        return sum(self.durations.values())

    def condition_values(self) -> dict[str, tuple]:
        signed = sorted({c * s for c in self.coherences for s in (1.0, -1.0)})
        return {"choice": (0, 1), "coherence": self.coherences, "signed_coherence": tuple(signed)}

    def build(self, n: int, generator: torch.Generator) -> Batch:
        steps = self.n_steps
        bounds, start = {}, 0
        for p in _PERIODS:
            bounds[p] = (start, start + self.durations[p])
            start += self.durations[p]
        choice = torch.randint(0, 2, (n,), generator=generator)  # 0 -> choice_1, 1 -> choice_2
        coh = torch.tensor(self.coherences)[torch.randint(0, len(self.coherences), (n,), generator=generator)]
        noise = torch.randn(n, steps, 2, generator=generator) * (self.sigma / math.sqrt(self.dt_ms))

        inputs = torch.zeros(n, steps, 3)
        inputs[:, : bounds["decision"][0], 0] = 1.0
        s0, s1 = bounds["stimulus"]
        sign = torch.where(choice == 0, 1.0, -1.0)
        strength = (coh / 200.0) * sign
        inputs[:, s0:s1, 1] = (0.5 + strength)[:, None] + noise[:, s0:s1, 0]
        inputs[:, s0:s1, 2] = (0.5 - strength)[:, None] + noise[:, s0:s1, 1]

        labels = torch.zeros(n, steps, dtype=torch.long)
        d0, d1 = bounds["decision"]
        labels[:, d0:d1] = (choice + 1)[:, None]
        targets = torch.nn.functional.one_hot(labels, 3).float()
        periods = torch.zeros(n, steps, dtype=torch.long)
        for i, p in enumerate(_PERIODS):
            periods[:, bounds[p][0] : bounds[p][1]] = i
        return Batch(
            inputs=inputs,
            targets=targets,
            mask=torch.ones(n, steps),
            conditions={"choice": choice, "coherence": coh, "signed_coherence": coh * sign},
            periods=periods,
            period_names=_PERIODS,
        )

    def evaluate(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """Decision-step accuracy (seed 004), trial accuracy at the last step, ceiling."""
        decision = batch.period_mask("decision")
        pred = outputs.argmax(-1)
        label = batch.targets.argmax(-1)
        acc = (pred == label)[decision].float().mean().item()
        last_choice = outputs[:, -1, 1:].argmax(-1)
        return {
            "accuracy": acc,
            "trial_accuracy": (last_choice == batch.conditions["choice"]).float().mean().item(),
            "ceiling": self.accuracy_ceiling(),
        }

    def accuracy_ceiling(self) -> float:
        """Ideal-observer accuracy (:func:`ideal_accuracy` of this task's settings)."""
        return ideal_accuracy(self.coherences, self.durations["stimulus"] * self.dt_ms, self.sigma)


def ideal_accuracy(coherences, stimulus_ms: float, sigma: float) -> float:
    """Ideal-observer accuracy: integrate the channel difference over the stimulus.

    The summed difference has mean ``n * coh / 100`` and std ``sqrt(2 n) sigma /
    sqrt(dt)`` over ``n`` stimulus steps, so P(correct | coh) =
    ``Phi(sqrt(stimulus_ms) coh / (100 sqrt(2) sigma))``; zero coherence is chance.
    """
    if sigma == 0:
        return sum(1.0 if c > 0 else 0.5 for c in coherences) / len(coherences)
    probs = []
    for c in coherences:
        z = math.sqrt(stimulus_ms) * c / (100.0 * math.sqrt(2.0) * sigma)
        probs.append(0.5 * (1.0 + math.erf(z / math.sqrt(2.0))))
    return sum(probs) / len(probs)


_DEFAULT_CEILING = ideal_accuracy((0.0, 6.4, 12.8, 25.6, 51.2), 2000.0, 1.0)
