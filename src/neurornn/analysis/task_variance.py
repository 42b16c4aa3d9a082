"""Task variance (Yang, Joglekar, Song, Newsome and Wang 2019, Fig. 2-3), a registered analysis.

For each unit ``i`` and task ``A`` the task variance ``TV[i, A]`` is the variance across the
trials of ``A`` of the unit's rate averaged over the trial's response period (the period
``response``, else ``decision``, else the scored steps). Units whose total task variance is
``<= threshold`` (the paper: 1e-3) are dropped; each remaining unit's row is normalised by its
maximum over tasks. Units are clustered by k-means on the normalised rows, the number of
clusters chosen by the silhouette score; lesioning a cluster (its units' rates reach no unit
and no output) shows which tasks it serves. The fractional task variance of a pair of tasks,
``(TV[i, A] - TV[i, B]) / (TV[i, A] + TV[i, B])``, is -1 for units serving only B and +1 for
units serving only A.

The tasks are a multitask task's ``rules`` (any task with ``rules`` and ``rule_batch``, such
as ``yang19``), otherwise the run's one task.
"""

from __future__ import annotations

import copy
import csv
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .._validation import check_int, check_nonnegative
from ..plotting import new_figure, tight_layout
from ._registry import register_analysis

__all__ = ["TaskVariance", "cluster_units", "fractional_variance", "lesion_clusters", "plot_task_variance",
           "plot_fractional_variance", "task_variance", "variance_from_rates"]

#: The pairs of Yang 2019 Fig. 3 (those whose tasks are present are used).
PAIRS = (("contextdm1", "contextdm2"), ("contextdelaydm1", "contextdelaydm2"), ("dm1", "fdanti"),
         ("fdgo", "fdanti"))


@dataclass
class TaskVariance:
    """Task variance of a network's units.

    Attributes
    ----------
    tasks : tuple of str
    variance : ndarray of shape (n_units, n_tasks)
        ``TV`` of every unit.
    active : ndarray of int
        Units kept (total variance above ``threshold``).
    normalized : ndarray of shape (n_active, n_tasks)
        ``TV`` of the active units divided by each unit's maximum over tasks.
    labels_ : ndarray of shape (n_active,)
        Cluster of each active unit (after :func:`cluster_units`).
    """

    tasks: tuple[str, ...]
    variance: np.ndarray
    threshold: float = 1e-3
    active: np.ndarray = field(init=False)
    normalized: np.ndarray = field(init=False)
    labels_: np.ndarray | None = None
    n_clusters_: int | None = None
    silhouette_: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.variance = np.asarray(self.variance, dtype=np.float64)
        total = self.variance.sum(1)
        self.active = np.flatnonzero(total > self.threshold)
        rows = self.variance[self.active]
        self.normalized = rows / np.maximum(rows.max(1, keepdims=True), 1e-300)


def variance_from_rates(rates_by_task: Mapping[str, Any], threshold: float = 1e-3) -> TaskVariance:
    """Task variance from per-trial responses: ``{task: array (trials, units)}`` (time-averaged already)."""
    check_nonnegative("threshold", threshold)
    if not rates_by_task:
        raise ValueError("rates_by_task must name at least one task")
    columns = []
    for name, x in rates_by_task.items():
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"rates of task {name!r} must have shape (trials >= 2, units), got {x.shape}")
        columns.append(x.var(0))
    if len({c.shape for c in columns}) != 1:
        raise ValueError("every task's rates must have the same number of units")
    return TaskVariance(tuple(rates_by_task), np.stack(columns, 1), threshold)


def _window(batch: Any) -> torch.Tensor:
    """(batch, time) bool: the response period the paper averages over."""
    for name in ("response", "decision"):
        if batch.periods is not None and name in batch.period_names:
            w = batch.period_mask(name)
            if (w.sum(1) > 0).all():
                return w
    return batch.mask > 0


def _task_batches(task: Any, n_trials: int, seed: int) -> dict[str, Any]:
    if hasattr(task, "rules") and hasattr(task, "rule_batch"):
        return {rule: task.rule_batch(rule, n_trials, torch.Generator().manual_seed(seed + i))
                for i, rule in enumerate(task.rules)}
    return {task.name: task.batch(n_trials, torch.Generator().manual_seed(seed))}


def _mean_response(model: Any, batch: Any) -> np.ndarray:
    device = model.alpha.device
    with torch.no_grad():
        rates = model(batch.inputs.to(device), noise=False).rates.double().cpu()
    w = _window(batch).double()
    return ((rates * w[..., None]).sum(1) / w.sum(1, keepdim=True).clamp_min(1)).numpy()


def task_variance(model: Any, task: Any, n_trials: int = 64, seed: int = 0, threshold: float = 1e-3,
                  batches: Mapping[str, Any] | None = None) -> TaskVariance:
    """Task variance of ``model``'s units on ``task`` (its rules, or itself), noise-free trials."""
    n_trials = check_int("n_trials", n_trials, minimum=2)
    batches = dict(batches) if batches is not None else _task_batches(task, n_trials, seed)
    return variance_from_rates({k: _mean_response(model, b) for k, b in batches.items()}, threshold)


