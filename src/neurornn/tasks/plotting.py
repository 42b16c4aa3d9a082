"""Figures of a task: an example batch with its inputs, targets, mask and periods.

Drawn on :class:`matplotlib.figure.Figure` (no pyplot state); save with
:func:`neurornn.plotting.save_figure`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .._validation import check_int
from ..plotting import new_figure
from .base import Batch, Task

if TYPE_CHECKING:  # matplotlib is imported by the drawing itself (see neurornn.plotting)
    from matplotlib.figure import Figure

__all__ = ["plot_task_batch", "describe_batch"]

_PERIOD_COLORS = ("#f2f2f2", "#dbe9f6", "#fde9d9", "#e2f0d9", "#ece2f0", "#fff2cc", "#e7e6e6", "#d9ead3")


def _shade_periods(ax, periods: np.ndarray, names: tuple[str, ...], time_ms: np.ndarray, dt_ms: float,
                   label: bool) -> None:
    start = 0
    for t in range(1, len(periods) + 1):
        if t == len(periods) or periods[t] != periods[start]:
            k = int(periods[start])
            ax.axvspan(time_ms[start] - dt_ms / 2, time_ms[t - 1] + dt_ms / 2,
                       color=_PERIOD_COLORS[k % len(_PERIOD_COLORS)], lw=0, zorder=0)
            if label and k < len(names) and (t - start) >= 0.08 * len(periods):
                ax.text((time_ms[start] + time_ms[t - 1]) / 2, 1.0, names[k], transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=7, clip_on=False)
            start = t


def plot_task_batch(task: Task, batch: Batch, n_trials: int = 3, outputs: torch.Tensor | None = None) -> Figure:
    """Inputs, targets (and outputs) and the loss mask of a few trials, periods shaded.

    Parameters
    ----------
    task : Task
    batch : Batch with inputs (batch, time, n_inputs), targets (batch, time, n_outputs)
    n_trials : int
        Trials shown, one column each.
    outputs : Tensor of shape (batch, time, n_outputs), optional
        Network outputs drawn over the targets (dashed).
    """
    check_int("n_trials", n_trials, minimum=1)
    n = min(n_trials, batch.n_trials)
    fig = new_figure(3.6 * n + 1.0, 6.5)
    axes = fig.subplots(3, n, sharex="col", squeeze=False, gridspec_kw={"height_ratios": [3, 3, 1]})
    time_ms = np.arange(batch.n_steps) * task.dt_ms
    for j in range(n):
        for i, (data, names, ylabel) in enumerate(((batch.inputs, task.input_names, "inputs"),
                                                   (batch.targets, task.output_names, "targets"))):
            ax = axes[i, j]
            if batch.periods is not None:
                _shade_periods(ax, batch.periods[j].numpy(), batch.period_names, time_ms, task.dt_ms, label=i == 0)
            values = data[j].detach().cpu().numpy()
            for k in range(values.shape[1]):
                ax.plot(time_ms, values[:, k], lw=1.2, label=names[k] if k < len(names) else str(k))
            if i == 1 and outputs is not None:
                ax.set_prop_cycle(None)
                out = outputs[j].detach().cpu().numpy()
                for k in range(out.shape[1]):
                    ax.plot(time_ms, out[:, k], lw=1.0, ls="--")
            if j == 0:
                ax.set_ylabel(ylabel)
            if j == n - 1 and values.shape[1] <= 10:
                ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
        ax = axes[2, j]
        ax.fill_between(time_ms, batch.mask[j].numpy(), step="mid", color="0.4")
        ax.set_ylim(0, 1.05 * max(1.0, float(batch.mask.max())))
        ax.set_xlabel("time (ms)")
        if j == 0:
            ax.set_ylabel("mask")
        items = [f"{k}={v[j].item():.3g}" for k, v in list(batch.conditions.items())[:4]]
        conds = "\n".join(", ".join(items[i : i + 2]) for i in range(0, len(items), 2))
        axes[0, j].set_title(f"trial {j}\n{conds}", fontsize=7, pad=12)
    fig.suptitle(f"{task.name}: {task.description}", fontsize=9)
    return fig


def describe_batch(task: Task, batch: Batch) -> str:
    """A text summary: shapes, periods (in ms) and the conditions of a batch."""
    lines = [
        f"task {task.name}: {task.description}",
        f"loss {task.loss}, criterion {task.criterion}, dt_ms {task.dt_ms:g}",
        f"parameters: {task.params()}",
        f"inputs  {tuple(batch.inputs.shape)}  (batch, time, n_inputs)  {list(task.input_names)}",
        f"targets {tuple(batch.targets.shape)}  (batch, time, n_outputs) {list(task.output_names)}",
        f"mask    {tuple(batch.mask.shape)}  (batch, time), scored steps per trial: "
        f"{batch.mask.gt(0).sum(1).float().mean().item():.1f} of {batch.n_steps}",
    ]
    if batch.periods is not None and batch.period_names:
        parts = []
        for k, name in enumerate(batch.period_names):
            steps = (batch.periods[0] == k).nonzero().flatten()
            if len(steps) and steps[-1] - steps[0] + 1 == len(steps):
                parts.append(f"{name} {steps[0].item() * task.dt_ms:g}-{(steps[-1].item() + 1) * task.dt_ms:g} ms")
            elif len(steps):
                parts.append(f"{name} {len(steps) * task.dt_ms:g} ms in pieces")
        lines.append("periods (trial 0): " + ", ".join(parts))
    for name, values in batch.conditions.items():
        uniq = torch.unique(values)
        shown = ", ".join(f"{v:.3g}" for v in uniq[:8].tolist()) + (" ..." if len(uniq) > 8 else "")
        lines.append(f"condition {name}: {len(uniq)} distinct values [{shown}]")
    return "\n".join(lines)
