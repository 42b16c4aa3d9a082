"""Bad input across the public API: every row is one call that must fail with one clear
error naming the parameter (or the file), what was expected and what arrived.

The table is built as rows ``(id, call, exception, regex)``; each row is its own test.
Networks are tiny and nothing trains beyond one step, so the whole file runs in seconds.
"""

from __future__ import annotations

import inspect
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn import tasks
from neurornn.analysis import (
    PCA,
    FixedPointFinder,
    adjacency,
    clustering_coefficients,
    fit_tca,
    graph_metrics,
    modularity,
    psychometric_curve,
    record_activity,
    sample_states,
    small_worldness,
    step_jacobians,
)
from neurornn.cli import main

NAN, INF = float("nan"), float("inf")
ROWS: list[tuple] = []


def row(id_, call, exc, match):
    ROWS.append((id_, call, exc, match))


def lit(text: str) -> str:
    """A literal piece of a message, as a regex."""
    return re.escape(text)


# ============================================================================ RNNConfig
BASE = dict(n_inputs=2, n_units=4, n_outputs=1)


def cfg(**kw):
    return lambda: nr.RNNConfig(**{**BASE, **kw})


for name in ("n_inputs", "n_units", "n_outputs"):
    row(f"RNNConfig-{name}-zero", cfg(**{name: 0}), ValueError, f"{name} must be >= 1, got 0")
    row(f"RNNConfig-{name}-negative", cfg(**{name: -3}), ValueError, f"{name} must be >= 1, got -3")
    row(f"RNNConfig-{name}-float", cfg(**{name: 2.5}), TypeError, f"{name} must be an integer, got 2.5")
    row(f"RNNConfig-{name}-string", cfg(**{name: "3"}), TypeError, f"{name} must be an integer, got '3'")
    row(f"RNNConfig-{name}-bool", cfg(**{name: True}), TypeError, f"{name} must be an integer, got True")
    row(f"RNNConfig-{name}-none", cfg(**{name: None}), TypeError, f"{name} must be an integer, got None")
    row(f"RNNConfig-{name}-numpy-float", cfg(**{name: np.float64(2.0)}), TypeError,
        f"{name} must be an integer, got 2.0")

for name in ("dt_ms", "tau_ms"):
    row(f"RNNConfig-{name}-zero", cfg(**{name: 0.0}), ValueError, f"{name} must be > 0, got 0.0")
    row(f"RNNConfig-{name}-negative", cfg(**{name: -5}), ValueError, f"{name} must be > 0, got -5")
    row(f"RNNConfig-{name}-nan", cfg(**{name: NAN}), ValueError, f"{name} must be a finite number > 0, got nan")
    row(f"RNNConfig-{name}-inf", cfg(**{name: INF}), ValueError, f"{name} must be a finite number > 0, got inf")
    row(f"RNNConfig-{name}-string", cfg(**{name: "10"}), TypeError,
        f"{name} must be a finite number > 0, got '10' \\(a string\\)")
    row(f"RNNConfig-{name}-bool", cfg(**{name: True}), TypeError,
        f"{name} must be a finite number > 0, got True \\(a bool\\)")
    row(f"RNNConfig-{name}-none", cfg(**{name: None}), TypeError, f"{name} must be a finite number > 0, got None")
row("RNNConfig-dt-above-tau", cfg(dt_ms=200.0), ValueError, "dt_ms must be <= tau_ms .*got dt_ms=200.0, tau_ms=100.0")

row("RNNConfig-tau_inh_ms-without-dale", cfg(tau_inh_ms=50.0), ValueError,
    "tau_inh_ms only applies with Dale's law.*tau_inh_ms=50.0 with exc_fraction=None")
row("RNNConfig-tau_inh_ms-no-inhibitory-units", cfg(tau_inh_ms=50.0, exc_fraction=1.0), ValueError,
    "tau_inh_ms only applies to inhibitory units, but exc_fraction=1.0 leaves none of the 4 units")
row("RNNConfig-tau_inh_ms-rounds-to-no-inhibitory", cfg(tau_inh_ms=50.0, exc_fraction=0.9), ValueError,
    "tau_inh_ms only applies to inhibitory units")
row("RNNConfig-tau_inh_ms-below-dt", cfg(tau_inh_ms=10.0, exc_fraction=0.5), ValueError,
    "dt_ms must be <= tau_inh_ms, got dt_ms=20.0, tau_inh_ms=10.0")
row("RNNConfig-tau_inh_ms-negative", cfg(tau_inh_ms=-1.0, exc_fraction=0.5), ValueError,
    "tau_inh_ms must be > 0, got -1.0")
row("RNNConfig-tau_inh_ms-nan", cfg(tau_inh_ms=NAN, exc_fraction=0.5), ValueError,
    "tau_inh_ms must be a finite number > 0, got nan")
row("RNNConfig-tau_inh_ms-string", cfg(tau_inh_ms="fast", exc_fraction=0.5), TypeError,
    "tau_inh_ms must be a finite number > 0, got 'fast'")

for name in ("sigma_rec", "sigma_in", "sigma_pre", "sigma_post", "w_rec_gain", "w_in_scale", "w_out_scale"):
    row(f"RNNConfig-{name}-negative", cfg(**{name: -0.1}), ValueError, f"{name} must be >= 0, got -0.1")
    row(f"RNNConfig-{name}-nan", cfg(**{name: NAN}), ValueError, f"{name} must be a finite number >= 0, got nan")
    row(f"RNNConfig-{name}-string", cfg(**{name: "0.1"}), TypeError, f"{name} must be a finite number >= 0, got '0.1'")
    row(f"RNNConfig-{name}-bool", cfg(**{name: False}), TypeError, f"{name} must be a finite number >= 0, got False")
row("RNNConfig-sigma_rec-inf", cfg(sigma_rec=INF), ValueError, "sigma_rec must be a finite number >= 0, got inf")

for name in ("exc_fraction", "p_connect"):
    row(f"RNNConfig-{name}-above-one", cfg(**{name: 1.5}), ValueError, rf"{name} must be in \[0, 1\], got 1.5")
    row(f"RNNConfig-{name}-negative", cfg(**{name: -0.1}), ValueError, rf"{name} must be in \[0, 1\], got -0.1")
    row(f"RNNConfig-{name}-nan", cfg(**{name: NAN}), ValueError, rf"{name} must be in \[0, 1\], got nan")
    row(f"RNNConfig-{name}-string", cfg(**{name: "half"}), TypeError, rf"{name} must be a number in \[0, 1\], got 'half'")
    row(f"RNNConfig-{name}-bool", cfg(**{name: True}), TypeError, rf"{name} must be a number in \[0, 1\], got True")

for name in ("spectral_radius", "distance_power"):
    row(f"RNNConfig-{name}-zero", cfg(**{name: 0.0}), ValueError, f"{name} must be > 0, got 0.0")
    row(f"RNNConfig-{name}-nan", cfg(**{name: NAN}), ValueError, f"{name} must be a finite number > 0, got nan")
    row(f"RNNConfig-{name}-string", cfg(**{name: "1"}), TypeError, f"{name} must be a finite number > 0, got '1'")

CHOICES = {"form": ("rat", "rate"), "activation": ("tahn", "tanh"), "w_rec_init": ("gausian", "gaussian"),
           "w_in_init": ("identiy", "identity"), "loop": ("fusd", "fused"),
           "distance_metric": ("euclidian", "euclidean")}
for name, (bad, good) in CHOICES.items():
    row(f"RNNConfig-{name}-misspelt", cfg(**{name: bad}), ValueError,
        f"{name} must be one of .*got '{bad}' \\(did you mean '{good}'")
    row(f"RNNConfig-{name}-not-a-string", cfg(**{name: 3}), ValueError, f"{name} must be one of .*got 3")
row("RNNConfig-activation-case", cfg(activation="ReLU"), ValueError, "activation must be one of .*got 'ReLU'")

for name in ("autapses", "train_w_in", "train_b_rec", "train_w_rec", "train_w_out", "train_b_out", "learn_x0"):
    row(f"RNNConfig-{name}-int", cfg(**{name: 1}), TypeError, f"{name} must be True or False, got 1")
    row(f"RNNConfig-{name}-string", cfg(**{name: "yes"}), TypeError, f"{name} must be True or False, got 'yes'")