def cluster_units(tv: TaskVariance, max_clusters: int = 20, seed: int = 0) -> TaskVariance:
    """K-means on the normalised task variance, ``k`` in 2..``max_clusters`` chosen by silhouette.

    Sets ``labels_`` (clusters numbered by the task at which their mean profile peaks), ``n_clusters_`` and ``silhouette_`` (k -> score). One cluster when fewer than 3 active
    units or one task.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    check_int("max_clusters", max_clusters, minimum=2)
    x = tv.normalized
    n = x.shape[0]
    tv.silhouette_ = {}
    if n < 3 or x.shape[1] < 2 or np.ptp(x, axis=0).max() < 1e-9:
        tv.labels_, tv.n_clusters_ = np.zeros(n, dtype=int), 1 if n else 0
        return tv
    best = None
    distinct = len(np.unique(np.round(x, 9), axis=0))
    for k in range(2, min(max_clusters, n - 1, distinct) + 1):
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
        if len(np.unique(labels)) < 2:
            continue
        score = float(silhouette_score(x, labels))
        tv.silhouette_[k] = score
        if best is None or score > best[0]:
            best = (score, labels)
    labels = best[1] if best is not None else np.zeros(n, dtype=int)
    # Order clusters by the task at which their mean profile peaks (as the paper's sorted map).
    order = sorted(np.unique(labels), key=lambda c: (int(np.argmax(x[labels == c].mean(0))), c))
    remap = {c: i for i, c in enumerate(order)}
    tv.labels_ = np.array([remap[c] for c in labels], dtype=int)
    tv.n_clusters_ = len(order)
    return tv


def fractional_variance(tv: TaskVariance, a: str, b: str) -> np.ndarray:
    """``(TV_a - TV_b) / (TV_a + TV_b)`` of the active units (in [-1, 1])."""
    for name in (a, b):
        if name not in tv.tasks:
            raise ValueError(f"task {name!r} is not among the analysed tasks {list(tv.tasks)}")
    va, vb = (tv.variance[tv.active, tv.tasks.index(t)] for t in (a, b))
    return (va - vb) / np.maximum(va + vb, 1e-300)


def _pairs(tasks: Sequence[str]) -> list[tuple[str, str]]:
    pairs = [p for p in PAIRS if p[0] in tasks and p[1] in tasks]
    return pairs or ([(tasks[0], tasks[1])] if len(tasks) >= 2 else [])


def _lesioned(model: Any, units: np.ndarray) -> Any:
    """A copy of ``model`` whose ``units`` reach no unit and no output (the model is not changed)."""
    copy_ = copy.deepcopy(model)
    index = torch.as_tensor(units, dtype=torch.long, device=copy_.rec_mask.device)
    with torch.no_grad():
        copy_.rec_mask[..., index] = 0
        copy_.out_mask[..., index] = 0
    return copy_.eval()


def _accuracy(task: Any, model: Any, batch: Any) -> float:
    with torch.no_grad():
        out = model(batch.inputs.to(model.alpha.device), noise=False).outputs
    return float(task.scores(out, batch.to(out.device))["accuracy"])


def lesion_clusters(model: Any, task: Any, tv: TaskVariance, batches: Mapping[str, Any]) -> dict[str, Any]:
    """Accuracy per task of the intact network and with each cluster lesioned.

    Returns ``{"tasks", "intact": [per task], "lesioned": [[per task] per cluster],
    "drop": intact - lesioned}``."""
    names = list(batches)
    intact = [_accuracy(task, model, batches[t]) for t in names]
    lesioned = []
    for c in range(tv.n_clusters_ or 0):
        net = _lesioned(model, tv.active[tv.labels_ == c])
        lesioned.append([_accuracy(task, net, batches[t]) for t in names])
    drop = [[i - l for i, l in zip(intact, row)] for row in lesioned]
    return {"tasks": names, "intact": intact, "lesioned": lesioned, "drop": drop}


# ---------------------------------------------------------------------- figures
def plot_task_variance(tv: TaskVariance, lesion: Mapping[str, Any] | None = None) -> Any:
    """The unit x task map of normalised task variance, units sorted by cluster (and the lesion drops)."""
    fig = new_figure(11.0 if lesion else 7.0, 4.5)
    axes = fig.subplots(1, 2 if lesion else 1, squeeze=False)[0]
    order = np.argsort(tv.labels_, kind="stable") if tv.labels_ is not None else np.arange(len(tv.active))
    ax = axes[0]
    image = ax.imshow(tv.normalized[order].T, aspect="auto", cmap="hot", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(tv.tasks)), tv.tasks, fontsize=7)
    ax.set_xlabel(f"active units, sorted by cluster ({len(tv.active)} of {tv.variance.shape[0]})")
    ax.set_title(f"Normalised task variance: {tv.n_clusters_ or 1} clusters (silhouette)")
    fig.colorbar(image, ax=ax, label="task variance / unit's max")
    if tv.labels_ is not None and len(order):
        edges = np.flatnonzero(np.diff(tv.labels_[order])) + 0.5
        for e in edges:
            ax.axvline(e, color="cyan", lw=0.8)
    if lesion:
        drop = np.asarray(lesion["drop"], dtype=float).reshape(-1, len(lesion["tasks"]))
        ax2 = axes[1]
        im2 = ax2.imshow(drop.T, aspect="auto", cmap="coolwarm", vmin=-1, vmax=1, interpolation="nearest")
        ax2.set_yticks(range(len(lesion["tasks"])), lesion["tasks"], fontsize=7)
        ax2.set_xticks(range(drop.shape[0]), [f"c{c}" for c in range(drop.shape[0])])
        ax2.set_xlabel("lesioned cluster")
        ax2.set_title("Accuracy drop when a cluster is lesioned")
        fig.colorbar(im2, ax=ax2, label="intact - lesioned accuracy")
    tight_layout(fig)
    return fig


def plot_fractional_variance(tv: TaskVariance, pairs: Sequence[tuple[str, str]]) -> Any:
    """Histograms of the fractional task variance of each pair of tasks."""
    fig = new_figure(3.2 * max(1, len(pairs)), 3.2)
    axes = fig.subplots(1, max(1, len(pairs)), squeeze=False)[0]
    if not pairs:
        axes[0].text(0.5, 0.5, "fractional task variance needs two tasks;\nthis run has one",
                     ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
    for ax, (a, b) in zip(axes, pairs):
        ax.hist(fractional_variance(tv, a, b), bins=np.linspace(-1, 1, 21), color="0.3")
        ax.set_xlabel(f"FTV = (TV {a} - TV {b}) / sum")
        ax.set_ylabel("units")
        ax.set_xlim(-1, 1)
    tight_layout(fig)
    return fig


# ---------------------------------------------------------------------- the pipeline analysis
_WRITES = ("analysis/task_variance.json", "analysis/task_variance.npz", "analysis/task_variance_lesion.csv",
           "figures/task_variance.png", "figures/task_variance_fractional.png")


@register_analysis("task_variance", writes=_WRITES,
                   help="Yang 2019 task variance per unit and task, clusters (silhouette), cluster lesions, "
                        "fractional task variance")
def _task_variance_analysis(ctx) -> tuple[str, dict]:
    model, task, o = ctx.model, ctx.task, ctx.options
    n_trials = max(o.n_trials, 2)
    batches = _task_batches(task, n_trials, o.seed)
    tv = cluster_units(task_variance(model, task, batches=batches), seed=o.seed)
    lesion = lesion_clusters(model, task, tv, batches) if tv.n_clusters_ else \
        {"tasks": list(batches), "intact": [], "lesioned": [], "drop": []}
    pairs = _pairs(tv.tasks)
    data = {"snapshot": ctx.snapshot, "tasks": list(tv.tasks), "n_trials": n_trials, "threshold": tv.threshold,
            "n_units": int(tv.variance.shape[0]), "n_active": int(len(tv.active)),
            "n_clusters": tv.n_clusters_, "silhouette": {str(k): v for k, v in tv.silhouette_.items()},
            "clusters": [[int(u) for u in tv.active[tv.labels_ == c]] for c in range(tv.n_clusters_ or 0)],
            "lesion": lesion,
            "fractional": {f"{a}|{b}": fractional_variance(tv, a, b).tolist() for a, b in pairs}}
    ctx.out.json("task_variance", data)
    ctx.out.npz("task_variance", {"variance": tv.variance, "active": tv.active, "normalized": tv.normalized,
                                  "labels": tv.labels_, "tasks": np.array(tv.tasks)})
    path = ctx.out.path("analysis/task_variance_lesion.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["lesioned", "n_units", *[f"accuracy_{t}" for t in lesion["tasks"]],
                         *[f"drop_{t}" for t in lesion["tasks"]]])
        writer.writerow(["none", 0, *[f"{v:.4f}" for v in lesion["intact"]], *["0" for _ in lesion["tasks"]]])
        for c, (acc, drop) in enumerate(zip(lesion["lesioned"], lesion["drop"])):
            writer.writerow([f"cluster {c}", int((tv.labels_ == c).sum()), *[f"{v:.4f}" for v in acc],
                             *[f"{v:.4f}" for v in drop]])
    ctx.out.record([path])
    ctx.out.figure("task_variance", plot_task_variance(tv, lesion if lesion["drop"] else None))
    ctx.out.figure("task_variance_fractional", plot_fractional_variance(tv, pairs))
    worst = ""
    if lesion["drop"]:
        c, t = np.unravel_index(int(np.argmax(lesion["drop"])), np.shape(lesion["drop"]))
        worst = f" Lesioning cluster {c} hurts {lesion['tasks'][t]} most (drop {lesion['drop'][c][t]:.2f})."
    msg = (f"Task variance over {len(tv.tasks)} task(s): {len(tv.active)} of {tv.variance.shape[0]} units "
           f"active, {tv.n_clusters_} cluster(s).{worst}")
    return msg, data
