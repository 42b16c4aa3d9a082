"""NWB export and import (neurornn.io, issue 13): round trip, nwbinspector, bad input."""

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.analysis.activity import record_activity
from neurornn.cli import main

pynwb = pytest.importorskip("pynwb")
from neurornn.io import load_nwb_recording, read_nwb, to_nwb  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0)
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_units=12, n_outputs=task.n_outputs, dt_ms=task.dt_ms,
                       exc_fraction=0.75, areas=(("A", 6), ("B", 6)), grid_shape=(3, 4, 1), seed=0)
    tc = nr.TrainConfig(steps=3, batch_size=8, eval_every=3, eval_batch_size=8, history_every=3,
                        checkpoint_every=0, acc_criterion=False, progress=False)
    return nr.train(nr.RNN(cfg), task, tc, out=tmp_path_factory.mktemp("r") / "run", figures=False)


@pytest.fixture(scope="module")
def nwb_file(run, tmp_path_factory):
    return to_nwb(run, tmp_path_factory.mktemp("n") / "run.nwb", n_trials=6, seed=3)


def test_round_trip_gives_the_same_arrays(run, nwb_file):
    d = read_nwb(nwb_file)
    batch = run.task.batch(6, torch.Generator().manual_seed(3))
    act = record_activity(run.model, batch)
    for name in ("inputs", "states", "rates", "outputs"):
        np.testing.assert_array_equal(getattr(d, name), getattr(act, name), err_msg=name)
    np.testing.assert_array_equal(d.targets, batch.targets.double().numpy())
    np.testing.assert_array_equal(d.mask, batch.mask.double().numpy())
    np.testing.assert_array_equal(d.periods, batch.periods.numpy())
    for k, v in act.conditions.items():
        np.testing.assert_array_equal(d.conditions[k], v, err_msg=k)
    w = run.model.effective_weights()
    for k, v in w.as_dict().items():
        np.testing.assert_array_equal(d.weights[k], v.detach().double().numpy(), err_msg=k)
    assert list(d.area) == ["A"] * 6 + ["B"] * 6
    sign = run.model.dale_sign.numpy()
    assert list(d.cell_type) == ["excitatory" if s > 0 else "inhibitory" for s in sign]
    np.testing.assert_array_equal(d.positions[:, :2], nr.models.space.unit_coordinates(run.model.config)[:, :2])
    np.testing.assert_allclose(d.tau_ms, run.model.config.tau_ms, rtol=1e-6)
    assert d.period_names == batch.period_names and d.dt_ms == pytest.approx(run.model.config.dt_ms)
    # period onsets: first step of each period of each trial, in seconds from the start of the file
    j = batch.period_names.index("decision")
    first = (batch.periods == j).int().argmax(1).numpy()
    n_steps = batch.n_steps
    np.testing.assert_allclose(d.period_onsets_s["decision"], (np.arange(6) * n_steps + first) * d.dt_ms / 1000)
    last = act.outputs[:, -1].argmax(-1)
    np.testing.assert_array_equal(d.choice, last)
    assert d.meta["model"]["n_units"] == 12 and d.meta["task"]["name"] == "perceptual_decision_making"


def test_nwbinspector_finds_no_critical_or_error(nwb_file):
    from nwbinspector import Importance, inspect_nwbfile

    found = list(inspect_nwbfile(nwbfile_path=str(nwb_file)))
    bad = [m for m in found if m.importance in (Importance.CRITICAL, Importance.ERROR)]
    assert not bad, [f"{m.importance.name} {m.check_function_name}: {m.message}" for m in bad]
    with pynwb.NWBHDF5IO(str(nwb_file), "r") as io:
        subject = io.read().subject
        assert "in-silico" in subject.description.lower() or "in silico" in subject.description.lower()


def test_cli_export(run, tmp_path, capsys):
    out = tmp_path / "cli.nwb"
    assert main(["export", str(run.path), "--nwb", str(out), "--n-trials", "2"]) == 0
    assert read_nwb(out).rates.shape == (2, run.task.batch(1).n_steps, 12)
    assert main(["export", str(run.path), "--nwb", str(out)]) == 2  # exists: refused
    assert "already exists" in capsys.readouterr().err


