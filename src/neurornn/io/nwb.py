"""A run's activity in a Neurodata Without Borders (NWB) file, written and read back.

:func:`to_nwb` runs a trained network on fresh trials of its task and writes:

- ``stimulus/inputs``: the task inputs, a TimeSeries (samples, n_inputs);
- processing module ``network``: TimeSeries ``states``, ``rates`` (samples, n_units),
  ``outputs``, ``targets`` (samples, n_outputs), ``mask`` (samples,) and ``periods``
  (samples,), table ``input_channels`` (name, weights onto every unit: a row of
  ``W_in.T``) and table ``readout`` (name, weights from every unit: a row of ``W_out``, bias);
- table ``units`` of the processing module (a DynamicTable: model units have no spikes, so
  not NWB's Units type, which nwbinspector requires to hold spike times): one row per model unit, ``unit_index``, ``cell_type``
  (excitatory / inhibitory / unconstrained), ``area``, ``x``, ``y``, ``z`` (µm-free
  grid units, only when the network is placed in space), ``tau_ms``, ``b_rec``, ``x0``
  and ``w_rec`` (the effective weights *onto* the unit: row ``i`` of ``W_rec``);
- the trials table: ``start_time``, ``stop_time`` (s), one column per trial condition,
  ``<period>_start_time`` for every period (NaN when a trial has none) and ``choice``
  (the output channel with the largest value at the last scored step of the trial);
- an in-silico ``Subject`` (``subject_id="neurornn-model"``; the description says it is
  a simulated network, not an animal); ``notes`` holds the model config and task as JSON.

Trials are laid end to end: sample ``k * n_steps + t`` is step ``t`` of trial ``k`` at
``(k * n_steps + t) * dt`` seconds. :func:`read_nwb` gives the arrays back as a
:class:`NWBNetworkData`, shaped (trials, time, channels) again.

pynwb is an optional dependency (``pip install neurornn[nwb]``), imported only here,
inside the functions.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from .._validation import check_int
from ..analysis.activity import record_activity
from ..models.space import unit_coordinates
from ..runs import Run

__all__ = ["opened_nwb", "to_nwb", "read_nwb", "NWBNetworkData", "require_pynwb"]

MODULE = "network"
SUBJECT_ID = "neurornn-model"
_SERIES = ("states", "rates", "outputs", "targets")


def require_pynwb():
    """Import pynwb, or raise an ImportError that says how to install it."""
    try:
        import pynwb
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError("NWB files need pynwb: pip install 'neurornn[nwb]' (pynwb>=3, nwbinspector)") from err
    return pynwb


@contextmanager
def opened_nwb(path: str | os.PathLike, trials_for: str):
    """The NWB file at ``path``, open for reading, which must have a trials table (``trials_for``: what the
    error says it is needed for)."""
    pynwb = require_pynwb()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"NWB file {str(path)!r} does not exist")
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        nwb = io.read()
        if nwb.trials is None or len(nwb.trials) == 0:
            raise ValueError(f"{str(path)!r} has no trials table ({trials_for})")
        yield nwb


@dataclass(frozen=True)
class NWBNetworkData:
    """What :func:`to_nwb` wrote, as arrays (float64 unless said).

    Attributes
    ----------
    inputs : ndarray (trials, time, n_inputs)
    states, rates : ndarray (trials, time, n_units)
    outputs, targets : ndarray (trials, time, n_outputs)
    mask : ndarray (trials, time)
    periods : ndarray (trials, time) of int (index into ``period_names``; -1: none)
    weights : dict name -> ndarray: ``w_in`` (n_units, n_inputs), ``w_rec`` (n_units, n_units),
        ``b_rec``, ``x0`` (n_units,), ``w_out`` (n_outputs, n_units), ``b_out`` (n_outputs,)
    cell_type, area : ndarray (n_units,) of str
    positions : ndarray (n_units, 3) or None (network not placed in space)
    tau_ms : ndarray (n_units,)
    conditions : dict name -> ndarray (trials,)
    period_onsets_s : dict period -> ndarray (trials,) (NaN: the trial has no such period)
    choice : ndarray (trials,) of int
    trial_start_s : ndarray (trials,)
    dt_ms : float
    input_names, output_names, period_names : tuple of str
    meta : dict (``model``: the RNNConfig as a dict, ``task``: name and params)
    """

    inputs: np.ndarray
    states: np.ndarray
    rates: np.ndarray
    outputs: np.ndarray
    targets: np.ndarray
    mask: np.ndarray
    periods: np.ndarray
    weights: dict
    cell_type: np.ndarray
    area: np.ndarray
    positions: np.ndarray | None
    tau_ms: np.ndarray
    conditions: dict
    period_onsets_s: dict
    choice: np.ndarray
    trial_start_s: np.ndarray
    dt_ms: float
    input_names: tuple = ()
    output_names: tuple = ()
    period_names: tuple = ()
    meta: dict = field(default_factory=dict)


def _unit_areas(config) -> np.ndarray:
    area = np.array(["none"] * config.n_units, dtype=object)
    for name, sl in config.area_slices().items():
        area[sl] = name
    return area


def _cell_types(model) -> np.ndarray:
    if not model.config.dale:
        return np.array(["unconstrained"] * model.config.n_units, dtype=object)
    sign = model.dale_sign.detach().cpu().numpy()
    return np.where(sign > 0, "excitatory", "inhibitory").astype(object)


def _placed(config) -> bool:
    return config.grid_shape is not None or config.coordinates is not None


def _choice(outputs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Output channel with the largest value at each trial's last scored step (last step if none)."""
    n, t = mask.shape
    scored = mask > 0
    last = np.where(scored.any(1), t - 1 - np.argmax(scored[:, ::-1], axis=1), t - 1)
    return outputs[np.arange(n), last].argmax(-1).astype(np.int64)


