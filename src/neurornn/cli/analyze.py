"""``neurornn analyze RUN``: dynamical-systems and performance analyses of a run.

Writes JSON summaries and npz arrays into ``RUN/analysis/``, PNG figures into
``RUN/figures/`` and rebuilds ``RUN/report.html``. Existing analysis files are
never replaced unless ``--overwrite`` is given. With ``--snapshot I`` the
snapshot ``I`` of the weight history is analysed and every file name gets a
``_snapshotI`` suffix, so analyses before and after training sit side by side.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .._files import write_json

ANALYSES = ("performance", "activity", "pca", "psychometric", "fixed_points", "graph")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse a trained run (fixed points, PCA, psychometrics, activity) and write report.html",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run folder written by `neurornn train`")
    p.add_argument("--performance", action="store_true", help="validation score and example trials")
    p.add_argument("--activity", action="store_true", help="record states and rates of every unit")
    p.add_argument("--pca", action="store_true", help="PCA of the activity, trajectories in PC space")
    p.add_argument("--psychometric", action="store_true", help="psychometric curves (decision tasks)")
    p.add_argument("--fixed-points", action="store_true", help="fixed points, stability, cycles")
    p.add_argument("--graph", action="store_true",
                   help="graph metrics of W_rec and of its weight history (modularity, small-worldness, ...)")
    p.add_argument("--graph-keep", type=float, default=0.1, metavar="F",
                   help="graph: keep the top fraction F of |W_rec| (default 0.1)")
    p.add_argument("--graph-nulls", type=int, default=1000, metavar="N",
                   help="graph: random null graphs for small-worldness (default 1000)")
    p.add_argument("--all", action="store_true", help="every analysis (the default when none is chosen)")
    p.add_argument("--snapshot", type=int, default=None, metavar="I",
                   help="analyse weight-history snapshot I (0 = before training) instead of the final model")
    p.add_argument("--area", default=None, help="record/PCA only the units of this area")
    p.add_argument("--n-trials", type=int, default=256, help="trials of the analysis batch (default 256)")
    p.add_argument("--score-trials", type=int, default=2048, metavar="N",
                   help="fresh trials scored by --performance (default 2048: a sampling error of about "
                        "0.007 on an accuracy near 0.87, against 0.02 for 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the analysis batch and of the starts")
    p.add_argument("--fp-input", action="append", default=None, metavar="U1,U2,...",
                   help="constant input for the fixed-point search (repeatable); default: the mean "
                        "input of each task period, or zero")
    p.add_argument("--fp-starts", type=int, default=1024, help="starting states of the search (default 1024)")
    p.add_argument("--fp-tol-q", type=float, default=1e-12, help="q tolerance of a fixed point (default 1e-12)")
    p.add_argument("--fp-slow", type=float, default=None, metavar="F",
                   help="search slow points instead of exact fixed points (approximate line or ring "
                        "attractors): keep points whose q is below F times the median of "
                        "1/2 |x(t+1) - x(t)|^2 along the recorded trajectories (e.g. 0.01: 10 times slower "
                        "than the network typically moves), without exact refinement; replaces --fp-tol-q")
    p.add_argument("--device", default="cpu", help="torch device of the analysis (default cpu)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: 1 for networks of up to 256 units, whose batched "
                        "matrix products are too small to share and which a second thread slows down badly "
                        "on a busy machine; torch's choice otherwise)")
    p.add_argument("--overwrite", action="store_true", help="replace existing analysis files")
    p.add_argument("--no-report", action="store_true", help="do not rebuild report.html")
    p.set_defaults(handler=run)


def _chosen(args: argparse.Namespace) -> list[str]:
    chosen = [a for a in ANALYSES if getattr(args, a)]
    return list(ANALYSES) if args.all or not chosen else chosen


def _parse_inputs(texts: list[str], n_inputs: int) -> np.ndarray:
    rows = []
    for text in texts:
        try:
            row = [float(v) for v in text.replace(" ", "").split(",") if v != ""]
        except ValueError:
            raise ValueError(f"--fp-input must be comma-separated numbers, got {text!r}") from None
        if len(row) != n_inputs:
            raise ValueError(f"--fp-input must have n_inputs={n_inputs} values, got {len(row)} in {text!r}")
        rows.append(row)
    return np.asarray(rows, dtype=np.float64)


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


class _Outputs:
    """Plans the files of an analysis; refuses to replace existing ones without --overwrite."""

    def __init__(self, run_dir: Path, suffix: str, overwrite: bool) -> None:
        self.analysis = run_dir / "analysis"
        self.figures = run_dir / "figures"
        self.suffix, self.overwrite = suffix, overwrite
        self.written: list[Path] = []

    def path(self, folder: str, stem: str, ext: str) -> Path:
        base = self.analysis if folder == "analysis" else self.figures
        return base / f"{stem}{self.suffix}.{ext}"

    def check(self, paths: list[Path]) -> None:
        existing = [p for p in paths if p.exists()]
        if existing and not self.overwrite:
            names = ", ".join(str(p) for p in existing)
            raise FileExistsError(f"{names} already exist; use --overwrite to replace them")

    def json(self, stem: str, data: Any) -> None:
        p = self.path("analysis", stem, "json")
        p.parent.mkdir(parents=True, exist_ok=True)
        write_json(p, data, indent=2)
        self.written.append(p)

    def npz(self, stem: str, arrays: dict[str, np.ndarray]) -> None:
        p = self.path("analysis", stem, "npz")
        p.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(p, **{k: np.asarray(v) for k, v in arrays.items()})
        self.written.append(p)

    def figure(self, stem: str, fig: Any) -> None:
        p = self.path("figures", stem, "png")
        p.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(p, dpi=110, bbox_inches="tight")
        self.written.append(p)


def _planned(name: str, out: _Outputs, n_units: int, n_all: int) -> list[Path]:
    """Files analysis ``name`` writes (``n_units``: of the recorded area; ``n_all``: of the network)."""
    from ..analysis.graph_run import graph_files

    plan = {
        "performance": [out.path("analysis", "performance", "json"), out.path("figures", "trials", "png")],
        "activity": [out.path("analysis", "activity", "json"), out.path("analysis", "activity", "npz"),
                     out.path("figures", "activity_units", "png")],
        "pca": [out.path("analysis", "pca", "json"), out.path("analysis", "pca", "npz"),
                out.path("figures", "pca_trajectories", "png"), out.path("figures", "pca_explained_variance", "png")]
        + ([out.path("figures", "pca_trajectories_3d", "png")] if n_units >= 3 else []),
        "psychometric": [out.path("analysis", "psychometric", "json"), out.path("figures", "psychometric", "png")],
        "fixed_points": [out.path("analysis", "fixed_points", "json"), out.path("analysis", "fixed_points", "npz"),
                         out.path("figures", "fixed_points", "png")]
        + ([out.path("figures", "fixed_points_3d", "png")] if n_all >= 3 else []),
        "graph": graph_files(out.analysis, out.figures, out.suffix),
    }
    return plan[name]


def _color_condition(activity: Any) -> str | None:
    """The condition that colours trials: a decision variable, else the first with <= 10 levels."""
    for name in ("signed_coherence", "choice", "context"):
        if name in activity.conditions:
            return name
    for name, values in activity.conditions.items():
        if len(np.unique(np.asarray(values))) <= 10:
            return name
    return next(iter(activity.conditions), None)


def run(args: argparse.Namespace) -> int:
    from .. import analysis as A
    from ..runs import load_run

    from ..training.config import SMALL_NETWORK_UNITS

    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    run_dir = Path(args.run)
    loaded = load_run(run_dir, device=args.device)
    model = A.resolve_model(loaded, args.snapshot)
    if args.threads is not None or model.config.n_units <= SMALL_NETWORK_UNITS:
        import torch

        torch.set_num_threads(args.threads or 1)
    task = loaded.task
    from .._validation import check_int

    check_int("--n-trials", args.n_trials, minimum=2)
    check_int("--score-trials", args.score_trials, minimum=1)
    check_int("--fp-starts", args.fp_starts, minimum=1)
    if args.fp_slow is not None and not 0.0 < args.fp_slow < 1.0:
        raise ValueError(f"--fp-slow must be in (0, 1), got {args.fp_slow}")
    suffix = "" if args.snapshot is None else f"_snapshot{args.snapshot % len(loaded.history.steps)}"
    out = _Outputs(run_dir, suffix, args.overwrite)
    chosen = _chosen(args)
    if args.area is not None:
        from .._validation import check_choice

        check_choice("--area", args.area, list(model.config.area_slices()))
    n_units = len(range(model.config.n_units)[model.config.area_slices()[args.area]]) if args.area else model.config.n_units
    fp_inputs = _parse_inputs(args.fp_input, model.config.n_inputs) if args.fp_input else None
    out.check([p for name in chosen for p in _planned(name, out, n_units, model.config.n_units)])

    batch = task.batch(args.n_trials, torch.Generator().manual_seed(args.seed))
    activity = A.record_activity(model, batch, area=args.area)
    full = activity if args.area is None else A.record_activity(model, batch)
    color = _color_condition(activity)
    steps: dict[str, Callable[[], str]] = {}

    def performance() -> str:
        scored = task.batch(args.score_trials, torch.Generator().manual_seed(args.seed + 1))
        with torch.no_grad():
            outputs = model(scored.inputs.to(model.alpha.device), noise=False).outputs
        scores = {k: float(v) for k, v in task.evaluate(outputs, scored.to(outputs.device)).items()}
        loss = A.validation_score(model, task, scoring="loss", batch=scored)
        data = {"task": task.name, "snapshot": args.snapshot, "n_trials": args.score_trials,
                "seed": args.seed + 1, "score": scores.get("accuracy"), "loss_kind": task.loss, "loss": loss,
                **{f"task_{k}": v for k, v in scores.items()},
                "message": f"Accuracy {scores.get('accuracy', float('nan')):.3f} on {args.score_trials} fresh "
                           f"noise-free validation trials (seed {args.seed + 1}); "
                           f"{task.loss.replace('_', '-')} loss {loss:.4g}."}
        out.json("performance", data)
        out.figure("trials", A.plot_trials(model, task, batch=batch, n_trials=4))
        return data["message"]

    def activity_step() -> str:
        rates = activity.rates
        silent = float((np.abs(rates).max(axis=(0, 1)) < 1e-6).mean())
        data = {"shape_trials_time_units": list(rates.shape), "area": args.area, "snapshot": args.snapshot,
                "mean_rate": float(rates.mean()), "max_rate": float(rates.max()),
                "fraction_silent_units": silent, "conditions": list(activity.conditions)}
        # Stored in the model's own precision (float32 unless the model is float64): half the size.
        dtype = np.float64 if model.alpha.dtype == torch.float64 else np.float32
        data["npz_dtype"] = np.dtype(dtype).name
        out.json("activity", data)
        out.npz("activity", {k: v.astype(dtype) if k in ("states", "rates", "outputs", "inputs") else v
                             for k, v in activity.to_arrays().items()})
        out.figure("activity_units", _unit_figure(activity, color))
        return f"Recorded {rates.shape[2]} units x {rates.shape[1]} steps x {rates.shape[0]} trials."

    def pca_step() -> str:
        pca = A.PCA().fit(activity)
        summary = pca.summary()
        out.json("pca", {**summary, "area": args.area, "snapshot": args.snapshot, "color_by": color})
        k = min(10, pca.n_components_)
        out.npz("pca", {"components": pca.components_[:k], "mean": pca.mean_,
                        "explained_variance_ratio": pca.explained_variance_ratio_,
                        "projection": pca.transform(activity)[..., :k]})
        out.figure("pca_trajectories", A.plot_trajectories(activity, pca, color_by=color, dims=2))
        if n_units >= 3:
            out.figure("pca_trajectories_3d", A.plot_trajectories(activity, pca, color_by=color, dims=3))
        out.figure("pca_explained_variance", A.plot_explained_variance(pca))
        skipped = "" if n_units >= 3 else f" No 3D figure: a 3D plot needs at least 3 units, got {n_units}."
        return f"PCA: {summary['pcs_for_90pct']} PCs explain 90% of the variance.{skipped}"

    def psychometric_step() -> str:
        specs = _psychometric_specs(batch)
        if not specs:
            msg = f"Psychometric curves skipped: task {task.name!r} has no signed-evidence condition."
            out.json("psychometric", {"message": msg, "curves": []})
            return msg
        curves = []
        big = task.batch(max(args.n_trials, 2000), torch.Generator().manual_seed(args.seed + 1))
        for condition, group in specs:
            curves += A.psychometric_curve(model, task, condition=condition, group_by=group, batch=big)
        fits = "; ".join(f"{c.condition} {c.group}: bias {c.fit_['bias']:.3g}, threshold {c.fit_['threshold']:.3g}, "
                         f"lapse {c.fit_['lapse']:.3g}" for c in curves if c.fit_)
        msg = f"Psychometric fit ({len(curves)} curve(s)): {fits}."
        out.json("psychometric", {"message": msg, "n_trials": big.n_trials,
                                  "curves": [c.summary() for c in curves]})
        out.figure("psychometric", A.plot_psychometric(curves))
        return msg

    def fixed_points_step() -> str:
        if fp_inputs is not None:
            inputs, names = fp_inputs, [f"--fp-input {i}" for i in range(len(fp_inputs))]
        else:
            inputs, names = default_inputs(batch, model.config.n_inputs)
        states = torch.as_tensor(full.states)
        gen = torch.Generator().manual_seed(args.seed)
        noise = 0.05 * float(states.std())
        starts = A.sample_states(states, args.fp_starts, noise_std=noise, generator=gen)
        slow = None
        if args.fp_slow is None:
            finder = A.FixedPointFinder(model, tol_q=args.fp_tol_q)
        else:
            slow = _slow_point_settings(states, args.fp_slow)
            finder = A.FixedPointFinder(model, tol_q=slow["tol_q"], refine=False, merge_radius=None,
                                        tol_unique=slow["tol_unique"])
        fps = finder.fit(inputs, starts)
        summary = fps.summary()
        if slow is not None:
            summary["slow_points"] = slow
        for entry, name in zip(summary["conditions"], names):
            entry["input_name"] = name
        summary["input_names"] = names
        summary["start_noise_std"] = noise
        out.json("fixed_points", summary)
        big = fps.jacobians_.nbytes > 50e6
        out.npz("fixed_points", fps.to_arrays(jacobians=not big))
        pca = A.PCA(n_components=min(3, full.n_units)).fit(full.states)  # fixed points live in state space
        out.figure("fixed_points", _fixed_point_figure(fps, full, pca, names, color))
        if full.n_units >= 3:
            out.figure("fixed_points_3d", A.plot_fixed_points(
                fps, full, pca=pca, condition=0, dims=3, color_by=color,
                title=f"Fixed points, {names[0]} ({fps.convention}-time stability)"))
        return summary["message"]

    def graph_step() -> str:
        from ..analysis.graph_run import analyze_run_graph

        if model.config.n_units < 3:
            return "Graph analysis skipped: fewer than 3 units."
        res = analyze_run_graph(loaded, out.analysis, figures_dir=out.figures, suffix=out.suffix, model=model,
                                keep_fraction=args.graph_keep, n_nulls=args.graph_nulls, seed=args.seed,
                                overwrite=args.overwrite)
        out.written += [Path(f) for f in res["files"]]
        g = res["final"]
        return (f"Graph (top {args.graph_keep:g} of |W|): modularity {g['modularity']:.3f}, small-worldness "
                f"sigma {g['sigma']:.2f} (efficiency-based {g['sigma_efficiency']:.2f}), total |W| "
                f"{g['total_weight']:.4g}, {len(res['history'])} snapshots.")

    steps = {"performance": performance, "activity": activity_step, "pca": pca_step,
             "psychometric": psychometric_step, "fixed_points": fixed_points_step, "graph": graph_step}
    for name in chosen:
        t0 = time.perf_counter()
        message = steps[name]()
        print(f"[{name}] {message} ({time.perf_counter() - t0:.1f} s)")
    if not args.no_report:
        report = A.write_report(run_dir)
        print(f"report: {report}")
    for p in out.written:
        print(f"wrote {p}")
    return 0


def _slow_point_settings(states: torch.Tensor, fraction: float) -> dict:
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


def _psychometric_specs(batch: Any) -> list[tuple[str, str | None]]:
    conds = batch.conditions
    if "signed_coherence" in conds:
        return [("signed_coherence", "context" if "context" in conds else None)]
    coherences = [k for k in conds if k.endswith("_coherence")]
    group = "context" if "context" in conds else None
    return [(k, group) for k in coherences]


def _unit_figure(activity: Any, color: str | None, n_units: int = 6) -> Any:
    from matplotlib.figure import Figure

    from ..analysis.pca import _color_key, _colors

    rates = activity.rates
    var = rates.reshape(-1, rates.shape[-1]).var(axis=0)
    units = np.argsort(-var)[:n_units]
    n_trials = min(40, rates.shape[0])
    values = None if color is None else np.asarray(activity.conditions[color][:n_trials])
    colors, legend = _colors(values, n_trials)
    n_cols = max((len(units) + 1) // 2, 1)
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    grid = fig.subplots(2, n_cols, squeeze=False, sharex=True)
    axes = grid.ravel()
    for ax, u in zip(axes, units):
        for i in range(n_trials):
            ax.plot(activity.time_ms, rates[i, :, u], color=colors[i], lw=0.6, alpha=0.6)
        ax.set_title(f"unit {activity.units[u]}", fontsize=8)
    for ax in axes[len(units):]:
        ax.set_visible(False)
    for ax in grid[:, 0]:
        ax.set_ylabel("rate")
    for ax in grid[-1]:
        ax.set_xlabel("time (ms)")
    _color_key(fig, grid[0, -1], values, legend, color)
    fig.suptitle(f"Most variable units ({n_trials} trials)", fontsize=9)
    return fig


def _fixed_point_figure(fps: Any, activity: Any, pca: Any, names: list[str], color: str | None) -> Any:
    from matplotlib.figure import Figure

    from ..analysis.pca import _color_key, _colors

    k = min(len(fps.inputs_), 4)
    fig = Figure(figsize=(4.4 * k + 1.6, 4.4), layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    proj = pca.transform(activity.states)
    n = min(40, proj.shape[0])
    values = None if color is None else np.asarray(activity.conditions[color][:n])
    colors, legend = _colors(values, n)
    evr = pca.explained_variance_ratio_
    for c, ax in enumerate(axes):
        for i in range(n):
            ax.plot(proj[i, :, 0], proj[i, :, 1], color=colors[i], lw=0.5, alpha=0.35)
        sel = fps.select(c)
        pts = pca.transform(fps.points_[sel])
        st = fps.stable_[sel]
        ax.scatter(pts[st, 0], pts[st, 1], s=36, c="k", zorder=5, label=f"stable ({int(st.sum())})")
        ax.scatter(pts[~st, 0], pts[~st, 1], s=36, facecolors="none", edgecolors="r", zorder=5,
                   label=f"unstable ({int((~st).sum())})")
        geo = fps.geometry_[c]["kind"] if c < len(fps.geometry_) else ""
        n_sel = int(sel.sum())
        what = {"none": "no fixed point",
                "isolated": f"{n_sel} isolated point{'s' if n_sel != 1 else ''}"}.get(geo, f"{n_sel} points: {geo}")
        ax.set_title(f"{names[c] if c < len(names) else c}\n{what}", fontsize=9)
        ax.set_xlabel(f"PC1 of states ({evr[0]:.0%})")
        ax.legend(fontsize=7, loc="best")
    axes[0].set_ylabel(f"PC2 of states ({evr[1]:.0%})")
    _color_key(fig, axes[-1], values, legend, color)
    shown = "" if k == len(fps.inputs_) else f"; first {k} of {len(fps.inputs_)} inputs"
    fig.suptitle(f"Fixed points on trajectories ({fps.convention}-time stability{shown})", fontsize=10)
    return fig
