"""Task performance: validation scores, example trials, psychometric curves.

After trainRNNbrain's ``PerformanceAnalyzer`` (seed 002), on the torch model:
:func:`validation_score` with a chosen scoring function, :func:`plot_trials`
(outputs against targets) and :func:`psychometric_curve` (P(choice) against
signed evidence for decision tasks, per context, with a fitted logistic).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from scipy.optimize import minimize

from .._validation import check_choice, check_int
from ..ops.losses import task_loss
from ..plotting import new_figure, tight_layout
from ..tasks.base import Batch, Task
from ._model_access import resolve_model

if TYPE_CHECKING:  # matplotlib is imported by the plotting functions only
    from matplotlib.figure import Figure

__all__ = [
    "validation_score",
    "plot_trials",
    "decision_choices",
    "fit_psychometric",
    "PsychometricCurve",
    "psychometric_curve",
    "plot_psychometric",
]

_SCORINGS = ("accuracy", "loss", "mse", "cross_entropy")


def _check_task(task: Any) -> Task:
    if not isinstance(task, Task):
        raise TypeError(f"task must be a neurornn Task, got {type(task).__name__}")
    return task


def _run(model, batch: Batch) -> torch.Tensor:
    with torch.no_grad():
        return model(batch.inputs.to(model.alpha.device, model.alpha.dtype), noise=False).outputs


def _batch(task: Task, batch: Batch | None, n_trials: int, seed: int, *, evaluation: bool = False) -> Batch:
    if batch is not None:
        if not isinstance(batch, Batch):
            raise TypeError(f"batch must be a neurornn Batch, got {type(batch).__name__}")
        return batch
    check_int("n_trials", n_trials, minimum=1)
    check_int("seed", seed)
    draw = task.evaluation_batch if evaluation else task.batch
    return draw(n_trials, torch.Generator().manual_seed(seed))


def validation_score(
    source: Any,
    task: Task,
    *,
    scoring: str | Callable[[torch.Tensor, Batch], float] = "accuracy",
    batch: Batch | None = None,
    n_trials: int = 256,
    seed: int = 0,
    snapshot: int | None = None,
) -> float:
    """Score a network on a validation batch.

    Parameters
    ----------
    source : RNN or Run (final model or ``snapshot``)
    task : Task
    scoring : {"accuracy", "loss", "mse", "cross_entropy"} or callable
        ``"accuracy"``: the task's own ``evaluate(...)["accuracy"]``; ``"loss"``:
        the task's own loss (``task.loss``, masked as in training); ``"mse"``:
        masked mean squared error of outputs against targets; ``"cross_entropy"``:
        masked cross-entropy of the outputs (logits) against the targets; a
        callable gets ``(outputs (trials, time, n_outputs), batch)`` and returns a float.
    batch : Batch, optional
        Default: ``task.evaluation_batch(n_trials)`` from ``seed`` (the trials the
        trainer scores; for most tasks the same as ``task.batch``).

    Returns
    -------
    float
    """
    _check_task(task)
    model = resolve_model(source, snapshot)
    if not callable(scoring):
        check_choice("scoring", scoring, _SCORINGS)
    b = _batch(task, batch, n_trials, seed, evaluation=True)
    outputs = _run(model, b)
    b = b.to(outputs.device)
    if scoring == "accuracy":
        return task.scores(outputs, b)["accuracy"]
    if isinstance(scoring, str):
        kind = task.loss if scoring == "loss" else scoring
        return float(task_loss(kind, outputs, b.targets.to(outputs.dtype), b.mask.to(outputs.dtype)))
    return float(scoring(outputs, b))


def plot_trials(
    source: Any,
    task: Task,
    *,
    batch: Batch | None = None,
    n_trials: int = 4,
    seed: int = 0,
    snapshot: int | None = None,
) -> Figure:
    """Outputs (solid) against targets (dashed) for a few trials, one panel per trial.

    Parameters
    ----------
    source : RNN or Run
    task : Task
    batch : Batch, optional (default ``task.batch(n_trials)`` from ``seed``)
    n_trials : int

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_task(task)
    model = resolve_model(source, snapshot)
    b = _batch(task, batch, n_trials, seed)
    outputs = _run(model, b).cpu().numpy()
    n = min(n_trials, b.n_trials)
    t_ms = (np.arange(b.n_steps) + 1) * task.dt_ms
    fig = new_figure(8, 1.8 * n + 0.6)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
    if task.loss == "cross_entropy":
        shown = torch.softmax(torch.as_tensor(outputs), -1).numpy()
        ylabel = "p(class)"
    else:
        shown, ylabel = outputs, "output"
    targets = b.targets.cpu().numpy()
    for i, ax in enumerate(axes):
        for k, name in enumerate(task.output_names):
            ax.plot(t_ms, shown[i, :, k], color=f"C{k}", label=name)
            ax.plot(t_ms, targets[i, :, k], color=f"C{k}", ls="--", lw=1)
        cond = ", ".join(f"{k}={float(v[i]):g}" for k, v in b.conditions.items() if v.ndim == 1)
        ax.set_title(f"trial {i}: {cond}", fontsize=8)
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=7, loc="upper left", ncol=len(task.output_names))
    axes[-1].set_xlabel("time (ms)")
    tight_layout(fig)
    return fig