def to_nwb(run: Run, path: str | os.PathLike, n_trials: int = 32, seed: int = 0, *,
           overwrite: bool = False, session_start_time: datetime | None = None) -> Path:
    """Write a run's network activity on ``n_trials`` fresh trials of its task to an NWB file.

    Parameters
    ----------
    run : Run (from :func:`neurornn.load_run` or :func:`neurornn.train`)
    path : path of the ``.nwb`` file to write (never replaced unless ``overwrite``)
    n_trials : int
        Trials drawn from the run's task with ``torch.Generator().manual_seed(seed)``.
    seed : int
    session_start_time : datetime, optional
        Default: 2000-01-01 UTC (a simulation has no session date; fixed so files are reproducible).

    Returns
    -------
    Path of the file written. Layout: see :mod:`neurornn.io.nwb`.
    """
    pynwb = require_pynwb()
    from hdmf.common import DynamicTable, VectorData
    from pynwb.file import Subject

    if not isinstance(run, Run):
        raise TypeError(f"run must be a neurornn Run (load_run(path)), got {type(run).__name__}")
    check_int("n_trials", n_trials, minimum=1)
    check_int("seed", seed, minimum=0)
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} already exists; pass overwrite=True (--overwrite) to replace it")
    model, task = run.model, run.task
    if model.stacked:
        raise ValueError(f"run holds {model.n_networks} networks; export one run at a time")
    config = model.config
    batch = task.batch(n_trials, torch.Generator().manual_seed(seed))
    act = record_activity(model, batch)
    n, t_steps = act.states.shape[:2]
    dt_s = config.dt_ms / 1000.0
    flat = lambda a: np.ascontiguousarray(a.reshape(n * t_steps, *a.shape[2:]))  # noqa: E731
    targets = batch.targets.detach().cpu().double().numpy()
    mask = batch.mask.detach().cpu().double().numpy()
    periods = (np.full((n, t_steps), -1, dtype=np.int64) if batch.periods is None
               else batch.periods.detach().cpu().numpy().astype(np.int64))
    w = {k: v.detach().cpu().double().numpy() for k, v in model.effective_weights().as_dict().items()}
    meta = {"model": config.to_dict(), "task": {"name": task.name, "params": task.params()},
            "run": str(run.path) if run.path else None, "n_trials": n_trials, "seed": seed}

    nwb = pynwb.NWBFile(
        session_description=f"in-silico session: a neurornn rate network ({config.n_units} units) trained on task "
                            f"{task.name!r}, run on {n_trials} trials (seed {seed})",
        identifier=f"neurornn-{task.name}-{seed}-{n_trials}",
        session_start_time=session_start_time or datetime(2000, 1, 1, tzinfo=timezone.utc),
        experiment_description="Simulated activity of an artificial recurrent neural network (no animal).",
        institution="in silico", lab="neurornn",
        keywords=["recurrent neural network", "simulation", "in silico"],
        notes=json.dumps(meta, default=str),
        source_script="neurornn.io.to_nwb", source_script_file_name="neurornn/io/nwb.py",
    )
    nwb.subject = Subject(subject_id=SUBJECT_ID, species="in silico", sex="U", age="P0D",
                          description="In-silico subject: a simulated recurrent neural network of neurornn, "
                                      "not an animal; species, sex and age do not apply.")
    nwb.add_stimulus(pynwb.TimeSeries(
        name="inputs", data=flat(act.inputs), unit="a.u.", rate=1000.0 / config.dt_ms, starting_time=0.0,
        description=f"task inputs, channels {list(task.input_names)}"))
    mod = nwb.create_processing_module(MODULE, "states, rates, outputs and targets of the simulated network")
    for name, data, what in (("states", act.states, "Euler state of every unit"),
                             ("rates", act.rates, "firing rate of every unit (model units)"),
                             ("outputs", act.outputs, f"readout, channels {list(task.output_names)}"),
                             ("targets", targets, f"task targets, channels {list(task.output_names)}"),
                             ("mask", mask, "loss weight of every step (0: not scored)"),
                             ("periods", periods, f"period index into {list(batch.period_names)}, -1: none")):
        mod.add(pynwb.TimeSeries(name=name, data=flat(data), unit="a.u.", rate=1000.0 / config.dt_ms,
                                 starting_time=0.0, description=what))
    for name, names, mat, what in (("input_channels", task.input_names, w["w_in"].T, "weights onto every unit"),
                                   ("readout", task.output_names, w["w_out"], "weights from every unit")):
        cols = [VectorData(name="channel", description="channel name", data=list(names)),
                VectorData(name="weights", description=what, data=mat)]
        if name == "readout":
            cols.append(VectorData(name="bias", description="readout bias b_out", data=w["b_out"]))
        mod.add(DynamicTable(name=name, description=f"effective {what} ({name})", columns=cols))

    coords = unit_coordinates(config) if _placed(config) else None
    columns = [("unit_index", "index of the unit in the model"),
               ("cell_type", "excitatory / inhibitory (Dale's law) or unconstrained"),
               ("area", "area of the model the unit belongs to ('none': no areas)"),
               ("tau_ms", "time constant (ms)"), ("b_rec", "recurrent bias"), ("x0", "initial state"),
               ("w_rec", "effective recurrent weights onto this unit from every unit (row of W_rec)")]
    if coords is not None:
        columns += [(c, f"{c} position in space (grid units)") for c in "xyz"]
    table = DynamicTable(name="units", description="the model's units, one row each (a DynamicTable, not the "
                         "Units type: model units have no spike times)")
    for name, what in columns:
        table.add_column(name=name, description=what)
    alpha = model.alpha.detach().cpu().double().numpy()
    taus = config.dt_ms / np.broadcast_to(alpha, (config.n_units,))
    ctype, area = _cell_types(model), _unit_areas(config)
    for i in range(config.n_units):
        row = dict(unit_index=i, cell_type=str(ctype[i]), area=str(area[i]), tau_ms=float(taus[i]),
                   b_rec=float(w["b_rec"][i]), x0=float(w["x0"][i]), w_rec=w["w_rec"][i])
        if coords is not None:
            pos = np.zeros(3)
            pos[: coords.shape[1]] = coords[i][:3]
            row.update(x=float(pos[0]), y=float(pos[1]), z=float(pos[2]))
        table.add_row(**row)
    mod.add(table)

    conds = {k: np.asarray(v) for k, v in act.conditions.items()}
    for k in conds:
        nwb.add_trial_column(name=f"condition_{k}", description=f"trial condition {k!r} of task {task.name!r}")
    for p in batch.period_names:
        nwb.add_trial_column(name=f"{p}_start_time", description=f"onset of period {p!r} (s; NaN: none)")
    nwb.add_trial_column(name="choice", description="the network's choice: output channel with the largest value "
                                                    "at the last scored step")
    choice = _choice(act.outputs, mask)
    for k in range(n):
        start = k * t_steps * dt_s
        row = {"start_time": start, "stop_time": (k + 1) * t_steps * dt_s, "choice": int(choice[k])}
        row.update({f"condition_{c}": v[k].item() for c, v in conds.items()})
        for j, p in enumerate(batch.period_names):
            steps = np.flatnonzero(periods[k] == j)
            row[f"{p}_start_time"] = start + steps[0] * dt_s if steps.size else float("nan")
        nwb.add_trial(**row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial.nwb")
    with pynwb.NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwb)
    os.replace(tmp, path)
    return path