row("RNNConfig-seed-float", cfg(seed=1.5), TypeError, "seed must be an integer, got 1.5")
row("RNNConfig-seed-string", cfg(seed="0"), TypeError, "seed must be an integer, got '0'")
row("RNNConfig-seed-bool", cfg(seed=True), TypeError, "seed must be an integer, got True")
row("RNNConfig-seed-none", cfg(seed=None), TypeError, "seed must be an integer, got None")

# areas and their masks
row("RNNConfig-areas-sum", cfg(areas={"A": 1, "B": 2}), ValueError, "areas sizes must sum to n_units=4, got 3")
row("RNNConfig-areas-zero-size", cfg(areas={"A": 0, "B": 4}), ValueError, r"areas\['A'\] must be >= 1, got 0")
row("RNNConfig-areas-float-size", cfg(areas={"A": 1.5, "B": 2.5}), TypeError, r"areas\['A'\] must be an integer, got 1.5")
row("RNNConfig-areas-duplicate", cfg(areas=[("A", 2), ("A", 2)]), ValueError, r"areas must have unique names, got \['A', 'A'\]")
row("RNNConfig-areas-not-pairs", cfg(areas=[("A", 2, 1), ("B", 2)]), ValueError, r"areas must be pairs, got \('A', 2, 1\)")
row("RNNConfig-areas-string-items", cfg(areas=["AB", "CD"]), ValueError, "areas must be pairs, got 'AB'")
row("RNNConfig-areas-int", cfg(areas=4), TypeError, "areas must be a mapping or a list of pairs, got 4")
row("RNNConfig-areas-string", cfg(areas="A"), TypeError, "areas must be a mapping or a list of pairs, got 'A'")
row("RNNConfig-areas-name-not-string", cfg(areas={1: 2, 2: 2}), TypeError, "areas names must be non-empty strings, got 1")
row("RNNConfig-input_areas-without-areas", cfg(input_areas=["A"]), ValueError, "input_areas needs areas to be set")
row("RNNConfig-output_areas-without-areas", cfg(output_areas="A"), ValueError, "output_areas needs areas to be set")
row("RNNConfig-area_projections-without-areas", cfg(area_projections=[("A", "B")]), ValueError,
    "area_projections needs areas to be set")
AREAS = {"A": 2, "B": 2}
row("RNNConfig-input_areas-unknown", cfg(areas=AREAS, input_areas=["C"]), ValueError,
    r"input_areas must be one of \['A', 'B'\], got 'C'")
row("RNNConfig-output_areas-misspelt", cfg(areas={"sensory": 2, "motor": 2}, output_areas="motr"), ValueError,
    "output_areas must be one of .*got 'motr' \\(did you mean 'motor'")
row("RNNConfig-input_areas-empty", cfg(areas=AREAS, input_areas=[]), ValueError, "input_areas must name at least one area")
row("RNNConfig-input_areas-int", cfg(areas=AREAS, input_areas=3), TypeError,
    "input_areas must be an area name or a list of area names, got 3")
row("RNNConfig-area_projections-unknown", cfg(areas=AREAS, area_projections=[("A", "C")]), ValueError,
    "area_projections area must be one of .*got 'C'")
row("RNNConfig-area_projections-not-pairs", cfg(areas=AREAS, area_projections=[("A",)]), ValueError,
    "area_projections must be pairs")

# neurons in space
row("RNNConfig-grid_shape-product", cfg(grid_shape=(2, 2, 2)), ValueError,
    r"grid_shape \(2, 2, 2\) holds 8 units, expected n_units=4")
row("RNNConfig-grid_shape-zero", cfg(grid_shape=(4, 0, 1)), ValueError, "grid_shape entries must be >= 1, got 0")
row("RNNConfig-grid_shape-float", cfg(grid_shape=(2, 2.0, 1)), TypeError, "grid_shape entries must be an integer, got 2.0")
row("RNNConfig-grid_shape-int", cfg(grid_shape=4), TypeError, r"grid_shape must be a sequence \(nx, ny, nz\), got 4")
row("RNNConfig-grid-and-coordinates", cfg(grid_shape=(4, 1, 1), coordinates=[(0.0,)] * 4), ValueError,
    "give grid_shape or coordinates, not both")
row("RNNConfig-coordinates-rows", cfg(coordinates=[(0.0, 0.0)] * 3), ValueError,
    r"coordinates must have one row per unit \(4\), got 3 rows")
row("RNNConfig-coordinates-nan", cfg(coordinates=[(0.0, 1.0)] * 3 + [(NAN, 0.0)]), ValueError,
    "coordinates must be finite numbers, got NaN or inf")
row("RNNConfig-coordinates-ragged", cfg(coordinates=[(0.0, 1.0)] * 3 + [(0.0,)]), ValueError,
    r"coordinates rows must all have the same length, got lengths \[1, 2\]")
row("RNNConfig-coordinates-strings", cfg(coordinates=[("a", "b")] * 4), TypeError,
    "coordinates must be rows of numbers")

# unknown keys, suggestions
row("RNNConfig-unknown-keyword", cfg(n_unit=3), TypeError,
    "RNNConfig got an unexpected parameter 'n_unit' \\(did you mean 'n_units'")
row("RNNConfig-unknown-keyword-tau", cfg(tau=50.0), TypeError,
    "RNNConfig got an unexpected parameter 'tau' \\(did you mean 'tau_ms'")
row("RNNConfig-missing-required", lambda: nr.RNNConfig(n_inputs=2, n_units=4), TypeError, "n_outputs")
row("RNNConfig-from_dict-unknown", lambda: nr.RNNConfig.from_dict({**BASE, "activaton": "tanh"}), ValueError,
    "unknown model config key 'activaton' \\(did you mean 'activation'")
row("RNNConfig-from_dict-not-mapping", lambda: nr.RNNConfig.from_dict([1, 2]), TypeError,
    "model config must be a mapping, got list")
row("RNNConfig-replace-unknown", lambda: nr.RNNConfig(**BASE).replace(sigma=0.1), ValueError,
    "unknown RNNConfig key 'sigma'")
row("RNNConfig-replace-bad-value", lambda: nr.RNNConfig(**BASE).replace(tau_ms=-5), ValueError,
    "tau_ms must be > 0, got -5")


# ============================================================================ RNN(weights=...)
def net(n_inputs=2, n_units=4, n_outputs=1, **kw):
    return nr.RNN(nr.RNNConfig(n_inputs=n_inputs, n_units=n_units, n_outputs=n_outputs, **kw))


def weights(**w):
    return lambda: nr.RNN(nr.RNNConfig(**BASE), weights=w)


row("RNN-config-dict", lambda: nr.RNN(dict(BASE)), TypeError, "config must be an RNNConfig, got dict")
row("RNN-too-many-units", lambda: nr.RNN(nr.RNNConfig(n_inputs=1, n_units=10_000_000, n_outputs=1)), ValueError,
    r"n_units=10000000: the network's weight matrices need about .* GB .*more than the .* available; use fewer units")
row("RNN-weights-not-mapping", lambda: nr.RNN(nr.RNNConfig(**BASE), weights=[torch.zeros(4, 2)]), TypeError,
    "weights must be a mapping name -> tensor")
row("RNN-weights-unknown", weights(w_inn=torch.zeros(4, 2)), ValueError,
    "unknown weight 'w_inn' \\(did you mean 'w_in'")
row("RNN-weights-w_in-shape", weights(w_in=torch.zeros(2, 4)), ValueError,
    r"given w_in must have shape \(4, 2\), got \(2, 4\)")
row("RNN-weights-w_rec-shape", weights(w_rec=torch.zeros(4, 5)), ValueError,
    r"given w_rec must have shape \(4, 4\), got \(4, 5\)")
row("RNN-weights-w_out-shape", weights(w_out=torch.zeros(4)), ValueError,
    r"given w_out must have shape \(1, 4\), got \(4,\)")
row("RNN-weights-b_rec-shape", weights(b_rec=torch.zeros(3)), ValueError, r"given b_rec must have shape \(4,\), got \(3,\)")
row("RNN-weights-x0-shape", weights(x0=torch.zeros(1, 4)), ValueError, r"given x0 must have shape \(4,\), got \(1, 4\)")
row("RNN-weights-x0-nan", weights(x0=torch.tensor([0.0, NAN, 0.0, 0.0])), ValueError,
    r"given x0 contains NaN or inf \(1 NaN and 0 inf among 4 entries\)")
