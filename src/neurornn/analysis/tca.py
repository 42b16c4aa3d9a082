"""Tensor component analysis (TCA) of network activity (Williams et al. 2018).

Activity is arranged as a tensor ``(units, time, trials)`` and approximated by a
rank-R CP decomposition (tensorly's ``parafac``, ALS)::

    X[n, t, k] ~= sum_r  lambda_r  u_r[n]  v_r[t]  w_r[k]

``u_r`` are unit factors, ``v_r`` temporal factors and ``w_r`` trial factors. The
rank is chosen from the reconstruction error against rank (:func:`rank_sweep`);
a trial factor that separates conditions (e.g. positive from negative trials of
the sign task) is found with :func:`trial_factor_auc`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .._validation import check_finite, check_int
from ._model_access import analysis_copy

__all__ = [
    "TCAResult",
    "activity_tensor",
    "fit_tca",
    "rank_sweep",
    "trial_factor_auc",
    "trial_factor_dprime",
    "plot_tca",
    "plot_rank_sweep",
]


@dataclass(frozen=True)
class TCAResult:
    """A fitted CP decomposition.

    Attributes
    ----------
    rank : int
    weights_ : ndarray (rank,)
        Component scales ``lambda_r`` (factors have unit norm), largest first.
    unit_factors_ : ndarray (units, rank)
    time_factors_ : ndarray (time, rank)
    trial_factors_ : ndarray (trials, rank)
    rel_error_ : float
        ``||X - X_hat||_F / ||X||_F``.
    """

    rank: int
    weights_: np.ndarray
    unit_factors_: np.ndarray
    time_factors_: np.ndarray
    trial_factors_: np.ndarray
    rel_error_: float

    def reconstruct(self) -> np.ndarray:
        """The model tensor, shape (units, time, trials)."""
        return np.einsum("r,nr,tr,kr->ntk", self.weights_, self.unit_factors_, self.time_factors_,
                         self.trial_factors_)


def activity_tensor(model, inputs, use: str = "rates") -> np.ndarray:
    """Noise-free activity of a network as a ``(units, time, trials)`` tensor.

    Parameters
    ----------
    model : RNN
    inputs : Tensor of shape (trials, time, n_inputs)
    use : {"rates", "states"}

    The model is run in float64 on a copy; it is not changed.
    """
    if use not in ("rates", "states"):
        raise ValueError(f"use must be 'rates' or 'states', got {use!r}")
    net = analysis_copy(model)
    with torch.no_grad():
        traj = net(torch.as_tensor(inputs, dtype=torch.float64), noise=False)
    x = traj.rates if use == "rates" else traj.states
    return x.permute(2, 1, 0).cpu().numpy()  # (units, time, trials)


def _check_tensor(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 3:
        raise ValueError(f"tensor must have shape (units, time, trials), got {x.shape}")
    check_finite("tensor", x)
    if not np.any(x):
        raise ValueError("tensor is all zeros")
    return x


def fit_tca(tensor, rank: int, *, nonnegative: bool = False, n_iter_max: int = 200, tol: float = 1e-6,
            seed: int = 0) -> TCAResult:
    """Fit a rank-``rank`` CP decomposition.

    Parameters
    ----------
    tensor : array of shape (units, time, trials)
    rank : int >= 1
    nonnegative : bool
        Non-negative CP (for rectified rates), as Williams et al. use on data.
    n_iter_max, tol : ALS iterations and convergence tolerance.
    seed : int
        Random initialisation.

    Returns
    -------
    TCAResult (components sorted by weight, factors of unit norm, signs fixed so
    that unit and time factors have a positive mean).
    """
    import tensorly as tl
    from tensorly.decomposition import non_negative_parafac, parafac

    x = _check_tensor(tensor)
    check_int("rank", rank, minimum=1)
    if nonnegative and x.min() < 0:
        raise ValueError(f"nonnegative=True needs a non-negative tensor, got minimum {x.min():.3g}")
    tl.set_backend("numpy")
    kwargs = dict(rank=rank, n_iter_max=n_iter_max, tol=tol, init="random", random_state=seed)
    if nonnegative:
        cp = non_negative_parafac(x, **kwargs)
    else:
        cp = parafac(x, normalize_factors=False, **kwargs)
    weights, factors = cp
    factors = [np.asarray(f, dtype=float) for f in factors]
    lam = np.asarray(weights, dtype=float) * np.ones(rank)
    for f in factors:
        norms = np.linalg.norm(f, axis=0)
        norms[norms == 0] = 1.0
        f /= norms
        lam = lam * norms
    for m in (0, 1):  # sign convention: unit and time factors with positive mean, trial absorbs sign
        flip = np.sign(factors[m].sum(0))
        flip[flip == 0] = 1.0
        factors[m] *= flip
        factors[2] *= flip
    flip = np.sign(lam)
    flip[flip == 0] = 1.0
    lam, factors[2] = lam * flip, factors[2] * flip
    order = np.argsort(-lam)
    lam = lam[order]
    factors = [f[:, order] for f in factors]
    recon = np.einsum("r,nr,tr,kr->ntk", lam, *factors)
    err = float(np.linalg.norm(x - recon) / np.linalg.norm(x))
    return TCAResult(rank, lam, factors[0], factors[1], factors[2], err)


def rank_sweep(tensor, ranks: Sequence[int] = (1, 2, 3, 4, 5, 6), n_repeats: int = 3, *,
               nonnegative: bool = False, seed: int = 0) -> dict[int, list[float]]:
    """Reconstruction error against rank, with ``n_repeats`` random initialisations each.

    Returns
    -------
    dict rank -> list of relative errors (one per repeat). Pick the rank where the
    error stops dropping (an elbow) and the repeats agree.
    """
    x = _check_tensor(tensor)
    check_int("n_repeats", n_repeats, minimum=1)
    if not len(ranks):
        raise ValueError("ranks must not be empty")
    return {int(r): [fit_tca(x, int(r), nonnegative=nonnegative, seed=seed + i).rel_error_
                     for i in range(n_repeats)] for r in ranks}


def trial_factor_auc(result: TCAResult, labels) -> np.ndarray:
    """How well each trial factor separates two conditions.

    Parameters
    ----------
    result : TCAResult
    labels : array of shape (trials,), two distinct values (e.g. the sign, +-1)

    Returns
    -------
    ndarray (rank,): ROC AUC of each component's trial factor for predicting the
    larger label value (0.5: no separation; 0 or 1: perfect).
    """
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels).ravel()
    if labels.shape[0] != result.trial_factors_.shape[0]:
        raise ValueError(f"labels must have shape ({result.trial_factors_.shape[0]},), got {labels.shape}")
    values = np.unique(labels)
    if len(values) != 2:
        raise ValueError(f"labels must take exactly two values, got {values.tolist()}")
    y = labels == values[1]
    return np.array([roc_auc_score(y, result.trial_factors_[:, r]) for r in range(result.rank)])


def trial_factor_dprime(result: TCAResult, labels) -> np.ndarray:
    """Separation of two conditions by each trial factor as d' (difference of means / pooled std).

    Returns
    -------
    ndarray (rank,): ``(mean_hi - mean_lo) / sqrt((var_hi + var_lo) / 2)`` with ``hi``
    the larger label value; inf when both groups are constant and differ.
    """
    labels = np.asarray(labels).ravel()
    trial_factor_auc(result, labels)  # validates the labels
    values = np.unique(labels)
    hi = result.trial_factors_[labels == values[1]]
    lo = result.trial_factors_[labels == values[0]]
    pooled = np.sqrt((hi.var(0) + lo.var(0)) / 2)
    diff = hi.mean(0) - lo.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pooled > 0, diff / np.where(pooled > 0, pooled, 1), np.sign(diff) * np.inf)


def plot_tca(result: TCAResult, labels=None, title: str = ""):
    """One row per component: unit factor (bars), time factor, trial factor (coloured by label).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    r = result.rank
    fig = Figure(figsize=(9, 1.6 * r + 0.6), layout="constrained")
    axes = fig.subplots(r, 3, squeeze=False)
    colors = None
    if labels is not None:
        labels = np.asarray(labels)
        colors = np.where(labels == np.unique(labels)[-1], "C3", "C0")
    for i in range(r):
        axes[i, 0].bar(np.arange(result.unit_factors_.shape[0]), result.unit_factors_[:, i], color="0.3")
        axes[i, 1].plot(result.time_factors_[:, i], "k")
        axes[i, 2].scatter(np.arange(result.trial_factors_.shape[0]), result.trial_factors_[:, i], s=5,
                           c=colors if colors is not None else "k")
        axes[i, 0].set_ylabel(f"#{i + 1}")
    for j, name in enumerate(("unit", "time", "trial")):
        axes[0, j].set_title(f"{name} factors", fontsize=9)
    if title:
        fig.suptitle(title)
    return fig


def plot_rank_sweep(errors: dict[int, list[float]]):
    """Reconstruction error against rank (every repeat as a dot, the best as a line).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4, 3), layout="constrained")
    ax = fig.subplots()
    ranks = sorted(errors)
    for r in ranks:
        ax.scatter([r] * len(errors[r]), errors[r], c="0.5", s=10)
    ax.plot(ranks, [min(errors[r]) for r in ranks], "k-")
    ax.set_xlabel("rank")
    ax.set_ylabel("relative reconstruction error")
    return fig