def test_to_nwb_bad_arguments(run, tmp_path):
    with pytest.raises(TypeError, match="run must be a neurornn Run"):
        to_nwb(run.model, tmp_path / "a.nwb")
    with pytest.raises(ValueError, match="n_trials"):
        to_nwb(run, tmp_path / "a.nwb", n_trials=0)


# ---------------------------------------------------------------------- recorded data
T0 = None


def _recording_file(path, *, trials=True, rates=True, spikes=False, nan=False, silent=False, rate_hz=100.0,
                    stim_rate_hz=None, n=4, n_trials=3, steps=10):
    from datetime import datetime, timezone

    from pynwb.file import Subject

    nwb = pynwb.NWBFile(session_description="test", identifier="t", session_start_time=datetime(2020, 1, 1,
                                                                                                  tzinfo=timezone.utc))
    nwb.subject = Subject(subject_id="m1", species="Mus musculus")
    rng = np.random.default_rng(0)
    total = n_trials * steps
    data = rng.random((total, n))
    if nan:
        data[3, 1] = np.nan
    if rates:
        mod = nwb.create_processing_module("ecephys", "rates")
        mod.add(pynwb.TimeSeries(name="rates", data=data, unit="Hz", rate=rate_hz, starting_time=0.0))
    nwb.add_stimulus(pynwb.TimeSeries(name="cue", data=rng.random((total, 2)), unit="a.u.",
                                      rate=stim_rate_hz or rate_hz, starting_time=0.0))
    if spikes:
        nwb.add_unit_column(name="location", description="region")
        for i in range(n):
            st = [] if (silent and i == 2) else np.sort(rng.uniform(0, total / rate_hz, 20))
            nwb.add_unit(spike_times=st, location="A" if i < n // 2 else "B")
    if trials:
        for k in range(n_trials):
            nwb.add_trial(start_time=k * steps / rate_hz, stop_time=(k + 1) * steps / rate_hz)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_load_recording_from_rates_and_spikes(tmp_path):
    rec = load_nwb_recording(_recording_file(tmp_path / "r.nwb"), rates="rates")
    assert rec.rates.shape == (3, 10, 4) and rec.inputs.shape == (3, 10, 2) and rec.dt_ms == pytest.approx(10)
    rec = load_nwb_recording(_recording_file(tmp_path / "s.nwb", rates=False, spikes=True), bin_ms=10.0)
    assert rec.rates.shape == (3, 10, 4) and rec.regions == ("A", "A", "B", "B")
    assert np.isclose(rec.rates.sum() * 0.01, 80)  # every spike counted once (rates in Hz)


@pytest.mark.parametrize("kind, kwargs, message", [
    ("trials", {"trials": False}, "no trials table"),
    ("rates", {"rates": False}, "no TimeSeries 'rates'.*no units table"),
    ("base", {"stim_rate_hz": 50.0}, "mismatched time bases: stimulus 'cue'"),
    ("nan", {"nan": True}, "NaN .*'rates'"),
    ("silent", {"rates": False, "spikes": True, "silent": True}, "neurons with no spikes: units \\[2\\]"),
])
def test_load_recording_bad_files(tmp_path, kind, kwargs, message):
    path = _recording_file(tmp_path / f"{kind}.nwb", **kwargs)
    with pytest.raises(ValueError, match=message) as err:
        load_nwb_recording(path, bin_ms=10.0)
    assert "\n" not in str(err.value)


def test_read_nwb_refuses_a_foreign_file(tmp_path):
    with pytest.raises(ValueError, match="no processing module 'network'"):
        read_nwb(_recording_file(tmp_path / "f.nwb"))


def test_fit_nwb_end_to_end(tmp_path):
    from neurornn.analysis.curbd import region_currents
    from neurornn.io import fit_nwb

    path = _recording_file(tmp_path / "fit.nwb", rates=False, spikes=True, n=4, n_trials=3, steps=10)
    fit, rec = fit_nwb(path, "force", force=dict(epochs=3, dt_factor=1))
    assert fit.J_.shape == (4, 4) and rec.regions == ("A", "A", "B", "B")
    assert set(region_currents(fit.J_, rec.rates / fit.scale, rec.region_slices)) == {
        ("A", "A"), ("A", "B"), ("B", "A"), ("B", "B")}