row("RNN-weights-x0-inf", weights(x0=np.array([INF, 0.0, 0.0, 0.0])), ValueError,
    r"given x0 contains NaN or inf \(0 NaN and 1 inf")
row("RNN-weights-w_rec-nan", weights(w_rec=torch.full((4, 4), NAN)), ValueError, "given w_rec contains NaN or inf")
row("RNN-weights-string", weights(w_in="zeros"), TypeError, "given w_in must be a tensor or an array of numbers, got str")
row("RNN-weights-complex", weights(b_out=torch.zeros(1, dtype=torch.complex64)), TypeError,
    "given b_out must hold real numbers, got dtype torch.complex64")
row("RNN-weights-outside-mask",
    lambda: nr.RNN(nr.RNNConfig(**BASE, autapses=False), weights={"w_rec": torch.eye(4)}), ValueError,
    "given w_rec has non-zero weights outside the connectivity mask")
row("RNN-weights-breaks-dale",
    lambda: nr.RNN(nr.RNNConfig(**BASE, exc_fraction=0.5), weights={"w_rec": -torch.ones(4, 4)}), ValueError,
    "given w_rec breaks Dale's law")

# ============================================================================ RNN forward
MODEL = net()


def fwd(inputs, **kw):
    return lambda: MODEL(inputs, **kw)


U = torch.zeros(3, 5, 2)
row("forward-numpy", fwd(np.zeros((3, 5, 2))), TypeError, "inputs must be a torch.Tensor, got ndarray")
row("forward-list", fwd([[[0.0, 0.0]]]), TypeError, "inputs must be a torch.Tensor, got list")
row("forward-2d", fwd(torch.zeros(5, 2)), ValueError, r"inputs must have shape \(batch, time, n_inputs=2\), got \(5, 2\)")
row("forward-4d", fwd(torch.zeros(1, 3, 5, 2)), ValueError, r"inputs must have shape \(batch, time, n_inputs=2\)")
row("forward-n_inputs", fwd(torch.zeros(3, 5, 3)), ValueError, r"n_inputs=2\), got \(3, 5, 3\)")
row("forward-int-dtype", fwd(torch.zeros(3, 5, 2, dtype=torch.long)), TypeError,
    "inputs must be a floating-point tensor, got dtype torch.int64")
row("forward-bool-dtype", fwd(torch.zeros(3, 5, 2, dtype=torch.bool)), TypeError,
    "inputs must be a floating-point tensor, got dtype torch.bool")
row("forward-empty-batch", fwd(torch.zeros(0, 5, 2)), ValueError, "inputs must hold at least one trial and one time step")
row("forward-empty-time", fwd(torch.zeros(3, 0, 2)), ValueError, "inputs must hold at least one trial and one time step")
row("forward-nan", fwd(torch.tensor([[[0.0, NAN]]])), ValueError, r"inputs contain NaN or inf \(1 NaN and 0 inf among 2")
row("forward-inf", fwd(torch.tensor([[[INF, 0.0]]])), ValueError, r"inputs contain NaN or inf \(0 NaN and 1 inf")
row("forward-too-big", fwd(torch.zeros(1, 1, 2).expand(10**7, 10**5, 2)), ValueError,
    r"inputs of shape \(10000000, 100000, 2\): the forward pass needs about .* GB .*more than the .*; run fewer trials")
row("forward-x0-batch", fwd(U, initial_state=torch.zeros(2, 4)), ValueError,
    r"initial_state must have shape \(n_units=4,\) or \(batch=3, n_units=4\), got \(2, 4\)")
row("forward-x0-units", fwd(U, initial_state=torch.zeros(5)), ValueError,
    r"initial_state must have shape \(n_units=4,\) or \(batch=3, n_units=4\), got \(5,\)")
row("forward-x0-3d", fwd(U, initial_state=torch.zeros(1, 3, 4)), ValueError, "initial_state must have shape")
row("forward-x0-nan", fwd(U, initial_state=torch.tensor([0.0, 0.0, NAN, 0.0])), ValueError,
    r"initial_state contains NaN or inf \(1 NaN")
row("forward-x0-inf", fwd(U, initial_state=torch.full((3, 4), -INF)), ValueError,
    r"initial_state contains NaN or inf \(0 NaN and 12 inf among 12 entries\)")
row("forward-x0-numpy", fwd(U, initial_state=np.zeros(4)), TypeError, "initial_state must be a torch.Tensor, got ndarray")
row("forward-x0-int", fwd(U, initial_state=torch.zeros(4, dtype=torch.long)), TypeError,
    "initial_state must be a floating-point tensor, got dtype torch.int64")
row("forward-noise-string", fwd(U, noise="yes"), TypeError, "noise must be True or False, got 'yes'")
row("forward-generator-int", fwd(U, generator=0), TypeError, "generator must be a torch.Generator or None, got int")

# ============================================================================ TrainConfig


def tcfg(**kw):
    return lambda: nr.TrainConfig(**kw)


INT_FIELDS = {"steps": 0, "batch_size": 1, "eval_every": 1, "eval_batch_size": 1, "history_every": 0,
              "checkpoint_every": 0, "seed": 0, "threads": 1}
for name, minimum in INT_FIELDS.items():
    row(f"TrainConfig-{name}-below", tcfg(**{name: minimum - 1}), ValueError,
        f"{name} must be >= {minimum}, got {minimum - 1}")
    row(f"TrainConfig-{name}-float", tcfg(**{name: 2.5}), TypeError, f"{name} must be an integer, got 2.5")
    row(f"TrainConfig-{name}-string", tcfg(**{name: "10"}), TypeError, f"{name} must be an integer, got '10'")
    row(f"TrainConfig-{name}-bool", tcfg(**{name: True}), TypeError, f"{name} must be an integer, got True")
row("TrainConfig-batch_size-none", tcfg(batch_size=None), TypeError, "batch_size must be an integer, got None")

for name in ("learning_rate", "adam_eps", "grad_clip"):
    row(f"TrainConfig-{name}-zero", tcfg(**{name: 0}), ValueError, f"{name} must be > 0, got 0")
    row(f"TrainConfig-{name}-negative", tcfg(**{name: -1e-3}), ValueError, f"{name} must be > 0, got -0.001")
    row(f"TrainConfig-{name}-nan", tcfg(**{name: NAN}), ValueError, f"{name} must be a finite number > 0, got nan")
    row(f"TrainConfig-{name}-inf", tcfg(**{name: INF}), ValueError, f"{name} must be a finite number > 0, got inf")
    row(f"TrainConfig-{name}-string", tcfg(**{name: "fast"}), TypeError,
        f"{name} must be a finite number > 0, got 'fast'")
    row(f"TrainConfig-{name}-bool", tcfg(**{name: True}), TypeError, f"{name} must be a finite number > 0, got True")

row("TrainConfig-momentum-one", tcfg(momentum=1.0), ValueError, r"momentum must be in \[0, 1\), got 1.0")
row("TrainConfig-momentum-negative", tcfg(momentum=-0.1), ValueError, r"momentum must be in \[0, 1\), got -0.1")
row("TrainConfig-momentum-nan", tcfg(momentum=NAN), ValueError, r"momentum must be a number in \[0, 1\), got nan")
row("TrainConfig-momentum-string", tcfg(momentum="0.9"), TypeError, r"momentum must be a number in \[0, 1\), got '0.9'")
row("TrainConfig-momentum-bool", tcfg(momentum=False), TypeError, r"momentum must be a number in \[0, 1\), got False")

row("TrainConfig-optimizer-misspelt", tcfg(optimizer="adma"), ValueError,
    "optimizer must be one of .*got 'adma' \\(did you mean 'adam'")
row("TrainConfig-optimizer-int", tcfg(optimizer=3), ValueError, "optimizer must be one of .*got 3")
row("TrainConfig-loss-misspelt", tcfg(loss="cross_entropi"), ValueError,
    "loss must be one of .*got 'cross_entropi' \\(did you mean 'cross_entropy'")
