"""Validation scores, choices and psychometric curves against analytic answers."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

import neurornn as nr  # noqa: E402
from neurornn.analysis import (  # noqa: E402
    decision_choices,
    fit_psychometric,
    plot_psychometric,
    plot_trials,
    psychometric_curve,
    validation_score,
)
from neurornn.tasks import make, masked_mse  # noqa: E402


def _integrator(task, w_in_row, readout):
    """A perfect integrator (W = I, identity f): unit 0 sums w_in_row . u over time."""
    n = 3
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_units=n, n_outputs=task.n_outputs, activation="identity",
                       dt_ms=task.dt_ms, tau_ms=100.0)
    w_in = torch.zeros(n, task.n_inputs)
    w_in[0] = torch.tensor(w_in_row)
    w_out = torch.zeros(task.n_outputs, n)
    w_out[:, 0] = torch.tensor(readout)
    return nr.RNN(cfg, weights={"w_rec": torch.eye(n), "w_in": w_in, "w_out": w_out}).eval()


@pytest.fixture(scope="module")
def pdm():
    return make("perceptual_decision_making", stimulus_ms=400.0)


def test_psychometric_of_an_ideal_integrator_matches_the_analytic_curve(pdm):
    model = _integrator(pdm, [0.0, 1.0, -1.0], [0.0, 1.0, -1.0])
    (curve,) = psychometric_curve(model, pdm, n_trials=6000, seed=1)
    assert curve.condition == "signed_coherence" and curve.group == "all"
    # P(choice_1 | c) = Phi(sqrt(T) c / (100 sqrt(2) sigma)) for the summed channel difference.
    t_ms = 400.0
    for c, p, n in zip(curve.levels_, curve.p_choice_, curve.n_trials_):
        expected = 0.5 * (1 + math.erf(math.sqrt(t_ms) * c / (100 * math.sqrt(2)) / math.sqrt(2)))
        assert abs(p - expected) < 4 * math.sqrt(0.25 / n) + 1e-9, (c, p, expected)
    fit = curve.fit_
    assert abs(fit["bias"]) < 3.0 and fit["slope"] > 0 and fit["lapse"] < 0.05
    # A logistic approximates the normal CDF with slope ~ 1.7 / sd, sd = 100 sqrt(2) / sqrt(T).
    assert fit["slope"] == pytest.approx(1.7 * math.sqrt(t_ms) / (100 * math.sqrt(2)), rel=0.2)
    assert fit["threshold"] == pytest.approx(math.log(3) / fit["slope"])
    assert plot_psychometric([curve]).axes


def test_psychometric_per_context_on_the_mante_task():
    task = make("context_dependent_dm")
    model = _integrator(task, [1.0, 0.0, 0.0, 0.0], [1.0])  # integrates motion, ignores context
    motion = psychometric_curve(model, task, condition="motion_coherence", group_by="context", n_trials=3000)
    colour = psychometric_curve(model, task, condition="colour_coherence", group_by="context", n_trials=3000)
    assert [c.group for c in motion] == ["context=0", "context=1"]
    for c in motion:  # follows motion in both contexts
        assert c.p_choice_[0] < 0.1 and c.p_choice_[-1] > 0.9
    for c in colour:  # blind to colour
        assert np.ptp(c.p_choice_) < 0.2


def test_fit_recovers_known_parameters():
    rng = np.random.default_rng(0)
    x = rng.choice(np.linspace(-50, 50, 11), size=20000)
    bias, slope, lapse = 4.0, 0.12, 0.05
    p = lapse + (1 - 2 * lapse) / (1 + np.exp(-slope * (x - bias)))
    y = (rng.random(x.size) < p).astype(int)
    fit = fit_psychometric(x, y)
    assert fit["bias"] == pytest.approx(bias, abs=0.7)
    assert fit["slope"] == pytest.approx(slope, rel=0.15)
    assert fit["lapse"] == pytest.approx(lapse, abs=0.015)
    no_lapse = fit_psychometric(x, y, lapse=False)
    assert no_lapse["lapse"] == 0.0 and no_lapse["log_likelihood"] <= fit["log_likelihood"]


def test_validation_score_scorings(pdm):
    model = nr.RNN(nr.RNNConfig(n_inputs=3, n_units=8, n_outputs=3, seed=1)).eval()
    batch = pdm.batch(32, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(batch.inputs, noise=False).outputs
    assert validation_score(model, pdm, batch=batch) == pytest.approx(pdm.evaluate(out, batch)["accuracy"])
    err = ((out - batch.targets) ** 2).mean(-1).numpy()
    mse = (err * batch.mask.numpy()).sum() / batch.mask.numpy().sum()
    assert validation_score(model, pdm, scoring="mse", batch=batch) == pytest.approx(mse, rel=1e-6)
    assert float(masked_mse(out, batch.targets, batch.mask)) == pytest.approx(mse, rel=1e-6)
    # Cross-entropy of the logits against the one-hot targets, in NumPy; "loss" is the task's own (CE).
    logits = out.double().numpy()
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    ce = (-(batch.targets.numpy() * logp).sum(-1) * batch.mask.numpy()).sum() / batch.mask.numpy().sum()
    assert pdm.loss == "cross_entropy"
    assert validation_score(model, pdm, scoring="cross_entropy", batch=batch) == pytest.approx(ce, rel=1e-5)
    assert validation_score(model, pdm, scoring="loss", batch=batch) == pytest.approx(ce, rel=1e-5)
    custom = validation_score(model, pdm, scoring=lambda o, b: float(o.abs().max()), batch=batch)
    assert custom == pytest.approx(float(out.abs().max()))
    # Same seed, same batch.
    assert validation_score(model, pdm, n_trials=16, seed=3) == validation_score(model, pdm, n_trials=16, seed=3)


def test_decision_choices_reads_the_decision_period(pdm):
    batch = pdm.batch(4, torch.Generator().manual_seed(0))
    out = torch.zeros(4, batch.n_steps, 3)
    dec = batch.period_mask("decision")
    out[0][dec[0]] = torch.tensor([0.0, 1.0, 0.0])
    out[1][dec[1]] = torch.tensor([0.0, 0.0, 1.0])
    out[2, :, 2] = 5.0  # large choice_2 outside the decision period only...
    out[2][dec[2]] = torch.tensor([0.0, 1.0, 0.0])  # ...chooses choice_1 inside it
    np.testing.assert_array_equal(decision_choices(pdm, out, batch), [1, 0, 1, 0])


def test_plot_trials(pdm):
    model = nr.RNN(nr.RNNConfig(n_inputs=3, n_units=8, n_outputs=3)).eval()
    fig = plot_trials(model, pdm, n_trials=3)
    assert len(fig.axes) == 3
    assert len(fig.axes[0].lines) == 2 * 3  # output and target per output channel


def test_bad_input(pdm):
    model = nr.RNN(nr.RNNConfig(n_inputs=3, n_units=8, n_outputs=3)).eval()
    with pytest.raises(ValueError, match="scoring must be one of"):
        validation_score(model, pdm, scoring="r2")
    with pytest.raises(TypeError, match="task must be a neurornn Task"):
        validation_score(model, "perceptual_decision_making")
    with pytest.raises(ValueError, match="condition must be one of"):
        psychometric_curve(model, pdm, condition="difficulty", n_trials=10)
    with pytest.raises(ValueError, match="choices must be 0 or 1"):
        fit_psychometric([1, 2, 3], [0, 2, 1])
    with pytest.raises(ValueError, match="same length"):
        fit_psychometric([1, 2, 3], [0, 1])
    ff = make("flip_flop")
    b = ff.batch(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="cannot read a binary choice"):
        decision_choices(ff, torch.zeros(2, b.n_steps, 3), b)
