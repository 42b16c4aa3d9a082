"""Fitting networks to recorded activity, and the currents between regions (CURBD, Perich et al. 2020).

A :class:`Recording` holds rates (trials, time, neurons), inputs (trials, time, n_inputs) and the
region of every neuron (from an NWB file: :func:`neurornn.io.load_nwb_recording`; or from arrays).
Two fits, both a full-rank rate network with one unit per recorded neuron and regions as areas:

- ``method="force"``: CURBD's recursive least squares (:mod:`neurornn.analysis.force`);
- ``method="bptt"``: gradient descent through time with :func:`neurornn.training.train` on a
  :class:`~neurornn.analysis.inference.RecordedTask` (inputs -> every unit's rate, identity readout).

:func:`region_currents` decomposes the input each region receives into the currents from every
region, ``I_{a<-b}(t) = J[a, b] r_b(t)`` (CURBD), :func:`plot_currents` draws them and
:func:`compare_currents` scores them against the truth (Pearson r per pair of regions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch

from .._validation import check_choice, check_int
from ..models import RNN, RNNConfig
from ..training import TrainConfig, train
from .force import ForceFit, fit_force, normalise_rates, run_force_network
from .inference import RecordedTask

__all__ = ["Recording", "DataFit", "fit_recording", "variance_explained", "region_currents", "compare_currents",
           "plot_currents", "split_trials"]


@dataclass(frozen=True)
class Recording:
    """Recorded activity cut into trials.

    Attributes
    ----------
    rates : ndarray (trials, time, neurons)
    inputs : ndarray (trials, time, n_inputs) (n_inputs may be 0)
    regions : tuple of str (neurons,), neurons of one region contiguous
    dt_ms : float
    conditions : dict name -> ndarray (trials,)
    """

    rates: np.ndarray
    inputs: np.ndarray
    regions: tuple
    dt_ms: float = 10.0
    conditions: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        rates = np.asarray(self.rates, dtype=np.float64)
        if rates.ndim != 3:
            raise ValueError(f"rates must have shape (trials, time, neurons), got {rates.shape}")
        inputs = (np.zeros(rates.shape[:2] + (0,)) if self.inputs is None
                  else np.asarray(self.inputs, dtype=np.float64))
        if inputs.ndim != 3 or inputs.shape[:2] != rates.shape[:2]:
            raise ValueError(f"inputs must have shape (trials, time, n_inputs) with (trials, time) = "
                             f"{rates.shape[:2]}, got {inputs.shape}")
        for name, x in (("rates", rates), ("inputs", inputs)):
            if not np.isfinite(x).all():
                raise ValueError(f"{name} contain NaN or inf")
        regions = tuple(str(r) for r in self.regions)
        if len(regions) != rates.shape[2]:
            raise ValueError(f"regions must name the region of each of the {rates.shape[2]} neurons, got {len(regions)}")
        order = list(dict.fromkeys(regions))
        if [r for r in order for _ in range(regions.count(r))] != list(regions):
            raise ValueError("the neurons of each region must be contiguous (sort them by region)")
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "regions", regions)

    @property
    def region_slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for r in dict.fromkeys(self.regions):
            n = self.regions.count(r)
            out[r] = slice(start, start + n)
            start += n
        return out

    def subset(self, trials) -> "Recording":
        """The same recording restricted to some trials."""
        return Recording(self.rates[trials], self.inputs[trials], self.regions, self.dt_ms,
                         {k: np.asarray(v)[trials] for k, v in self.conditions.items()})


def split_trials(n_trials: int, held_out: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) trial indices; at least one trial each when ``n_trials >= 2``."""
    check_int("n_trials", n_trials, minimum=2)
    perm = np.random.default_rng(seed).permutation(n_trials)
    n_test = min(max(1, int(round(held_out * n_trials))), n_trials - 1)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def variance_explained(model, data) -> float:
    """``1 - sum (model - data)^2 / sum (data - mean data)^2`` over every trial, step and neuron."""
    model, data = np.asarray(model, float), np.asarray(data, float)
    return float(1.0 - ((model - data) ** 2).sum() / max(((data - data.mean()) ** 2).sum(), 1e-300))


@dataclass(frozen=True)
class DataFit:
    """A network fitted to a recording.

    Attributes
    ----------
    method : "force" or "bptt"
    J_ : ndarray (neurons, neurons), effective recurrent weights
    scale : float, the recording's rates were divided by it (data fitted: ``rates / scale``)
    regions : tuple of str
    region_slices : dict region -> slice
    force : ForceFit or None; model : RNN or None (bptt)
    """

    method: str
    J_: np.ndarray
    scale: float
    regions: tuple
    region_slices: dict
    force: ForceFit | None = None
    model: RNN | None = None

    def simulate(self, recording: Recording) -> np.ndarray:
        """Free run on a recording's trials (inputs given), rates (trials, time, neurons) in the data's units."""
        data = np.clip(recording.rates / self.scale, -0.999, 0.999)
        if self.method == "force":
            return run_force_network(self.force, data, recording.inputs) * self.scale
        u = _bptt_inputs(recording)
        x0 = torch.as_tensor(np.arctanh(data[:, 0]), dtype=torch.float32)
        with torch.no_grad():
            out = self.model.eval()(u, initial_state=x0).rates
        return out.double().numpy() * self.scale


def _bptt_inputs(recording: Recording) -> torch.Tensor:
    u = recording.inputs if recording.inputs.shape[2] else np.ones(recording.rates.shape[:2] + (1,))
    return torch.as_tensor(u, dtype=torch.float32)


