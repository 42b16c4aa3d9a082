"""The task library: every registered task tested the same way, then each task's own rules."""

from __future__ import annotations

import gzip
import math
import re
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn import tasks
from neurornn.models import RNNConfig
from neurornn.tasks.maze import MAZES
from neurornn.training import TrainConfig

ALL = tasks.names()
REPO = Path(__file__).resolve().parents[1]

# The period (or the last step) each task must score; tasks not listed need some scored step.
RESPONSE = {
    "perceptual_decision_making": "decision",
    "context_dependent_dm": "decision",
    "go_no_go": "response",
    "delayed_match_to_sample": "response",
    "delayed_match_to_sample_cued": "decision",
    "xor": "response",
    "memory_anti_number": "recall",
    "memory_anti_angle": "recall",
    "flip_flop": "all",
    "maze": "last",
    "sequential_digits": "last",
    "sign_integration": "last",
}
RESPONSE.update({name: "response" for name in ALL if name.startswith("yang19")})  # Yang et al. 2019


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def perfect_outputs(task, batch):
    """Outputs that are exactly right: the targets (MSE) or confident logits (cross-entropy)."""
    return batch.targets.clone() if task.loss == "mse" else 20.0 * batch.targets - 10.0


# ---------------------------------------------------------------- every task, the same way
@pytest.mark.parametrize("name", ALL)
def test_documented_shapes_and_metadata(name):
    task = tasks.make(name)
    assert task.name == name and task.description and "\n" not in task.description
    assert task.loss in ("mse", "cross_entropy")
    assert 0 < task.criterion <= 1
    batch = task.batch(5, gen(0))
    T = batch.n_steps
    assert batch.inputs.shape == (5, T, task.n_inputs) and batch.inputs.dtype == torch.float32
    assert batch.targets.shape == (5, T, task.n_outputs)
    assert batch.mask.shape == (5, T)
    assert batch.periods is not None and batch.periods.shape == (5, T)
    assert int(batch.periods.max()) < len(batch.period_names)
    assert len(set(task.input_names)) == task.n_inputs and len(set(task.output_names)) == task.n_outputs
    for value in batch.conditions.values():
        assert value.shape == (5,)
    assert torch.isfinite(batch.inputs).all() and torch.isfinite(batch.targets).all()
    if task.loss == "cross_entropy":  # one-hot targets
        assert torch.equal(batch.targets.sum(-1), torch.ones(5, T))


@pytest.mark.parametrize("name", ALL)
def test_defaults_build_a_model_and_a_train_config(name):
    task = tasks.make(name)
    model_cfg = RNNConfig(n_inputs=task.n_inputs, n_outputs=task.n_outputs, dt_ms=task.dt_ms,
                          **dict(task.defaults.get("model", {})))
    TrainConfig.from_dict(dict(task.defaults.get("train", {})))
    model = nr.RNN(model_cfg).eval()
    batch = task.batch(3, gen(0))
    with torch.no_grad():
        out = model(batch.inputs).outputs
    metrics = task.evaluate(out, batch)
    assert 0.0 <= metrics["accuracy"] <= 1.0


