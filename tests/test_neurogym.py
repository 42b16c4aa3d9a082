"""The NeuroGym adapter: ``tasks.make("neurogym:EnvId-v0")`` builds batch-first, seeded batches."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn import tasks

pytest.importorskip("neurogym")

from neurornn.tasks.neurogym_adapter import NeuroGymTask  # noqa: E402


def gen(seed):
    return torch.Generator().manual_seed(seed)


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
    import neurogym as ngym

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
    from neurornn.training import TrainConfig, train

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
    from neurornn.cli import main

    assert main(["tasks", "show", "neurogym:GoNogo-v0", "--set", "dt_ms=50"]) == 0
    out = capsys.readouterr().out
    assert "task neurogym:GoNogo-v0" in out and "inputs  (8, 30, 3)" in out