# --------------------------------------------------------------------------- choices
def _decision_steps(batch: Batch) -> torch.Tensor:
    for name in ("decision", "response"):
        if batch.periods is not None and name in batch.period_names:
            return batch.period_mask(name)
    mask = torch.zeros(batch.n_trials, batch.n_steps, dtype=torch.bool)
    mask[:, -1] = True
    return mask


def decision_choices(task: Task, outputs: torch.Tensor, batch: Batch) -> np.ndarray:
    """Binary choice of each trial (1 or 0), from the mean decision-period output.

    Tasks with outputs ``choice_1`` and ``choice_2``: 1 = ``choice_1`` chose (its
    mean output is larger); tasks with one output: 1 = positive mean output. A
    task can define ``choices(outputs, batch)`` to override this.

    Returns
    -------
    ndarray of shape (trials,), int
    """
    if hasattr(task, "choices"):
        return np.asarray(task.choices(outputs, batch)).astype(int)
    steps = _decision_steps(batch).to(outputs.device).to(outputs.dtype)
    mean = (outputs * steps[..., None]).sum(1) / steps.sum(1, keepdim=True).clamp_min(1)
    names = list(task.output_names)
    if "choice_1" in names and "choice_2" in names:
        diff = mean[:, names.index("choice_1")] - mean[:, names.index("choice_2")]
    elif len(names) == 1:
        diff = mean[:, 0]
    else:
        raise ValueError(
            f"cannot read a binary choice from outputs {names}: expected 'choice_1' and 'choice_2' "
            "or a single output (or give the task a choices(outputs, batch) method)"
        )
    return (diff > 0).cpu().numpy().astype(int)


# --------------------------------------------------------------------------- fitting
def _logistic(x: np.ndarray, bias: float, slope: float, lapse: float) -> np.ndarray:
    return lapse + (1 - 2 * lapse) / (1 + np.exp(-np.clip(slope * (x - bias), -500, 500)))


