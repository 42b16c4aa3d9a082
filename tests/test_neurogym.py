"""The NeuroGym adapter: ``tasks.make("neurogym:EnvId-v0")`` builds batch-first, seeded batches."""

from __future__ import annotations

import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn import tasks
from neurornn.cli import main
from neurornn.ops.losses import task_loss
from neurornn.training import TrainConfig, train

ngym = pytest.importorskip("neurogym")

from neurornn.tasks.neurogym_adapter import TOLERANCE, NeuroGymTask, neurogym_env_ids  # noqa: E402

DOC = Path(__file__).resolve().parents[1] / "docs" / "tasks.md"
ENV_IDS = neurogym_env_ids()
# Reinforcement-learning environments: their trials define no ground truth to train on.
RL_ENVS = {"Bandit-v0", "DawTwoStep-v0", "EconomicDecisionMaking-v0", "Null-v0"}
# Continuous ground truth: Box action spaces, and Reaching1D's target angle.
CONTINUOUS = {"Reaching1D-v0", "Reaching1DWithSelfDistraction-v0", "ReachingDelayResponse-v0",
              "SpatialSuppressMotion-v0"}
# Environments with constructor parameters that have no default.
ENV_KWARGS = {"AnnubesEnv-v0": {"session": {"v": 0.5, "a": 0.5}, "catch_prob": 0.5}}
RL_ERROR = "is a reinforcement-learning environment without supervised targets"


def gen(seed):
    return torch.Generator().manual_seed(seed)


def make_env_task(env_id):
    return tasks.make(f"neurogym:{env_id}", env_kwargs=ENV_KWARGS.get(env_id))


