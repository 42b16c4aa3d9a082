"""Population analyses: decoding, mixed selectivity, energy use, similarity (each against a known answer)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.analysis import (
    ANALYSES,
    analyze_run,
    ccgp,
    compare_runs,
    decode,
    dsa,
    energy_use,
    linear_cka,
    mixed_selectivity,
    pairwise_distances,
    period_responses,
    plot_similarity,
    procrustes_distance,
    shattering_dimensionality,
    task_variables,
    wiring_cost,
)
from neurornn.training import TrainConfig, train

POPULATION = ("decoding", "mixed_selectivity", "energy", "similarity")


def _orthogonal(n, rng):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q


# ---------------------------------------------------------------------- decoding
def _planted(rng, trials=80, time=8, units=12, onset=3, stable=True):
    y = np.repeat([0, 1], trials // 2)
    x = rng.standard_normal((trials, time, units))
    for t in range(onset, time):
        unit = 0 if stable else t  # a stable code: the same unit carries it at every time
        x[:, t, unit] += 3.0 * (2 * y - 1)
    return x, y


def test_decoding_finds_a_planted_signal_and_chance_for_shuffled_labels():
    rng = np.random.default_rng(0)
    x, y = _planted(rng)
    d = decode(x, y, n_shuffles=3, seed=0)
    assert d.kind == "discrete" and d.metric == "accuracy" and d.score_.shape == (8,)
    assert d.score_[3:].min() > 0.9  # the planted signal
    assert abs(d.score_[:3].mean() - 0.5) < 0.15  # before onset: chance
    assert abs(d.chance_.mean() - 0.5) < 0.1  # shuffled labels: chance
    shuffled = decode(x, rng.permutation(y), n_shuffles=3, cross_temporal=False)
    assert abs(shuffled.score_.mean() - 0.5) < 0.12 and shuffled.cross_temporal_ is None
    # Stable code: decoders generalise across time after onset; a code moving to new units does not.
    ct = d.cross_temporal_
    assert ct.shape == (8, 8) and np.allclose(np.diag(ct), d.score_)
    assert ct[3:, 3:].min() > 0.9
    moving = decode(*_planted(rng, stable=False), n_shuffles=1).cross_temporal_
    off = moving[3:, 3:][~np.eye(5, dtype=bool)]
    assert moving[3:, 3:].diagonal().min() > 0.9 and abs(off.mean() - 0.5) < 0.12
    rows = d.table()
    assert len(rows) == 8 and set(rows[0]) >= {"time_ms", "score", "chance_low", "chance_high"}


def test_decoding_a_continuous_condition_and_bad_input():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(60)
    x = rng.standard_normal((60, 4, 6)) * 0.3 + y[:, None, None] * np.array([1, -1, 0.5, 0, 0, 0])
    d = decode(x, y, n_shuffles=2)
    assert d.kind == "continuous" and d.metric == "r2" and d.score_.min() > 0.8 and d.chance_.mean() < 0.1
    with pytest.raises(ValueError, match="one value per trial"):
        decode(x, y[:10])
    with pytest.raises(ValueError, match="single value"):
        decode(x, np.zeros(60), kind="discrete")
    with pytest.raises(ValueError, match="at least 2 trials"):
        decode(x, np.r_[1, np.zeros(59)])
    with pytest.raises(ValueError, match=r"shape \(trials, time, units\)"):
        decode(x[0], y)
    with pytest.raises(ValueError, match="kind"):
        decode(x, y, kind="ordinal")


# ---------------------------------------------------------------------- mixed selectivity
def test_planted_pure_linear_and_nonlinear_mixed_units_are_recovered():
    rng = np.random.default_rng(2)
    a, b = np.meshgrid([-1.0, 1.0], [-1.0, 1.0])
    a, b = np.repeat(a.ravel(), 15), np.repeat(b.ravel(), 15)  # 4 conditions x 15 trials
    n = len(a)
    groups = {"non_selective": lambda: 0 * a, "pure": lambda: 2.0 * (a if rng.random() < 0.5 else b),
              "linear_mixed": lambda: 2.0 * a - 1.5 * b, "nonlinear_mixed": lambda: a + 2.0 * a * b}
    truth, cols = [], []
    for name, make in groups.items():
        for _ in range(10):
            truth.append(name)
            cols.append(make() + 0.5 * rng.standard_normal(n))
    ms = mixed_selectivity(np.column_stack(cols), {"a": a, "b": b})
    assert ms.terms == ("a", "b", "a*b") and ms.p_main_.shape == (40, 2)
    truth = np.array(truth)
    for name in groups:
        assert np.mean(ms.categories_[truth == name] == name) >= 0.8, name
    assert sum(ms.fractions_.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one value per trial"):
        mixed_selectivity(np.column_stack(cols), {"a": a[:5]})
    with pytest.raises(ValueError, match="more trials"):
        one_each = [0, 15, 30, 45]  # one trial per condition: no residual degrees of freedom
        mixed_selectivity(np.column_stack(cols)[one_each], {"a": a[one_each], "b": b[one_each]})


def test_shattering_dimensionality_and_ccgp_of_factorised_and_random_geometries():
    rng = np.random.default_rng(3)
    a, b = np.meshgrid([0.0, 1.0], [0.0, 1.0])
    a, b = np.repeat(a.ravel(), 20), np.repeat(b.ravel(), 20)
    cond = (2 * a + b).astype(int)
    u, v = rng.standard_normal(30), rng.standard_normal(30)
    factorised = np.outer(a, u) + np.outer(b, v) + 0.3 * rng.standard_normal((80, 30))
    random = rng.standard_normal((4, 30))[cond] + 0.3 * rng.standard_normal((80, 30))
    f_cc, r_cc = ccgp(factorised, {"a": a, "b": b}), ccgp(random, {"a": a, "b": b})
    assert min(f_cc.values()) > 0.95  # abstract variables generalise to unseen conditions
    assert np.mean(list(r_cc.values())) < min(f_cc.values()) - 0.2
    f_sd = shattering_dimensionality(factorised, {"a": a, "b": b})
    r_sd = shattering_dimensionality(random, {"a": a, "b": b})
    assert len(f_sd["dichotomies"]) == 3  # a, b and xor
    assert r_sd["shattering_dimensionality"] > 0.95  # random positions: every dichotomy is linear
    assert f_sd["shattering_dimensionality"] < 0.9  # a plane: xor is not
    with pytest.raises(ValueError, match="binary"):
        ccgp(factorised, {"a": a + cond})
    with pytest.raises(ValueError, match="2 conditions on each side"):
        ccgp(factorised, {"a": a})


def test_task_variables_and_period_responses():
    cond = {"choice": np.array([0, 1, 0, 1]), "coherence": np.array([1, 1, 2, 2]),
            "signed": np.array([-1, 1, -2, 2]), "trial_id": np.arange(4) * 0.37}
    assert list(task_variables(cond)) == ["choice", "coherence"]  # signed is determined; trial_id is not a level
    x = np.arange(2 * 3 * 1, dtype=float).reshape(2, 3, 1)
    periods = np.array([[0, 1, 1], [0, 0, 1]])
    assert period_responses(x, periods, ("a", "b"), "b")[:, 0].tolist() == [1.5, 5.0]
    assert period_responses(x)[:, 0].tolist() == [1.0, 4.0]
    with pytest.raises(ValueError, match="is not one of"):
        period_responses(x, periods, ("a", "b"), "c")


# ---------------------------------------------------------------------- energy
def test_energy_terms_equal_a_hand_computation():
    rng = np.random.default_rng(4)
    coords = rng.uniform(0, 3, size=(5, 3))
    model = nr.RNN(nr.RNNConfig(n_inputs=1, n_units=5, n_outputs=1, coordinates=coords.tolist(), seed=0))
    w = model.effective_weights().w_rec.detach().double().numpy()
    rates = rng.uniform(0, 1, size=(3, 4, 5))
    periods = np.array([[0, 0, 1, 1]] * 3)
    e = energy_use(rates, model, periods=periods, period_names=("fix", "stim"))
    syn = [[sum(abs(w[i, j]) * rates[k, t, j] for i in range(5) for j in range(5)) for t in range(4)]
           for k in range(3)]
    wiring = sum(abs(w[i, j]) * np.sqrt(((coords[i] - coords[j]) ** 2).sum()) for i in range(5) for j in range(5))
    assert e["mean_rate"] == pytest.approx(rates.mean())
    assert e["synaptic_activity"] == pytest.approx(np.mean(syn))
    assert e["wiring_cost"] == pytest.approx(wiring)
    assert e["periods"]["stim"]["synaptic_activity"] == pytest.approx(np.mean(np.array(syn)[:, 2:]))
    assert e["periods"]["fix"]["mean_rate"] == pytest.approx(rates[:, :2].mean())
    flat = nr.RNN(nr.RNNConfig(n_inputs=1, n_units=5, n_outputs=1, seed=0))
    assert energy_use(rates, flat)["wiring_cost"] is None  # not placed in space
    assert wiring_cost(w, np.ones((5, 5))) == pytest.approx(np.abs(w).sum())
    with pytest.raises(ValueError, match="record every unit"):
        energy_use(rates[..., :3], model)


# ---------------------------------------------------------------------- similarity
def test_linear_cka_identity_invariances_and_independence():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2000, 10)) @ rng.standard_normal((10, 10))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ _orthogonal(10, rng)) == pytest.approx(1.0)
    assert linear_cka(x, rng.standard_normal((2000, 7))) < 0.05
    assert linear_cka(x.reshape(100, 20, 10), x.reshape(100, 20, 10)[..., :5]) > 0.2  # (trials, time, units)
    with pytest.raises(ValueError, match="same samples"):
        linear_cka(x, x[:10])


@pytest.mark.parametrize("alpha, kind", [(1.0, "angular"), (1.0, "euclidean"), (0.5, "angular")])
def test_procrustes_distance_is_a_rotation_invariant_metric(alpha, kind):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6))
    scale = 2.5 if kind == "angular" and alpha == 1.0 else 1.0  # partial whitening is not scale invariant
    assert procrustes_distance(x, scale * x @ _orthogonal(6, rng) + 4.0, alpha=alpha, kind=kind) < 1e-6
    assert procrustes_distance(x, rng.standard_normal((200, 6)), alpha=alpha, kind=kind) > 0.1
    base = rng.standard_normal((200, 4))
    for _ in range(15):
        a, b, c = (base @ rng.standard_normal((4, k)) + 0.5 * rng.standard_normal((200, k)) for k in (3, 4, 5))
        d = lambda p, q: procrustes_distance(p, q, alpha=alpha, kind=kind)  # noqa: E731
        assert d(a, b) == pytest.approx(d(b, a), abs=1e-10)
        assert d(a, c) <= d(a, b) + d(b, c) + 1e-9


def _linear_system(eigs, rng, trials=20, time=30, basis=None):
    blocks = [np.abs(l) * np.array([[np.cos(np.angle(l)), -np.sin(np.angle(l))],
                                    [np.sin(np.angle(l)), np.cos(np.angle(l))]]) for l in eigs]
    a = np.block([[blocks[0], np.zeros((2, 2))], [np.zeros((2, 2)), blocks[1]]])
    x = np.zeros((trials, time, 4))
    x[:, 0] = rng.standard_normal((trials, 4))
    for t in range(1, time):
        x[:, t] = x[:, t - 1] @ a.T
    return x if basis is None else x @ basis.T


def test_dsa_is_near_zero_for_a_change_of_basis_and_larger_for_other_eigenvalues():
    rng = np.random.default_rng(7)
    eigs = (0.95 * np.exp(0.3j), 0.85 * np.exp(1.1j))
    x = _linear_system(eigs, rng)
    y = _linear_system(eigs, rng, basis=_orthogonal(4, rng))  # other trials, rotated axes
    z = _linear_system((0.7 * np.exp(0.8j), 0.99 * np.exp(0.1j)), rng)
    same, other = dsa(x, y, n_delays=1, rank=4), dsa(x, z, n_delays=1, rank=4)
    assert same < 1e-3 and other > 0.3
    general = x @ rng.standard_normal((4, 4)).T  # the same trajectories in any invertible basis
    assert dsa(x, general, n_delays=1, rank=4, whiten=True) < 1e-3
    assert dsa(x, y, n_delays=2, rank=4) < 1e-3 < dsa(x, z, n_delays=2, rank=4)  # also with delays
    with pytest.raises(ValueError, match="n_delays must be <"):
        dsa(x, y, n_delays=30)


def test_pairwise_distances_and_the_figure():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((100, 5))
    acts = [x, x @ _orthogonal(5, rng), rng.standard_normal((100, 5))]
    d = pairwise_distances(acts, "cka")
    assert d.shape == (3, 3) and np.allclose(d, d.T) and d[0, 1] < 1e-9 and d[0, 2] > 0.5
    fig = plot_similarity(d, ["a", "b", "c"], metric="1 - CKA")
    assert len(fig.axes) >= 2
    with pytest.raises(ValueError, match="metric"):
        pairwise_distances(acts, "rsa")


# ---------------------------------------------------------------------- the pipeline, on a tiny trained run
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0)
    root = tmp_path_factory.mktemp("pop")
    runs = []
    for seed in (0, 1):
        cfg = nr.RNNConfig(n_inputs=3, n_units=16, n_outputs=3, activation="tanh", seed=seed)
        out = root / f"pdm{seed}"
        train(nr.RNN(cfg), task, TrainConfig(steps=10, batch_size=16, learning_rate=0.01, eval_every=5,
                                             history_every=5, eval_batch_size=16, progress=False, threads=1),
              out=out, figures=False)
        runs.append(out)
    return runs


@pytest.mark.parametrize("name", POPULATION)
def test_population_analysis_writes_what_it_declares(name, trained, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained[0], run_dir)
    result = analyze_run(run_dir, [name], options={"n_trials": 48}, report=False)[name]
    written = {p.relative_to(run_dir).as_posix() for p in result.files}
    assert written == set(ANALYSES[name].writes)
    assert all(p.is_file() and p.stat().st_size > 0 for p in result.files)
    data = json.loads((run_dir / "analysis" / f"{name}.json").read_text())
    assert data["message"] == result.message
    if name == "decoding":
        assert "choice" in data["conditions"] and (run_dir / "analysis" / "decoding.csv").read_text().count("\n") > 5
    if name == "mixed_selectivity":
        assert data["variables"] == ["choice", "coherence"]
    if name == "energy":
        assert len(data["history"]["step"]) == 3 and data["mean_rate"] > 0
    if name == "similarity":
        assert data["snapshots"][-1]["step"] == 10 and data["snapshots"][0]["cka"] <= 1.0 + 1e-9


def test_compare_runs_gives_a_distance_matrix_and_embedding(trained):
    out = compare_runs(trained, "cka", n_trials=16)
    assert out["names"] == ["pdm0", "pdm1"] and out["distances"].shape == (2, 2)
    assert out["distances"][0, 1] > 0 and out["embedding"].shape == (2, 2)
    with pytest.raises(ValueError, match="not an ensemble folder"):
        compare_runs(trained[0], "cka")
