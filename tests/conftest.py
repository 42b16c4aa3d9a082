"""Shared test fixtures (keep small)."""

from __future__ import annotations

import matplotlib
import pytest
import torch

import neurornn as nr

matplotlib.use("Agg")
# CI runs `pytest -n 2` on 2 cores: one torch thread per worker avoids oversubscription.
torch.set_num_threads(1)


@pytest.fixture
def small_task():
    """Perceptual decision making with a short stimulus: 5 + 10 + 5 = 20 steps of 20 ms."""
    return nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0)


@pytest.fixture
def small_model_config(small_task):
    """A 16-unit network sized for ``small_task``."""
    return nr.RNNConfig(n_inputs=small_task.n_inputs, n_units=16, n_outputs=small_task.n_outputs,
                        dt_ms=small_task.dt_ms, tau_ms=100.0, activation="relu", seed=0)


@pytest.fixture
def fast_train_config():
    """A few steps, no criterion, no progress bar."""
    return nr.TrainConfig(steps=12, batch_size=8, learning_rate=1e-2, eval_every=4, eval_batch_size=16,
                          history_every=5, checkpoint_every=4, acc_criterion=False, progress=False, seed=0)
