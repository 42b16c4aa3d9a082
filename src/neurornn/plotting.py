"""Figures, drawn on :class:`matplotlib.figure.Figure` objects (no pyplot state).

Every function returns a ``Figure``; :func:`save_figure` writes it (Agg canvas)
without ever overwriting an existing file unless asked. No figure touches pyplot's
global state, and text layout done outside a draw (``tight_layout``, ``bbox_inches="tight"``)
holds the lock matplotlib holds while drawing (:func:`drawing_lock`), so figures can be
drawn from several threads at once (a notebook still shows a returned ``Figure``).
matplotlib is imported by the drawing functions only: importing neurornn, or
training without figures, never loads it.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._files import write_bytes
from ._validation import check_int

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure", "plot_training_curves", "plot_example_trials", "shade_mask"]

_FALLBACK_LOCK = threading.RLock()


def drawing_lock() -> Any:
    """The lock that serialises text layout across threads (a re-entrant lock).

    matplotlib's font and mathtext caches are shared by every figure, so
    ``Figure.draw`` holds a class-wide lock (``Figure._render_lock``) while it
    draws. Layout computed outside a draw (``tight_layout``, the bounding box of
    ``bbox_inches="tight"``) measures text too and must hold the same lock, or two
    threads parse mathtext (log-axis tick labels) at once and one fails.
    """
    from matplotlib.figure import Figure

    return getattr(Figure, "_render_lock", _FALLBACK_LOCK)


def tight_layout(fig: Figure) -> None:
    """``fig.tight_layout()`` under :func:`drawing_lock`."""
    with drawing_lock():
        fig.tight_layout()


def new_figure(width: float = 6.0, height: float = 4.0, **kwargs: Any) -> Figure:
    """A ``Figure`` with an Agg canvas attached (usable without pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: int = 120, overwrite: bool = False) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix: png, pdf, svg); returns the path.

    Raises ``FileExistsError`` if the file exists and ``overwrite`` is False.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib.figure.Figure, got {type(fig).__name__}")
    path = Path(path)
    if path.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ValueError(f"figure path must end in .png, .pdf or .svg, got {str(path)!r}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buf = io.BytesIO()
    with drawing_lock():
        fig.savefig(buf, format=path.suffix.lower()[1:], dpi=dpi, bbox_inches="tight")
    return write_bytes(path, buf.getvalue())


def plot_training_curves(metrics: Any, title: str | None = None, criterion: float | None = None) -> Figure:
    """Loss (training and evaluation, log scale) and accuracy against training step.

    Parameters
    ----------
    metrics : neurornn.runs.Metrics (or anything indexable by column name)
    title : str, optional
    criterion : float, optional
        Accuracy criterion, drawn as a dotted line.
    """
    fig = new_figure(9.0, 3.5)
    ax_loss, ax_acc = fig.subplots(1, 2)
    steps = metrics["step"]
    style = {"marker": "o", "markersize": 3} if len(steps) <= 30 else {}
    for col, label in (("loss", "training loss"), ("task_loss", "training task loss"), ("eval_loss", "evaluation loss")):
        if col in metrics.columns:
            y = metrics[col]
            ok = np.isfinite(y) & (y > 0)
            if ok.any():
                ax_loss.plot(steps[ok], y[ok], label=label, **style)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("training step")
    ax_loss.set_ylabel("loss")
    ax_loss.legend(fontsize=8)
    if "accuracy" in metrics.columns:
        ax_acc.plot(steps, metrics["accuracy"], color="C3", label="evaluation accuracy", **style)
    if "ceiling" in metrics.columns:
        ax_acc.axhline(float(np.nanmax(metrics["ceiling"])), color="gray", ls="--", label="ceiling")
    if criterion is not None:
        ax_acc.axhline(float(criterion), color="C3", ls=":", label="criterion")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_acc.set_xlabel("training step")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title)
    tight_layout(fig)
    return fig


def shade_mask(ax: Any, time_ms: np.ndarray, mask: np.ndarray, color: str = "0.9") -> None:
    """Shade on ``ax`` the spans of ``time_ms`` where ``mask`` (time,) is > 0."""
    on = np.asarray(mask) > 0
    if not on.any():
        return
    dt = time_ms[1] - time_ms[0] if len(time_ms) > 1 else 1.0
    edges = np.diff(np.concatenate([[0], on.astype(int), [0]]))
    for start, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
        ax.axvspan(time_ms[start] - dt, time_ms[stop - 1], color=color, lw=0, zorder=0)


def plot_example_trials(
    model: Any,
    task: Any,
    n_trials: int = 3,
    generator: torch.Generator | None = None,
    noise: bool = False,
) -> Figure:
    """Outputs against targets for a few trials, one panel per trial and output channel.

    The network runs noise-free by default; shaded spans are the time steps the
    task's mask scores; cross-entropy outputs are shown as softmax probabilities.
    """
    check_int("n_trials", n_trials, minimum=1)
    batch = task.batch(n_trials, generator or torch.Generator().manual_seed(0))
    device = next(iter(model.buffers())).device
    with torch.no_grad():
        out = model(batch.inputs.to(device), noise=noise).outputs.cpu()
    if getattr(task, "loss", "mse") == "cross_entropy":
        out = torch.softmax(out, dim=-1)
    n_out = out.shape[-1]
    time_ms = (np.arange(batch.n_steps) + 1) * float(task.dt_ms)
    fig = new_figure(2.6 * n_out + 0.5, 1.8 * n_trials + 0.6)
    axes = np.atleast_2d(fig.subplots(n_trials, n_out, sharex=True, squeeze=False))
    names = list(getattr(task, "output_names", ())) or [f"output {k}" for k in range(n_out)]
    for i in range(n_trials):
        mask = batch.mask[i].numpy()
        for k in range(n_out):
            ax = axes[i, k]
            shade_mask(ax, time_ms, mask)
            ax.plot(time_ms, batch.targets[i, :, k].numpy(), color="k", ls="--", lw=1, label="target")
            ax.plot(time_ms, out[i, :, k].numpy(), color=f"C{k}", lw=1.5, label="output")
            if i == 0:
                ax.set_title(names[k] if k < len(names) else f"output {k}", fontsize=9)
            if k == 0:
                ax.set_ylabel(f"trial {i + 1}", fontsize=9)
            if i == n_trials - 1:
                ax.set_xlabel("time (ms)")
    for k in range(n_out):  # one scale per channel, so trials compare at a glance
        if getattr(task, "loss", "mse") == "cross_entropy":
            low, high = 0.0, 1.0  # probabilities
        else:
            both = torch.cat([out[..., k].flatten(), batch.targets[..., k].flatten()])
            low, high = float(both.min()), float(both.max())
        pad = 0.05 * max(high - low, 1e-6)
        for i in range(n_trials):
            axes[i, k].set_ylim(low - pad, high + pad)
    axes[0, -1].legend(fontsize=7, loc="best")
    tight_layout(fig)
    return fig
