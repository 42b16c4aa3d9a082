"""Tensor component analysis (Williams et al. 2018) and the sign task's trial factor."""

import numpy as np
import pytest
import torch

from neurornn import RNN, RNNConfig
from neurornn.analysis.tca import (
    activity_tensor,
    fit_tca,
    plot_rank_sweep,
    plot_tca,
    rank_sweep,
    trial_factor_auc,
    trial_factor_dprime,
)
from neurornn.experiments.sign_tca import choose_rank, run_sign_tca


def _low_rank(rank=2, shape=(12, 15, 40), seed=0):
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.2, 1, size=(shape[0], rank))
    v = rng.uniform(0.2, 1, size=(shape[1], rank))
    labels = np.where(rng.uniform(size=shape[2]) < 0.5, -1.0, 1.0)
    w = rng.uniform(0.5, 1, size=(shape[2], rank))
    w[:, 0] *= labels  # component 0 carries the label's sign
    x = np.einsum("nr,tr,kr->ntk", u, v, w)
    return x, (u, v, w), labels


def _congruence(a, b):
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    return abs(float(a @ b))


def test_exact_low_rank_tensor_is_recovered():
    x, (u, v, w), labels = _low_rank()
    res = fit_tca(x, 2, seed=0, n_iter_max=500, tol=1e-10)
    assert res.rel_error_ < 1e-4
    np.testing.assert_allclose(res.reconstruct(), x, atol=1e-3 * np.abs(x).max())
    assert res.weights_[0] >= res.weights_[1] > 0
    # every true component matches one fitted component (up to permutation and scale)
    for r in range(2):
        best = max(_congruence(u[:, r], res.unit_factors_[:, q]) * _congruence(v[:, r], res.time_factors_[:, q])
                   * _congruence(w[:, r], res.trial_factors_[:, q]) for q in range(2))
        assert best > 0.99
    np.testing.assert_allclose(np.linalg.norm(res.unit_factors_, axis=0), 1.0)
    auc = trial_factor_auc(res, labels)
    assert max(np.max(auc), 1 - np.min(auc)) == pytest.approx(1.0)
    assert np.max(np.abs(trial_factor_dprime(res, labels))) > 3


def test_rank_sweep_drops_to_zero_at_the_true_rank_and_choose_rank():
    x, _, _ = _low_rank(rank=2)
    errors = rank_sweep(x, (1, 2, 3), n_repeats=2, seed=0)
    assert min(errors[1]) > 0.05 and min(errors[2]) < 1e-3 and min(errors[3]) < 1e-3
    assert choose_rank(errors) == 2
    assert choose_rank({1: [0.5], 2: [0.3], 3: [0.1]}) == 3
    assert len(plot_rank_sweep(errors).axes) == 1


def test_nonnegative_tca():
    x, _, _ = _low_rank()
    x = np.abs(x)
    res = fit_tca(x, 3, nonnegative=True)
    assert res.rel_error_ < 0.2
    assert (res.unit_factors_ >= -1e-12).all() and (res.trial_factors_ >= -1e-12).all()


def test_activity_tensor_is_the_models_rates_and_leaves_the_model_alone():
    model = RNN(RNNConfig(n_inputs=1, n_units=8, n_outputs=1, dt_ms=1.0, tau_ms=1.0, activation="tanh"))
    model.train()
    u = torch.randn(5, 7, 1)
    x = activity_tensor(model, u)
    assert x.shape == (8, 7, 5)
    with torch.no_grad():
        rates = model(u, noise=False).rates
    np.testing.assert_allclose(x, rates.permute(2, 1, 0).double().numpy(), rtol=1e-5, atol=1e-6)
    assert model.training and model.w_rec.requires_grad


def test_sign_task_trial_factor_separates_signs(tmp_path):
    res = run_sign_tca({"n_trials": 80, "ranks": (1, 2, 3), "n_repeats": 1, "steps": 300}, out=tmp_path / "tca")
    assert res["accuracy"] >= 0.95
    assert res["best_auc"] >= 0.95  # one trial factor separates positive from negative trials
    assert res["best_dprime"] > 2.0
    for name in ("tca.json", "activity.npz", "rank_sweep.png", "tca_factors.png", "run/summary.json"):
        assert (tmp_path / "tca" / name).exists()
    fig = plot_tca(res["tca"], np.load(tmp_path / "tca" / "activity.npz")["sign"])
    assert len(fig.axes) == 3 * res["rank"]


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: fit_tca(np.zeros((3, 4)), 2), ValueError, "units, time, trials"),
        (lambda: fit_tca(np.zeros((3, 4, 5)), 2), ValueError, "all zeros"),
        (lambda: fit_tca(np.full((3, 4, 5), np.nan), 2), ValueError, "NaN"),
        (lambda: fit_tca(np.ones((3, 4, 5)), 0), ValueError, "rank"),
        (lambda: fit_tca(-np.ones((3, 4, 5)), 1, nonnegative=True), ValueError, "non-negative"),
        (lambda: rank_sweep(np.ones((3, 4, 5)), ()), ValueError, "ranks"),
        (lambda: trial_factor_auc(fit_tca(np.ones((3, 4, 5)), 1), [0, 1, 2, 0, 1]), ValueError, "two values"),
        (lambda: trial_factor_auc(fit_tca(np.ones((3, 4, 5)), 1), [0, 1]), ValueError, "shape"),
        (lambda: run_sign_tca({"rankz": 2}), ValueError, "rank"),
        (lambda: choose_rank({}), ValueError, "empty"),
    ],
)
def test_bad_inputs(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_activity_tensor_bad_use():
    model = RNN(RNNConfig(n_inputs=1, n_units=3, n_outputs=1))
    with pytest.raises(ValueError, match="use"):
        activity_tensor(model, torch.zeros(1, 2, 1), use="spikes")
