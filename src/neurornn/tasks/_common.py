"""Helpers shared by the task files: trial timelines, choices and checks.

Private: tasks use these so that every task lays out its periods, validates its
durations and scores its outputs the same way.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import torch
from torch import Tensor

from .._validation import check_nonnegative, is_real, plain
from .base import ms_to_steps

__all__ = [
    "Timeline",
    "ceiling_criterion",
    "check_values",
    "choose",
    "sign_accuracy",
    "threshold_accuracy",
    "to_steps",
]


def ceiling_criterion(criterion: float, ceiling: float, default_ceiling: float) -> float:
    """A task's accuracy criterion for other settings: the same fraction of the ideal observer's.

    ``criterion`` was chosen for the default settings, whose best possible accuracy is
    ``default_ceiling``; with settings whose ceiling is ``ceiling`` (fewer coherences, a shorter
    stimulus, more noise) the criterion keeps the ratio, so that training can still reach it.
    """
    return round(criterion * ceiling / default_ceiling, 3)


def to_steps(durations_ms: dict[str, float], dt_ms: float, required: Iterable[str] = ()) -> dict[str, int]:
    """Convert ``{"stimulus_ms": 750, ...}`` into ``{"stimulus": 75, ...}`` steps.

    Every duration must be a non-negative multiple of ``dt_ms``; those named in
    ``required`` (without the ``_ms`` suffix) must be > 0.
    """
    required = set(required)
    steps = {}
    for key, ms in durations_ms.items():
        period = key[:-3] if key.endswith("_ms") else key
        steps[period] = ms_to_steps(key, ms, dt_ms, allow_zero=period not in required)
    return steps


class Timeline:
    """Consecutive periods of fixed length, the same for every trial.

    Parameters
    ----------
    steps : dict of period name -> number of steps, in trial order
        Periods of zero steps are kept in ``names`` (so period indices are stable)
        but occupy no time.
    """

    def __init__(self, steps: dict[str, int]) -> None:
        self.names = tuple(steps)
        self.bounds: dict[str, tuple[int, int]] = {}
        start = 0
        for name, n in steps.items():
            self.bounds[name] = (start, start + int(n))
            start += int(n)
        self.n_steps = start

    def slice(self, name: str) -> slice:
        """Time slice of period ``name``."""
        a, b = self.bounds[name]
        return slice(a, b)

    def periods(self, n: int) -> Tensor:
        """Period index of every step, shape (n, time), long."""
        out = torch.zeros(self.n_steps, dtype=torch.long)
        for i, name in enumerate(self.names):
            a, b = self.bounds[name]
            out[a:b] = i
        return out.expand(n, self.n_steps).clone()


def choose(values: Sequence[Any], n: int, generator: torch.Generator) -> Tensor:
    """``n`` values drawn uniformly from ``values`` (as a float tensor of shape (n,))."""
    table = torch.as_tensor(list(values), dtype=torch.float32)
    return table[torch.randint(0, len(table), (n,), generator=generator)]


def check_values(name: str, values: Any, *, low: float | None = None, high: float | None = None,
                 positive: bool = False) -> tuple[float, ...]:
    """A non-empty sequence of finite numbers, each in ``[low, high]`` (and > 0 if ``positive``)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of numbers, got {values!r}")
    out = []
    for v in values:
        if not is_real(v):
            raise TypeError(f"{name} must hold finite numbers, got {plain(v)!r}")
        if not math.isfinite(v):
            raise ValueError(f"{name} must hold finite numbers, got {v!r}")
        if positive and v <= 0:
            raise ValueError(f"{name} entries must be > 0, got {v!r}")
        if low is not None and v < low or high is not None and v > high:
            raise ValueError(f"{name} entries must be in [{low}, {high}], got {v!r}")
        out.append(float(v))
    if not out:
        raise ValueError(f"{name} must not be empty")
    return tuple(out)


def check_total(name: str, total_steps: int, trial_steps: int, dt_ms: float) -> None:
    """Raise if periods that must fit inside a trial of ``trial_steps`` do not."""
    if total_steps > trial_steps:
        raise ValueError(
            f"{name}: the periods take {total_steps * dt_ms:g} ms, longer than the trial "
            f"({trial_steps * dt_ms:g} ms)"
        )


def sign_accuracy(outputs: Tensor, batch_mask: Tensor, sign: Tensor, channel: int = 0) -> float:
    """Fraction of trials whose mean output over ``batch_mask`` steps has sign ``sign``.

    outputs (batch, time, n_outputs); batch_mask (batch, time) bool; sign (batch,) of +-1.
    """
    m = batch_mask.float()
    mean = (outputs[..., channel] * m).sum(1) / m.sum(1).clamp_min(1)
    return (torch.sign(mean) == sign).float().mean().item()


def threshold_accuracy(values: Tensor, go: Tensor, high: float, low: float) -> float:
    """Seed 003's score: a trial is right when its value is > ``high`` on go trials,
    < ``low`` on no-go trials. values, go: (batch,)."""
    correct = torch.where(go.bool(), values > high, values < low)
    return correct.float().mean().item()


def check_threshold_pair(high: float, low: float) -> tuple[float, float]:
    """Thresholds of seed 003 (``acc_amp_thresh``): need ``low < high``."""
    check_nonnegative("threshold_high", high)
    check_nonnegative("threshold_low", low)
    if not low < high:
        raise ValueError(f"threshold_low must be < threshold_high, got {low} >= {high}")
    return float(high), float(low)
