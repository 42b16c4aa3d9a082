"""Spatially embedded RNNs (seRNN; Achterberg, Akarca et al. 2023; seed 001).

:func:`run_sernn` reproduces the seRNN demo: the maze task, 100 ReLU units on a
5 x 5 x 4 grid, discrete time (``alpha = 1``, Keras ``SimpleRNN``), orthogonal
recurrent init, Gaussian input noise 0.05, a softmax (cross-entropy) readout at
the last step, Adam (lr 1e-3), batch 128, 40 batches per "epoch" (the seed's
5120 problems), 10 epochs, the ``spatial_communicability`` regulariser of strength
0.3 and a weight snapshot every epoch; then the graph analysis of the run
(:func:`~neurornn.analysis.graph_run.analyze_run_graph`).

:func:`run_sernn_sweep` repeats it over regularisation strengths and tabulates how
accuracy, total weight, modularity and small-worldness change.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .. import tasks
from .._validation import check_choice, check_fraction, check_int, check_nonnegative, check_positive
from .._files import write_csv, write_json, write_text
from .._folder import prepare_experiment_folder
from ..analysis.graph_run import analyze_run_graph
from ..models import RNN, RNNConfig
from ..training import TrainConfig, train
from ._config import ExperimentConfig

__all__ = ["SeRNNConfig", "run_sernn", "run_sernn_sweep", "SWEEP_COLUMNS"]

SWEEP_COLUMNS = (
    "strength", "accuracy", "task_loss", "total_weight", "modularity", "n_communities", "sigma",
    "sigma_efficiency", "clustering", "path_length", "n_components", "mean_connection_distance",
    "spearman_rho", "train_seconds",
)


@dataclass(frozen=True)
class SeRNNConfig(ExperimentConfig):
    """Settings of the seRNN demo (defaults: the seed's).

    ``strength`` and ``comms_factor`` of the ``regularizer`` ("spatial_communicability"
    = seRNN ``SE1_sWc``, or "spatial_l1" = ``SE1``); network ``n_units`` (placed on
    ``grid_shape``, default the most cube-like 3D grid), ``sigma_in``; training
    ``epochs`` x ``steps_per_epoch`` batches of ``batch_size``, ``learning_rate``,
    ``grad_clip`` (global norm; the seed's Keras model had none, but without it a
    discrete-time ReLU network can blow up mid-training; None: off);
    analysis ``keep_fraction`` (top |W| kept), ``n_nulls``; seeds ``model_seed``
    (initial weights) and ``seed`` (data, noise, null models).
    """

    _label = "seRNN config"  # not annotated: a class attribute, not a field

    strength: float = 0.3
    regularizer: str = "spatial_communicability"
    comms_factor: float = 1.0
    n_units: int = 100
    grid_shape: tuple | None = None
    sigma_in: float = 0.05
    epochs: int = 10
    steps_per_epoch: int = 40
    batch_size: int = 128
    learning_rate: float = 1e-3
    grad_clip: float | None = 1.0
    keep_fraction: float = 0.1
    n_nulls: int = 1000
    history_nulls: int = 100
    model_seed: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        check_nonnegative("strength", self.strength)
        check_choice("regularizer", self.regularizer, ("spatial_communicability", "spatial_l1"))
        check_positive("comms_factor", self.comms_factor)
        check_int("n_units", self.n_units, minimum=2)
        check_nonnegative("sigma_in", self.sigma_in)
        check_int("epochs", self.epochs, minimum=1)
        check_int("steps_per_epoch", self.steps_per_epoch, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("learning_rate", self.learning_rate)
        if self.grad_clip is not None:
            check_positive("grad_clip", self.grad_clip)
        check_fraction("keep_fraction", self.keep_fraction)
        check_int("n_nulls", self.n_nulls, minimum=1)
        check_int("history_nulls", self.history_nulls, minimum=1)
        check_int("model_seed", self.model_seed, minimum=0)
        check_int("seed", self.seed, minimum=0)
        if self.grid_shape is not None:
            object.__setattr__(self, "grid_shape", tuple(self.grid_shape))
        self.model_config()  # validates grid_shape against n_units

    def model_config(self):
        return RNNConfig(
            n_inputs=8, n_units=self.n_units, n_outputs=4, dt_ms=1.0, tau_ms=1.0, activation="relu",
            w_rec_init="orthogonal", sigma_in=float(self.sigma_in), grid_shape=self.grid_shape,
            seed=self.model_seed,
        )

    def train_config(self):
        regs = ()
        if self.strength > 0:
            spec = {"kind": self.regularizer, "strength": float(self.strength)}
            if self.regularizer == "spatial_communicability":
                spec["comms_factor"] = float(self.comms_factor)
            regs = (spec,)
        return TrainConfig(
            steps=self.epochs * self.steps_per_epoch, batch_size=self.batch_size,
            learning_rate=self.learning_rate, grad_clip=self.grad_clip, regularizers=regs, acc_criterion=False,
            eval_every=self.steps_per_epoch, eval_batch_size=512, history_every=self.steps_per_epoch,
            checkpoint_every=0, seed=self.seed, progress=False,
        )


def run_sernn(config: SeRNNConfig | Mapping[str, Any] | None = None, out=None,
              overwrite: bool = False) -> dict[str, Any]:
    """Train one seRNN on the maze task and analyse its connectivity.

    Parameters
    ----------
    config : SeRNNConfig or dict of its fields, optional
    out : path, optional
        The run folder (written by the trainer; the graph analysis goes to
        ``out/analysis/`` and its figures to ``out/figures/``, as
        ``neurornn analyze RUN --graph`` writes them). ``None``: nothing written.

    Returns
    -------
    dict with ``accuracy`` (final evaluation), ``task_loss``, ``train_seconds``,
    ``graph`` (final graph metrics), ``graph_history`` (per epoch) and ``run``.
    """
    config = SeRNNConfig.resolve(config)
    if out is not None:
        out = Path(out)
        if out.exists() and not overwrite:
            raise FileExistsError(f"run folder {str(out)!r} exists; pass overwrite=True (--overwrite)")
    task = tasks.make("maze")
    model = RNN(config.model_config())
    t0 = time.perf_counter()
    run = train(model, task, config.train_config(), out=out, overwrite=overwrite)
    wall = time.perf_counter() - t0
    figures = None if run.path is None else run.path / "figures"  # as `neurornn analyze RUN --graph`
    graph = analyze_run_graph(run, figures_dir=figures, keep_fraction=config.keep_fraction, n_nulls=config.n_nulls,
                              history_nulls=config.history_nulls, seed=config.seed, overwrite=overwrite)
    last = run.metrics.last if len(run.metrics) else {}
    return {
        "strength": config.strength,
        "accuracy": run.summary.get("final_accuracy"),
        "task_loss": last.get("task_loss"),
        "train_seconds": round(wall, 2),
        "graph": graph["final"],
        "graph_history": graph["history"],
        "run": run,
    }


def _markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def plot_sweep(rows: Sequence[Mapping[str, Any]]):
    """Accuracy, total weight, modularity and small-worldness against strength (± sd over seeds).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    panels = (("accuracy", "accuracy"), ("total_weight", "total |W|"), ("modularity", "modularity Q"),
              ("sigma_efficiency", "small-worldness (efficiency)"), ("mean_connection_distance",
                                                                     "mean connection distance"))
    fig = Figure(figsize=(10.5, 5.6), layout="constrained")
    axes = fig.subplots(2, 3).ravel()
    x = [r["strength"] for r in rows]
    for ax, (key, label) in zip(axes, panels):
        y = [np.nan if r.get(key) is None else r[key] for r in rows]
        err = [r.get(f"{key}_sd", 0.0) for r in rows]
        ax.errorbar(x, y, yerr=err, fmt="o-", capsize=3)
        ax.set_xscale("symlog", linthresh=min([s for s in x if s > 0], default=0.01))
        ax.set_xlabel("regularisation strength")
        ax.set_title(label, fontsize=9)
        if key == "accuracy":
            ax.set_ylim(top=1.02)
    axes[-1].set_visible(False)
    fig.suptitle("seRNN sweep (mean ± sd over seeds)", fontsize=10)
    return fig


def _mean_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Mean (and sd, as ``<col>_sd``) over seeds of every column, per strength."""
    out = []
    for s in sorted({r["strength"] for r in rows}):
        group = [r for r in rows if r["strength"] == s]
        row: dict[str, Any] = {"strength": s, "n_seeds": len(group)}
        for c in SWEEP_COLUMNS[1:]:
            vals = np.array([np.nan if r.get(c) is None else float(r[c]) for r in group])
            row[c] = float(np.nanmean(vals)) if np.isfinite(vals).any() else None
            if len(group) > 1 and np.isfinite(vals).sum() > 1:
                row[f"{c}_sd"] = float(np.nanstd(vals, ddof=1))
        out.append(row)
    return out


def run_sernn_sweep(strengths: Sequence[float] = (0.0, 0.01, 0.03, 0.1, 0.3),
                    config: SeRNNConfig | Mapping[str, Any] | None = None, out=None,
                    overwrite: bool = False, model_seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Train seRNNs over regularisation strengths (and seeds) and tabulate their structure.

    Parameters
    ----------
    strengths : sequence of float >= 0 (0: no spatial regulariser)
    config : SeRNNConfig or dict; its ``strength`` (and ``model_seed``) are replaced
    out : path, optional
        Writes ``strength_<s>[_seed_<k>]/`` run folders, ``sweep.csv`` (one row per
        network), ``sweep.md`` (per-network table and, with several seeds, the
        means), ``sweep.json`` and ``sweep.png`` (means against strength).
    model_seeds : sequence of int, optional
        Initial-weight seeds; default: the config's ``model_seed`` only.

    Returns
    -------
    list of one dict per network with ``model_seed`` and :data:`SWEEP_COLUMNS`.
    """
    config = SeRNNConfig.resolve(config)
    strengths = [float(check_nonnegative("strengths entries", s)) for s in strengths]
    if not strengths:
        raise ValueError("strengths must not be empty")
    seeds = [config.model_seed] if model_seeds is None else [check_int("model_seeds entries", k, minimum=0)
                                                             for k in model_seeds]
    if not seeds:
        raise ValueError("model_seeds must not be empty")
    out = prepare_experiment_folder(out, "sernn-sweep", overwrite)
    rows = []
    for k in seeds:
        for s in strengths:
            name = f"strength_{s:g}" + ("" if model_seeds is None else f"_seed_{k}")
            res = run_sernn(dataclasses.replace(config, strength=s, model_seed=k),
                            out=None if out is None else out / name)
            g = res["graph"]
            row = {"strength": s, "model_seed": k, "accuracy": res["accuracy"], "task_loss": res["task_loss"],
                   "train_seconds": res["train_seconds"]}
            row.update({c: g.get(c) for c in SWEEP_COLUMNS if c not in row})
            rows.append(row)
    means = _mean_rows(rows)
    if out is not None:
        cols = ("strength", "model_seed", *SWEEP_COLUMNS[1:])
        write_csv(out / "sweep.csv", [{c: r.get(c) for c in cols} for r in rows])
        text = _markdown(rows, cols)
        if len(seeds) > 1:
            text += "\nMean over seeds:\n\n" + _markdown(means, ("strength", "n_seeds", *SWEEP_COLUMNS[1:]))
        write_text(out / "sweep.md", text)
        write_json(out / "sweep.json", {"config": config.to_dict(), "model_seeds": seeds, "rows": rows,
                                        "means": means})
        plot_sweep(means).savefig(out / "sweep.png", dpi=110)
    return rows