def own_dt(env_id):
    """The environment's default dt, straight from NeuroGym."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ngym.make(env_id, **ENV_KWARGS.get(env_id, {})).unwrapped.dt


def tiny_rnn(task, seed=0):
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_outputs=task.n_outputs, dt_ms=task.dt_ms, n_units=8,
                       tau_ms=max(100.0, 2 * task.dt_ms), activation="relu", seed=seed)
    return nr.RNN(cfg)


@pytest.fixture(scope="module")
def pdm():
    return tasks.make("neurogym:PerceptualDecisionMaking-v0", dt_ms=100)


def test_batch_is_batch_first_one_hot_and_named(pdm):
    assert isinstance(pdm, NeuroGymTask) and pdm.name == "neurogym:PerceptualDecisionMaking-v0"
    assert pdm.input_names == ("fixation", "stimulus_1", "stimulus_2")
    assert pdm.output_names == ("fixation", "choice_1", "choice_2")
    assert pdm.loss == "cross_entropy" and pdm.dt_ms == 100.0
    batch = pdm.batch(16, gen(0))
    # NeuroGym's default timing at dt = 100 ms: fixation 1 + stimulus 20 + decision 1 steps
    assert batch.inputs.shape == (16, 22, 3) and batch.targets.shape == (16, 22, 3)
    assert torch.equal(batch.targets.sum(-1), torch.ones(16, 22))
    dec = batch.period_mask("decision")
    labels = batch.targets.argmax(-1)
    # NeuroGym: ground_truth 0 or 1 is the choice, action ground_truth + 1 (0 is fixation)
    assert torch.equal(labels[dec], (batch.conditions["ground_truth"].long() + 1).repeat_interleave(dec.sum(1)))
    assert (labels[~dec] == 0).all()  # fixation before the decision
    assert (batch.mask == 1).all()


def test_same_as_neurogym_for_the_same_seed(pdm):
    """The adapter only stacks what the environment produces: compare with NeuroGym itself."""
    batch = pdm.batch(3, gen(5))
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen(5)))
    env = ngym.make("PerceptualDecisionMaking-v0", dt=100).unwrapped
    env.seed(seed)
    for i in range(3):
        env.new_trial()
        np.testing.assert_allclose(batch.inputs[i].numpy(), env.ob, rtol=1e-6)
        np.testing.assert_array_equal(batch.targets[i].argmax(-1).numpy(), env.gt)


def test_seeded_from_our_generator(pdm):
    a, b, c = pdm.batch(8, gen(1)), pdm.batch(8, gen(1)), pdm.batch(8, gen(2))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)


def test_variable_length_trials_are_padded_and_masked():
    task = tasks.make("neurogym:ReadySetGo-v0", dt_ms=50)
    batch = task.batch(16, gen(0))
    lengths = (batch.periods != 0).sum(1)
    assert len(torch.unique(lengths)) > 1  # ReadySetGo trial lengths vary
    assert torch.equal(batch.mask.sum(1), lengths.float())
    pad = batch.periods == 0
    assert (batch.inputs[pad] == 0).all() and (batch.targets[pad] == 0).all()
    assert "production" in batch.period_names and batch.period_names[0] == "padding"
    assert task.evaluate(20 * batch.targets - 10, batch)["accuracy"] == 1.0


def test_decision_mask_and_accuracy_on_decision_steps(pdm):
    task = tasks.make("neurogym:PerceptualDecisionMaking-v0", dt_ms=100, mask="decision")
    batch = task.batch(32, gen(0))
    assert torch.equal(batch.mask.bool(), batch.period_mask("decision"))
    outputs = 20 * batch.targets - 10
    outputs[batch.period_mask("fixation")] = 0.0  # wrong (tied) outside the decision: not scored
    assert task.evaluate(outputs, batch)["accuracy"] == 1.0


def test_params_rebuild_and_env_kwargs_reach_neurogym():
    task = tasks.make("neurogym:PerceptualDecisionMaking-v0", dt_ms=100,
                      env_kwargs={"timing": {"fixation": 100, "stimulus": 500, "decision": 100}})
    assert task.batch(2, gen(0)).inputs.shape[1] == 7
    again = tasks.make(task.name, **task.params())
    assert torch.equal(again.batch(4, gen(3)).inputs, task.batch(4, gen(3)).inputs)


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"env_id": "PerceptualDecisionMakin-v0"}, ValueError,
     "unknown NeuroGym environment 'PerceptualDecisionMakin-v0' \\(did you mean 'PerceptualDecisionMaking-v0'"),
    ({"mask": "some"}, ValueError, "mask must be one of"),
    ({"dt_ms": -1}, ValueError, "dt_ms must be > 0"),
    ({"env_kwargs": ["timing"]}, TypeError, "env_kwargs must be a dict"),
    ({"env_kwargs": {"no_such_option": 1}}, ValueError, "bad env_kwargs for NeuroGym"),
])
def test_bad_input(kwargs, exc, match):
    kwargs = {"env_id": "PerceptualDecisionMaking-v0", **kwargs}
    with pytest.raises(exc, match=match):
        NeuroGymTask(**kwargs)


def test_unknown_parameter_names_the_adapter_parameters():
    with pytest.raises(ValueError, match=r"unknown parameter 'dt' .*did you mean 'dt_ms'.*known: \['dt_ms', 'mask', 'env_kwargs'\]"):
        tasks.make("neurogym:PerceptualDecisionMaking-v0", dt=100)


def test_clear_error_without_neurogym(monkeypatch):
    monkeypatch.setitem(sys.modules, "neurogym", None)  # import neurogym -> ImportError
    with pytest.raises(ImportError, match=r'pip install "neurornn\[neurogym\]"'):
        tasks.make("neurogym:PerceptualDecisionMaking-v0")


def test_trains_end_to_end_through_the_adapter():
    """A 32-unit network learns NeuroGym's perceptual decision making (ceiling 0.896)."""
    task = tasks.make("neurogym:PerceptualDecisionMaking-v0", dt_ms=100)
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_outputs=task.n_outputs, dt_ms=task.dt_ms, n_units=32,
                       tau_ms=100.0, activation="relu", seed=0)
    run = train(nr.RNN(cfg), task, TrainConfig(steps=800, batch_size=32, learning_rate=0.01, eval_every=25,
                                               progress=False, history_every=0, seed=0))
    assert run.summary["stopped_because"] == "accuracy_criterion"  # task.criterion 0.8, measured at step 150
    batch = task.batch(1000, gen(99))
    with torch.no_grad():
        acc = task.evaluate(run.model.eval()(batch.inputs).outputs, batch)["accuracy"]
    assert acc >= 0.75