row("TrainConfig-loss-unknown", tcfg(loss="mae"), ValueError, r"loss must be one of \['mse', 'cross_entropy'\], got 'mae'")
row("TrainConfig-device-gpu", tcfg(device="gpu"), ValueError, r"device must be one of \['cpu', 'cuda', 'auto'\], got 'gpu'")
row("TrainConfig-device-misspelt", tcfg(device="cdua"), ValueError, "device must be one of .*got 'cdua' \\(did you mean 'cuda'")

row("TrainConfig-acc_criterion-above-one", tcfg(acc_criterion=1.5), ValueError, r"acc_criterion must be in \[0, 1.0\], got 1.5")
row("TrainConfig-acc_criterion-negative", tcfg(acc_criterion=-0.1), ValueError, r"acc_criterion must be in \[0, 1.0\]")
row("TrainConfig-acc_criterion-nan", tcfg(acc_criterion=NAN), ValueError, "acc_criterion must be a finite number.*got nan")
row("TrainConfig-acc_criterion-string", tcfg(acc_criterion="high"), TypeError,
    r"acc_criterion must be a number, None \(default\) or False \(off\), got 'high'")
row("TrainConfig-acc_criterion-true", tcfg(acc_criterion=True), TypeError, "acc_criterion must be a number.*got True")
row("TrainConfig-loss_criterion-negative", tcfg(loss_criterion=-1.0), ValueError, "loss_criterion must be in >= 0, got -1.0")
row("TrainConfig-loss_criterion-inf", tcfg(loss_criterion=INF), ValueError, "loss_criterion must be a finite number.*got inf")
row("TrainConfig-loss_criterion-string", tcfg(loss_criterion="low"), TypeError, "loss_criterion must be a number.*got 'low'")

for name in ("progress", "eval_noise"):
    row(f"TrainConfig-{name}-string", tcfg(**{name: "no"}), TypeError, f"{name} must be True or False, got 'no'")
    row(f"TrainConfig-{name}-int", tcfg(**{name: 0}), TypeError, f"{name} must be True or False, got 0")

row("TrainConfig-regularizers-dict", tcfg(regularizers={"kind": "l2_rates", "strength": 1.0}), TypeError,
    "regularizers must be a list of specs like")
row("TrainConfig-regularizers-string", tcfg(regularizers="l2_rates"), TypeError, "regularizers must be a list of specs like")
row("TrainConfig-regularizers-int", tcfg(regularizers=5), TypeError, "regularizers must be a list of specs, got 5")
row("TrainConfig-regularizers-item-int", tcfg(regularizers=[5]), ValueError,
    r"regularizers\[0\] must be a mapping with a 'kind' and a 'strength', got 5")
row("TrainConfig-regularizers-no-kind", tcfg(regularizers=[{"strength": 1.0}]), ValueError,
    r"regularizers\[0\] must be a mapping with a 'kind'")
row("TrainConfig-regularizers-unknown-kind", tcfg(regularizers=[{"kind": "l2_rate", "strength": 1.0}]), ValueError,
    r"regularizers\[0\]: unknown kind 'l2_rate' \(did you mean 'l2_rates'")
row("TrainConfig-regularizers-no-strength", tcfg(regularizers=[{"kind": "l2_rates"}]), ValueError,
    r"regularizers\[0\] \('l2_rates'\) needs a 'strength'")
row("TrainConfig-regularizers-negative", tcfg(regularizers=[{"kind": "l1_rates", "strength": -1}]), ValueError,
    r"regularizers\[0\] \('l1_rates'\) strength must be a number >= 0, got -1")
row("TrainConfig-regularizers-nan", tcfg(regularizers=[{"kind": "l1_rates", "strength": NAN}]), ValueError,
    r"strength must be a number >= 0, got nan")
row("TrainConfig-regularizers-bool", tcfg(regularizers=[{"kind": "l1_rates", "strength": True}]), ValueError,
    r"strength must be a number >= 0, got True")
row("TrainConfig-regularizers-string-strength", tcfg(regularizers=[{"kind": "l1_rates", "strength": "1"}]), ValueError,
    r"strength must be a number >= 0, got '1'")
row("TrainConfig-regularizers-second", tcfg(regularizers=[{"kind": "l1_rates", "strength": 1}, {"kind": "x"}]),
    ValueError, r"regularizers\[1\]: unknown kind 'x'")
row("TrainConfig-regularizers-unknown-param",
    tcfg(regularizers=[{"kind": "l1_weights", "strength": 1.0, "matrix": ["w_rec"]}]), ValueError,
    r"regularizers\[0\] \('l1_weights'\): unknown parameter 'matrix' \(did you mean 'matrices'")

row("TrainConfig-unknown-keyword", tcfg(learning_rat=1e-3), TypeError,
    "TrainConfig got an unexpected parameter 'learning_rat' \\(did you mean 'learning_rate'")
row("TrainConfig-unknown-keyword-step", tcfg(step=10), TypeError,
    "TrainConfig got an unexpected parameter 'step' \\(did you mean 'steps'")
row("TrainConfig-from_dict-unknown", lambda: nr.TrainConfig.from_dict({"bach_size": 8}), ValueError,
    "unknown train config key 'bach_size' \\(did you mean 'batch_size'")
row("TrainConfig-from_dict-not-mapping", lambda: nr.TrainConfig.from_dict("steps=3"), TypeError,
    "train config must be a mapping, got str")
row("TrainConfig-replace-unknown", lambda: nr.TrainConfig().replace(stepz=3), ValueError,
    "unknown train config key 'stepz' \\(did you mean 'steps'")


# ============================================================================ tasks.make


def make(name, **kw):
    return lambda: tasks.make(name, **kw)


def _params(name):
    return [p for p in inspect.signature(tasks.get(name)).parameters if p != "self"]


def _misspelt(param):
    return param[:-1] if len(param) > 4 else param + "x"


for name in tasks.names():
    params = _params(name)
    target = next(p for p in params if p != "dt_ms")
    bad = _misspelt(target)
    row(f"make-{name}-unknown-param", make(name, **{bad: 1}), ValueError,
        f"unknown parameter '{bad}' for task '{name}' \\(did you mean [^)]*'{target}'")
    row(f"make-{name}-direct-unknown-param", lambda name=name, bad=bad: tasks.get(name)(**{bad: 1}), ValueError,
        f"unknown parameter '{bad}' for task '{name}' \\(did you mean [^)]*'{target}'")
    row(f"make-{name}-dt_ms-negative", make(name, dt_ms=-1.0), ValueError, "dt_ms must be > 0, got -1.0")
    row(f"make-{name}-dt_ms-zero", make(name, dt_ms=0), ValueError, "dt_ms must be > 0, got 0")
    row(f"make-{name}-dt_ms-nan", make(name, dt_ms=NAN), ValueError, "dt_ms must be a finite number > 0, got nan")
    row(f"make-{name}-dt_ms-string", make(name, dt_ms="20"), TypeError, "dt_ms must be a finite number > 0, got '20'")
    for p in params:
        if p.endswith("_ms") and p != "dt_ms":
            row(f"make-{name}-{p}-negative", make(name, **{p: -20.0}), ValueError, f"{p} must be >=? 0, got -20.0")
            row(f"make-{name}-{p}-nan", make(name, **{p: NAN}), ValueError, f"{p} must be a finite number >=? 0, got nan")
            row(f"make-{name}-{p}-string", make(name, **{p: "100"}), TypeError, f"{p} must be a finite number >=? 0, got '100'")

row("make-empty-name", make(""), TypeError, "task name must be a non-empty string, got ''")
row("make-name-int", make(3), TypeError, "task name must be a non-empty string, got 3")
row("make-unknown-task", make("perceptual_decision_makin"), ValueError,
    "unknown task 'perceptual_decision_makin' \\(did you mean 'perceptual_decision_making'")
row("make-missing-module", make("no_such_module_xyz:Task"), ValueError, "cannot import module 'no_such_module_xyz'")
row("make-missing-file", make("no/such/file.py:Task"), ValueError, "task module file 'no/such/file.py' does not exist")
row("make-pdm-coherences-string", make("perceptual_decision_making", coherences="high"), TypeError,
    "coherences must be a sequence of numbers, got 'high'")
row("make-pdm-coherences-number", make("perceptual_decision_making", coherences=5), TypeError,
    "coherences must be a sequence of numbers, got 5")
