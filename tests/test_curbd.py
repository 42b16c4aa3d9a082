"""Fitting networks to recorded activity (CURBD, issue 13): FORCE, BPTT, currents, held-out scores."""

import numpy as np
import pytest

from neurornn.analysis.curbd import (Recording, compare_currents, fit_recording, plot_currents, region_currents,
                                     split_trials, variance_explained)
from neurornn.analysis.curbd_sim import three_region_data
from neurornn.analysis.force import fit_force


@pytest.fixture(scope="module")
def data():
    return three_region_data(n=40, n_trials=4, duration_ms=2000.0, frac_inter=0.3, amp_inter=1.0, seed=0)


def test_force_recovers_the_inter_region_current_structure(data):
    train, test = split_trials(4, 0.25, seed=0)
    fit = fit_recording(data.recording.subset(train), "force", tau_ms=100.0, force=dict(epochs=10, dt_factor=2))
    assert fit.force.pvar_history_[-1] > 0.85  # measured 0.91 (variance explained while learning)
    seen = data.recording.subset(train)
    ve_train = variance_explained(fit.simulate(seen), seen.rates)
    rec = data.recording.subset(test)
    ve_test = variance_explained(fit.simulate(rec), rec.rates)
    print("free-run VE: training trials", round(ve_train, 3), "held-out trial", round(ve_test, 3))
    # free run: region C is driven by an unobserved chaotic network, so a held-out trial cannot be
    # predicted from its first sample (measured about -0.46); the fitted trials are (measured ~0.9)
    assert ve_train > 0.5 and np.isfinite(ve_test) and ve_test < ve_train
    true = region_currents(data.J, rec.rates, rec.region_slices)
    scores = compare_currents(region_currents(fit.J_, rec.rates, rec.region_slices), true)
    print({k: round(v, 3) for k, v in scores.items()})
    assert scores["structure"] > 0.6  # measured 0.78: which regions drive which, and how strongly
    assert scores["all_inter"] > 0.1  # measured 0.2: element-wise inter-region currents
    assert min(scores[f"{r}->{r}"] for r in "ABC") > 0.5
    fig = plot_currents(region_currents(fit.J_, fit.simulate(rec), rec.region_slices), rec.dt_ms, true=true)
    assert len(fig.axes) == 9


def test_held_out_neurons(data):
    rec = data.recording.subset([0, 1])
    held = [5, 45, 85]
    fit = fit_recording(rec, "force", force=dict(epochs=8, dt_factor=2), held_out_neurons=held)
    sim = fit.simulate(rec)
    kept = np.setdiff1d(np.arange(120), held)
    ve_kept, ve_held = (variance_explained(sim[..., i], rec.rates[..., i]) for i in (kept, held))
    print("VE fitted neurons", round(ve_kept, 3), "held-out neurons", round(ve_held, 3))
    assert ve_kept > 0.5 and ve_kept > ve_held


def test_bptt_fit_improves_and_is_comparable_with_truth(data):
    small = three_region_data(n=8, n_trials=4, duration_ms=600.0, frac_inter=0.3, seed=1).recording
    fit = fit_recording(small, "bptt", tau_ms=100.0)
    ve = variance_explained(fit.simulate(small), small.rates)
    assert ve > 0.3, ve
    assert fit.J_.shape == (24, 24) and fit.model.config.area_slices()["B"] == slice(8, 16)


@pytest.mark.parametrize("kwargs, message", [
    (dict(rates=np.zeros((2, 3)), inputs=None, regions=()), "rates must have shape"),
    (dict(rates=np.full((1, 3, 2), np.nan), inputs=None, regions=("A", "A")), "rates contain NaN"),
    (dict(rates=np.zeros((1, 3, 2)), inputs=None, regions=("A",)), "region of each of the 2"),
    (dict(rates=np.zeros((1, 3, 3)), inputs=None, regions=("A", "B", "A")), "contiguous"),
    (dict(rates=np.zeros((1, 3, 2)), inputs=np.zeros((2, 3, 1)), regions=("A", "A")), "inputs must have shape"),
])
def test_recording_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Recording(**kwargs)


def test_force_bad_input():
    with pytest.raises(ValueError, match="lie in"):
        fit_force(np.full((1, 3, 2), 2.0))
    with pytest.raises(ValueError, match="held_out_neurons"):
        fit_force(np.zeros((1, 3, 2)), held_out_neurons=[5])
    with pytest.raises(ValueError, match="method"):
        fit_recording(Recording(np.zeros((1, 3, 2)), None, ("A", "A")), "sgd")
