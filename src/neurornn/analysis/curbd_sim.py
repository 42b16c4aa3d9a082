r"""The synthetic three-region data set of CURBD (Perich et al. 2020), from the paper's description.

Three rate networks A, B, C of ``n`` units each, ``tau dx/dt = -x + J r + I_ext``, ``r = tanh(x)``,
each with its own random recurrent block (gain ``g``) and sparse random inter-region blocks
(a fraction ``frac_inter`` of the connections, ``N(0, amp_inter^2 / n)``), all known. External drive:

- A: a sequence, Gaussian bumps (std ``bump_ms``) sweeping across a random ``frac_external`` of its
  units, one after another over the trial;
- B: a fixed point, a constant random input to the same fraction of its units;
- C: a separate chaotic network (gain ``g_driver``, not recorded) through random weights.

Simulated with Euler steps of ``dt_ms / dt_factor``, sampled every ``dt_ms``. The true currents
``J[a, b] r_b`` are returned with the rates, for :func:`~neurornn.analysis.curbd.compare_currents`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import check_int, check_positive
from .curbd import Recording, region_currents

__all__ = ["ThreeRegionData", "three_region_data"]

REGIONS = ("A", "B", "C")


@dataclass(frozen=True)
class ThreeRegionData:
    """recording (rates in (-1, 1), no inputs), J (3n, 3n) the true weights, currents (a, b) ->
    (trials, time, n), external (trials, time, 3n) the external drive of every unit."""

    recording: Recording
    J: np.ndarray
    currents: dict
    external: np.ndarray


def three_region_data(n: int = 100, n_trials: int = 4, duration_ms: float = 2000.0, *, dt_ms: float = 10.0,
                      dt_factor: int = 5, tau_ms: float = 100.0, g: float = 1.5, g_driver: float = 1.8,
                      frac_inter: float = 0.05, amp_inter: float = 1.0, frac_external: float = 0.5,
                      amp_external: float = 1.0, bump_ms: float = 200.0, seed: int = 0) -> ThreeRegionData:
    """Simulate the three-region circuit (trials differ in their initial states and the driver's).

    Returns
    -------
    ThreeRegionData; ``recording.rates`` (n_trials, duration_ms / dt_ms, 3n), regions A, B, C.
    """
    check_int("n", n, minimum=2)
    check_int("n_trials", n_trials, minimum=1)
    check_positive("duration_ms", duration_ms)
    check_int("dt_factor", dt_factor, minimum=1)
    rng = np.random.default_rng(seed)
    N = 3 * n
    J = np.zeros((N, N))
    sl = {r: slice(i * n, (i + 1) * n) for i, r in enumerate(REGIONS)}
    for a in REGIONS:
        for b in REGIONS:
            w = rng.standard_normal((n, n)) / np.sqrt(n)
            J[sl[a], sl[b]] = g * w if a == b else amp_inter * w * (rng.random((n, n)) < frac_inter)
    n_steps = int(round(duration_ms / dt_ms))
    fine = n_steps * dt_factor
    dt = dt_ms / dt_factor
    t = np.arange(fine) * dt
    ext = np.zeros((fine, N))
    driven = {r: np.sort(rng.choice(n, max(1, int(round(frac_external * n))), replace=False)) for r in REGIONS}
    centres = np.linspace(0, duration_ms, driven["A"].size)
    bumps = np.exp(-((t[:, None] - centres[None]) ** 2) / (2 * bump_ms ** 2))
    ext[:, sl["A"].start + driven["A"]] = amp_external * bumps
    ext[:, sl["B"].start + driven["B"]] = amp_external * rng.uniform(-1, 1, driven["B"].size)
    J_driver = g_driver * rng.standard_normal((n, n)) / np.sqrt(n)
    w_driver = amp_external * rng.standard_normal((driven["C"].size, n)) / np.sqrt(n) * 2
    rates = np.empty((n_trials, n_steps, N))
    externals = np.empty((n_trials, n_steps, N))
    for k in range(n_trials):
        x = rng.uniform(-1, 1, N)
        xd = rng.uniform(-1, 1, n)
        for s in range(fine):
            e = ext[s].copy()
            e[sl["C"].start + driven["C"]] = w_driver @ np.tanh(xd)
            xd = xd + dt / tau_ms * (-xd + J_driver @ np.tanh(xd))
            x = x + dt / tau_ms * (-x + J @ np.tanh(x) + e)
            if (s + 1) % dt_factor == 0:
                rates[k, s // dt_factor] = np.tanh(x)
                externals[k, s // dt_factor] = e
    rec = Recording(rates, None, tuple(r for r in REGIONS for _ in range(n)), dt_ms)
    return ThreeRegionData(rec, J, region_currents(J, rates, rec.region_slices), externals)
