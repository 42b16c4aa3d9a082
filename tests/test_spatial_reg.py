"""Spatial regularisers (seRNN SE1 and SE1_sWc) against a NumPy/SciPy reference."""

import numpy as np
import pytest
import scipy.linalg
import torch

from neurornn import RNN, RNNConfig
from neurornn.models.space import config_distances
from neurornn.training.regularizers import build_regularizer, regularizer_kinds
from neurornn.ops.communicability import weighted_communicability


def sernn_reference(kernel, distances, se1, comms_factor=None):
    """The seRNN code (TensorFlow) transcribed to NumPy; ``kernel`` is the Keras kernel U = W^T."""
    a = np.abs(kernel)
    if comms_factor is None:
        return se1 * np.sum(a * distances)
    step = np.diag(a.sum(axis=1) ** -0.5)
    comms = scipy.linalg.expm(step @ a @ step)
    np.fill_diagonal(comms, 0.0)
    return se1 * np.sum(a * comms**comms_factor * distances)


def _model(n=100, **kw):
    return RNN(RNNConfig(n_inputs=3, n_units=n, n_outputs=2, w_rec_init="orthogonal", seed=1, **kw))


@pytest.mark.parametrize("kind, comms", [("spatial_l1", None), ("spatial_communicability", 1.0),
                                         ("spatial_communicability", 0.5)])
def test_value_matches_sernn_reference(kind, comms):
    model = _model()
    spec = {"kind": kind, "strength": 0.3}
    if comms is not None:
        spec["comms_factor"] = comms
    term = build_regularizer(spec, model)
    w = model.effective_weights()
    value = float(term(model, w, None).detach())
    w_np = w.w_rec.detach().double().numpy()
    ref = sernn_reference(w_np.T, config_distances(model.config), 0.3, comms)
    assert value == pytest.approx(ref, rel=1e-4)
    assert kind in regularizer_kinds()


def test_user_coordinates_and_power_are_used():
    coords = np.random.default_rng(0).uniform(size=(20, 2))
    model = _model(20, coordinates=coords.tolist(), distance_power=2.0, distance_metric="cityblock")
    w = model.effective_weights()
    value = float(build_regularizer({"kind": "spatial_l1", "strength": 1.0}, model)(model, w, None).detach())
    d = scipy.spatial.distance.squareform(scipy.spatial.distance.pdist(coords, "cityblock") ** 2)
    assert value == pytest.approx(np.sum(np.abs(w.w_rec.detach().numpy()) * d), rel=1e-5)


def test_communicability_matches_scipy_expm():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(15, 15))
    c = weighted_communicability(torch.tensor(w)).numpy()
    a = np.abs(w)
    s = np.diag(a.sum(axis=0) ** -0.5)
    ref = scipy.linalg.expm(s @ a @ s)
    np.fill_diagonal(ref, 0)
    np.testing.assert_allclose(c, ref, rtol=1e-10)


def test_empty_rows_and_columns_give_finite_values_and_gradients():
    torch.manual_seed(0)
    w = torch.randn(12, 12, dtype=torch.float64)
    w[3, :] = 0.0  # unit 3 receives nothing
    w[:, 5] = 0.0  # unit 5 sends nothing (zero strength: the seRNN code divides by zero)
    w[7, :] = 0.0
    w[:, 7] = 0.0  # an isolated unit
    w.requires_grad_(True)
    c = weighted_communicability(w)
    assert torch.isfinite(c).all()
    # empty units: their rows/columns of the normalised matrix are zero, so C = expm of the rest
    keep = [i for i in range(12) if i not in (5, 7)]
    a = np.abs(w.detach().numpy())
    s = a.sum(0)
    sub = a[np.ix_(keep, keep)] / np.sqrt(np.outer(s[keep], s[keep]))
    ref = scipy.linalg.expm(sub)
    np.fill_diagonal(ref, 0)
    np.testing.assert_allclose(c.detach().numpy()[np.ix_(keep, keep)], ref, rtol=1e-10)
    d = torch.rand(12, 12, dtype=torch.float64)
    loss = (w.abs() * c * d).sum()
    (grad,) = torch.autograd.grad(loss, w)
    assert torch.isfinite(grad).all()
    # an all-zero matrix too
    z = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
    (g0,) = torch.autograd.grad((weighted_communicability(z) * z.abs()).sum(), z)
    assert torch.isfinite(g0).all()


def test_gradcheck_float64():
    torch.manual_seed(1)
    w = (torch.rand(6, 6, dtype=torch.float64) + 0.1) * torch.sign(torch.randn(6, 6, dtype=torch.float64))
    w.requires_grad_(True)
    d = torch.rand(6, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: (x.abs() * weighted_communicability(x) * d).sum(), (w,))


def test_regulariser_trains_without_nan_with_dale_and_sparse_mask():
    model = _model(20, exc_fraction=0.8, p_connect=0.3, autapses=False)
    term = build_regularizer({"kind": "spatial_communicability", "strength": 1.0}, model)
    opt = torch.optim.SGD([model.w_rec], lr=0.5)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = term(model, model.effective_weights(), None)
        loss.backward()
        assert torch.isfinite(model.w_rec.grad).all()
        opt.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < first  # the regulariser alone shrinks weights


@pytest.mark.parametrize(
    "spec, err, match",
    [
        ({"kind": "spatial_communicability", "strength": 0.1, "comms_factor": -1.0}, ValueError, "comms_factor"),
        ({"kind": "spatial_communicabilty", "strength": 0.1}, ValueError, "did you mean"),
        ({"kind": "spatial_l1", "strength": -0.1}, ValueError, "strength"),
        ({"kind": "spatial_l1", "strength": 0.1, "power": 2}, ValueError, "unknown parameter .power.*known: \\[\\]"),
    ],
)
def test_bad_specs(spec, err, match):
    with pytest.raises(err, match=match):
        build_regularizer(spec, _model(8))


def test_bad_communicability_input():
    with pytest.raises(ValueError, match="n_units, n_units"):
        weighted_communicability(torch.zeros(3, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        weighted_communicability(np.zeros((3, 3)))
