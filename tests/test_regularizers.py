"""The regulariser terms equal their formulas, computed independently with NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.training.regularizers import build_regularizer, regularizer_kinds


@pytest.fixture
def model_and_trajectory():
    cfg = nr.RNNConfig(n_inputs=3, n_units=12, n_outputs=2, exc_fraction=0.75, p_connect=0.5, seed=3)
    model = nr.RNN(cfg)
    inputs = torch.randn(4, 7, 3, generator=torch.Generator().manual_seed(0))
    return model, model.effective_weights(), model(inputs)


@pytest.mark.parametrize("kind,p,matrices", [
    ("l1_weights", 1, ("w_rec",)),
    ("l2_weights", 2, ("w_rec",)),
    ("l1_weights", 1, ("w_in", "w_out")),
    ("l2_weights", 2, ("w_rec", "w_out")),
])
def test_weight_norms(model_and_trajectory, kind, p, matrices):
    model, weights, traj = model_and_trajectory
    term = build_regularizer({"kind": kind, "strength": 0.3, "matrices": list(matrices)}, model)
    expected = 0.3 * sum((np.abs(getattr(weights, m).detach().numpy()) ** p).sum() for m in matrices)
    assert term(model, weights, traj).item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("kind,p", [("l1_rates", 1), ("l2_rates", 2)])
def test_rate_norms(model_and_trajectory, kind, p):
    model, weights, traj = model_and_trajectory
    term = build_regularizer({"kind": kind, "strength": 0.5}, model)
    expected = 0.5 * (np.abs(traj.rates.detach().numpy()) ** p).mean()
    assert term(model, weights, traj).item() == pytest.approx(expected, rel=1e-5)


def test_every_kind_is_listed():
    assert {"l1_rates", "l2_rates", "l1_weights", "l2_weights", "spatial_l1",
            "spatial_communicability"} <= set(regularizer_kinds())


def test_unknown_matrix_is_named(model_and_trajectory):
    model = model_and_trajectory[0]
    with pytest.raises(ValueError, match="matrices must be among .* got 'w_recc'"):
        build_regularizer({"kind": "l1_weights", "strength": 1.0, "matrices": ["w_recc"]}, model)


def test_unknown_parameter_is_named(model_and_trajectory):
    model = model_and_trajectory[0]
    with pytest.raises(ValueError, match="unknown parameter 'matrix' \\(did you mean 'matrices'"):
        build_regularizer({"kind": "l1_weights", "strength": 1.0, "matrix": ["w_rec"]}, model)


def test_regulariser_registry_refuses_silent_replacement():
    from neurornn.training import register_regularizer, regularizer_kinds, unregister_regularizer

    with pytest.raises(ValueError, match="'l2_rates' is already registered \\(built in\\)"):
        register_regularizer("l2_rates")(lambda model, strength: None)

    def first(model, strength):
        return None

    def second(model, strength):
        return None

    register_regularizer("test_kind")(first)
    register_regularizer("test_kind")(first)  # the same factory again: allowed
    with pytest.raises(ValueError, match="give replace=True"):
        register_regularizer("test_kind")(second)
    register_regularizer("test_kind", replace=True)(second)
    unregister_regularizer("test_kind")
    assert "test_kind" not in regularizer_kinds()
    with pytest.raises(ValueError, match="cannot be unregistered"):
        unregister_regularizer("spatial_l1")
