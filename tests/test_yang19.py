"""Yang et al. (2019) multitask set and the task-variance analysis, against the paper's definitions.

The references here are independent of the package: ring bumps are rebuilt in the test, stimulus
strengths are recovered from the inputs by least squares, directions by the population vector.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.analysis import analyze_run, cluster_units, fractional_variance, task_variance
from neurornn.analysis.task_variance import _lesioned, variance_from_rates
from neurornn.cli import main
from neurornn.tasks.yang19 import RULES
from neurornn.training import TrainConfig, train

R = 32
RULE0 = 65  # 1 fixation + 2 rings of 32


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def bump(loc: float, n: int = R) -> np.ndarray:
    pref = 2 * np.pi * np.arange(n) / n
    d = np.abs(loc - pref)
    d = np.minimum(d, 2 * np.pi - d) / (np.pi / 8)
    return np.exp(-d**2 / 2)


def angle(ring: np.ndarray) -> float:
    pref = 2 * np.pi * np.arange(len(ring)) / len(ring)
    return float(np.arctan2((ring * np.sin(pref)).sum(), (ring * np.cos(pref)).sum()) % (2 * np.pi))


def circ(a: float, b: float) -> float:
    d = abs(a - b) % (2 * np.pi)
    return min(d, 2 * np.pi - d)


def clean(rule: str, n: int = 64, seed: int = 0):
    """Noise-free trials of one rule."""
    task = nr.tasks.make(f"yang19_{rule}", sigma_x=0.0)
    return task, task.batch(n, gen(seed))


def step(batch, i: int, period: str) -> int | None:
    where = np.flatnonzero(batch.period_mask(period)[i].numpy())
    return int(where[0]) if len(where) else None


def ring_strengths(batch, i: int, mod: int, loc1: float, loc2: float) -> np.ndarray:
    """Strengths (a, b) of the bumps at loc1 and loc2 on ring ``mod``, by least squares on the inputs."""
    x = batch.inputs[i].numpy()
    block = slice(1 + mod * R, 1 + (mod + 1) * R)
    total = np.zeros(R)
    for period in ("stimulus1", "stimulus2"):
        t = step(batch, i, period)
        if t is not None:
            total += x[t, block]
    basis = 0.8 * np.stack([bump(loc1), bump(loc2)], 1)
    return np.linalg.lstsq(basis, total, rcond=None)[0]


# ---------------------------------------------------------------- layout, rule inputs, targets, mask
def test_layout_names_and_sizes():
    task = nr.tasks.make("yang19")
    assert (task.n_inputs, task.n_outputs) == (1 + 2 * R + 20, 1 + R)
    assert task.input_names[0] == "fixation" and task.input_names[1] == "mod1_00" and task.input_names[33] == "mod2_00"
    assert task.input_names[RULE0:] == tuple(f"rule_{r}" for r in RULES)
    small = nr.tasks.make("yang19_dm1", n_eachring=8)
    assert (small.n_inputs, small.n_outputs) == (1 + 16 + 20, 9)
    assert sorted(n for n in nr.tasks.names() if n.startswith("yang19_")) == sorted(f"yang19_{r}" for r in RULES)


def test_rule_input_is_one_hot_and_names_the_trials_rule():
    task = nr.tasks.make("yang19", sigma_x=0.0)
    batch = task.batch(400, gen(0))
    rules = batch.inputs[..., RULE0:]
    assert torch.equal(rules.sum(-1), torch.ones(400, batch.n_steps))
    assert torch.equal(rules.argmax(-1)[:, 0].float(), batch.conditions["rule"])
    assert set(batch.conditions["rule"].tolist()) == set(range(20))


@pytest.mark.parametrize("rule", RULES)
def test_fixation_held_until_the_go_cue_in_targets_and_inputs_and_the_mask(rule):
    task, batch = clean(rule)
    y, x, m, c = batch.targets.numpy(), batch.inputs.numpy(), batch.mask.numpy(), batch.conditions
    for i in range(batch.n_trials):
        go, end, respond = int(c["go_step"][i]), int(c["end_step"][i]), bool(c["respond"][i])
        assert step(batch, i, "go") == go and end - go == (np.flatnonzero(batch.periods[i].numpy() < 7)[-1] + 1) - go
        assert np.allclose(y[i, :go, 0], 0.85) and np.allclose(y[i, :go, 1:], 0.05)
        if respond:
            assert np.allclose(y[i, go:, 0], 0.05)
            assert angle(y[i, go, 1:] - 0.05) == pytest.approx(float(c["response_loc"][i]), abs=1e-4)
            assert y[i, go, 1:].max() == pytest.approx(0.05 + 0.8 * bump(float(c["response_loc"][i])).max(), abs=1e-5)
        else:  # no-go: keep fixating, no ring response
            assert np.allclose(y[i, :, 0], 0.85) and np.allclose(y[i, :, 1:], 0.05)
        # fixation input: off at the go cue, or on throughout where a stimulus is the go cue
        stays_on = rule.startswith(("react", "dms", "dmc"))
        assert (x[i, :go, 0] == 1).all() and ((x[i, go:, 0] == 1).all() if stays_on else (x[i, go:, 0] == 0).all())
        # the paper's cost mask / 5: 0 for 100 ms, 0.2 to the go cue, 0 for 100 ms, 1 to the end, 0 after
        want = np.zeros(batch.n_steps)
        want[5:go], want[go + 5:end] = 0.2, 1.0
        np.testing.assert_allclose(m[i], want, atol=1e-7)
    response_ms = (c["end_step"] - c["go_step"]) * 20
    allowed = {200.0, 400.0, 600.0} if rule.startswith("dmc") else {500.0}
    assert set(response_ms.tolist()) <= allowed


@pytest.mark.parametrize("rule,low,high", [("fdgo", 300, 700), ("dm1", 100, 400), ("reactgo", 500, 2500)])
def test_timings_are_drawn_per_trial_in_the_papers_ranges(rule, low, high):
    _, batch = clean(rule, 300)
    first = np.array([step(batch, i, "stimulus1") if rule != "reactgo" else int(batch.conditions["go_step"][i])
                      for i in range(300)]) * 20.0
    assert low <= first.min() and first.max() < high and len(np.unique(first)) > 5  # varies across trials


# ---------------------------------------------------------------- response directions
@pytest.mark.parametrize("rule", ["fdgo", "reactgo", "delaygo", "fdanti", "reactanti", "delayanti"])
def test_go_and_anti_respond_at_or_opposite_the_stimulus(rule):
    _, batch = clean(rule)
    x = batch.inputs.numpy()
    for i in range(batch.n_trials):
        t = int(batch.conditions["go_step"][i]) if rule.startswith("react") else step(batch, i, "stimulus1")
        ring = x[i, t, 1:1 + R] + x[i, t, 1 + R:1 + 2 * R]  # one modality carries it
        shown = angle(ring)
        target = angle(batch.targets[i, -1, 1:].numpy() - 0.05)
        assert circ(target, (shown + np.pi) if "anti" in rule else shown) < 1e-3
        if rule.startswith("delay"):  # nothing shown during the delay
            assert np.allclose(x[i, step(batch, i, "delay1"), 1:RULE0], 0)


@pytest.mark.parametrize("rule", ["dm1", "dm2", "delaydm1", "delaydm2", "contextdm1", "contextdm2", "multidm",
                                  "contextdelaydm1", "contextdelaydm2", "multidelaydm"])
def test_decision_tasks_choose_the_stronger_stimulus_of_the_cued_modality(rule):
    _, batch = clean(rule)
    c = batch.conditions
    for i in range(batch.n_trials):
        loc1, loc2 = float(c["stim1_loc"][i]), float(c["stim2_loc"][i])
        a = ring_strengths(batch, i, 0, loc1, loc2)
        b = ring_strengths(batch, i, 1, loc1, loc2)
        if rule in ("dm1", "delaydm1"):
            s, other = a, b
        elif rule in ("dm2", "delaydm2"):
            s, other = b, a
        elif rule.endswith("1"):
            s, other = a, None
        elif rule.endswith("2"):
            s, other = b, None
        else:  # multisensory: the sum over both modalities
            s, other = a + b, None
        if other is not None:
            assert np.allclose(other, 0, atol=1e-6)  # dm1 / dm2 use one ring only
        else:
            assert (a > 0.1).all() and (b > 0.1).all()  # context tasks drive both rings
        chosen = loc1 if s[0] > s[1] else loc2
        assert circ(float(c["response_loc"][i]), chosen) < 1e-6
        assert circ(angle(batch.targets[i, -1, 1:].numpy() - 0.05), chosen) < 1e-3
        assert 0.5 * np.pi - 1e-6 <= circ(loc1, loc2)  # the two stimuli are 90 to 270 degrees apart


@pytest.mark.parametrize("rule", ["dmsgo", "dmsnogo", "dmcgo", "dmcnogo"])
def test_match_tasks_respond_by_their_match_rule(rule):
    _, batch = clean(rule, 200)
    x = batch.inputs.numpy()
    matches = []
    for i in range(batch.n_trials):
        s1 = x[i, step(batch, i, "stimulus1"), 1:RULE0]
        s2 = x[i, int(batch.conditions["go_step"][i]), 1:RULE0]
        a1, a2 = angle(s1[:R] + s1[R:]), angle(s2[:R] + s2[R:])
        match = circ(a1, a2) < 1e-3 if rule.startswith("dms") else (a1 < np.pi) == (a2 < np.pi)
        responds = batch.targets[i, -1, 0] < 0.5
        assert bool(responds) == (match if rule.endswith("go") and not rule.endswith("nogo") else not match)
        if responds:  # answer at the second stimulus
            assert circ(angle(batch.targets[i, -1, 1:].numpy() - 0.05), a2) < 1e-3
        matches.append(match)
    assert 0.25 < np.mean(matches) < 0.75


# ---------------------------------------------------------------- performance, mixing, noise
def test_performance_fixation_break_and_36_degree_tolerance():
    task, batch = clean("fdgo", 32)
    assert task.evaluate(batch.targets, batch)["accuracy"] == 1.0
    broken = batch.targets.clone()
    broken[:, 10, 0] = 0.2  # breaks fixation at 200 ms, before every go cue
    assert task.evaluate(broken, batch)["accuracy"] == 0.0
    assert task.evaluate(broken, batch)["accuracy_last_step"] == 1.0  # the paper's last-step check misses it
    for offset_deg, right in ((30.0, 1.0), (40.0, 0.0)):
        out = batch.targets.clone()
        for i in range(32):
            last = int(batch.conditions["end_step"][i]) - 1
            loc = float(batch.conditions["response_loc"][i]) + math.radians(offset_deg)
            out[i, last, 1:] = torch.tensor(0.05 + 0.8 * bump(loc), dtype=torch.float32)
        assert task.evaluate(out, batch)["accuracy"] == right


def test_mixing_rules_uniform_weighted_and_subsets():
    batch = nr.tasks.make("yang19").batch(2000, gen(1))
    counts = np.bincount(batch.conditions["rule"].long().numpy(), minlength=20)
    assert counts.min() > 60 and counts.max() < 140  # about 100 each
    sub = nr.tasks.make("yang19", rules=["dm1", "fdanti"], rule_weights={"dm1": 3.0, "fdanti": 1.0})
    rule = sub.batch(2000, gen(2)).conditions["rule"]
    assert set(rule.tolist()) == {6.0, 3.0}
    assert (rule == 6).float().mean().item() == pytest.approx(0.75, abs=0.04)
    scores = sub.evaluate(sub.batch(64, gen(3)).targets, sub.batch(64, gen(3)))
    assert scores["accuracy_dm1"] == scores["accuracy_fdanti"] == 1.0
    one = sub.rule_batch("dmcgo", 8, gen(0))  # any rule, also one not mixed
    assert (one.conditions["rule"] == 18).all()


def test_input_noise_std_and_seeded_reproducibility():
    task = nr.tasks.make("yang19_fdgo")
    a, b = task.batch(64, gen(5)), task.batch(64, gen(5))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    noise = a.inputs - nr.tasks.make("yang19_fdgo", sigma_x=0.0).batch(64, gen(5)).inputs
    assert noise.std().item() == pytest.approx(0.01 * math.sqrt(2 * 100 / 20), rel=0.02)


# ---------------------------------------------------------------- task variance
def planted_rates(seed=0):
    """30 units in 3 groups (each varies only on its 2 of 6 tasks) and 5 silent units."""
    rng = np.random.default_rng(seed)
    rates = {}
    for task in range(6):
        x = rng.normal(0, 0.01, (80, 35))
        group = task // 2
        x[:, 10 * group:10 * group + 10] += rng.normal(0, 1.0, (80, 10))
        x[:, 30:] = 0.0
        rates[f"t{task}"] = x
    return rates, np.repeat([0, 1, 2], 10)


def test_task_variance_recovers_planted_clusters_and_drops_silent_units():
    from sklearn.metrics import adjusted_rand_score

    rates, planted = planted_rates()
    tv = cluster_units(variance_from_rates(rates))
    assert list(tv.active) == list(range(30))  # the 5 silent units are below the 1e-3 threshold
    assert np.allclose(tv.normalized.max(1), 1.0)
    assert tv.n_clusters_ == 3 and max(tv.silhouette_, key=tv.silhouette_.get) == 3
    assert adjusted_rand_score(planted, tv.labels_) == 1.0
    ftv = fractional_variance(tv, "t0", "t2")
    assert (ftv[:10] > 0.99).all() and (ftv[10:20] < -0.99).all()
    with pytest.raises(ValueError, match="task 'x' is not among the analysed tasks"):
        fractional_variance(tv, "t0", "x")
    with pytest.raises(ValueError, match=r"must have shape \(trials >= 2, units\)"):
        variance_from_rates({"a": np.zeros(5)})


def test_task_variance_of_a_hand_built_network_and_lesions():
    # Linear units driven one-to-one by the ring inputs: unit k is ring-1 unit k, unit 32+k ring-2 unit k.
    task = nr.tasks.make("yang19", rules=["dm1", "dm2"], sigma_x=0.0)
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_units=2 * R, n_outputs=task.n_outputs, dt_ms=20.0, tau_ms=20.0,
                       activation="identity", seed=0)
    w_in = torch.zeros(2 * R, task.n_inputs)
    w_in[:, 1:1 + 2 * R] = torch.eye(2 * R)
    net = nr.RNN(cfg, weights={"w_in": w_in, "w_rec": torch.zeros(2 * R, 2 * R),
                               "b_rec": torch.zeros(2 * R), "x0": torch.zeros(2 * R)}).eval()
    batches = {r: task.rule_batch(r, 64, gen(i)) for i, r in enumerate(task.rules)}
    # the response period shows no stimulus, so the stimulus period is relabelled "response"
    tv = cluster_units(task_variance(net, task, batches={r: _stim_only(b) for r, b in batches.items()}))
    ring1 = np.isin(tv.active, np.arange(R))
    assert tv.n_clusters_ == 2 and ring1.sum() == R
    assert len(set(tv.labels_[ring1])) == 1 and set(tv.labels_[ring1]).isdisjoint(tv.labels_[~ring1])
    assert np.allclose(tv.normalized[ring1, 1], 0) and np.allclose(tv.normalized[~ring1, 0], 0)
    before = net.effective_weights().w_out.clone()
    cut = _lesioned(net, np.arange(5))
    assert (cut.effective_weights().w_out[:, :5] == 0).all() and (cut.effective_weights().w_rec[:, :5] == 0).all()
    assert torch.equal(net.effective_weights().w_out, before)  # the analysed model is not changed


def _stim_only(batch):
    periods = torch.where(batch.periods == 1, 6, torch.where(batch.periods == 6, 1, batch.periods))
    return nr.tasks.Batch(batch.inputs, batch.targets, batch.mask, batch.conditions, periods, batch.period_names)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    task = nr.tasks.make("yang19", rules=["fdgo", "fdanti", "dm1", "dm2"])
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_units=24, n_outputs=task.n_outputs, activation="relu", seed=0)
    out = tmp_path_factory.mktemp("runs") / "yang"
    train(nr.RNN(cfg), task, TrainConfig(steps=20, batch_size=16, learning_rate=0.01, eval_every=10,
                                         history_every=10, eval_batch_size=32, progress=False, threads=1),
          out=out, figures=False)
    return out


def test_task_variance_pipeline_on_a_tiny_trained_network(tiny_run, capsys):
    result = analyze_run(tiny_run, ["task_variance"], options={"n_trials": 16}, report=False)["task_variance"]
    names = {p.name for p in result.files}
    assert names == {"task_variance.json", "task_variance.npz", "task_variance_lesion.csv", "task_variance.png",
                     "task_variance_fractional.png"}
    saved = json.loads((tiny_run / "analysis" / "task_variance.json").read_text())
    assert saved["tasks"] == ["fdgo", "fdanti", "dm1", "dm2"] and saved["n_units"] == 24
    assert sum(len(c) for c in saved["clusters"]) == saved["n_active"]
    assert list(saved["fractional"]) == ["dm1|fdanti", "fdgo|fdanti"]
    rows = list(csv.reader((tiny_run / "analysis" / "task_variance_lesion.csv").open()))
    assert rows[0][:3] == ["lesioned", "n_units", "accuracy_fdgo"] and len(rows) == 2 + saved["n_clusters"]
    assert main(["analyze", str(tiny_run), "--only", "task_variance", "--n-trials", "16", "--overwrite",
                 "--no-report"]) == 0
    assert capsys.readouterr().out.startswith("[task_variance] Task variance over 4 task(s)")