row("make-pdm-coherences-above-100", make("perceptual_decision_making", coherences=[0, 120]), ValueError,
    r"coherences entries must be in \[0.0, 100.0\], got 120")
row("make-pdm-coherences-nan", make("perceptual_decision_making", coherences=[0, NAN]), ValueError,
    "coherences must hold finite numbers, got nan")
row("make-pdm-coherences-empty", make("perceptual_decision_making", coherences=[]), ValueError,
    "coherences must not be empty")
row("make-pdm-sigma-nan", make("perceptual_decision_making", sigma=NAN), ValueError, "sigma must be a finite number >= 0")
row("make-pdm-stimulus-zero", make("perceptual_decision_making", stimulus_ms=0), ValueError, "stimulus_ms must be > 0, got 0")
row("make-pdm-not-multiple", make("perceptual_decision_making", fixation_ms=110.0), ValueError,
    "fixation_ms must be a multiple of dt_ms=20.0, got 110.0")
row("make-flip_flop-n_bits-string", make("flip_flop", n_bits="3"), TypeError, "n_bits must be an integer, got '3'")
row("make-flip_flop-n_bits-bool", make("flip_flop", n_bits=True), TypeError, "n_bits must be an integer, got True")
row("make-flip_flop-pulse_rate-nan", make("flip_flop", pulse_rate_hz=NAN), ValueError, "pulse_rate_hz must be a finite number > 0")
row("make-go_no_go-probability-string", make("go_no_go", go_probability="half"), ValueError,
    r"go_probability must be in \(0, 1\), got 'half'")
row("make-go_no_go-probability-nan", make("go_no_go", go_probability=NAN), ValueError, r"go_probability must be in \(0, 1\), got nan")
row("make-go_no_go-threshold-nan", make("go_no_go", threshold_high=NAN), ValueError, "threshold_high must be a finite number >= 0")
row("make-xor-amplitude-nan", make("xor", amplitude=NAN), ValueError, "amplitude must be a number > 0, got nan")
row("make-xor-amplitude-string", make("xor", amplitude="1"), ValueError, "amplitude must be a number > 0, got '1'")
row("make-cdm-coherences-inf", make("context_dependent_dm", coherences=[0.1, INF]), ValueError,
    "coherences must hold finite numbers, got inf")
row("make-maze-goal-float", make("maze", goal_steps=2.5), TypeError, "goal_steps must be an integer, got 2.5")
row("make-maze-delay-negative", make("maze", delay_steps=-1), ValueError, "delay_steps must be >= 0, got -1")
row("make-sign_integration-width-zero", make("sign_integration", width=0.0), ValueError, "width must be > 0, got 0.0")
row("make-sign_integration-amplitude-inf", make("sign_integration", amplitude=INF), ValueError,
    "amplitude must be a finite number > 0, got inf")
row("make-memory_anti_angle-tolerance-nan", make("memory_anti_angle", tolerance_deg=NAN), ValueError,
    "tolerance_deg must be a finite number > 0, got nan")
row("make-dmsc-n_stimuli-float", make("delayed_match_to_sample_cued", n_stimuli=2.0), TypeError,
    "n_stimuli must be an integer, got 2.0")
row("make-dms-threshold-string", make("delayed_match_to_sample", threshold="high"), TypeError,
    "threshold must be a finite number > 0, got 'high'")
row("make-sequential_digits-fraction-nan", make("sequential_digits", validation_fraction=NAN), ValueError,
    r"validation_fraction must be in \[0, 1\], got nan")
row("make-sequential_digits-split_seed-negative", make("sequential_digits", split_seed=-1), ValueError,
    "split_seed must be >= 0, got -1")

# ============================================================================ Task.batch
PDM = tasks.make("perceptual_decision_making", stimulus_ms=200.0)
FF = tasks.make("flip_flop", n_bits=2, duration_ms=200.0)
for label, task in (("pdm", PDM), ("flip_flop", FF)):
    row(f"batch-{label}-zero", lambda task=task: task.batch(0), ValueError, "n must be >= 1, got 0")
    row(f"batch-{label}-negative", lambda task=task: task.batch(-4), ValueError, "n must be >= 1, got -4")
    row(f"batch-{label}-float", lambda task=task: task.batch(2.5), TypeError, "n must be an integer, got 2.5")
    row(f"batch-{label}-string", lambda task=task: task.batch("8"), TypeError, "n must be an integer, got '8'")
    row(f"batch-{label}-bool", lambda task=task: task.batch(True), TypeError, "n must be an integer, got True")
    row(f"batch-{label}-generator-int", lambda task=task: task.batch(4, 0), TypeError,
        "generator must be a torch.Generator or None, got int")
    row(f"batch-{label}-generator-numpy", lambda task=task: task.batch(4, np.random.default_rng(0)), TypeError,
        "generator must be a torch.Generator or None, got Generator")
    row(f"batch-{label}-too-many-trials", lambda task=task: task.batch(10**12), ValueError,
        rf"n=1000000000000: a batch of 1000000000000 trials of task '{task.name}' needs about .* GB .*"
        r"more than the .* available; use fewer trials \(a smaller batch_size")

# ============================================================================ PCA
ACT = np.random.default_rng(0).normal(size=(4, 5, 3))
FITTED = PCA().fit(ACT)
ACT_NAN = ACT.copy()
ACT_NAN[1, 2, 0] = NAN
row("PCA-n_components-zero", lambda: PCA(0), ValueError, "n_components must be >= 1, got 0")
row("PCA-n_components-float", lambda: PCA(2.5), TypeError, "n_components must be an integer, got 2.5")
row("PCA-n_components-string", lambda: PCA("2"), TypeError, "n_components must be an integer, got '2'")
row("PCA-n_components-bool", lambda: PCA(True), TypeError, "n_components must be an integer, got True")
row("PCA-n_components-too-many", lambda: PCA(5).fit(ACT), ValueError, r"n_components must be <= min\(samples, units\) = 3, got 5")
row("PCA-fit-nan", lambda: PCA().fit(ACT_NAN), ValueError, r"activity contains NaN or inf \(1 NaN and 0 inf among 60")
row("PCA-fit-inf", lambda: PCA().fit(np.full((4, 3), INF)), ValueError, "activity contains NaN or inf")
row("PCA-fit-1d", lambda: PCA().fit(np.zeros(5)), ValueError, r"activity must have shape \(trials, time, units\) or \(samples, units\), got \(5,\)")
row("PCA-fit-one-sample", lambda: PCA().fit(np.zeros((1, 3))), ValueError, "PCA needs at least 2 samples, got 1")
row("PCA-fit-strings", lambda: PCA().fit([["a", "b"], ["c", "d"]]), TypeError, "activity must be an array of numbers")
row("PCA-transform-unfitted", lambda: PCA().transform(ACT), ValueError, r"this PCA is not fitted yet; call fit\(activity\) first")
row("PCA-transform-units", lambda: FITTED.transform(ACT[..., :2]), ValueError,
    r"activity must have 3 units \(last dimension\), got shape \(4, 5, 2\)")
row("PCA-transform-nan", lambda: FITTED.transform(ACT_NAN), ValueError, r"activity contains NaN or inf \(1 NaN")
row("PCA-transform-inf-tensor", lambda: FITTED.transform(torch.full((2, 3), INF)), ValueError, "activity contains NaN or inf")
row("PCA-transform-scalar", lambda: FITTED.transform(1.0), ValueError, "activity must have 3 units")
row("PCA-inverse-shape", lambda: PCA(2).fit(ACT).inverse_transform(np.zeros((4, 3))), ValueError,
    r"projected must have 2 components \(last dimension\), got shape \(4, 3\)")
row("PCA-inverse-nan", lambda: FITTED.inverse_transform(np.full((2, 3), NAN)), ValueError, "projected contains NaN or inf")
row("PCA-summary-unfitted", lambda: PCA().summary(), ValueError, "this PCA is not fitted yet")

# ============================================================================ sample_states
STATES = np.zeros((2, 3, 4))
STATES_NAN = STATES.copy()
STATES_NAN[0, 1, 2] = NAN
row("sample_states-n-zero", lambda: sample_states(STATES, 0), ValueError, "n must be >= 1, got 0")
row("sample_states-n-float", lambda: sample_states(STATES, 2.5), TypeError, "n must be an integer, got 2.5")
row("sample_states-noise-negative", lambda: sample_states(STATES, 3, noise_std=-1.0), ValueError,
    "noise_std must be >= 0, got -1.0")
