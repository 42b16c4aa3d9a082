"""Tensor component analysis of the sign task's RNN (seed 000 example 2; Williams et al. 2018).

:func:`run_sign_tca` trains an RNN on ``sign_integration`` with
:func:`neurornn.training.train`, records its activity ``(units, time, trials)`` on
a fixed set of trials before and after training, chooses the CP rank from the
reconstruction error against rank, fits TCA, and scores how well each trial
factor separates positive from negative trials (ROC AUC).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from .. import tasks
from .._validation import check_choice, check_int, check_positive
from .._files import write_json
from .._folder import prepare_experiment_folder
from ..analysis.tca import (activity_tensor, fit_tca, plot_rank_sweep, plot_tca, rank_sweep, trial_factor_auc,
                            trial_factor_dprime)
from ..models import RNN, RNNConfig
from ..training import TrainConfig, train
from ._config import ExperimentConfig

__all__ = ["SignTCAConfig", "run_sign_tca", "choose_rank"]


@dataclass(frozen=True)
class SignTCAConfig(ExperimentConfig):
    """Settings of the sign-task TCA experiment.

    Network: ``n_units`` ``activation`` units, discrete time (the seed's Keras
    ``SimpleRNN``), ``w_rec_gain``. Training: ``steps`` (stops early at the task's
    criterion), ``batch_size``, ``learning_rate``. Analysis: ``n_trials`` recorded,
    ``ranks`` swept with ``n_repeats`` initialisations, ``rank`` (None: chosen by
    :func:`choose_rank`), ``seed``.
    """

    _label = "sign-TCA config"  # not annotated: a class attribute, not a field

    n_units: int = 50
    activation: str = "tanh"
    w_rec_gain: float = 0.9
    steps: int = 1000
    batch_size: int = 64
    learning_rate: float = 3e-3
    n_trials: int = 200
    ranks: tuple = (1, 2, 3, 4, 5)
    n_repeats: int = 2
    rank: int | None = None
    model_seed: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        check_int("n_units", self.n_units, minimum=1)
        check_choice("activation", self.activation, ("tanh", "relu", "softplus", "sigmoid", "rectified_tanh"))
        check_positive("w_rec_gain", self.w_rec_gain)
        check_int("steps", self.steps, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_positive("learning_rate", self.learning_rate)
        check_int("n_trials", self.n_trials, minimum=4)
        object.__setattr__(self, "ranks", tuple(int(r) for r in self.ranks))
        for r in self.ranks:
            check_int("ranks entries", r, minimum=1)
        check_int("n_repeats", self.n_repeats, minimum=1)
        if self.rank is not None:
            check_int("rank", self.rank, minimum=1)
        check_int("model_seed", self.model_seed, minimum=0)
        check_int("seed", self.seed, minimum=0)



def choose_rank(errors: Mapping[int, list[float]], tolerance: float = 0.02) -> int:
    """Smallest rank whose best error is within ``tolerance`` of the next rank's (the elbow).

    Parameters
    ----------
    errors : dict rank -> relative errors (from :func:`~neurornn.analysis.tca.rank_sweep`)
    tolerance : float
        A rank is enough when adding one component lowers the error by less than this.
    """
    ranks = sorted(errors)
    if not ranks:
        raise ValueError("errors must not be empty")
    best = {r: min(errors[r]) for r in ranks}
    for r, nxt in zip(ranks, ranks[1:]):
        if best[r] - best[nxt] < tolerance:
            return r
    return ranks[-1]


def run_sign_tca(config: SignTCAConfig | Mapping[str, Any] | None = None, out=None,
                 overwrite: bool = False) -> dict[str, Any]:
    """Train the sign-task RNN and find the trial factor that separates the signs.

    Parameters
    ----------
    config : SignTCAConfig or dict of its fields, optional
    out : path, optional
        Writes ``run/`` (the training run), ``tca.json``, ``activity.npz``
        (tensors before and after training, signs), ``rank_sweep.png`` and
        ``tca_factors.png``.

    Returns
    -------
    dict with ``accuracy``, ``rank``, ``rank_errors``, ``auc`` (per component, after
    training), ``best_auc`` (the component farthest from 0.5, as ``max(AUC, 1 - AUC)``),
    ``best_auc_before`` (same rank, untrained network), ``dprime``, ``best_dprime``,
    ``best_dprime_before`` (``|d'|`` of the trial factors), ``tca`` (TCAResult) and ``run``.

    The untrained network's activity already carries the mean input, so its trial
    factors can separate the signs too (AUC near 1); training widens the separation
    (compare the ``d'``).
    """
    config = SignTCAConfig.resolve(config)
    out = prepare_experiment_folder(out, "sign-tca", overwrite)
    task = tasks.make("sign_integration")
    model = RNN(RNNConfig(n_inputs=1, n_units=config.n_units, n_outputs=1, dt_ms=1.0, tau_ms=1.0,
                          activation=config.activation, w_rec_gain=float(config.w_rec_gain),
                          seed=config.model_seed))
    trials = task.batch(config.n_trials, torch.Generator().manual_seed(10_000 + config.seed))
    signs = trials.conditions["sign"].numpy()
    before = activity_tensor(model, trials.inputs)
    t0 = time.perf_counter()
    run = train(model, task, TrainConfig(steps=config.steps, batch_size=config.batch_size,
                                         learning_rate=config.learning_rate, eval_every=50,
                                         history_every=100, checkpoint_every=0, seed=config.seed,
                                         progress=False),
                out=None if out is None else out / "run")
    wall = time.perf_counter() - t0
    after = activity_tensor(run.model, trials.inputs)
    errors = rank_sweep(after, config.ranks, config.n_repeats, seed=config.seed)
    rank = config.rank if config.rank is not None else choose_rank(errors)
    tca = fit_tca(after, rank, seed=config.seed)
    auc = trial_factor_auc(tca, signs)
    sep = np.maximum(auc, 1 - auc)
    dprime = trial_factor_dprime(tca, signs)
    tca_before = fit_tca(before, rank, seed=config.seed)
    auc_before = trial_factor_auc(tca_before, signs)
    dprime_before = trial_factor_dprime(tca_before, signs)
    results = {
        "config": config.to_dict(),
        "accuracy": run.summary.get("final_accuracy"),
        "train_steps": run.summary.get("steps"),
        "train_seconds": round(wall, 2),
        "rank": rank,
        "rank_errors": {str(k): v for k, v in errors.items()},
        "rel_error": tca.rel_error_,
        "auc": auc.tolist(),
        "best_component": int(np.argmax(sep)),
        "best_auc": float(sep.max()),
        "best_auc_before": float(np.maximum(auc_before, 1 - auc_before).max()),
        "dprime": dprime.tolist(),
        "best_dprime": float(np.abs(dprime).max()),
        "best_dprime_before": float(np.abs(dprime_before).max()),
    }
    if out is not None:
        write_json(out / "tca.json", results)
        np.savez(out / "activity.npz", before=before, after=after, sign=signs)
        plot_rank_sweep(errors).savefig(out / "rank_sweep.png", dpi=110)
        plot_tca(tca, signs, title=f"rank {rank}: best trial-factor AUC {sep.max():.3f}").savefig(
            out / "tca_factors.png", dpi=110)
    results["tca"] = tca
    results["run"] = run
    return results