def _series(container, name: str, where: str):
    if name not in container:
        raise ValueError(f"NWB file has no TimeSeries {name!r} in {where} (has {sorted(container)})")
    return container[name]


def read_nwb(path: str | os.PathLike) -> NWBNetworkData:
    """Read a file written by :func:`to_nwb` back into arrays (trials, time, channels).

    Raises ValueError naming what is missing when the file lacks the trials table, the
    ``network`` processing module, a series, or when the series' time bases disagree.
    """
    path = Path(path)
    with opened_nwb(path, "needed to cut the series into trials") as nwb:
        if MODULE not in nwb.processing:
            raise ValueError(f"{str(path)!r} has no processing module {MODULE!r} (not written by neurornn.io.to_nwb)")
        mod = nwb.processing[MODULE]
        if "units" not in mod.data_interfaces:
            raise ValueError(f"{str(path)!r} has no units table in processing/{MODULE} (the network's units and weights)")
        stim = _series(nwb.stimulus, "inputs", "stimulus")
        series = {k: _series(mod.data_interfaces, k, f"processing/{MODULE}") for k in (*_SERIES, "mask", "periods")}
        series["inputs"] = stim
        rate = stim.rate
        for k, s in series.items():
            if s.rate is None or not np.isclose(s.rate, rate) or not np.isclose(s.starting_time or 0.0, 0.0):
                raise ValueError(f"mismatched time bases: {k!r} is sampled at {s.rate} Hz from "
                                 f"{s.starting_time} s, 'inputs' at {rate} Hz from 0 s")
        trials = nwb.trials.to_dataframe()
        n = len(trials)
        total = series["inputs"].data.shape[0]
        if total % n:
            raise ValueError(f"mismatched time bases: {total} samples do not split into {n} trials of equal length")
        t_steps = total // n
        arrays = {}
        for k, s in series.items():
            data = np.asarray(s.data[:])
            if data.shape[0] != total:
                raise ValueError(f"mismatched time bases: {k!r} has {data.shape[0]} samples, 'inputs' {total}")
            arrays[k] = data.reshape(n, t_steps, *data.shape[1:])
        units = mod["units"].to_dataframe()
        meta = json.loads(nwb.notes) if nwb.notes else {}
        ins, ro = mod["input_channels"].to_dataframe(), mod["readout"].to_dataframe()
        weights = {"w_rec": np.stack(units["w_rec"].to_numpy()).astype(float),
                   "b_rec": units["b_rec"].to_numpy(float), "x0": units["x0"].to_numpy(float),
                   "w_in": np.stack(ins["weights"].to_numpy()).T.astype(float) if len(ins) else
                   np.zeros((len(units), 0)),
                   "w_out": np.stack(ro["weights"].to_numpy()).astype(float), "b_out": ro["bias"].to_numpy(float)}
        positions = units[["x", "y", "z"]].to_numpy(float) if "x" in units else None
        period_names = tuple(c[: -len("_start_time")] for c in trials.columns
                             if c.endswith("_start_time") and c != "start_time")
        return NWBNetworkData(
            inputs=arrays["inputs"].astype(float), states=arrays["states"].astype(float),
            rates=arrays["rates"].astype(float), outputs=arrays["outputs"].astype(float),
            targets=arrays["targets"].astype(float), mask=arrays["mask"].astype(float),
            periods=arrays["periods"].astype(np.int64), weights=weights,
            cell_type=units["cell_type"].to_numpy(str), area=units["area"].to_numpy(str), positions=positions,
            tau_ms=units["tau_ms"].to_numpy(float),
            conditions={c[len("condition_"):]: trials[c].to_numpy() for c in trials.columns
                        if c.startswith("condition_")},
            period_onsets_s={p: trials[f"{p}_start_time"].to_numpy(float) for p in period_names},
            choice=trials["choice"].to_numpy(np.int64), trial_start_s=trials["start_time"].to_numpy(float),
            dt_ms=1000.0 / rate, input_names=tuple(ins["channel"]), output_names=tuple(ro["channel"]),
            period_names=period_names, meta=meta,
        )
