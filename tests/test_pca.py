"""PCA against scikit-learn, deterministic signs, plots, bad input."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA

matplotlib.use("Agg")

from neurornn.analysis import PCA, Activity, plot_explained_variance, plot_trajectories  # noqa: E402


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(20, 30, 3)) * np.array([3.0, 1.5, 0.5])
    mixing = rng.normal(size=(3, 8))
    return latent @ mixing + 0.05 * rng.normal(size=(20, 30, 8)) + 2.0


def test_matches_scikit_learn_up_to_sign(data):
    flat = data.reshape(-1, 8)
    ours = PCA(n_components=4).fit(data)
    ref = SkPCA(n_components=4).fit(flat)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-10)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_, rtol=1e-10)
    np.testing.assert_allclose(ours.singular_values_, ref.singular_values_, rtol=1e-10)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-12)
    signs = np.sign(np.sum(ours.components_ * ref.components_, axis=1))
    np.testing.assert_allclose(ours.components_, ref.components_ * signs[:, None], atol=1e-10)
    proj = ours.transform(data)
    assert proj.shape == (20, 30, 4)
    np.testing.assert_allclose(proj.reshape(-1, 4), ref.transform(flat) * signs, atol=1e-9)
    full = PCA().fit(data)
    np.testing.assert_allclose(full.inverse_transform(full.transform(data)), data, atol=1e-10)


def test_signs_are_deterministic(data):
    a = PCA(3).fit(data).components_
    b = PCA(3).fit(data[::-1] + 0.0).components_  # same samples, another order
    np.testing.assert_allclose(a, b, atol=1e-10)
    big = np.argmax(np.abs(a), axis=1)
    assert (a[np.arange(3), big] > 0).all()
    b2 = PCA(3).fit(-data).components_  # flipping the data flips no signs of the output
    np.testing.assert_allclose(b2, a, atol=1e-10)


def test_summary(data):
    s = PCA().fit(data).summary()
    assert s["n_units"] == 8 and s["pcs_for_90pct"] <= 3
    assert 1.0 <= s["participation_ratio"] <= 8.0


def test_plots(data):
    act = Activity(states=data, rates=data, outputs=data[..., :1], inputs=data[..., :1],
                   units=np.arange(8), conditions={"choice": np.arange(20) % 2})
    fig = plot_trajectories(act, color_by="choice", dims=2)
    assert len(fig.axes[0].lines) >= 20
    fig3 = plot_trajectories(act, color_by=np.arange(20.0), dims=3)
    assert fig3.axes[0].name == "3d"
    assert plot_explained_variance(PCA().fit(data)).axes


def test_bad_input(data):
    with pytest.raises(ValueError, match="at least 3 units, got 2"):
        plot_trajectories(data[..., :2], dims=3)
    with pytest.raises(ValueError, match="dims must be one of"):
        plot_trajectories(data, dims=4)
    with pytest.raises(ValueError, match="one value per trial"):
        plot_trajectories(data, color_by=np.arange(3))
    with pytest.raises(ValueError, match="conditions"):
        plot_trajectories(data, color_by="choice")
    with pytest.raises(ValueError, match="n_components must be <="):
        PCA(n_components=9).fit(data)
    with pytest.raises(TypeError, match="n_components must be an integer"):
        PCA(n_components=2.5)
    with pytest.raises(ValueError, match="not fitted"):
        PCA().transform(data)
    with pytest.raises(ValueError, match="8 units"):
        PCA().fit(data).transform(data[..., :5])
    with pytest.raises(ValueError, match="shape"):
        PCA().fit(np.zeros(5))


def test_fixed_points_are_drawn_in_the_pc_space_of_the_states():
    # Current-form tanh net: states x and rates tanh(x) differ, and fixed points are states.
    import torch

    import neurornn as nr
    from neurornn.analysis import FixedPointFinder, plot_fixed_points, record_activity

    cfg = nr.RNNConfig(n_inputs=1, n_units=3, n_outputs=1, activation="tanh", dt_ms=50.0, tau_ms=100.0)
    model = nr.RNN(cfg).double()
    with torch.no_grad():
        model.w_rec.copy_(2 * torch.eye(3, dtype=torch.float64))
        model.w_in.copy_(torch.tensor([[1.0], [-0.5], [0.8]], dtype=torch.float64))
        model.b_rec.zero_()
    inputs = 2 * torch.randn(12, 20, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    act = record_activity(model, inputs)
    # Under zero input each unit solves x = 2 tanh(x): 3^3 fixed points, the 8 corners stable.
    fps = FixedPointFinder(model, cycle_steps=50).fit([0.0], np.random.default_rng(0).uniform(-3, 3, (200, 3)))
    assert len(fps) == 27 and fps.stable_.sum() == 8
    fig = plot_fixed_points(fps, act, color_by=np.arange(12.0), dims=2)
    ax = fig.axes[0]
    stable = next(c for c in ax.collections if c.get_label().startswith("stable fixed point"))
    expected = PCA(2).fit(act.states).transform(fps.points_[fps.stable_])
    np.testing.assert_allclose(np.asarray(stable.get_offsets()), expected, atol=1e-9)
    assert stable.get_label() == "stable fixed point (8)"
    assert any(c.get_label() == "unstable fixed point (19)" for c in ax.collections)
    assert not np.allclose(act.states, act.rates)
    with pytest.raises(ValueError, match="color_by must be one of the conditions"):
        plot_fixed_points(fps, act, color_by="coherence")