row("sample_states-noise-nan", lambda: sample_states(STATES, 3, noise_std=NAN), ValueError,
    "noise_std must be a finite number >= 0, got nan")
row("sample_states-nan", lambda: sample_states(STATES_NAN, 3), ValueError, r"states contains NaN or inf \(1 NaN")
row("sample_states-inf-tensor", lambda: sample_states(torch.full((3, 4), INF), 3), ValueError, "states contains NaN or inf")
row("sample_states-1d", lambda: sample_states(np.zeros(4), 3), ValueError,
    r"states must have shape \(trials, time, units\) or \(samples, units\), got \(4,\)")
row("sample_states-empty", lambda: sample_states(np.zeros((0, 4)), 3), ValueError, r"states must have shape .*got \(0, 4\)")
row("sample_states-strings", lambda: sample_states([["a"]], 3), TypeError, "states must be a tensor or an array of numbers")
row("sample_states-generator", lambda: sample_states(STATES, 3, generator=1), TypeError,
    "generator must be a torch.Generator or None, got int")

# ============================================================================ FixedPointFinder
FP_MODEL = net(n_inputs=1, n_units=3, n_outputs=1, activation="tanh")
STARTS = np.zeros((5, 3))


def finder(**kw):
    return lambda: FixedPointFinder(FP_MODEL, **kw)


def fit(inputs, starts, **kw):
    return lambda: FixedPointFinder(FP_MODEL, detect_cycles=False, max_iters=2, **kw).fit(inputs, starts)


row("FPF-model-type", lambda: FixedPointFinder("model"), TypeError, "model must be a neurornn.RNN, got str")
for name, bad, exc, msg in [
    ("tol_q", 0.0, ValueError, "tol_q must be > 0, got 0.0"),
    ("tol_q", -1e-3, ValueError, "tol_q must be > 0, got -0.001"),
    ("tol_q", NAN, ValueError, "tol_q must be a finite number > 0, got nan"),
    ("tol_q", "small", TypeError, "tol_q must be a finite number > 0, got 'small'"),
    ("tol_q", [], ValueError, r"tol_q must be a number or a non-empty sequence"),
    ("tol_q", [1e-3, -1.0], ValueError, r"tol_q\[1\] must be > 0, got -1.0"),
    ("max_iters", -1, ValueError, "max_iters must be >= 0, got -1"),
    ("max_iters", 1.5, TypeError, "max_iters must be an integer, got 1.5"),
    ("learning_rate", 0.0, ValueError, "learning_rate must be > 0, got 0.0"),
    ("learning_rate", INF, ValueError, "learning_rate must be a finite number > 0, got inf"),
    ("refine", "yes", TypeError, "refine must be True or False, got 'yes'"),
    ("refine_max_q", 0.0, ValueError, "refine_max_q must be > 0, got 0.0"),
    ("refine_iters", -2, ValueError, "refine_iters must be >= 0, got -2"),
    ("tol_unique", NAN, ValueError, "tol_unique must be a finite number > 0, got nan"),
    ("tol_unique", 0, ValueError, "tol_unique must be > 0, got 0"),
    ("merge_radius", -0.1, ValueError, "merge_radius must be > 0, got -0.1"),
    ("outlier_scale", 0.0, ValueError, "outlier_scale must be > 0, got 0.0"),
    ("convention", "discret", ValueError, "convention must be one of .*got 'discret' \\(did you mean 'discrete'"),
    ("detect_cycles", 1, TypeError, "detect_cycles must be True or False, got 1"),
    ("cycle_steps", 0, ValueError, "cycle_steps must be >= 1, got 0"),
]:
    row(f"FPF-{name}-{bad!r}", finder(**{name: bad}), exc, msg)
row("FPF-unknown-keyword", finder(tol=1e-3), TypeError, "unexpected keyword argument 'tol'")
row("FPF-fit-inputs-shape", fit(np.zeros(2), STARTS), ValueError,
    r"inputs must be one input vector of n_inputs=1 entries or an array of shape \(n_conditions, 1\), got shape \(2,\)")
row("FPF-fit-inputs-3d", fit(np.zeros((1, 1, 1)), STARTS), ValueError, r"inputs must be one input vector .*got shape \(1, 1, 1\)")
row("FPF-fit-inputs-nan", fit(np.array([NAN]), STARTS), ValueError, r"inputs contains NaN or inf \(1 NaN")
row("FPF-fit-inputs-string", fit("zero", STARTS), TypeError, "inputs must be a tensor or an array, got str")
row("FPF-fit-starts-units", fit(np.zeros(1), np.zeros((5, 4))), ValueError,
    r"initial_states must have shape \(n_states, n_units=3\) or \(n_conditions, n_states, 3\), got shape \(5, 4\)")
row("FPF-fit-starts-empty", fit(np.zeros(1), np.zeros((0, 3))), ValueError, r"initial_states must have shape .*got shape \(0, 3\)")
row("FPF-fit-starts-nan", fit(np.zeros(1), np.full((5, 3), NAN)), ValueError,
    r"initial_states contains NaN or inf \(15 NaN and 0 inf among 15 entries\)")
row("FPF-fit-starts-inf", fit(np.zeros(1), torch.full((5, 3), INF)), ValueError, r"initial_states contains NaN or inf \(0 NaN and 15 inf")
row("FPF-fit-starts-conditions", fit(np.zeros((2, 1)), np.zeros((3, 5, 3))), ValueError,
    "initial_states has 3 conditions but inputs has 2 rows")
row("FPF-fit-tol_q-per-condition", fit(np.zeros((2, 1)), STARTS, tol_q=[1e-3]), ValueError,
    r"tol_q has 1 values \(one per input condition\) but inputs has 2 rows")
row("step_jacobians-states-3d", lambda: step_jacobians(FP_MODEL, np.zeros((2, 5, 3)), np.zeros(1)), ValueError,
    r"states must have shape \(n_points, n_units\), got \(2, 5, 3\)")
row("step_jacobians-inputs-rows", lambda: step_jacobians(FP_MODEL, np.zeros((4, 3)), np.zeros((2, 1))), ValueError,
    r"inputs must have one row or one row per state \(4\), got 2 rows")
row("step_jacobians-states-nan", lambda: step_jacobians(FP_MODEL, np.full((4, 3), NAN), np.zeros(1)), ValueError,
    "states contains NaN or inf")

# ============================================================================ record_activity, psychometric_curve
PDM_MODEL = net(n_inputs=PDM.n_inputs, n_units=4, n_outputs=PDM.n_outputs, dt_ms=PDM.dt_ms,
                areas={"A": 2, "B": 2})
PDM_BATCH = PDM.batch(2, torch.Generator().manual_seed(0))
FF_MODEL = net(n_inputs=FF.n_inputs, n_units=4, n_outputs=FF.n_outputs, dt_ms=FF.dt_ms)
row("record_activity-source", lambda: record_activity("model", PDM_BATCH), TypeError,
    "expected a neurornn.RNN or a training run, got str")
row("record_activity-inputs-shape", lambda: record_activity(PDM_MODEL, np.zeros((2, 5, 2))), ValueError,
    r"inputs must have shape \(trials, time, n_inputs=3\), got \(2, 5, 2\)")
row("record_activity-inputs-nan", lambda: record_activity(PDM_MODEL, np.full((2, 5, 3), NAN)), ValueError,
    "inputs contains NaN or inf")
row("record_activity-inputs-dict", lambda: record_activity(PDM_MODEL, {"inputs": 1}), TypeError,
    "inputs must be a tensor or an array, got dict")
row("record_activity-area", lambda: record_activity(PDM_MODEL, PDM_BATCH, area="C"), ValueError,
    r"area must be one of \['A', 'B'\], got 'C'")
row("record_activity-snapshot-on-model", lambda: record_activity(PDM_MODEL, PDM_BATCH, snapshot=0), ValueError,
    "snapshot needs a run")
row("psychometric-non-decision-task", lambda: psychometric_curve(FF_MODEL, FF, n_trials=8), ValueError,
    r"condition must be one of \[.*'final_0', 'final_1'\], got 'signed_coherence'")
