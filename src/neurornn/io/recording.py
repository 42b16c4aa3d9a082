"""Recorded activity from any NWB file, cut into trials, ready to fit (:mod:`neurornn.analysis.curbd`).

Where the pieces come from:

- rates: a TimeSeries named ``rates`` (or ``rates=NAME``) in any processing module,
  (samples, neurons); or, when there is none, the spike times of the units table
  binned into ``bin_ms`` bins and divided by the bin width (spikes/s);
- trials: the trials table (``start_time``, ``stop_time``, and every other column as a condition);
- inputs: every TimeSeries under ``stimulus/`` (channels side by side), on the same time base;
- regions: the units table's ``location``, ``area`` or ``region`` column (``"all"`` otherwise).

Every problem is a one-line ValueError naming what is missing or wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..analysis.curbd import Recording
from .nwb import opened_nwb, require_pynwb

__all__ = ["load_nwb_recording"]

REGION_COLUMNS = ("location", "area", "region", "brain_area")


def _find_series(nwb, name: str):
    for mod in nwb.processing.values():
        if name in mod.data_interfaces:
            return mod.data_interfaces[name]
    if name in nwb.acquisition:
        return nwb.acquisition[name]
    return None


def _time_base(series) -> tuple[float, float]:
    """(starting time s, rate Hz) of a regularly sampled series."""
    if series.rate is not None:
        return float(series.starting_time or 0.0), float(series.rate)
    ts = np.asarray(series.timestamps[:])
    steps = np.diff(ts)
    if ts.size < 2 or not np.allclose(steps, steps[0], rtol=1e-6):
        raise ValueError(f"mismatched time bases: {series.name!r} is not regularly sampled")
    return float(ts[0]), float(1.0 / steps[0])


def _cut(data: np.ndarray, t0: float, rate: float, starts, n_steps: int, what: str) -> np.ndarray:
    out = []
    for k, s in enumerate(starts):
        i = int(round((s - t0) * rate))
        if i < 0 or i + n_steps > data.shape[0]:
            raise ValueError(f"mismatched time bases: trial {k} ({s:.6g} s, {n_steps} samples) lies outside "
                             f"{what} ({data.shape[0]} samples from {t0:.6g} s at {rate:.6g} Hz)")
        out.append(data[i: i + n_steps])
    return np.stack(out)


def _check_finite(x: np.ndarray, what: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise ValueError(f"NaN or inf in {what} (first at trial {where[0]}, step {where[1]}, channel {where[2]})")


def load_nwb_recording(path: str | os.PathLike, *, rates: str = "rates", bin_ms: float | None = None,
                       regions=None) -> Recording:
    """Rates (trials, time, neurons), inputs (trials, time, n_inputs) and regions from an NWB file.

    Parameters
    ----------
    path : path of the NWB file
    rates : str
        Name of the rates TimeSeries (searched in every processing module, then acquisition).
    bin_ms : float, optional
        Bin width for spikes (default: the stimulus' sampling interval, else 10 ms).
    regions : sequence of str (neurons,), optional
        Region of every neuron (default: from the units table, else ``"all"``).

    Returns
    -------
    Recording
    """
    pynwb = require_pynwb()
    path = Path(path)
    with opened_nwb(path, "start_time, stop_time of every trial") as nwb:
        trials = nwb.trials.to_dataframe()
        starts = trials["start_time"].to_numpy(float)
        durations = trials["stop_time"].to_numpy(float) - starts
        conditions = {c: trials[c].to_numpy() for c in trials.columns
                      if c not in ("start_time", "stop_time") and trials[c].dtype != object}
        stimuli = [s for s in nwb.stimulus.values() if isinstance(s, pynwb.TimeSeries)]
        units = nwb.units.to_dataframe() if nwb.units is not None else None
        series = _find_series(nwb, rates)
        if series is not None:
            t0, rate = _time_base(series)
            data = np.asarray(series.data[:], dtype=float)
            data = data[:, None] if data.ndim == 1 else data
            source = f"TimeSeries {rates!r}"
        elif units is not None and "spike_times" in units:
            if bin_ms is None:
                bin_ms = 1000.0 / _time_base(stimuli[0])[1] if stimuli else 10.0
            rate, t0 = 1000.0 / bin_ms, float(starts.min())
            n_bins = int(round((float((starts + durations).max()) - t0) * rate))
            edges = t0 + np.arange(n_bins + 1) / rate
            spikes = [np.asarray(s, dtype=float) for s in units["spike_times"]]
            data = np.stack([np.histogram(s, edges)[0] for s in spikes], axis=1) * rate
            source = f"spikes of the units table binned at {bin_ms:g} ms"
        else:
            raise ValueError(f"{str(path)!r} has no TimeSeries {rates!r} in any processing module and no units "
                             "table with spike_times: nothing to fit")
        n_steps = int(round(durations.min() * rate))
        if n_steps < 1 or not np.allclose(durations * rate, n_steps, atol=0.5):
            raise ValueError(f"mismatched time bases: trials last {sorted(set(np.round(durations, 6)))} s, not a "
                             f"common whole number of samples at {rate:.6g} Hz")
        act = _cut(data, t0, rate, starts, n_steps, source)
        _check_finite(act, repr(rates) if series is not None else source)
        if series is None:
            silent = np.flatnonzero(act.sum((0, 1)) == 0)
            if silent.size:
                raise ValueError(f"neurons with no spikes: units {silent.tolist()} fire no spike in any trial; "
                                 "drop them from the units table before fitting")
        ins = []
        for s in stimuli:
            s0, srate = _time_base(s)
            if not np.isclose(srate, rate):
                raise ValueError(f"mismatched time bases: stimulus {s.name!r} is sampled at {srate:.6g} Hz, the "
                                 f"rates at {rate:.6g} Hz")
            sd = np.asarray(s.data[:], dtype=float)
            cut = _cut(sd[:, None] if sd.ndim == 1 else sd, s0, srate, starts, n_steps, f"stimulus {s.name!r}")
            _check_finite(cut, f"stimulus {s.name!r}")
            ins.append(cut)
        inputs = np.concatenate(ins, axis=-1) if ins else np.zeros((len(starts), n_steps, 0))
        if regions is None:
            col = next((c for c in REGION_COLUMNS if units is not None and c in units), None)
            regions = (tuple(str(x) for x in units[col]) if col and len(units) == act.shape[-1]
                       else ("all",) * act.shape[-1])
        return Recording(rates=act, inputs=inputs, regions=tuple(regions), dt_ms=1000.0 / rate,
                         conditions=conditions)
