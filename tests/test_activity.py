"""Recording activity: final model, snapshots, areas, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.analysis import Activity, record_activity
from neurornn.tasks import make


class _History:
    """A stand-in weight history: snapshot i scales the recurrent weights by i."""

    def __init__(self, model):
        self.model, self.steps = model, [0, 100, 200]

    def model_at(self, i):
        m = nr.RNN(self.model.config)
        m.load_state_dict(self.model.state_dict())
        with torch.no_grad():
            m.w_rec.mul_(i)
        return m.eval()


class _Run:
    def __init__(self, model):
        self.model, self.history = model, _History(model)


@pytest.fixture(scope="module")
def model():
    cfg = nr.RNNConfig(n_inputs=3, n_units=12, n_outputs=3, activation="tanh",
                       areas={"A": 5, "B": 7}, seed=2)
    return nr.RNN(cfg).eval()


def test_records_what_forward_returns(model):
    batch = make("perceptual_decision_making").batch(6, torch.Generator().manual_seed(0))
    act = record_activity(model, batch)
    with torch.no_grad():
        traj = model(batch.inputs, noise=False)
    assert isinstance(act, Activity)
    assert act.states.shape == (6, batch.n_steps, 12) and act.states.dtype == np.float64
    np.testing.assert_allclose(act.states, traj.states.numpy(), rtol=1e-6)
    np.testing.assert_allclose(act.rates, traj.rates.numpy(), rtol=1e-6)
    np.testing.assert_allclose(act.outputs, traj.outputs.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(act.conditions["choice"], batch.conditions["choice"].numpy())
    assert act.time_ms[0] == model.config.dt_ms and len(act.time_ms) == batch.n_steps
    assert set(act.to_arrays()) >= {"states", "rates", "outputs", "inputs", "units", "condition_choice"}


def test_one_area(model):
    inputs = torch.rand(4, 10, 3)
    full = record_activity(model, inputs)
    b = record_activity(model, inputs, area="B")
    assert b.states.shape == (4, 10, 7) and b.area == "B"
    np.testing.assert_array_equal(b.units, np.arange(5, 12))
    np.testing.assert_array_equal(b.rates, full.rates[..., 5:])


def test_snapshots_of_a_run(model):
    run = _Run(model)
    inputs = torch.rand(3, 15, 3)
    before = record_activity(run, inputs, snapshot=0)  # w_rec * 0: no recurrence
    last = record_activity(run, inputs, snapshot=-1)
    assert before.snapshot == 0
    w = model.effective_weights()
    # Without recurrence the state is a leaky integral of the input drive alone.
    x = np.zeros((3, 12))
    a = model.config.alpha
    drive = (inputs @ w.w_in.T + w.b_rec).detach().numpy()
    for t in range(15):
        x = (1 - a) * x + a * drive[:, t]
    np.testing.assert_allclose(before.states[:, -1], x, rtol=1e-5, atol=1e-6)
    assert not np.allclose(last.states, before.states)


def test_noise_is_reproducible(model):
    noisy = nr.RNN(model.config.replace(sigma_rec=0.5))
    inputs = torch.rand(2, 10, 3)
    a = record_activity(noisy, inputs, noise=True, generator=torch.Generator().manual_seed(1))
    b = record_activity(noisy, inputs, noise=True, generator=torch.Generator().manual_seed(1))
    c = record_activity(noisy, inputs)
    np.testing.assert_array_equal(a.states, b.states)
    assert not np.allclose(a.states, c.states)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"snapshot": 3}, ValueError, r"snapshot must be in \[0, 2\].*got 3"),
        ({"snapshot": -4}, ValueError, "snapshot must be in"),
        ({"snapshot": 1.0}, TypeError, "snapshot must be an integer"),
        ({"area": "C"}, ValueError, "area must be one of"),
    ],
)
def test_bad_arguments(model, kwargs, error, match):
    with pytest.raises(error, match=match):
        record_activity(_Run(model), torch.rand(2, 5, 3), **kwargs)


def test_bad_inputs_and_sources(model):
    with pytest.raises(ValueError, match="n_inputs=3"):
        record_activity(model, torch.rand(2, 5, 4))
    with pytest.raises(ValueError, match="snapshot needs a run"):
        record_activity(model, torch.rand(2, 5, 3), snapshot=0)
    with pytest.raises(TypeError, match="expected a neurornn.RNN or a training run"):
        record_activity(object(), torch.rand(2, 5, 3))