row("psychometric-no-binary-choice", lambda: psychometric_curve(FF_MODEL, FF, condition="final_0", n_trials=8),
    ValueError, r"cannot read a binary choice from outputs \['output_0', 'output_1'\]")
row("psychometric-task-type", lambda: psychometric_curve(PDM_MODEL, "perceptual_decision_making"), TypeError,
    "task must be a neurornn Task, got str")
row("psychometric-condition-misspelt", lambda: psychometric_curve(PDM_MODEL, PDM, condition="coherense", n_trials=8),
    ValueError, "condition must be one of .*got 'coherense' \\(did you mean 'coherence'")

# ============================================================================ graph metrics, TCA
W_NAN = np.eye(4)
W_NAN[0, 1] = NAN
SQUARE = np.random.default_rng(1).normal(size=(5, 5))
row("adjacency-not-square", lambda: adjacency(np.zeros((3, 4))), ValueError,
    r"w must be a square matrix \(n_units, n_units\), got shape \(3, 4\)")
row("adjacency-1d", lambda: adjacency(np.zeros(4)), ValueError, r"w must be a square matrix .*got shape \(4,\)")
row("adjacency-nan", lambda: adjacency(W_NAN), ValueError, "w contains NaN or inf")
row("adjacency-keep_fraction", lambda: adjacency(SQUARE, keep_fraction=1.5), ValueError, r"keep_fraction must be in \[0, 1\], got 1.5")
row("adjacency-keep_fraction-zero", lambda: adjacency(SQUARE, keep_fraction=0), ValueError, "keep_fraction must be > 0, got 0")
row("adjacency-threshold-negative", lambda: adjacency(SQUARE, threshold=-1.0), ValueError, "threshold must be >= 0, got -1.0")
row("adjacency-symmetrize", lambda: adjacency(SQUARE, symmetrize="avg"), ValueError, "symmetrize must be one of .*got 'avg'")
row("graph_metrics-not-square", lambda: graph_metrics(np.zeros((3, 4))), ValueError, r"w must be a square matrix .*got shape \(3, 4\)")
row("graph_metrics-nan", lambda: graph_metrics(W_NAN), ValueError, "w contains NaN or inf")
row("graph_metrics-inf-tensor", lambda: graph_metrics(torch.full((3, 3), INF)), ValueError, "w contains NaN or inf")
row("clustering-not-square", lambda: clustering_coefficients(np.zeros((2, 3))), ValueError,
    r"adjacency must have shape \(n, n\) or \(n_graphs, n, n\), got \(2, 3\)")
row("small_worldness-asymmetric", lambda: small_worldness(np.triu(np.ones((4, 4)), 1)), ValueError,
    "adjacency must be symmetric")
row("modularity-labels", lambda: modularity(adjacency(SQUARE), [0, 1]), ValueError, r"labels must have shape \(5,\), got \(2,\)")

TENSOR = np.random.default_rng(2).random((3, 4, 5))
row("tca-rank-zero", lambda: fit_tca(TENSOR, 0), ValueError, "rank must be >= 1, got 0")
row("tca-rank-float", lambda: fit_tca(TENSOR, 1.5), TypeError, "rank must be an integer, got 1.5")
row("tca-rank-string", lambda: fit_tca(TENSOR, "2"), TypeError, "rank must be an integer, got '2'")
row("tca-tensor-2d", lambda: fit_tca(np.ones((3, 4)), 1), ValueError, r"tensor must have shape \(units, time, trials\), got \(3, 4\)")
row("tca-tensor-nan", lambda: fit_tca(np.full((3, 4, 5), NAN), 1), ValueError, "tensor contains NaN or inf")
row("tca-tensor-zeros", lambda: fit_tca(np.zeros((3, 4, 5)), 1), ValueError, "tensor is all zeros")
row("tca-nonnegative", lambda: fit_tca(TENSOR - 1.0, 1, nonnegative=True), ValueError,
    "nonnegative=True needs a non-negative tensor, got minimum")

# ============================================================================ train() and load_run
SMALL_TRAIN = nr.TrainConfig(steps=1, batch_size=2, eval_every=1, eval_batch_size=2, history_every=0,
                             checkpoint_every=0, acc_criterion=False, progress=False)
row("train-model-type", lambda: nr.train("model", PDM, SMALL_TRAIN), TypeError, "model must be a neurornn.RNN, got str")
row("train-task-type", lambda: nr.train(PDM_MODEL, "perceptual_decision_making", SMALL_TRAIN), TypeError,
    "task must be a neurornn.tasks.Task, got str")
row("train-config-type", lambda: nr.train(PDM_MODEL, PDM, {"steps": 1}), TypeError, "config must be a TrainConfig, got dict")
row("train-n_inputs", lambda: nr.train(FF_MODEL, PDM, SMALL_TRAIN), ValueError,
    "model n_inputs=2 but task 'perceptual_decision_making' has 3 inputs")
row("train-n_outputs", lambda: nr.train(net(n_inputs=3, n_units=4, n_outputs=2, dt_ms=20.0), PDM, SMALL_TRAIN),
    ValueError, "model n_outputs=2 but task 'perceptual_decision_making' has 3 outputs")
row("train-dt_ms", lambda: nr.train(net(n_inputs=3, n_units=4, n_outputs=3, dt_ms=10.0), PDM, SMALL_TRAIN),
    ValueError, "model dt_ms=10.0 but task 'perceptual_decision_making' has dt_ms=20.0; they must match")
row("train-resume-without-out", lambda: nr.train(PDM_MODEL, PDM, SMALL_TRAIN, resume=True), ValueError,
    "resume=True needs out=")
row("train-batch-too-big", lambda: nr.train(PDM_MODEL, PDM, SMALL_TRAIN.replace(batch_size=10**12)), ValueError,
    "n=1000000000000: a batch of 1000000000000 trials .*use fewer trials")
row("train-eval-batch-too-big", lambda: nr.train(PDM_MODEL, PDM, SMALL_TRAIN.replace(eval_batch_size=10**12)),
    ValueError, "n=1000000000000: a batch of 1000000000000 trials")


def _load_plain_file():
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "notes.txt"
        file.write_text("not a run")
        nr.load_run(file)


def _load_empty_folder():
    with tempfile.TemporaryDirectory() as tmp:
        nr.load_run(tmp)


def _load_run_without_model():
    with tempfile.TemporaryDirectory() as tmp:
        model = net(n_inputs=3, n_units=4, n_outputs=3, dt_ms=20.0)
        nr.train(model, PDM, SMALL_TRAIN, out=Path(tmp) / "run", figures=False)
        (Path(tmp) / "run" / "model.safetensors").unlink()
        nr.load_run(Path(tmp) / "run")


row("load_run-missing", lambda: nr.load_run("no/such/run-folder"), FileNotFoundError,
    "run folder 'no/such/run-folder' does not exist")
row("load_run-plain-file", _load_plain_file, ValueError, r"notes.txt' is not a run folder \(no readable .neurornn.json manifest")
row("load_run-empty-folder", _load_empty_folder, ValueError, r"is not a run folder \(no readable .neurornn.json manifest")
row("load_run-path-type", lambda: nr.load_run(3), TypeError, "path must be a path, got int")
row("load_run-no-model-file", _load_run_without_model, FileNotFoundError, "has no model.safetensors")