@pytest.mark.parametrize("name", ALL)
def test_reproducible_under_a_seeded_generator(name):
    task = tasks.make(name)
    a, b, c = task.batch(16, gen(3)), task.batch(16, gen(3)), task.batch(16, gen(4))
    for field in ("inputs", "targets", "mask", "periods"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert a.conditions.keys() == b.conditions.keys()
    for key in a.conditions:
        assert torch.equal(a.conditions[key], b.conditions[key])
    differs = not torch.equal(a.inputs, c.inputs) or any(
        not torch.equal(a.conditions[k], c.conditions[k]) for k in a.conditions)
    assert differs, "a different seed gave the same batch"


@pytest.mark.parametrize("name", ALL)
def test_params_rebuild_the_same_task(name):
    task = tasks.make(name)
    again = tasks.make(name, **task.params())
    assert again.params() == task.params()
    assert torch.equal(task.batch(4, gen(1)).inputs, again.batch(4, gen(1)).inputs)


@pytest.mark.parametrize("name", ALL)
def test_every_condition_value_is_reachable(name):
    task = tasks.make(name)
    values = task.condition_values()
    if name in RESPONSE and not name.startswith("memory_anti"):  # those have continuous conditions only
        assert values, f"{name} declares no discrete condition"
    batch = task.batch(2000, gen(7))
    for cond, possible in values.items():
        want = set(torch.tensor(possible, dtype=torch.float32).tolist())
        got = set(batch.conditions[cond].tolist())
        assert got == want, f"{cond}: reached {sorted(got)}, expected {sorted(want)}"


@pytest.mark.parametrize("name", ALL)
def test_mask_covers_the_response(name):
    task = tasks.make(name)
    batch = task.batch(64, gen(2))
    assert ((batch.mask >= 0) & (batch.mask <= 1)).all()
    assert (batch.mask.sum(1) > 0).all(), "a trial with no scored step"
    where = RESPONSE.get(name)
    if where == "all":
        assert (batch.mask == 1).all()
    elif where == "last":
        assert (batch.mask[:, -1] == 1).all()
    elif where is not None:
        response = batch.period_mask(where)
        covered = (batch.mask > 0) & response
        # every trial scores most of its response period (a short grace window may be left out)
        assert (covered.sum(1) >= 0.6 * response.sum(1)).all() and (response.sum(1) > 0).all()


@pytest.mark.parametrize("name", ALL)
def test_evaluate_perfect_scores_one_and_accuracy_in_unit_interval(name):
    task = tasks.make(name)
    batch = task.batch(128, gen(5))
    assert task.evaluate(perfect_outputs(task, batch), batch)["accuracy"] == pytest.approx(1.0)
    for outputs in (torch.zeros_like(batch.targets), torch.randn(batch.targets.shape, generator=gen(0))):
        metrics = task.evaluate(outputs, batch)
        assert 0.0 <= metrics["accuracy"] <= 1.0
        assert all(isinstance(v, float) for v in metrics.values())
    # the zero output is not already right (the task is not trivial)
    assert task.evaluate(torch.zeros_like(batch.targets), batch)["accuracy"] < 0.9
    scored = task.evaluation_batch(64, gen(6))  # the trials the trainer scores
    assert task.scores(perfect_outputs(task, scored), scored)["accuracy"] == pytest.approx(1.0)


# ---------------------------------------------------------------- bad parameters, per task
BAD = [
    ("flip_flop", {"n_bits": 0}, ValueError, "n_bits must be >= 1"),
    ("flip_flop", {"n_bits": 2.5}, TypeError, "n_bits must be an integer"),
    ("flip_flop", {"pulse_ms": 15.0}, ValueError, "pulse_ms must be a multiple of dt_ms"),
    ("flip_flop", {"pulse_ms": 2000.0}, ValueError, "pulse_ms=2000.0 is longer than the trial"),
    ("flip_flop", {"pulse_rate_hz": 60.0}, ValueError, "pulse_rate_hz=60.0 is impossible"),
    ("flip_flop", {"pulse_rate_hz": -1.0}, ValueError, "pulse_rate_hz must be > 0"),
    ("flip_flop", {"duration_ms": -10.0}, ValueError, "duration_ms must be > 0"),
    ("flip_flop", {"settle_ms": 1000.0}, ValueError, "settle_ms=1000.0 must be shorter than the trial"),
    ("flip_flop", {"settle_ms": 100.0, "probe_hold_ms": 50.0}, ValueError,
     "settle_ms=100.0 must be shorter than probe_hold_ms=50.0"),
    ("flip_flop", {"probe_hold_ms": 0.0}, ValueError, "probe_hold_ms must be > 0"),
    ("context_dependent_dm", {"coherences": []}, ValueError, "coherences must not be empty"),
    ("context_dependent_dm", {"coherences": [0.1, -0.2]}, ValueError, "coherences entries must be > 0"),
    ("context_dependent_dm", {"coherences": "high"}, TypeError, "coherences must be a sequence"),
    ("context_dependent_dm", {"sigma": -1.0}, ValueError, "sigma must be >= 0"),
    ("context_dependent_dm", {"stimulus_ms": 810.0}, ValueError, "stimulus_ms must be a multiple of dt_ms=20"),
    ("context_dependent_dm", {"decision_ms": 0.0}, ValueError, "decision_ms must be > 0"),
    ("context_dependent_dm", {"grace_ms": 300.0}, ValueError, "grace_ms=300.0 must be shorter than decision_ms"),
    ("go_no_go", {"stim_on_ms": 90.0, "stim_ms": 10.0}, ValueError, "must end before duration_ms=100"),
    ("go_no_go", {"go_probability": 1.0}, ValueError, r"go_probability must be in \(0, 1\)"),
    ("go_no_go", {"threshold_high": 0.1}, ValueError, "threshold_low must be < threshold_high"),
    ("go_no_go", {"dt_ms": 0}, ValueError, "dt_ms must be > 0"),
    ("delayed_match_to_sample", {"duration_ms": 200.0}, ValueError, "do not fit in duration_ms=200"),
    ("delayed_match_to_sample", {"threshold": 0}, ValueError, "threshold must be > 0"),
    ("delayed_match_to_sample", {"delay_ms": -5.0}, ValueError, "delay_ms must be >= 0"),
    ("delayed_match_to_sample_cued", {"n_stimuli": 1}, ValueError, "n_stimuli must be >= 2"),
    ("delayed_match_to_sample_cued", {"jitter_ms": 200.0}, ValueError, "jitter_ms=200.0 is too large"),
    ("delayed_match_to_sample_cued", {"sample_ms": 5.0}, ValueError, "sample_ms must be a multiple of dt_ms"),
    ("xor", {"amplitude": 0.0}, ValueError, "amplitude must be a number > 0"),
    ("xor", {"response_ms": 0.0}, ValueError, "response_ms must be > 0"),
    ("memory_anti_number", {"max_number": 0.0}, ValueError, "max_number must be > 0"),
    ("memory_anti_number", {"recall_ms": 0.0}, ValueError, "recall_ms must be > 0"),
    ("memory_anti_number", {"tolerance": -0.1}, ValueError, "tolerance must be > 0"),
    ("memory_anti_angle", {"tolerance_deg": 180.0}, ValueError, "tolerance_deg must be < 180"),
    ("memory_anti_angle", {"jitter_ms": 15.0}, ValueError, "jitter_ms must be a multiple of dt_ms"),
    ("sign_integration", {"n_steps": 0}, ValueError, "n_steps must be >= 1"),
    ("sign_integration", {"report": "sometimes"}, ValueError, "report must be one of"),
    ("sign_integration", {"shift": -0.2}, ValueError, "shift must be >= 0"),
    ("maze", {"goal_steps": 0}, ValueError, "goal_steps must be >= 1"),
    ("maze", {"shuffle_labels": "yes"}, TypeError, "shuffle_labels must be True or False"),
    ("maze", {"delay_steps": 1.5}, TypeError, "delay_steps must be an integer"),
    ("sequential_digits", {"split": "test"}, ValueError, "split must be one of"),
    ("sequential_digits", {"source": "cifar"}, ValueError, "source must be one of"),
    ("sequential_digits", {"validation_fraction": 1.0}, ValueError, r"validation_fraction must be in \(0, 1\)"),
    ("sequential_digits", {"path": "x.npz"}, ValueError, "path is only for source='mnist'"),
    ("sequential_digits", {"source": "mnist"}, ValueError, "source='mnist' needs path="),
    ("perceptual_decision_making", {"sigma": -1.0}, ValueError, "sigma must be >= 0"),
    ("yang19", {"rules": ["fdgo", "gogo"]}, ValueError, "rules: unknown rule 'gogo'"),
    ("yang19", {"rules": []}, ValueError, "rules must not be empty"),
    ("yang19", {"rule_weights": [1.0, 2.0]}, ValueError, r"rule_weights must have one weight per rule \(20\)"),
    ("yang19", {"rule_weights": {"dm1": -1.0}}, ValueError, "rule_weights entries must be finite numbers >= 0"),
    ("yang19", {"dt_ms": 30.0}, ValueError, "dt_ms must divide 100 ms"),
    ("yang19", {"tolerance_deg": 180.0}, ValueError, "tolerance_deg must be < 180"),
    *[(name, {"n_eachring": 1}, ValueError, "n_eachring must be >= 2") for name in ALL if name.startswith("yang19_")],
    ("yang19_dm1", {"sigma_x": -0.1}, ValueError, "sigma_x must be >= 0"),
    ("yang19_dm1", {"rules": ["dm2"]}, ValueError, "unknown parameter 'rules' for task 'yang19_dm1'"),
]


@pytest.mark.parametrize("name,kwargs,exc,match", BAD, ids=[f"{b[0]}-{list(b[1])[0]}" for b in BAD])
def test_bad_parameters_raise_naming_the_parameter(name, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        tasks.make(name, **kwargs)


def test_every_task_has_bad_parameter_tests():
    assert set(ALL) <= {b[0] for b in BAD}


def test_unknown_parameter_is_named_with_a_suggestion():
    with pytest.raises(ValueError, match=r"unknown parameter 'n_bit' for task 'flip_flop' \(did you mean 'n_bits'"):
        tasks.make("flip_flop", n_bit=3)


# ---------------------------------------------------------------- flip-flop
def _flip_flop_reference(inputs: np.ndarray) -> np.ndarray:
    """Plain loop: each output holds the sign of the last pulse onset on its channel."""
    n, T, B = inputs.shape
    out = np.zeros_like(inputs)
    for i in range(n):
        for k in range(B):
            state, prev = 0.0, 0.0
            for t in range(T):
                if inputs[i, t, k] != 0 and inputs[i, t, k] != prev:
                    state = inputs[i, t, k]
                prev = inputs[i, t, k]
                out[i, t, k] = state
    return out


def test_flip_flop_targets_match_a_loop_reference_and_pulses_last_pulse_ms():
    task = tasks.make("flip_flop", n_bits=2, pulse_ms=30.0, pulse_rate_hz=4.0)
    batch = task.batch(40, gen(0))
    np.testing.assert_array_equal(batch.targets.numpy(), _flip_flop_reference(batch.inputs.numpy()))
    assert set(torch.unique(batch.inputs).tolist()) <= {-1.0, 0.0, 1.0}
    # pulses occupy whole slots of pulse_ms = 3 steps
    on = (batch.inputs[:, :99] != 0).float().view(40, 33, 3, 2)  # 100 steps: 33 slots of 3 steps
    assert torch.all((on.sum(2) == 0) | (on.sum(2) == 3))
    # the rate: about pulse_rate_hz pulses per second per channel
    big = task.batch(2000, gen(1))
    rate = big.conditions["n_pulses"].mean().item() / (2 * 1.0)
    assert rate == pytest.approx(4.0, rel=0.05)


def test_flip_flop_accuracy_skips_settling_and_before_first_pulse():
    task = tasks.make("flip_flop", n_bits=1, settle_ms=50.0)
    batch = task.batch(64, gen(0))
    scored = task.scored(batch)
    started = (batch.inputs != 0).cumsum(1) > 0
    assert not (scored & ~started).any()
    outputs = batch.targets.clone()
    # wrong answers during the settling windows are not counted
    settling = started & ~scored
    outputs[settling] = -outputs[settling] + 0.01
    assert task.evaluate(outputs, batch)["accuracy"] == 1.0
    outputs[scored] = 0.0
    scores = task.evaluate(outputs, batch)
    assert scores["entry_accuracy"] == 0.0
    # only the trials with no scored entry (no pulse at all) are right as whole trials
    assert scores["trial_accuracy"] == pytest.approx((~scored.flatten(1).any(1)).float().mean().item())


def test_flip_flop_evaluation_trials_probe_every_memory_then_hold():
    task = tasks.make("flip_flop")  # 3 bits, 1 s trial, 20 ms pulses, 2 s probe hold, dt 10 ms
    batch = task.evaluation_batch(64, gen(2))
    assert batch.n_steps == 100 + 4 * 2 + 200 == task.evaluation_steps
    train_part = task.batch(64, gen(2))  # the evaluation trial starts with the training trial
    torch.testing.assert_close(batch.inputs[:, :100], train_part.inputs)
    np.testing.assert_array_equal(batch.targets.numpy(), _flip_flop_reference(batch.inputs.numpy()))
    probe = batch.conditions["probe"].long()
    assert torch.equal(probe, torch.arange(64) % 8)
    patterns = task.memory_patterns()
    assert {tuple(p) for p in patterns.tolist()} == {(a, b, c) for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)}
    hold = batch.periods == batch.period_names.index("probe_hold")
    assert (hold.sum(1) == 200).all() and hold[:, -200:].all()
    assert (batch.inputs[:, -200:] == 0).all()
    torch.testing.assert_close(batch.targets[:, -1], patterns[probe])  # the probed memory, held to the end
    # bit k is written alone, in the (k + 1)-th slot after the training trial
    for k in range(3):
        pulse = batch.inputs[:, 100 + 2 * (k + 1): 100 + 2 * (k + 2)]
        torch.testing.assert_close(pulse[:, :, k], patterns[probe, k][:, None].expand(64, 2))
        assert (pulse[:, :, [j for j in range(3) if j != k]] == 0).all()


def test_memory_check_sizes_evaluation_trials_by_their_own_length():
    task = tasks.make("flip_flop")
    needs = {}
    for draw in (task.batch, task.evaluation_batch):
        with pytest.raises(ValueError, match="needs about") as err:
            draw(10**12)
        needs[draw.__name__] = float(re.search(r"needs about ([0-9.]+) GB", str(err.value)).group(1))
    assert needs["evaluation_batch"] / needs["batch"] == pytest.approx(task.evaluation_steps / task.n_steps, rel=0.01)


def test_flip_flop_criterion_fails_a_network_that_loses_one_memory():
    task = tasks.make("flip_flop")
    batch = task.evaluation_batch(256, gen(3))
    outputs = batch.targets.clone()
    scores = task.scores(outputs, batch)
    assert scores["accuracy"] == scores["memory_accuracy"] == 1.0 and scores["memories_held"] == 8
    # memory (-1, +1, +1) decays to (-1, -1, +1) half-way through the hold: every other trial is perfect
    lost = batch.conditions["probe"] == 6
    outputs[lost, -100:, 1] = -0.2
    scores = task.scores(outputs, batch)
    assert scores["memories_held"] == 7 and scores["memory_accuracy"] == 0.0 and scores["accuracy"] == 0.0
    assert scores["trial_accuracy"] == pytest.approx(7 / 8)
    assert scores["entry_accuracy"] > 0.98  # what the old criterion (0.98 of entries) measured: it passed
    # on training trials (no probe) the accuracy is the whole-trial accuracy
    train = task.batch(64, gen(3))
    wrong = train.targets.clone()
    wrong[:8, -1] = -wrong[:8, -1] + 0.01 * (wrong[:8, -1] == 0)
    scores = task.scores(wrong, train)
    assert "memory_accuracy" not in scores and scores["accuracy"] == scores["trial_accuracy"]
    assert scores["accuracy"] == pytest.approx(1 - (train.targets[:8, -1] != 0).any(1).float().sum().item() / 64)


# ---------------------------------------------------------------- context-dependent decision making
def test_context_dependent_dm_choice_follows_the_cued_modality_and_ceiling_matches_ideal_observer():
    task = tasks.make("context_dependent_dm")
    batch = task.batch(20000, gen(0))
    c = batch.conditions
    relevant = torch.where(c["context"] == 0, c["motion_coherence"], c["colour_coherence"])
    assert torch.equal(c["choice"], torch.sign(relevant))
    cues = batch.inputs[:, :, 2:]
    assert torch.equal(cues[:, 0, 0], (c["context"] == 0).float()) and (cues.sum(-1) == 1).all()
    # ideal observer: integrate the cued stream over the stimulus; its accuracy is the analytic ceiling
    stim = batch.period_mask("stimulus")[0]
    sums = batch.inputs[:, stim, :2].sum(1)
    cued = torch.where(c["context"] == 0, sums[:, 0], sums[:, 1])
    observer = (torch.sign(cued) == c["choice"]).float().mean().item()
    assert observer == pytest.approx(task.accuracy_ceiling(), abs=0.01)
    # per-step noise std sigma / sqrt(dt_ms)
    resid = batch.inputs[:, stim, 0] - c["motion_coherence"][:, None]
    assert resid.std().item() == pytest.approx(1.0 / math.sqrt(20.0), rel=0.02)


# ---------------------------------------------------------------- seed 003 tasks
def test_go_no_go_matches_seed_003_layout():
    task = tasks.make("go_no_go")  # T=100, stim_on=50, stim_dur=25 at dt=1
    batch = task.batch(64, gen(0))
    go = batch.conditions["go"].bool()
    assert batch.n_steps == 100
    assert (batch.inputs[go, 50:75, 0] == 1).all() and (batch.inputs[go, :50] == 0).all()
    assert (batch.inputs[~go] == 0).all()
    assert (batch.targets[go, 75:, 0] == 1).all() and (batch.targets[go, :75] == 0).all()
    assert (batch.targets[~go] == 0).all()
    out = batch.targets.clone()
    out[go] = 0.5  # between the thresholds: wrong
    assert task.evaluate(out, batch)["accuracy"] == pytest.approx((~go).float().mean().item())


def test_delayed_match_to_sample_matches_seed_003_layout():
    task = tasks.make("delayed_match_to_sample")  # T=300, stim_on=50, stim_dur=50, delay=10
    batch = task.batch(64, gen(0))
    c = batch.conditions
    assert batch.n_steps == 300
    assert torch.equal(batch.inputs[:, 50:100, 0], c["sample"][:, None].expand(64, 50))
    assert torch.equal(batch.inputs[:, 110:160, 1], c["test"][:, None].expand(64, 50))
    assert torch.equal(c["match"], (c["sample"] == c["test"]).float())
    assert torch.equal(batch.targets[:, 170:270, 0], (2 * c["match"] - 1)[:, None].expand(64, 100))
    assert (batch.targets[:, :170] == 0).all() and (batch.targets[:, 270:] == 0).all()
    wrong = -batch.targets  # confidently wrong: seed 003's |mean| score counts it, ours does not
    metrics = task.evaluate(wrong, batch)
    assert metrics["accuracy"] == 0.0 and metrics["seed_accuracy"] == 1.0


def test_xor_truth_table():
    task = tasks.make("xor")
    batch = task.batch(256, gen(0))
    a, b = batch.conditions["a"], batch.conditions["b"]
    stim = batch.period_mask("stimulus")[0]
    assert torch.equal(batch.inputs[:, stim, 0].amax(1), a) and torch.equal(batch.inputs[:, stim, 1].amax(1), b)
    resp = batch.period_mask("response")[0]
    assert torch.equal(batch.targets[:, resp, 0].amax(1), ((a + b) == 1).float())


def test_delayed_match_to_sample_cued_identity_code_and_jitter():
    task = tasks.make("delayed_match_to_sample_cued", n_stimuli=3)
    batch = task.batch(500, gen(0))
    c = batch.conditions
    stim = batch.inputs[:, :, :3]
    assert (stim.sum(-1) <= 1).all()  # never two stimuli at once
    assert (stim.sum((1, 2)) == 20).all()  # 100 ms sample + 100 ms test at 10 ms
    first = stim.argmax(-1)[torch.arange(500), (stim.sum(-1) > 0).float().argmax(1)]
    assert torch.equal(first.float(), c["sample"])
    assert torch.equal(c["match"], (c["sample"] == c["test"]).float())
    assert c["match"].mean().item() == pytest.approx(0.5, abs=0.07)
    onsets = (stim.sum(-1) > 0).float().argmax(1)
    assert len(torch.unique(onsets)) == 6  # jitter of 30 ms at 10 ms: offsets -3..2
    dec = batch.period_mask("decision")
    assert (batch.inputs[:, :, 3][dec] == 1).all() and (batch.inputs[:, :, 3][~dec] == 0).all()


# ---------------------------------------------------------------- memory tasks
def test_memory_anti_number_codes_the_number_and_its_negative():
    task = tasks.make("memory_anti_number")
    batch = task.batch(300, gen(0))
    x = batch.conditions["number"]
    assert x.abs().max() <= 2.0 and x.min() < -1.5 and x.max() > 1.5
    shown = batch.inputs[..., 0].amax(1) - batch.inputs[..., 1].amax(1)
    torch.testing.assert_close(shown, x)
    torch.testing.assert_close(task.decode(batch.targets), -x)
    onset = batch.conditions["stimulus_onset"]
    assert onset.min() == 10 and onset.max() == 20  # 100 ms fixation + jitter up to 100 ms at 10 ms
    rec = batch.period_mask("recall")
    assert (batch.inputs[..., 2][rec] == 1).all() and (batch.inputs[..., 2][~rec] == 0).all()
    assert (batch.inputs[..., :2][rec] == 0).all()  # the number is gone by the recall


def test_memory_anti_angle_codes_the_opposite_angle_on_a_circle():
    task = tasks.make("memory_anti_angle", amplitude=2.0)
    batch = task.batch(300, gen(0))
    theta = torch.deg2rad(batch.conditions["theta_deg"])
    assert theta.min() < 0.1 and theta.max() > 2 * math.pi - 0.1  # the whole circle
    on = batch.inputs[..., 0].abs() + batch.inputs[..., 1].abs() > 0
    radius = batch.inputs[..., :2].norm(dim=-1)[on]
    torch.testing.assert_close(radius, torch.full_like(radius, 2.0))
    rec = batch.period_mask("recall")[0]
    torch.testing.assert_close(batch.targets[:, rec][:, 0], 2.0 * torch.stack([-torch.cos(theta), -torch.sin(theta)], 1))
    out = batch.targets.clone()
    out[:, rec] = torch.stack([torch.cos(theta), torch.sin(theta)], 1)[:, None, :]  # not anti: 180 deg off
    assert task.evaluate(out, batch)["accuracy"] == 0.0


# ---------------------------------------------------------------- sign integration (seed 000)
def test_sign_integration_statistics_and_ceiling():
    task = tasks.make("sign_integration")
    batch = task.batch(4000, gen(0))
    sign = batch.conditions["sign"]
    x = batch.inputs[..., 0]
    assert x.shape[1] == 40
    shifted = x - 0.2 * sign[:, None]
    assert shifted.min() >= -0.5 and shifted.max() < 0.5
    assert shifted.mean().item() == pytest.approx(0.0, abs=0.01)
    assert shifted.var().item() == pytest.approx(1 / 12, rel=0.03)
    assert torch.equal(batch.targets[:, -1, 0], 3 * sign)
    assert (batch.mask[:, :-1] == 0).all()
    every = tasks.make("sign_integration", report="every_step").batch(4, gen(0))
    assert (every.mask == 1).all()
    hard = tasks.make("sign_integration", shift=0.02, n_steps=10)
    b = hard.batch(20000, gen(1))
    observer = (torch.sign(b.inputs.sum((1, 2))) == b.conditions["sign"]).float().mean().item()
    assert observer == pytest.approx(hard.accuracy_ceiling(), abs=0.012)


# ---------------------------------------------------------------- maze (seed 001)
def test_maze_table_is_the_seeds():
    task = tasks.make("maze")
    batch = task.batch(400, gen(0))
    dirs = "lurd"
    assert batch.n_steps == 50
    for i in range(400):
        goal, cats, step = MAZES[int(batch.conditions["maze"][i])]
        x = batch.inputs[i]
        assert x[0, :4].tolist() == [float(goal == g) for g in (7, 9, 17, 19)] and (x[:20] == x[0]).all()
        assert (x[20:30] == 0).all()
        assert x[30, 4:].tolist() == [float(d in cats) for d in dirs] and (x[30:, :4] == 0).all()
        assert int(batch.targets[i, -1].argmax()) == dirs.index(step)
        assert batch.conditions["goal"][i] == goal
    assert MAZES == ((9, "ul", "u"), (9, "rd", "r"), (19, "ld", "d"), (17, "rd", "d"),
                     (17, "ul", "l"), (7, "ur", "u"), (19, "lr", "r"), (7, "lr", "l"))
    # the answer is always one of the available moves
    for goal, cats, step in MAZES:
        assert step in cats


def test_maze_label_shuffle_keeps_frequencies_breaks_the_mapping():
    task = tasks.make("maze", shuffle_labels=True)
    batch = task.batch(4000, gen(0))
    label, true = batch.conditions["label"], batch.conditions["true_label"]
    assert torch.equal(torch.sort(label).values, torch.sort(true).values)
    assert (label != true).float().mean().item() == pytest.approx(0.75, abs=0.03)
    assert torch.equal(batch.targets[:, -1].argmax(-1).float(), label)
    again = task.batch(4000, gen(0))
    assert torch.equal(again.conditions["label"], label)
    perfect = 20.0 * batch.targets - 10.0
    metrics = task.evaluate(perfect, batch)
    assert metrics["accuracy"] == 1.0 and metrics["true_accuracy"] < 0.3


# ---------------------------------------------------------------- sequential digits (seed 000)
def test_sequential_digits_rows_are_steps_and_splits_are_disjoint_and_seeded():
    from sklearn.datasets import load_digits

    train = tasks.make("sequential_digits")
    val = tasks.make("sequential_digits", split="validation")
    assert len(train.labels) + len(val.labels) == 1797 and len(val.labels) == 359
    digits = load_digits()
    flat = {tuple(im.flatten().tolist()) for im in (digits.images / 16.0).astype(np.float32)}
    assert len(flat) > 1700
    ds = val.dataset()
    assert ds.inputs.shape == (359, 8, 8) and ds.inputs.max() <= 1.0
    # the validation images are digits images, with their labels
    lookup = {tuple((im / 16.0).astype(np.float32).flatten().tolist()): int(y)
              for im, y in zip(digits.images, digits.target)}
    for i in range(0, 359, 37):
        assert lookup[tuple(ds.inputs[i].flatten().tolist())] == int(ds.conditions["label"][i])
    train_set = {tuple(im.flatten().tolist()) for im in train.images.numpy()}
    val_set = {tuple(im.flatten().tolist()) for im in val.images.numpy()}
    assert len(val_set & train_set) <= 5  # only exact duplicate images can be shared
    other = tasks.make("sequential_digits", split="validation", split_seed=1)
    assert not torch.equal(other.labels, val.labels)
    assert torch.equal(tasks.make("sequential_digits", split="validation").labels, val.labels)


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _fake_mnist(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def test_sequential_digits_reads_mnist_npz_and_idx(tmp_path):
    xtr, ytr = _fake_mnist(30, 0)
    xte, yte = _fake_mnist(12, 1)
    np.savez(tmp_path / "mnist.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    task = tasks.make("sequential_digits", source="mnist", path=str(tmp_path / "mnist.npz"))
    assert task.n_inputs == 28 and task.n_steps == 28 and len(task.labels) == 30
    batch = task.dataset()
    np.testing.assert_allclose(batch.inputs.numpy(), xtr / 255.0, rtol=1e-6)
    val = tasks.make("sequential_digits", source="mnist", split="validation", path=str(tmp_path / "mnist.npz"))
    assert torch.equal(val.labels, torch.from_numpy(yte.astype(np.int64)))
    idx = tmp_path / "idx"
    idx.mkdir()
    for stem, arr, gz in (("train-images-idx3-ubyte", xtr, True), ("train-labels-idx1-ubyte", ytr, True),
                          ("t10k-images-idx3-ubyte", xte, False), ("t10k-labels-idx1-ubyte", yte, False)):
        _write_idx(idx / stem, arr, gz)
    from_idx = tasks.make("sequential_digits", source="mnist", path=str(idx))
    assert torch.equal(from_idx.images, task.images) and torch.equal(from_idx.labels, task.labels)
    val_idx = tasks.make("sequential_digits", source="mnist", split="validation", path=str(idx))
    assert torch.equal(val_idx.labels, val.labels)


def test_sequential_digits_mnist_errors_name_the_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere.npz' does not exist; expected a mnist.npz file"):
        tasks.make("sequential_digits", source="mnist", path=str(tmp_path / "nowhere.npz"))
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match=r"lacks \['x_train', 'y_train'\]"):
        tasks.make("sequential_digits", source="mnist", path=str(tmp_path / "bad.npz"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="as a .npz file: it is not a zip archive, it looks like text"):
        tasks.make("sequential_digits", source="mnist", path=str(tmp_path / "junk.npz"))
    (tmp_path / "mnist.csv").write_text("label,pixel0\n5,0\n")  # a text file: no numpy "pickled data" message
    with pytest.raises(ValueError, match="looks like text; expected a mnist.npz file") as info:
        tasks.make("sequential_digits", source="mnist", path=str(tmp_path / "mnist.csv"))
    assert "pickle" not in str(info.value)
    np.savez(tmp_path / "flat.npz", x_train=np.zeros((3, 784)), y_train=np.zeros(3), x_test=np.zeros((3, 784)),
             y_test=np.zeros(3))
    with pytest.raises(ValueError, match=r"has images \(3, 784\) and labels \(3,\); expected images"):
        tasks.make("sequential_digits", source="mnist", path=str(tmp_path / "flat.npz"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="has no train-images-idx3-ubyte"):
        tasks.make("sequential_digits", source="mnist", path=str(empty))
    (empty / "train-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04junk")
    (empty / "train-labels-idx1-ubyte").write_bytes(b"\x00")
    with pytest.raises(ValueError, match="bad magic number"):
        tasks.make("sequential_digits", source="mnist", path=str(empty))


# ---------------------------------------------------------------- custom tasks and the template
def test_example_template_loads_by_file_and_by_module(monkeypatch):
    path = REPO / "examples" / "my_task.py"
    task = tasks.make(f"{path}:MyTask", dt_ms=10.0)
    batch = task.batch(8, gen(0))
    assert batch.inputs.shape[0] == 8 and task.evaluate(perfect_outputs(task, batch), batch)["accuracy"] == 1.0
    monkeypatch.syspath_prepend(str(REPO / "examples"))
    sys.modules.pop("my_task", None)
    task2 = tasks.make("my_task:MyTask")
    assert torch.equal(task2.batch(8, gen(0)).targets, tasks.make(f"{path}:MyTask").batch(8, gen(0)).targets)


def test_custom_task_with_a_wrong_shape_names_the_tensor(tmp_path):
    (tmp_path / "broken_task.py").write_text(
        "import torch\n"
        "from neurornn.tasks import Batch, Task\n"
        "class Broken(Task):\n"
        "    name = 'broken'\n"
        "    input_names = ('a', 'b')\n"
        "    output_names = ('y',)\n"
        "    def __init__(self, dt_ms=10.0):\n"
        "        super().__init__(dt_ms)\n"
        "    def build(self, n, generator):\n"
        "        return Batch(torch.zeros(n, 5, 2), torch.zeros(n, 5, 3), torch.ones(n, 5))\n"
        "    def evaluate(self, outputs, batch):\n"
        "        return {'accuracy': 1.0}\n"
    )
    task = tasks.make(f"{tmp_path / 'broken_task.py'}:Broken")
    with pytest.raises(ValueError, match=r"batch.targets must have shape \(4, time, 1\) = \(4, 5, 1\), got \(4, 5, 3\)"):
        task.batch(4, gen(0))


# ---------------------------------------------------------------- the command line and the figure
def test_cli_tasks_lists_every_task(capsys):
    from neurornn.cli import main

    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ALL:
        assert name in out
    assert "neurogym:" in out


def test_cli_tasks_show_prints_and_saves_a_figure(tmp_path, capsys):
    from neurornn.cli import main

    fig = tmp_path / "ff.png"
    assert main(["tasks", "show", "flip_flop", "--set", "n_bits=2", "--out", str(fig)]) == 0
    out = capsys.readouterr().out
    assert "inputs  (8, 100, 2)" in out and "condition final_0: 3 distinct values" in out
    assert fig.stat().st_size > 10_000
    assert main(["tasks", "show", "flip_flop", "--out", str(fig)]) == 2  # never overwrites
    assert "exists" in capsys.readouterr().err
    assert main(["tasks", "show", "flip_flop", "--set", "n_bits=0"]) == 2
    assert "n_bits must be >= 1" in capsys.readouterr().err
    assert main(["tasks", "show", "flip_flop", "--set", "n_bits"]) == 2
    assert "--set expects KEY=VALUE" in capsys.readouterr().err


def test_plot_task_batch_draws_every_channel():
    from neurornn.tasks.plotting import plot_task_batch

    task = tasks.make("context_dependent_dm")
    batch = task.batch(4, gen(0))
    fig = plot_task_batch(task, batch, n_trials=2, outputs=batch.targets * 0.5)
    axes = fig.get_axes()
    assert len(axes) == 6
    assert len(axes[0].get_lines()) == task.n_inputs
    assert len(axes[2].get_lines()) == 2 * task.n_outputs  # targets and outputs


@pytest.mark.parametrize("name,default,params,expected", [
    ("perceptual_decision_making", 0.87, {"coherences": [0.0, 51.2]}, 0.728),
    ("perceptual_decision_making", 0.87, {"stimulus_ms": 200.0}, 0.803),
    ("context_dependent_dm", 0.93, {"coherences": [0.05]}, 0.88),
])
def test_criterion_keeps_its_ratio_to_the_ideal_observer(name, default, params, expected):
    task = nr.tasks.make(name)
    assert task.criterion == default and nr.tasks.make(name, dt_ms=10.0).criterion == default
    harder = nr.tasks.make(name, **params)
    assert harder.criterion == expected
    ratio = default / task.accuracy_ceiling()
    assert harder.criterion == pytest.approx(ratio * harder.accuracy_ceiling(), abs=5e-4)
    assert harder.criterion < harder.accuracy_ceiling()  # reachable, unlike the default 0.87 / 0.93


def test_a_registered_task_can_be_unregistered():
    from neurornn.tasks.perceptual_decision_making import PerceptualDecisionMaking

    class Mine(PerceptualDecisionMaking):
        name = "test_unregister_me"

    nr.tasks.register(Mine)
    assert "test_unregister_me" in nr.tasks.names()
    nr.tasks.unregister("test_unregister_me")
    assert "test_unregister_me" not in nr.tasks.names()
    with pytest.raises(ValueError, match="built-in task 'flip_flop' cannot be unregistered"):
        nr.tasks.unregister("flip_flop")
