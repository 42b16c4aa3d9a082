"""Regularisers as composable terms added to the task loss.

A regulariser is built from a spec ``{"kind": NAME, "strength": s, **params}``
(as written in ``TrainConfig.regularizers`` and ``config.yaml``) by the factory
registered under ``NAME``; the built term is called every training step as
``term(model, weights, trajectory) -> scalar tensor`` where ``weights`` are the
model's effective weights (:meth:`neurornn.RNN.effective_weights`) and
``trajectory`` the forward pass of the batch.

Register new kinds with :func:`register_regularizer`.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

from torch import Tensor

from .._validation import check_nonnegative, suggest
from ..config.regularizer_kinds import (built_in, register_regularizer, regularizer_factory, regularizer_kinds,
                                        regularizer_parameters, unregister_regularizer)
from ..models import RNN, Trajectory, Weights

__all__ = [
    "Regularizer",
    "register_regularizer",
    "unregister_regularizer",
    "build_regularizer",
    "regularizer_kinds",
    "regularizer_parameters",
    "l1_weights",
    "l2_weights",
    "l1_rates",
    "l2_rates",
]


class Regularizer(Protocol):
    """A loss term: ``term(model, weights, trajectory) -> scalar tensor``."""

    name: str

    def __call__(self, model: RNN, weights: Weights, trajectory: Trajectory) -> Tensor: ...


def build_regularizer(spec: Mapping[str, Any], model: RNN) -> Regularizer:
    """Build a term from ``{"kind": ..., "strength": ..., **params}``."""
    if not isinstance(spec, Mapping) or "kind" not in spec:
        raise ValueError(f"a regularizer spec must be a mapping with a 'kind', got {spec!r}")
    params = dict(spec)
    kind = params.pop("kind")
    kinds = regularizer_kinds()
    if kind not in kinds:
        raise ValueError(f"unknown regularizer kind {kind!r}{suggest(kind, kinds)}; known: {kinds}")
    strength = check_nonnegative(f"regularizer {kind!r} strength", params.pop("strength", 0.0))
    factory = regularizer_factory(kind)
    known = regularizer_parameters(kind)
    unknown = [name for name in params if name not in known]
    if unknown:
        raise ValueError(f"regularizer {kind!r}: unknown parameter {unknown[0]!r}{suggest(unknown[0], known)}; "
                         f"known: {known}")
    return factory(model, strength, **params)


class _WeightNorm:
    def __init__(self, name: str, strength: float, p: int, matrices: tuple[str, ...]) -> None:
        valid = ("w_in", "w_rec", "w_out")
        for m in matrices:
            if m not in valid:
                raise ValueError(f"regularizer matrices must be among {valid}, got {m!r}")
        self.name, self.strength, self.p, self.matrices = name, strength, p, tuple(matrices)

    def __call__(self, model: RNN, weights: Weights, trajectory: Trajectory) -> Tensor:
        total = 0.0
        for m in self.matrices:
            w = getattr(weights, m)
            total = total + (w.abs().sum() if self.p == 1 else (w**2).sum())
        return self.strength * total


@register_regularizer("l1_weights")
def l1_weights(model: RNN, strength: float, matrices=("w_rec",)) -> Regularizer:
    """``strength * sum |W|`` over the chosen effective matrices."""
    return _WeightNorm("l1_weights", strength, 1, tuple(matrices))


@register_regularizer("l2_weights")
def l2_weights(model: RNN, strength: float, matrices=("w_rec",)) -> Regularizer:
    """``strength * sum W^2`` over the chosen effective matrices."""
    return _WeightNorm("l2_weights", strength, 2, tuple(matrices))


class _RateNorm:
    def __init__(self, name: str, strength: float, p: int) -> None:
        self.name, self.strength, self.p = name, strength, p

    def __call__(self, model: RNN, weights: Weights, trajectory: Trajectory) -> Tensor:
        r = trajectory.rates
        return self.strength * (r.abs() if self.p == 1 else r**2).mean()


@register_regularizer("l2_rates")
def l2_rates(model: RNN, strength: float) -> Regularizer:
    """``strength * mean r^2`` over batch, time and units (metabolic cost)."""
    return _RateNorm("l2_rates", strength, 2)


@register_regularizer("l1_rates")
def l1_rates(model: RNN, strength: float) -> Regularizer:
    """``strength * mean |r|`` over batch, time and units (sparse activity)."""
    return _RateNorm("l1_rates", strength, 1)


built_in(("l1_weights", "l2_weights", "l2_rates", "l1_rates"))