def test_cli_shows_a_neurogym_task(capsys):
    assert main(["tasks", "show", "neurogym:GoNogo-v0", "--set", "dt_ms=50"]) == 0
    out = capsys.readouterr().out
    assert "task neurogym:GoNogo-v0" in out and "inputs  (8, 30, 3)" in out


# ---------------------------------------------------------------- every registered environment

def test_the_registry_is_what_neurogym_registers():
    assert len(ENV_IDS) >= 50 and "PerceptualDecisionMaking-v0" in ENV_IDS and "yang19.dm1-v0" in ENV_IDS
    assert ENV_IDS == ngym.envs.registration.all_envs(psychopy=True, contrib=True, collections=True)
    assert RL_ENVS | CONTINUOUS | set(ENV_KWARGS) <= set(ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_environment_builds_with_its_own_dt_and_loss_or_is_refused(env_id):
    """Fast smoke check: a batch, a forward/backward pass, the loss the ground truth calls for."""
    if env_id in RL_ENVS:
        with pytest.raises(ValueError, match=f"^{re.escape(env_id)} {RL_ERROR}"):
            make_env_task(env_id)
        return
    task = make_env_task(env_id)
    assert task.dt_ms == own_dt(env_id)
    assert task.loss == ("mse" if env_id in CONTINUOUS else "cross_entropy")
    batch = task.batch(3, gen(0))
    again = task.batch(3, gen(0))
    assert torch.equal(batch.inputs, again.inputs) and torch.equal(batch.targets, again.targets)
    assert batch.inputs.shape[0] == 3 and batch.targets.shape[-1] == task.n_outputs
    assert torch.isfinite(batch.inputs).all() and torch.isfinite(batch.targets).all() and batch.mask.sum() > 0
    if task.loss == "cross_entropy":
        real = batch.periods != 0
        assert torch.equal(batch.targets.sum(-1), real.float())  # one-hot on every real step
    model = tiny_rnn(task)
    outputs = model(batch.inputs).outputs
    loss = task_loss(task.loss, outputs, batch.targets, batch.mask)
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())
    scores = task.scores(outputs.detach(), batch)
    assert 0.0 <= scores["accuracy"] <= 1.0
    assert tasks.make(task.name, **task.params()).dt_ms == task.dt_ms  # params() rebuild keeps the dt


@pytest.mark.parametrize("env_id", sorted(set(ENV_IDS) - RL_ENVS))
def test_every_supervised_environment_trains_through_neurornn_train(env_id):
    """A few steps of ``neurornn.train`` with a tiny network, at the environment's own dt."""
    task = make_env_task(env_id)
    run = train(tiny_rnn(task), task, TrainConfig(steps=3, batch_size=4, learning_rate=0.01, eval_every=3,
                                                  eval_batch_size=4, acc_criterion=False, progress=False,
                                                  history_every=0, seed=0))
    assert run.summary["steps"] == 3 and run.summary["loss"] == task.loss
    assert math.isfinite(run.summary["final_train_loss"]) and np.isfinite(run.metrics["eval_loss"]).all()
    assert 0.0 <= run.summary["final_accuracy"] <= 1.0


def test_counts_in_the_docs_are_the_measured_ones():
    """docs/tasks.md states how many registered environments train and how many are refused."""
    refused, supervised = [], []
    for env_id in ENV_IDS:
        try:
            make_env_task(env_id)
        except ValueError as err:
            assert RL_ERROR in str(err), f"{env_id}: {err}"
            refused.append(env_id)
        else:
            supervised.append(env_id)
    assert set(refused) == RL_ENVS
    text = " ".join(DOC.read_text().split())
    stated = (f"Of the {len(ENV_IDS)} environments NeuroGym {ngym.__version__} registers, "
              f"{len(supervised)} train and {len(refused)} are refused")
    assert stated in text


