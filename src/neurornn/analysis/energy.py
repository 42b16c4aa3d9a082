"""Energy use of a network on its task (the metabolic costs of seRNN's analyses).

For activity ``r`` of shape (trials, time, units) and recurrent weights ``W`` (``W[i, j]``: from
unit ``j`` onto unit ``i``):

- mean rate: ``mean over trials, time and units of |r|`` (``|r|``: a tanh unit's negative rate is
  activity too; equal to the mean rate for non-negative rates);
- synaptic activity: ``S(t) = sum_ij |W_ij| |r_j(t)|``, the total input current every synapse
  carries, averaged over trials and time steps;
- wiring cost (networks placed in space, ``RNNConfig(grid_shape=...)`` or ``coordinates=...``):
  ``sum_ij |W_ij| d_ij`` with ``d`` the config's distance matrix.

Each per trial period, and through a run's weight history. Registered as ``energy``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..models.space import config_distances
from ..plotting import new_figure, tight_layout
from ._registry import register_analysis
from .activity import record_activity
from .decoding import activity_array

__all__ = ["energy_history", "energy_use", "plot_energy_history", "wiring_cost"]


def _weights(w_rec: Any) -> np.ndarray:
    if hasattr(w_rec, "effective_weights"):
        w_rec = w_rec.effective_weights().w_rec
    if isinstance(w_rec, torch.Tensor):
        w_rec = w_rec.detach().cpu().double().numpy()
    w = np.asarray(w_rec, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"w_rec must have shape (units, units), got {w.shape}")
    return w


def wiring_cost(w_rec: Any, distances: Any) -> float:
    """``sum_ij |W_ij| d_ij`` for weights (units, units) (or a model) and distances (units, units)."""
    w = _weights(w_rec)
    d = np.asarray(distances, dtype=float)
    if d.shape != w.shape:
        raise ValueError(f"distances must have shape {w.shape} (as w_rec), got {d.shape}")
    return float((np.abs(w) * d).sum())


def _space_distances(model: Any) -> np.ndarray | None:
    """The distance matrix of a network placed in space (grid_shape or coordinates set), else None."""
    cfg = getattr(model, "config", None)
    if cfg is None or (cfg.grid_shape is None and cfg.coordinates is None):
        return None
    return config_distances(cfg)


def energy_use(activity: Any, w_rec: Any, *, distances: Any = None, periods: Any = None,
               period_names: Any = ()) -> dict:
    """Mean rate, synaptic activity and wiring cost of a network on a batch of trials.

    Parameters
    ----------
    activity : Activity or array of shape (trials, time, units)
        Rates of every unit of the network (the units of ``w_rec``).
    w_rec : array of shape (units, units), or an RNN (its effective recurrent weights)
    distances : array of shape (units, units), optional
        Distances between units; default for an RNN placed in space: its config's distance matrix.
    periods : array of shape (trials, time), int, optional
        Period index of each step (a task batch's ``periods``), for per-period values.
    period_names : sequence of str

    Returns
    -------
    dict with ``mean_rate``, ``synaptic_activity``, ``wiring_cost`` (None without distances),
    ``total_abs_weight`` (``sum |W_ij|``) and ``periods`` (name -> ``mean_rate``, ``synaptic_activity``).
    """
    r = np.abs(activity_array(activity, "rates"))
    w = _weights(w_rec)
    if r.shape[2] != w.shape[0]:
        raise ValueError(f"activity has {r.shape[2]} units but w_rec has {w.shape[0]}: record every unit")
    if distances is None and hasattr(w_rec, "effective_weights"):
        distances = _space_distances(w_rec)
    # S[trial, t] = sum_i sum_j |W_ij| |r_j| = sum_j (sum_i |W_ij|) |r_j|
    s = r @ np.abs(w).sum(0)
    out = {"mean_rate": float(r.mean()), "synaptic_activity": float(s.mean()),
           "wiring_cost": None if distances is None else wiring_cost(w, distances),
           "total_abs_weight": float(np.abs(w).sum()), "periods": {}}
    if periods is not None:
        p = np.asarray(periods.cpu() if hasattr(periods, "cpu") else periods)
        if p.shape != r.shape[:2]:
            raise ValueError(f"periods must have shape (trials, time) = {r.shape[:2]}, got {p.shape}")
        names = list(period_names) or [str(i) for i in range(int(p.max()) + 1)]
        for i, name in enumerate(names):
            sel = p == i
            if sel.any():
                out["periods"][name] = {"mean_rate": float(r[sel].mean()), "synaptic_activity": float(s[sel].mean()),
                                        "steps": int(sel.sum())}
    return out


def energy_history(run: Any, batch: Any) -> dict[str, np.ndarray]:
    """:func:`energy_use` of every snapshot of ``run.history`` on the same ``batch``.

    Returns
    -------
    dict of arrays of shape (snapshots,): ``step``, ``mean_rate``, ``synaptic_activity``,
    ``wiring_cost`` (NaN for networks not in space), ``total_abs_weight``.
    """
    history = run.history
    keys = ("mean_rate", "synaptic_activity", "wiring_cost", "total_abs_weight")
    out: dict[str, list] = {k: [] for k in ("step", *keys)}
    for i, step in enumerate(history.steps):
        model = history.model_at(i)
        e = energy_use(record_activity(model, batch), model)
        out["step"].append(step)
        for k in keys:
            out[k].append(np.nan if e[k] is None else e[k])
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def plot_energy_history(history: dict, final: dict | None = None) -> Any:
    """Mean rate, synaptic activity and wiring cost against the training step; per-period bars."""

    keys = [k for k in ("mean_rate", "synaptic_activity", "wiring_cost") if np.isfinite(history[k]).any()]
    n = len(keys) + (1 if final and final.get("periods") else 0)
    fig = new_figure(3.3 * n, 3.0)
    labels = {"mean_rate": "mean |rate|", "synaptic_activity": "synaptic activity  sum |W_ij| |r_j|",
              "wiring_cost": "wiring cost  sum |W_ij| d_ij"}
    for i, k in enumerate(keys):
        ax = fig.add_subplot(1, n, i + 1)
        ax.plot(history["step"], history[k], "o-", color=f"C{i}")
        ax.set_xlabel("training step")
        ax.set_ylabel(labels[k], fontsize=8)
        ax.set_title(labels[k].split("  ")[0], fontsize=9)
    if final and final.get("periods"):
        ax = fig.add_subplot(1, n, n)
        names = list(final["periods"])
        ax.bar(names, [final["periods"][p]["synaptic_activity"] for p in names], color="C1")
        ax.set_ylabel("synaptic activity per step", fontsize=8)
        ax.set_xlabel("trial period")
        ax.set_title("per period (analysed network)", fontsize=9)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    tight_layout(fig)
    return fig


# ---------------------------------------------------------------------- the pipeline analysis
def _energy_plan(ctx):
    entries = ["analysis/energy.json"]
    if len(ctx.run.history.steps) > 0:
        entries += ["analysis/energy_history.npz", "figures/energy.png"]
    return entries


@register_analysis("energy", needs=("batch", "full_activity"), plan=_energy_plan,
                   writes=("analysis/energy.json", "analysis/energy_history.npz", "figures/energy.png"),
                   help="energy use: mean rate, synaptic activity sum |W_ij| |r_j|, wiring cost sum |W_ij| d_ij "
                        "(networks in space), per period and through the weight history")
def _energy_analysis(ctx) -> tuple[str, dict]:
    batch = ctx.batch
    final = energy_use(ctx.full_activity, ctx.model, periods=batch.periods, period_names=batch.period_names)
    data: dict[str, Any] = {**final, "snapshot": ctx.snapshot,
                            "in_space": _space_distances(ctx.model) is not None}
    wiring = "" if final["wiring_cost"] is None else f", wiring cost {final['wiring_cost']:.4g}"
    msg = (f"Energy: mean |rate| {final['mean_rate']:.3g}, synaptic activity {final['synaptic_activity']:.4g} "
           f"per step{wiring}")
    if "analysis/energy_history.npz" in ctx.out.analysis.planned(ctx):
        hist = energy_history(ctx.run, batch)
        data["history"] = {k: v.tolist() for k, v in hist.items()}
        ctx.out.npz("energy_history", hist)
        ctx.out.figure("energy", plot_energy_history(hist, final))
        msg += (f"; synaptic activity {hist['synaptic_activity'][0]:.4g} -> {hist['synaptic_activity'][-1]:.4g} "
                f"over {len(hist['step'])} snapshots")
    data["message"] = msg + "."
    ctx.out.json("energy", data)
    return data["message"], data