def fit_psychometric(x: Any, choices: Any, *, lapse: bool = True) -> dict[str, float]:
    """Maximum-likelihood logistic fit of binary choices.

    ``P(choice = 1 | x) = lapse + (1 - 2 lapse) / (1 + exp(-slope (x - bias)))``

    Parameters
    ----------
    x : array of shape (trials,)
        Signed evidence (e.g. coherence in percent).
    choices : array of shape (trials,) of 0/1
    lapse : bool
        Fit a symmetric lapse rate in [0, 0.25] (else fixed at 0).

    Returns
    -------
    dict with ``bias`` (x at 50 %), ``slope`` (per unit of x), ``threshold``
    (``ln 3 / slope``: from 50 % to 75 % of the lapse-free curve), ``lapse`` and
    ``log_likelihood``.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(choices, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 3:
        raise ValueError(f"x and choices must be 1-D of the same length >= 3, got {x.shape} and {y.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("choices must be 0 or 1")
    scale = max(np.abs(x).max(), 1e-12)

    def nll(theta: np.ndarray) -> float:
        p = _logistic(x, theta[0] * scale, theta[1] / scale, theta[2] if lapse else 0.0)
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return -float(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)))

    best = None
    for s0 in (1.0, 5.0, -1.0, 20.0):
        r = minimize(nll, np.array([0.0, s0, 0.02]), method="L-BFGS-B",
                     bounds=[(-2, 2), (-1e3, 1e3), (0.0, 0.25 if lapse else 0.0)])
        if best is None or r.fun < best.fun:
            best = r
    bias, slope, lp = best.x[0] * scale, best.x[1] / scale, (best.x[2] if lapse else 0.0)
    return {"bias": float(bias), "slope": float(slope),
            "threshold": float(np.log(3) / slope) if slope != 0 else float("inf"),
            "lapse": float(lp), "log_likelihood": float(-best.fun), "n_trials": int(len(x))}


@dataclass
class PsychometricCurve:
    """P(choice) against a signed condition, with its logistic fit.

    Attributes
    ----------
    condition : str
        The x-axis condition (e.g. ``signed_coherence``).
    group : str
        ``"all"`` or ``"<group_by>=<value>"`` (e.g. ``context=0``).
    levels_ : ndarray (n_levels,)        condition values
    p_choice_ : ndarray (n_levels,)      fraction of choice 1 at each level
    n_trials_ : ndarray (n_levels,)
    fit_ : dict                           :func:`fit_psychometric`
    choice_label : str
    """

    condition: str
    group: str
    levels_: np.ndarray
    p_choice_: np.ndarray
    n_trials_: np.ndarray
    fit_: dict = field(default_factory=dict)
    choice_label: str = "choice 1"

    def summary(self) -> dict[str, Any]:
        return {"condition": self.condition, "group": self.group, "choice": self.choice_label,
                "levels": self.levels_.tolist(), "p_choice": self.p_choice_.tolist(),
                "n_trials": self.n_trials_.tolist(), "fit": self.fit_}


def psychometric_curve(
    source: Any,
    task: Task,
    *,
    condition: str = "signed_coherence",
    group_by: str | None = None,
    n_trials: int = 2000,
    seed: int = 0,
    batch: Batch | None = None,
    snapshot: int | None = None,
    lapse: bool = True,
) -> list[PsychometricCurve]:
    """Psychometric curves of a decision network, one per value of ``group_by``.

    Parameters
    ----------
    source : RNN or Run
    task : Task
        A two-choice task (see :func:`decision_choices`) whose batches carry
        ``condition`` (e.g. ``perceptual_decision_making``'s ``signed_coherence``,
        positive for ``choice_1``; the Mante task's ``motion_coherence`` with
        ``group_by="context"``).
    condition, group_by : str
        Condition names of ``batch.conditions``.
    n_trials, seed : int
    lapse : bool

    Returns
    -------
    list of PsychometricCurve
    """
    _check_task(task)
    model = resolve_model(source, snapshot)
    b = _batch(task, batch, n_trials, seed)
    for name in (condition, group_by):
        if name is not None and name not in b.conditions:
            check_choice("condition", name, list(b.conditions))
    outputs = _run(model, b)
    choices = decision_choices(task, outputs, b.to(outputs.device))
    x = b.conditions[condition].cpu().numpy().astype(np.float64)
    label = "choice_1" if "choice_1" in task.output_names else f"{task.output_names[0]} > 0"
    groups = [("all", np.ones(len(x), bool))]
    if group_by is not None:
        g = b.conditions[group_by].cpu().numpy()
        groups = [(f"{group_by}={v:g}", g == v) for v in np.unique(g)]
    curves = []
    for name, sel in groups:
        levels = np.unique(x[sel])
        p = np.array([choices[sel][x[sel] == v].mean() for v in levels])
        n = np.array([(x[sel] == v).sum() for v in levels])
        fit = fit_psychometric(x[sel], choices[sel], lapse=lapse) if sel.sum() >= 3 else {}
        curves.append(PsychometricCurve(condition, name, levels, p, n, fit, label))
    return curves


def plot_psychometric(curves: list[PsychometricCurve], title: str | None = None) -> Figure:
    """Data points and fitted logistic of each curve."""
    if isinstance(curves, PsychometricCurve):
        curves = [curves]
    fig = new_figure(5, 4)
    ax = fig.add_subplot()
    for i, c in enumerate(curves):
        ax.plot(c.levels_, c.p_choice_, "o", color=f"C{i}")
        if c.fit_:
            xs = np.linspace(c.levels_.min(), c.levels_.max(), 200)
            f = c.fit_
            ax.plot(xs, _logistic(xs, f["bias"], f["slope"], f["lapse"]), color=f"C{i}",
                    label=f"{c.group}: bias {f['bias']:.2g}, threshold {f['threshold']:.2g}, lapse {f['lapse']:.2g}")
    ax.set_xlabel(curves[0].condition if curves else "condition")
    ax.set_ylabel(f"P({curves[0].choice_label})" if curves else "P(choice)")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.5, color="0.8", lw=0.8, zorder=0)
    ax.legend(fontsize=7)
    ax.set_title(title or "Psychometric curve")
    tight_layout(fig)
    return fig