# ---------------------------------------------------------------- dt, targets, refusals

def test_own_dt_by_default_and_a_given_dt_ms_wins():
    tone = tasks.make("neurogym:ToneDetection-v0")  # its 50 ms tone: dt 100 would not fit it
    assert tone.dt_ms == 50.0 and tone.params()["dt_ms"] == 50.0
    assert tasks.make("neurogym:SpatialSuppressMotion-v0").dt_ms == 8.3
    assert tasks.make("neurogym:GoNogo-v0", dt_ms=50).dt_ms == 50.0
    with pytest.raises(ValueError, match="NeuroGym 'ToneDetection-v0' refuses dt=100"):
        tasks.make("neurogym:ToneDetection-v0", dt_ms=100)


def test_reaching_targets_are_the_continuous_angle_not_classes():
    """Reaching1D's ground truth is an angle (pi while fixating): NeuroGym would truncate it to an int."""
    task = tasks.make("neurogym:Reaching1D-v0")
    assert task.loss == "mse" and task.output_names == ("ground_truth",) and not task.discrete
    batch = task.batch(8, gen(0))
    reach, fix = batch.period_mask("reach"), batch.period_mask("fixation")
    angle = batch.conditions["ground_truth"]
    np.testing.assert_allclose(batch.targets[..., 0][reach].numpy(),
                               angle.repeat_interleave(reach.sum(1)).numpy(), rtol=1e-6)
    np.testing.assert_allclose(batch.targets[..., 0][fix].numpy(), np.pi, rtol=1e-6)


def test_continuous_accuracy_is_the_fraction_of_steps_within_tolerance():
    task = tasks.make("neurogym:ReachingDelayResponse-v0")
    batch = task.batch(16, gen(0))
    perfect = task.evaluate(batch.targets.clone(), batch)
    assert perfect["accuracy"] == 1.0 and perfect["mse"] == 0.0 and perfect["explained_variance"] == 1.0
    off = batch.targets + 1.5 * TOLERANCE * task.target_range
    assert task.evaluate(off, batch)["accuracy"] == 0.0
    near = batch.targets + 0.5 * TOLERANCE * task.target_range
    assert task.evaluate(near, batch)["accuracy"] == 1.0
    scored = batch.mask > 0
    mean = batch.targets[scored].mean(0).expand_as(batch.targets)
    assert abs(task.evaluate(mean, batch)["explained_variance"]) < 1e-5


def test_batches_of_a_stateful_environment_are_reproducible():
    """HierarchicalReasoning carries its rule block from trial to trial: every batch starts afresh."""
    task = tasks.make("neurogym:HierarchicalReasoning-v0")
    a = task.batch(12, gen(4))
    task.batch(30, gen(5))
    b = task.batch(12, gen(4))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


@pytest.mark.parametrize("env_id", sorted(RL_ENVS))
def test_reinforcement_learning_environments_are_refused_clearly(env_id):
    with pytest.raises(ValueError, match=f"{re.escape(env_id)} {RL_ERROR}.*neurornn trains supervised tasks"):
        NeuroGymTask(env_id)


@pytest.mark.parametrize("kwargs,match", [
    ({"env_id": "AnnubesEnv-v0"}, r"NeuroGym 'AnnubesEnv-v0' has no default for \['session', 'catch_prob'\]"),
    ({"env_kwargs": {"dt": 20}}, r"as dt_ms, not env_kwargs\['dt'\]"),
])
def test_settings_neurogym_needs_are_named(kwargs, match):
    kwargs = {"env_id": "PerceptualDecisionMaking-v0", **kwargs}
    with pytest.raises(ValueError, match=match):
        NeuroGymTask(**kwargs)
