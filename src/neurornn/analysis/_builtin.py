"""The built-in analyses of the pipeline: performance, activity, pca, psychometric, fixed_points, graph.

Each is registered with what it needs and the files it writes (relative to the run
folder; a snapshot's files get a ``_snapshotI`` suffix before the extension).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import pca as P
from ._builtin_figures import fixed_point_figure, unit_figure
from ._registry import register_analysis
from .activity import Activity
from .fixed_points import FixedPointFinder, sample_states
from .graph_run import analyze_run_graph, graph_files
from .pca import PCA, plot_fixed_points
from .performance import plot_psychometric, plot_trials, psychometric_curve, validation_score

__all__ = ["default_inputs", "slow_point_settings"]

_FORWARD_COPIES = 4  # a noise-free forward pass keeps float32 states, rates and outputs


def _forward_memory(trials: int, n_units: int, n_steps: int) -> float:
    return float(trials) * n_steps * n_units * 4 * _FORWARD_COPIES


# ---------------------------------------------------------------------- performance
def _performance_memory(options, n_units: int, n_steps: int):
    # The scored trials, and the analysis batch that the trial figure runs whole.
    option = "score_trials" if options.score_trials >= options.n_trials else "n_trials"
    return _forward_memory(getattr(options, option), n_units, n_steps), option


@register_analysis("performance", needs=("batch",), memory=_performance_memory,
                   writes=("analysis/performance.json", "figures/trials.png"),
                   help="validation score on fresh noise-free trials, and example trials")
def performance(ctx) -> tuple[str, dict]:
    task, model, o = ctx.task, ctx.model, ctx.options
    scored = task.evaluation_batch(o.score_trials, torch.Generator().manual_seed(o.seed + 1))
    with torch.no_grad():
        outputs = model(scored.inputs.to(model.alpha.device), noise=False).outputs
    scores = task.scores(outputs, scored.to(outputs.device))
    loss = validation_score(model, task, scoring="loss", batch=scored)
    data = {"task": task.name, "snapshot": ctx.snapshot, "n_trials": o.score_trials,
            "seed": o.seed + 1, "score": scores.get("accuracy"), "loss_kind": task.loss, "loss": loss,
            **{f"task_{k}": v for k, v in scores.items()},
            "message": f"Accuracy {scores.get('accuracy', float('nan')):.3f} on {o.score_trials} fresh "
                       f"noise-free validation trials (seed {o.seed + 1}); "
                       f"{task.loss.replace('_', '-')} loss {loss:.4g}."}
    ctx.out.json("performance", data)
    ctx.out.figure("trials", plot_trials(model, task, batch=ctx.batch, n_trials=4))
    return data["message"], data


# ---------------------------------------------------------------------- activity
@register_analysis("activity", needs=("activity",),
                   writes=("analysis/activity.json", "analysis/activity.npz", "figures/activity_units.png"),
                   help="states and rates of every recorded unit on the analysis batch")
def activity(ctx) -> tuple[str, Activity]:
    act = ctx.activity
    rates = act.rates
    silent = float((np.abs(rates).max(axis=(0, 1)) < 1e-6).mean())
    data = {"shape_trials_time_units": list(rates.shape), "area": ctx.options.area, "snapshot": ctx.snapshot,
            "mean_rate": float(rates.mean()), "max_rate": float(rates.max()),
            "fraction_silent_units": silent, "conditions": list(act.conditions)}
    # Stored in the model's own precision (float32 unless the model is float64): half the size.
    dtype = np.float64 if ctx.model.alpha.dtype == torch.float64 else np.float32
    data["npz_dtype"] = np.dtype(dtype).name
    ctx.out.json("activity", data)
    ctx.out.npz("activity", {k: v.astype(dtype) if k in ("states", "rates", "outputs", "inputs") else v
                             for k, v in act.to_arrays().items()})
    ctx.out.figure("activity_units", unit_figure(act, ctx.color_by))
    return f"Recorded {rates.shape[2]} units x {rates.shape[1]} steps x {rates.shape[0]} trials.", act


# ---------------------------------------------------------------------- pca
_PCA_WRITES = ("analysis/pca.json", "analysis/pca.npz", "figures/pca_trajectories.png",
               "figures/pca_explained_variance.png", "figures/pca_trajectories_3d.png")


def _pca_plan(ctx):
    return [e for e in _PCA_WRITES if ctx.n_units >= 3 or not e.endswith("_3d.png")]


@register_analysis("pca", needs=("activity",), writes=_PCA_WRITES, plan=_pca_plan,
                   help="PCA of the activity, trajectories in PC space (3D for 3 units or more)")
def pca(ctx) -> tuple[str, Any]:
    act, color = ctx.activity, ctx.color_by
    fitted = P.PCA().fit(act)
    summary = fitted.summary()
    ctx.out.json("pca", {**summary, "area": ctx.options.area, "snapshot": ctx.snapshot, "color_by": color})
    k = min(10, fitted.n_components_)
    ctx.out.npz("pca", {"components": fitted.components_[:k], "mean": fitted.mean_,
                        "explained_variance_ratio": fitted.explained_variance_ratio_,
                        "projection": fitted.transform(act)[..., :k]})
    ctx.out.figure("pca_trajectories", P.plot_trajectories(act, fitted, color_by=color, dims=2))
    if ctx.n_units >= 3:
        ctx.out.figure("pca_trajectories_3d", P.plot_trajectories(act, fitted, color_by=color, dims=3))
    ctx.out.figure("pca_explained_variance", P.plot_explained_variance(fitted))
    skipped = "" if ctx.n_units >= 3 else f" No 3D figure: a 3D plot needs at least 3 units, got {ctx.n_units}."
    return f"PCA: {summary['pcs_for_90pct']} PCs explain 90% of the variance.{skipped}", fitted


# ---------------------------------------------------------------------- psychometric
def _psychometric_specs(batch: Any) -> list[tuple[str, str | None]]:
    conds = batch.conditions
    if "signed_coherence" in conds:
        return [("signed_coherence", "context" if "context" in conds else None)]
    coherences = [k for k in conds if k.endswith("_coherence")]
    group = "context" if "context" in conds else None
    return [(k, group) for k in coherences]


def _psychometric_memory(options, n_units: int, n_steps: int):
    return _forward_memory(max(options.n_trials, 2000), n_units, n_steps), None


@register_analysis("psychometric", needs=("batch",), memory=_psychometric_memory,
                   writes=("analysis/psychometric.json", "figures/psychometric.png"),
                   help="psychometric curves with fitted logistics (tasks with a signed-evidence condition)")
def psychometric(ctx) -> tuple[str, list]:
    task, o = ctx.task, ctx.options
    specs = _psychometric_specs(ctx.batch)
    if not specs:
        msg = f"Psychometric curves skipped: task {task.name!r} has no signed-evidence condition."
        ctx.out.json("psychometric", {"message": msg, "curves": []})
        return msg, []
    curves = []
    big = task.batch(max(o.n_trials, 2000), torch.Generator().manual_seed(o.seed + 1))
    for condition, group in specs:
        curves += psychometric_curve(ctx.model, task, condition=condition, group_by=group, batch=big)
    fits = "; ".join(f"{c.condition} {c.group}: bias {c.fit_['bias']:.3g}, threshold {c.fit_['threshold']:.3g}, "
                     f"lapse {c.fit_['lapse']:.3g}" for c in curves if c.fit_)
    msg = f"Psychometric fit ({len(curves)} curve(s)): {fits}."
    ctx.out.json("psychometric", {"message": msg, "n_trials": big.n_trials, "curves": [c.summary() for c in curves]})
    ctx.out.figure("psychometric", plot_psychometric(curves))
    return msg, curves


# ---------------------------------------------------------------------- fixed points
def default_inputs(batch: Any, n_inputs: int) -> tuple[np.ndarray, list[str]]:
    """Constant inputs for the fixed-point search: the mean input of each period.

    Periods whose mean inputs coincide are merged; without periods, zero input.
    """
    if batch.periods is None or not batch.period_names:
        return np.zeros((1, n_inputs)), ["zero input"]
    rows, names = [], []
    x = batch.inputs.detach().cpu().double()
    for i, name in enumerate(batch.period_names):
        sel = batch.periods.cpu() == i
        if not bool(sel.any()):
            continue
        mean = x[sel].mean(0).numpy()
        if any(np.allclose(mean, r, atol=1e-3) for r in rows):
            continue
        rows.append(np.round(mean, 6))
        names.append(f"{name} period mean")
    return np.asarray(rows), names


def slow_point_settings(states: torch.Tensor, fraction: float) -> dict:
    """Settings of a slow-point search from the recorded trajectories ``states`` (trials, time, units).

    A slow point has ``q`` below ``fraction`` times the median of
    ``1/2 |x(t+1) - x(t)|^2`` along the trajectories (``fraction = 0.01``: at
    least 10 times slower than the network typically moves); points closer than
    2 % of the states' median distance to their centroid count as one.
    """
    st = states.detach().cpu().double()
    speed_q = float((0.5 * ((st[:, 1:] - st[:, :-1]) ** 2).sum(-1)).median())
    flat = st.reshape(-1, st.shape[-1])
    spread = float((flat - flat.mean(0)).norm(dim=1).median())
    return {"fraction": fraction, "median_trajectory_q": speed_q, "tol_q": max(fraction * speed_q, 1e-30),
            "tol_unique": max(0.02 * spread, 1e-12)}


_FP_WRITES = ("analysis/fixed_points.json", "analysis/fixed_points.npz", "figures/fixed_points.png",
              "figures/fixed_points_3d.png")


def _fixed_points_plan(ctx):
    return [e for e in _FP_WRITES if ctx.n_all >= 3 or not e.endswith("_3d.png")]


@register_analysis("fixed_points", needs=("batch", "activity", "full_activity"), writes=_FP_WRITES,
                   plan=_fixed_points_plan,
                   help="fixed points (or slow points) with their stability, geometry and cycles")
def fixed_points(ctx) -> tuple[str, Any]:
    o, model, full, color = ctx.options, ctx.model, ctx.full_activity, ctx.color_by
    fp_inputs = o.fp_input_array(model.config.n_inputs)
    if fp_inputs is not None:
        label = o.label("fp_inputs")
        inputs, names = fp_inputs, [f"{label} {i}" for i in range(len(fp_inputs))]
    else:
        inputs, names = default_inputs(ctx.batch, model.config.n_inputs)
    states = torch.as_tensor(full.states)
    gen = torch.Generator().manual_seed(o.seed)
    noise = 0.05 * float(states.std())
    starts = sample_states(states, o.fp_starts, noise_std=noise, generator=gen)
    slow = None
    if o.fp_slow is None:
        finder = FixedPointFinder(model, tol_q=o.fp_tol_q)
    else:
        slow = slow_point_settings(states, o.fp_slow)
        finder = FixedPointFinder(model, tol_q=slow["tol_q"], refine=False, merge_radius=None,
                                  tol_unique=slow["tol_unique"])
    fps = finder.fit(inputs, starts)
    summary = fps.summary()
    if slow is not None:
        summary["slow_points"] = slow
    for entry, name in zip(summary["conditions"], names):
        entry["input_name"] = name
    summary["input_names"] = names
    summary["start_noise_std"] = noise
    ctx.out.json("fixed_points", summary)
    big = fps.jacobians_.nbytes > 50e6
    ctx.out.npz("fixed_points", fps.to_arrays(jacobians=not big))
    pca = PCA(n_components=min(3, full.n_units)).fit(full.states)  # fixed points live in state space
    ctx.out.figure("fixed_points", fixed_point_figure(fps, full, pca, names, color))
    if full.n_units >= 3:
        ctx.out.figure("fixed_points_3d", plot_fixed_points(
            fps, full, pca=pca, condition=0, dims=3, color_by=color,
            title=f"Fixed points, {names[0]} ({fps.convention}-time stability)"))
    return summary["message"], fps


# ---------------------------------------------------------------------- graph
_GRAPH_WRITES = tuple(p.as_posix() for p in graph_files(Path("analysis"), Path("figures")))


@register_analysis("graph", writes=_GRAPH_WRITES,
                   help="graph metrics of W_rec and of its weight history (modularity, small-worldness, ...)")
def graph(ctx) -> tuple[str, dict | None]:
    o = ctx.options
    if ctx.n_all < 3:
        return "Graph analysis skipped: fewer than 3 units.", None
    res = analyze_run_graph(ctx.run, ctx.out.analysis_dir, figures_dir=ctx.out.figures_dir, suffix=ctx.suffix,
                            model=ctx.model, keep_fraction=o.graph_keep, n_nulls=o.graph_nulls, seed=o.seed,
                            overwrite=ctx.overwrite)
    ctx.out.record(res["files"])
    g = res["final"]
    return (f"Graph (top {o.graph_keep:g} of |W|): modularity {g['modularity']:.3f}, small-worldness "
            f"sigma {g['sigma']:.2f} (efficiency-based {g['sigma_efficiency']:.2f}), total |W| "
            f"{g['total_weight']:.4g}, {len(res['history'])} snapshots."), res