# ============================================================================ the table
@pytest.mark.parametrize("call, exc, match", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_bad_input_is_refused_naming_the_parameter(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    message = str(info.value.args[0]) if info.value.args else ""
    assert "\n" not in message, f"the message must be one line: {message!r}"


def test_row_ids_are_unique():
    ids = [r[0] for r in ROWS]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


# ============================================================================ the CLI
def _config_file(text):
    def build(tmp_path):
        path = tmp_path / "config.yaml"
        path.write_text(text)
        return str(path)
    return build


CLI = [
    ("train-set-no-equals", ["train", "--set", "model.n_units"], "--set expects section.key=value, got 'model.n_units'"),
    ("train-set-no-section", ["train", "--set", "n_units=3"], "--set key must be section.key"),
    ("train-set-unknown-section", ["train", "--set", "modle.n_units=3"],
     "--set: unknown section 'modle' \\(did you mean 'model'"),
    ("train-set-empty-key", ["train", "--set", "model.=3"], "--set: empty key in 'model.=3'"),
    ("train-set-unknown-model-key", ["train", "--set", "model.n_unit=3"],
     "unknown model config key 'n_unit' \\(did you mean 'n_units'"),
    ("train-set-unknown-train-key", ["train", "--set", "train.stps=3"],
     "unknown train config key 'stps' \\(did you mean 'steps'"),
    ("train-set-unknown-task-param", ["train", "--set", "task.coherence=[1]"],
     "unknown parameter 'coherence' for task 'perceptual_decision_making' \\(did you mean 'coherences'"),
    ("train-set-steps-string", ["train", "--set", "train.steps=abc"], "steps must be an integer, got 'abc'"),
    ("train-set-units-zero", ["train", "--set", "model.n_units=0"], "n_units must be >= 1, got 0"),
    ("train-set-tau-negative", ["train", "--set", "model.tau_ms=-5"], "tau_ms must be > 0, got -5"),
    ("train-set-lr-nan", ["train", "--set", "train.learning_rate=.nan"], "learning_rate must be a finite number > 0, got nan"),
    ("train-set-activation", ["train", "--set", "model.activation=rellu"], "activation must be one of .*did you mean 'relu'"),
    ("train-set-tau_inh-without-dale", ["train", "--task", "flip_flop", "--set", "model.tau_inh_ms=30"],
     "tau_inh_ms only applies with Dale's law"),
    ("train-set-dt-mismatch", ["train", "--set", "model.dt_ms=10"], "model.dt_ms=10 does not match the task's dt_ms=20.0"),
    ("train-threads-zero", ["train", "--threads", "0"], "--threads must be >= 1, got 0"),
    ("train-task-nonexistent", ["train", "--task", "nonexistent"], "unknown task 'nonexistent'"),
    ("train-task-misspelt", ["train", "--task", "flip_flp"], "unknown task 'flip_flp' \\(did you mean 'flip_flop'"),
    ("train-config-missing", ["train", "--config", "missing.yaml"], "config file 'missing.yaml' does not exist"),
    ("train-config-unknown-section", ["train", "--config", _config_file("modle:\n  n_units: 8\n")],
     "config.yaml': unknown section 'modle' \\(did you mean 'model'"),
    ("train-config-not-mapping", ["train", "--config", _config_file("- 1\n- 2\n")], "must hold a mapping with sections"),
    ("train-config-unknown-task-key", ["train", "--config", _config_file("task:\n  nme: flip_flop\n")],
     "unknown task key 'nme' \\(did you mean 'name'"),
    ("train-config-bad-model-value", ["train", "--config", _config_file("model:\n  n_units: many\n")],
     "n_units must be an integer, got 'many'"),
    ("train-resume-without-out", ["train", "--resume"], "--resume needs --out DIR"),
    ("tasks-show-unknown", ["tasks", "show", "flip_flp"], "unknown task 'flip_flp' \\(did you mean 'flip_flop'"),
    ("tasks-show-bad-param", ["tasks", "show", "flip_flop", "--set", "n_bits=0"], "n_bits must be >= 1, got 0"),
    ("tasks-show-unknown-param", ["tasks", "show", "flip_flop", "--set", "n_bit=2"],
     "unknown parameter 'n_bit' for task 'flip_flop' \\(did you mean 'n_bits'"),
    ("analyze-missing-folder", ["analyze", "no/such/run"], "run folder 'no/such/run' does not exist"),
]


@pytest.mark.parametrize("argv, match", [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_cli_bad_input_is_one_line(argv, match, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written where the tests run
    argv = [a(tmp_path) if callable(a) else a for a in argv]
    code = main(argv)
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code != 0
    assert "Traceback" not in captured.err + captured.out
    assert len(err.splitlines()) == 1, err
    command = argv[0]
    assert err.startswith(f"neurornn {command}: error: "), err
    assert re.search(match, err), err
    assert not any(tmp_path.joinpath("runs").glob("*")), "a failed command left a run folder"


# ============================================================================ what is accepted
def test_numpy_scalars_are_accepted_as_plain_numbers():
    c = nr.RNNConfig(n_inputs=np.int64(2), n_units=np.int32(4), n_outputs=1, dt_ms=np.float32(10.0),
                     tau_ms=np.float64(50.0), sigma_rec=np.float32(0.05), exc_fraction=np.float32(0.5),
                     tau_inh_ms=np.float32(20.0), areas={"A": np.int64(2), "B": 2}, grid_shape=(np.int64(4), 1, 1),
                     learn_x0=np.True_, seed=np.int64(3))
    values = c.to_dict()
    for key in ("n_inputs", "n_units", "seed"):
        assert type(values[key]) is int
    for key in ("dt_ms", "tau_ms", "sigma_rec", "exc_fraction", "tau_inh_ms"):
        assert type(values[key]) is float
    assert values["sigma_rec"] == 0.05 and values["exc_fraction"] == 0.5  # the number written, not float32's
    assert values["areas"] == {"A": 2, "B": 2} and type(values["areas"]["A"]) is int
    assert c.grid_shape == (4, 1, 1) and type(c.grid_shape[0]) is int
    assert values["learn_x0"] is True
    t = nr.TrainConfig(steps=np.int64(10), batch_size=np.int32(4), learning_rate=np.float32(1e-3),
                       acc_criterion=np.float64(0.9), momentum=np.float32(0.5), threads=np.int64(1),
                       regularizers=[{"kind": "l2_rates", "strength": np.float32(1e-3)}], progress=np.False_)
    values = t.to_dict()
    assert type(values["steps"]) is int and type(values["batch_size"]) is int and type(values["threads"]) is int
    assert values["learning_rate"] == 1e-3 and type(values["learning_rate"]) is float
    assert values["regularizers"] == [{"kind": "l2_rates", "strength": 1e-3}]
    assert type(values["regularizers"][0]["strength"]) is float
    assert values["progress"] is False
    task = tasks.make("flip_flop", n_bits=np.int64(2), duration_ms=np.float32(500.0), dt_ms=np.float64(10.0))
    params = task.params()
    assert params["n_bits"] == 2 and type(params["n_bits"]) is int
    assert type(params["duration_ms"]) is float
    assert task.batch(np.int64(3), torch.Generator().manual_seed(0)).inputs.shape[0] == 3
    assert PCA(np.int64(2)).fit(ACT).n_components_ == 2
    assert sample_states(STATES, np.int64(3)).shape == (3, 4)


def test_numpy_config_round_trips_through_yaml():
    from neurornn.runs import load_yaml
    import yaml

    c = nr.RNNConfig(n_inputs=np.int64(2), n_units=4, n_outputs=1, dt_ms=np.float32(10.0))
    text = yaml.safe_dump(c.to_dict())
    assert nr.RNNConfig.from_dict(load_yaml(text)) == c


def test_defaults_stay_valid_and_tau_inh_with_dale_is_accepted():
    c = nr.RNNConfig(n_inputs=1, n_units=4, n_outputs=1, exc_fraction=0.75, tau_inh_ms=50.0)
    assert c.tau_inh_ms == 50.0 and nr.RNNConfig(n_inputs=1, n_units=4, n_outputs=1).tau_inh_ms is None
    model = nr.RNN(c)
    assert torch.allclose(model.alpha, torch.tensor([0.2, 0.2, 0.2, 0.4]))


def test_forward_accepts_the_documented_initial_states():
    u = torch.zeros(3, 5, 2)
    for x0 in (torch.ones(4), torch.ones(1, 4), torch.ones(3, 4), torch.ones(4, dtype=torch.float64)):
        out = MODEL(u, initial_state=x0)
        assert out.states.shape == (3, 5, 4)
    assert MODEL(u, noise=np.True_, generator=torch.Generator().manual_seed(0)).states.shape == (3, 5, 4)


def test_memory_check_refuses_with_the_figure():
    from neurornn._validation import check_memory

    with pytest.raises(ValueError, match=r"^batch_size=7: one batch needs about 8.0 GB \(inputs\), more than the "
                                         r"6.1 GB available; use a smaller batch_size$"):
        check_memory("batch_size=7: one batch needs", 8e9, "use a smaller batch_size", detail="inputs",
                     available=int(6.1e9))
    check_memory("small", 1e3, "never raised", available=10**4)  # fits: no error