def fit_recording(recording: Recording, method: str = "force", *, tau_ms: float = 100.0,
                  held_out_neurons: Sequence[int] = (), seed: int = 0, force: Mapping | None = None,
                  train_config: TrainConfig | None = None, model: Mapping | None = None) -> DataFit:
    """Fit a full-rank rate network, one unit per neuron, to a recording.

    Parameters
    ----------
    recording : Recording
    method : {"force", "bptt"}
    tau_ms : float, time constant of every unit
    held_out_neurons : neurons whose activity is not fitted (force only)
    force : dict of :func:`~neurornn.analysis.force.fit_force` options (``epochs``, ``dt_factor``, ``g``, ...)
    train_config : TrainConfig (bptt; default 300 Adam steps)
    model : dict of RNNConfig fields for bptt (e.g. ``exc_fraction`` for Dale's law)

    Returns
    -------
    DataFit
    """
    if not isinstance(recording, Recording):
        raise TypeError(f"recording must be a Recording, got {type(recording).__name__}")
    check_choice("method", method, ("force", "bptt"))
    data, scale = normalise_rates(recording.rates)
    slices = recording.region_slices
    if method == "force":
        fit = fit_force(data, recording.inputs, dt_ms=recording.dt_ms, tau_ms=tau_ms,
                        held_out_neurons=held_out_neurons, seed=seed, **dict(force or {}))
        return DataFit("force", fit.J_, scale, recording.regions, slices, force=fit)
    if len(held_out_neurons):
        raise ValueError("held_out_neurons is supported by method='force' only")
    u = _bptt_inputs(recording)
    n = data.shape[2]
    fields = dict(n_inputs=u.shape[2], n_units=n, n_outputs=n, dt_ms=float(recording.dt_ms), tau_ms=float(tau_ms),
                  activation="tanh", areas=tuple((r, s.stop - s.start) for r, s in slices.items()),
                  w_in_scale=0.1, train_w_out=False, train_b_out=False, seed=seed)
    fields.update(dict(model or {}))
    cfg = RNNConfig(**fields)
    x0 = torch.as_tensor(np.arctanh(data[:, 0].mean(0)), dtype=torch.float32)
    net = RNN(cfg, weights={"w_out": torch.eye(n), "b_out": torch.zeros(n), "x0": x0})
    task = RecordedTask(u.numpy(), data, dt_ms=recording.dt_ms)
    tc = train_config or TrainConfig(steps=300, batch_size=min(16, data.shape[0]), learning_rate=1e-2,
                                     eval_every=100, eval_batch_size=min(16, data.shape[0]), history_every=0,
                                     checkpoint_every=0, acc_criterion=False, progress=False, seed=seed)
    run = train(net, task, tc)
    w = run.model.effective_weights().w_rec.detach().double().numpy()
    return DataFit("bptt", w, scale, recording.regions, slices, model=run.model)


def region_currents(J, rates, region_slices: Mapping[str, slice]) -> dict[tuple[str, str], np.ndarray]:
    """CURBD's decomposition: the current from region b onto region a, ``J[a, b] @ r_b``.

    Parameters
    ----------
    J : array (neurons, neurons); rates : array (trials, time, neurons)

    Returns
    -------
    dict (target a, source b) -> ndarray (trials, time, neurons of a)
    """
    J, rates = np.asarray(J, float), np.asarray(rates, float)
    return {(a, b): rates[..., sb] @ J[sa, sb].T for a, sa in region_slices.items()
            for b, sb in region_slices.items()}


def compare_currents(recovered: Mapping, true: Mapping) -> dict[str, float]:
    """Pearson r of recovered against true currents for every pair ``"b->a"``, and ``"all_inter"``
    (every inter-region current pooled), and ``"structure"``: Pearson r across the pairs of
    regions of the RMS current (which regions drive which, and how strongly)."""
    out, pooled_r, pooled_t = {}, [], []
    for (a, b), cur in true.items():
        x, y = np.ravel(recovered[(a, b)]), np.ravel(cur)
        out[f"{b}->{a}"] = float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else float("nan")
        if a != b:
            pooled_r.append(x)
            pooled_t.append(y)
    if pooled_r:
        out["all_inter"] = float(np.corrcoef(np.concatenate(pooled_r), np.concatenate(pooled_t))[0, 1])
    keys = list(true)
    rms_r = [float(np.sqrt(np.mean(np.square(recovered[k])))) for k in keys]
    rms_t = [float(np.sqrt(np.mean(np.square(true[k])))) for k in keys]
    out["structure"] = float(np.corrcoef(rms_r, rms_t)[0, 1]) if len(keys) > 2 else float("nan")
    return out


def plot_currents(currents: Mapping, dt_ms: float, trial: int = 0, true: Mapping | None = None):
    """Grid of the currents onto each region (rows) from each region (columns), mean over target neurons.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    regions = list(dict.fromkeys(a for a, _ in currents))
    fig = Figure(figsize=(3.2 * len(regions), 2.4 * len(regions)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(regions), len(regions), squeeze=False))
    for i, a in enumerate(regions):
        for j, b in enumerate(regions):
            ax = axes[i, j]
            cur = np.asarray(currents[(a, b)])[trial]
            t = (np.arange(cur.shape[0]) + 1) * dt_ms
            ax.plot(t, cur.mean(-1), c="C3", label="fitted")
            if true is not None:
                ax.plot(t, np.asarray(true[(a, b)])[trial].mean(-1), "k--", lw=0.8, label="true")
            ax.set_title(f"{b} -> {a}", fontsize=9)
            ax.set_xlabel("time (ms)")
            ax.set_ylabel("mean current (a.u.)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Currents onto each region (rows) from each region (columns), mean over target neurons")
    return fig
