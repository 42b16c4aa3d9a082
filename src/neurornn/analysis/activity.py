"""Record the activity of every unit (or one area) of a network on a batch of trials.

Works on the final model or on any snapshot of a run's weight history, so
activity before and after training can be compared (seed 000).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._validation import check_choice
from ..tasks.base import Batch
from ._model_access import as_tensor, model_device, resolve_model

__all__ = ["Activity", "record_activity"]


@dataclass(frozen=True)
class Activity:
    """Activity of a set of units over a batch of trials (NumPy, float64).

    Attributes
    ----------
    states : ndarray of shape (trials, time, units)
        Euler states (``x`` in the current form, ``r`` in the rate form).
    rates : ndarray of shape (trials, time, units)
    outputs : ndarray of shape (trials, time, n_outputs)
        Readout of the whole network.
    inputs : ndarray of shape (trials, time, n_inputs)
    units : ndarray of shape (units,)
        Indices of the recorded units in the network.
    area : str or None
        The area recorded (``None``: every unit).
    conditions : dict of name -> ndarray of shape (trials,)
    dt_ms : float
    snapshot : int or None
        Index of the weight-history snapshot (``None``: the final model).
    """

    states: np.ndarray
    rates: np.ndarray
    outputs: np.ndarray
    inputs: np.ndarray
    units: np.ndarray
    area: str | None = None
    conditions: dict = field(default_factory=dict)
    dt_ms: float = 1.0
    snapshot: int | None = None

    @property
    def n_trials(self) -> int:
        return self.states.shape[0]

    @property
    def n_units(self) -> int:
        return self.states.shape[2]

    @property
    def time_ms(self) -> np.ndarray:
        """Time of each step in ms, shape (time,) (step t ends at ``(t + 1) dt_ms``)."""
        return (np.arange(self.states.shape[1]) + 1) * self.dt_ms

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``numpy.savez`` (conditions as ``condition_NAME``)."""
        out = {"states": self.states, "rates": self.rates, "outputs": self.outputs,
               "inputs": self.inputs, "units": self.units}
        out.update({f"condition_{k}": v for k, v in self.conditions.items()})
        return out


def record_activity(
    source: Any,
    batch: Batch | Any,
    *,
    area: str | None = None,
    snapshot: int | None = None,
    noise: bool = False,
    generator: torch.Generator | None = None,
) -> Activity:
    """Run a network on a batch and record states, rates and outputs.

    Parameters
    ----------
    source : RNN or Run
        A model, or a training run (its final model, or ``snapshot``).
    batch : Batch or array of shape (trials, time, n_inputs)
        Trials to run (a task's :class:`~neurornn.tasks.Batch`, whose conditions
        are kept, or bare inputs).
    area : str, optional
        Record only the units of this area (``config.area_slices()``).
    snapshot : int, optional
        Index into ``run.history`` (0 = before training). Out of range: ValueError.
    noise : bool
        Add the configured recurrent/input noise (default off).
    generator : torch.Generator, optional
        Source of that noise.

    Returns
    -------
    Activity

    The model is left unchanged (run under ``torch.no_grad`` with its own mode).
    """
    model = resolve_model(source, snapshot)
    slices = model.config.area_slices()
    if area is not None:
        check_choice("area", area, list(slices))
    unit_slice = slice(0, model.config.n_units) if area is None else slices[area]
    if isinstance(batch, Batch):
        inputs, conditions = batch.inputs, batch.conditions
    else:
        inputs, conditions = batch, {}
    inputs = as_tensor("inputs", inputs, device=model_device(model), dtype=model.alpha.dtype)
    if inputs.ndim != 3 or inputs.shape[-1] != model.config.n_inputs:
        raise ValueError(
            f"inputs must have shape (trials, time, n_inputs={model.config.n_inputs}), got {tuple(inputs.shape)}"
        )
    with torch.no_grad():
        traj = model(inputs, noise=bool(noise), generator=generator)
    units = np.arange(model.config.n_units)[unit_slice]

    def np64(t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float64).numpy()

    return Activity(
        states=np64(traj.states[..., unit_slice]),
        rates=np64(traj.rates[..., unit_slice]),
        outputs=np64(traj.outputs),
        inputs=np64(inputs),
        units=units,
        area=area,
        conditions={k: v.detach().cpu().numpy() for k, v in conditions.items()},
        dt_ms=float(model.config.dt_ms),
        snapshot=snapshot,
    )
