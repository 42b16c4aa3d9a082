"""One network's bookkeeping in the training loop: its configs, run folder, metrics, weight history,
running sums, stop state and regularisers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ..models import RNN, Trajectory, Weights
from ..config.train import TrainConfig
from ..runs.history import WeightHistory

__all__ = ["Network", "LiveMember", "live_terms"]


@dataclass
class Network:
    """Network ``index`` of the model being trained (the model itself when it holds one)."""

    index: int
    config: TrainConfig
    writer: Any  # RunWriter or None
    metrics: Any  # runs.Metrics
    history: WeightHistory
    regularizers: list
    reg_names: list[str]
    acc_criterion: float | None
    loss_criterion: float | None
    accum: dict[str, Any] = field(default_factory=dict)
    active: bool = True
    stopped: str = "step_budget"
    final_step: int = 0
    bad_step: int | None = None
    last_good: int | None = None
    stop_wall: float = 0.0
    wall_before: float = 0.0
    resumed_from: int | None = None
    checkpointed: int | None = None

    def __post_init__(self) -> None:
        if not self.accum:
            self.reset_sums()

    def reset_sums(self) -> None:
        self.accum = {"n": 0, "loss": 0.0, "task_loss": 0.0, "grad_norm": 0.0, **{n: 0.0 for n in self.reg_names}}

    def add_step(self, loss, main, reg_values, grad_norm) -> None:
        """Sum one step's values (tensors: no host sync until the metrics row)."""
        acc = self.accum
        acc["n"] += 1
        acc["loss"] = acc["loss"] + loss.detach()
        acc["task_loss"] = acc["task_loss"] + main.detach()
        acc["grad_norm"] = acc["grad_norm"] + grad_norm.detach()
        for name, value in zip(self.reg_names, reg_values):
            acc[name] = acc[name] + value.detach()

    def mean_row(self, step: int) -> dict[str, Any]:
        """The training part of a metrics row: means since the last row (then reset)."""
        row: dict[str, Any] = {"step": step}
        n = self.accum["n"]
        for key in ("loss", "task_loss", *self.reg_names, "grad_norm"):
            row[key] = float(self.accum[key]) / n if n else None
        self.reset_sums()
        return row

    def criterion_met(self, row: dict[str, Any]) -> str | None:
        if self.acc_criterion is not None and row["accuracy"] >= self.acc_criterion:
            return "accuracy_criterion"
        if self.loss_criterion is not None and row["eval_loss"] <= self.loss_criterion:
            return "loss_criterion"
        return None

    def finish(self, step: int, reason: str, wall: float) -> None:
        self.active, self.stopped, self.final_step, self.stop_wall = False, reason, step, wall


class LiveMember(torch.nn.Module):
    """Network ``e`` of several as a regulariser sees it: a single-network RNN whose parameters
    :func:`live_terms` swaps for the stacked model's own slices (so gradients reach the weights
    being trained, never a copy)."""

    def __init__(self, proxy: RNN) -> None:
        super().__init__()
        self.proxy = proxy

    def forward(self, term, weights, trajectory):
        return term(self.proxy, weights, trajectory)


def live_terms(model: RNN, live: LiveMember, terms, weights: Weights, trajectory: Trajectory, e: int) -> list:
    """The regularisers of network ``e``, called with a model whose parameters are ``model``'s slices."""
    own = dict(live.proxy.named_parameters())
    params = {f"proxy.{name}": p[e] for name, p in model.named_parameters() if name in own}
    return [torch.func.functional_call(live, params, (term, weights, trajectory)) for term in terms]
