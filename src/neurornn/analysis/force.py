r"""FORCE / recursive-least-squares fit of a rate network to recorded rates (CURBD, Perich et al. 2020).

The network has one unit per recorded neuron and runs at ``dt_rnn = dt_ms / dt_factor``:

.. math::

    r = \tanh(h), \qquad z = J r + W_{in} u + \sigma \xi, \qquad
    h \leftarrow h + \frac{dt_{rnn}}{\tau} (-h + z),

and at every step that falls on a data sample ``t`` the whole matrix ``J`` is updated by recursive
least squares on the error ``e = z - d_t`` between the network's drive and the data (as CURBD does):

.. math::

    k = P r,\quad c = 1 / (1 + r^\top k),\quad P \leftarrow P - c\,k k^\top,\quad J \leftarrow J - c\,e k^\top,

with ``P`` starting at ``I / alpha`` (CURBD's ``P0``; alpha = 1) and ``J`` at ``g N(0, 1/N)``. Every
trial starts from ``h = arctanh(d_0)``. Data are expected in (-1, 1) (see :func:`normalise_rates`).
Errors of held-out neurons are not used (their rows of ``J`` still change through ``P``, never
through their own error). Everything is float64 NumPy; the inputs ``u`` are optional
(``W_in`` random, fixed: CURBD feeds white noise of amplitude ``noise``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_int, check_nonnegative, check_positive

__all__ = ["ForceFit", "fit_force", "run_force_network", "normalise_rates"]


def normalise_rates(rates: np.ndarray, ceiling: float = 0.999) -> tuple[np.ndarray, float]:
    """CURBD's scaling: divide by the largest |rate| and clip to (-ceiling, ceiling); returns (scaled, scale)."""
    rates = np.asarray(rates, dtype=np.float64)
    scale = float(np.abs(rates).max()) or 1.0
    return np.clip(rates / scale, -ceiling, ceiling), scale


@dataclass(frozen=True)
class ForceFit:
    """A network fitted by FORCE.

    Attributes
    ----------
    J_ : ndarray (neurons, neurons), ``J[i, j]`` from j onto i
    w_in_ : ndarray (neurons, n_inputs)
    tau_ms, dt_ms : float
    dt_factor : int
    pvar_history_ : ndarray (epochs,): variance of the training data explained in each epoch (while learning)
    held_out_neurons : ndarray of int
    """

    J_: np.ndarray
    w_in_: np.ndarray
    tau_ms: float
    dt_ms: float
    dt_factor: int
    pvar_history_: np.ndarray
    held_out_neurons: np.ndarray


def _pvar(model: np.ndarray, data: np.ndarray) -> float:
    return float(1.0 - ((model - data) ** 2).sum() / max(((data - data.mean()) ** 2).sum(), 1e-300))


def _simulate(J, w_in, data, inputs, tau_ms, dt_ms, dt_factor, noise, rng, learn=None):
    """Run one trial (time, neurons); with ``learn = (P, mask)`` update J and P in place. Returns the rates."""
    n_steps, n = data.shape
    dt = dt_ms / dt_factor
    h = np.arctanh(np.clip(data[0], -0.999, 0.999))
    out = np.empty((n_steps, n))
    for t in range(n_steps):
        drive_in = w_in @ inputs[t] if inputs.shape[1] else 0.0
        for s in range(dt_factor):
            r = np.tanh(h)
            z = J @ r + drive_in
            if noise:
                z = z + noise * rng.standard_normal(n)
            h = h + dt / tau_ms * (-h + z)
        out[t] = np.tanh(h)
        if learn is not None:
            P, keep = learn
            e = (z - data[t]) * keep
            k = P @ r
            c = 1.0 / (1.0 + r @ k)
            P -= c * np.outer(k, k)
            J -= c * np.outer(e, k)
    return out


def fit_force(rates, inputs=None, *, dt_ms: float = 10.0, tau_ms: float = 100.0, dt_factor: int = 5,
              g: float = 1.5, alpha: float = 1.0, epochs: int = 20, noise: float = 0.0,
              held_out_neurons=(), seed: int = 0) -> ForceFit:
    """Fit ``J`` by recursive least squares so the network reproduces ``rates``.

    Parameters
    ----------
    rates : array (trials, time, neurons), values in (-1, 1) (see :func:`normalise_rates`)
    inputs : array (trials, time, n_inputs), optional
    dt_ms : float, data sampling interval; tau_ms : float, time constant of every unit
    dt_factor : int, network steps per data sample
    g : float, gain of the initial ``J``; alpha : float, ``P0 = I / alpha``
    epochs : int, passes over all trials
    noise : float, std of white noise added to the drive
    held_out_neurons : sequence of int, neurons whose error is never used
    seed : int

    Returns
    -------
    ForceFit
    """
    data = np.asarray(rates, dtype=np.float64)
    if data.ndim != 3:
        raise ValueError(f"rates must have shape (trials, time, neurons), got {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError("rates contain NaN or inf")
    if np.abs(data).max() >= 1:
        raise ValueError("rates must lie in (-1, 1) for a tanh network: scale them with normalise_rates")
    u = np.zeros(data.shape[:2] + (0,)) if inputs is None else np.asarray(inputs, dtype=np.float64)
    if u.ndim != 3 or u.shape[:2] != data.shape[:2]:
        raise ValueError(f"inputs must have shape (trials, time, n_inputs) with (trials, time) = {data.shape[:2]}, "
                         f"got {u.shape}")
    check_positive("dt_ms", dt_ms)
    check_positive("tau_ms", tau_ms)
    check_int("dt_factor", dt_factor, minimum=1)
    check_positive("alpha", alpha)
    check_nonnegative("g", g)
    check_int("epochs", epochs, minimum=1)
    check_nonnegative("noise", noise)
    n = data.shape[2]
    held = np.asarray(held_out_neurons, dtype=int).reshape(-1)
    if held.size and (held.min() < 0 or held.max() >= n):
        raise ValueError(f"held_out_neurons must be in [0, {n}), got {held.tolist()}")
    rng = np.random.default_rng(seed)
    J = g * rng.standard_normal((n, n)) / np.sqrt(n)
    w_in = rng.standard_normal((n, u.shape[2])) / np.sqrt(max(u.shape[2], 1))
    P = np.eye(n) / alpha
    keep = np.ones(n)
    keep[held] = 0.0
    history = []
    for _ in range(epochs):
        fits = [_simulate(J, w_in, data[k], u[k], tau_ms, dt_ms, dt_factor, noise, rng, learn=(P, keep))
                for k in range(data.shape[0])]
        history.append(_pvar(np.stack(fits)[..., keep > 0], data[..., keep > 0]))
    return ForceFit(J, w_in, float(tau_ms), float(dt_ms), int(dt_factor), np.asarray(history), held)


def run_force_network(fit: ForceFit, rates, inputs=None, *, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Free run (no learning) of a fitted network from each trial's first data sample.

    Parameters
    ----------
    rates : array (trials, time, neurons): the data whose first sample sets the initial state
    inputs : array (trials, time, n_inputs), optional

    Returns
    -------
    ndarray (trials, time, neurons): the network's rates
    """
    data = np.asarray(rates, dtype=np.float64)
    u = np.zeros(data.shape[:2] + (0,)) if inputs is None else np.asarray(inputs, dtype=np.float64)
    rng = np.random.default_rng(seed)
    return np.stack([_simulate(fit.J_, fit.w_in_, data[k], u[k], fit.tau_ms, fit.dt_ms, fit.dt_factor, noise, rng)
                     for k in range(data.shape[0])])
