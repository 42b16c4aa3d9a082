"""Fixed points against analytic answers: linear nets, Jacobian formulas, a bistable net, a 2-cycle."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

import neurornn as nr
from neurornn.analysis.cycles import detect_cycles
from neurornn.analysis.fixed_points import FixedPointFinder, sample_states, step_jacobians
from neurornn.analysis.geometry import describe_geometry


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Small batched ops: one thread avoids OpenMP spin contention on the shared 2-core box.
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _model(cfg: nr.RNNConfig, w_rec=None, w_in=None, b_rec=None) -> nr.RNN:
    """An RNN in float64 with exactly the given effective weights (no Dale, full mask)."""
    m = nr.RNN(cfg).double()
    with torch.no_grad():
        for name, value in (("w_rec", w_rec), ("w_in", w_in), ("b_rec", b_rec)):
            if value is not None:
                getattr(m, name).copy_(torch.as_tensor(np.asarray(value), dtype=torch.float64))
    return m


# --------------------------------------------------------------------------- linear network
@pytest.mark.parametrize("form", ["current", "rate"])
def test_linear_network_has_the_solve_fixed_point(form):
    rng = np.random.default_rng(0)
    n, k = 12, 3
    w = rng.normal(size=(n, n))
    w *= 0.8 / np.max(np.abs(np.linalg.eigvals(w)))
    w_in, b = rng.normal(size=(n, k)), rng.normal(size=n)
    u = rng.normal(size=k)
    cfg = nr.RNNConfig(n_inputs=k, n_units=n, n_outputs=1, activation="identity", form=form,
                       dt_ms=20.0, tau_ms=100.0)
    m = _model(cfg, w, w_in, b)
    expected = np.linalg.solve(np.eye(n) - w, w_in @ u + b)
    starts = torch.as_tensor(rng.normal(size=(64, n)))
    fps = FixedPointFinder(m, detect_cycles=False).fit(u, starts)
    assert len(fps) == 1
    np.testing.assert_allclose(fps.points_[0], expected, rtol=1e-9, atol=1e-9)
    assert fps.q_[0] < 1e-20
    assert fps.multiplicity_[0] == fps.n_converged_ >= 60
    # Linear map: the Jacobian is (1 - a) I + a W everywhere; stable since rho(W) < 1.
    np.testing.assert_allclose(fps.jacobians_[0], 0.8 * np.eye(n) + 0.2 * w, atol=1e-12)
    assert fps.stable_discrete_[0] and fps.stable_continuous_[0] and fps.n_unstable_[0] == 0


# --------------------------------------------------------------------------- Jacobians
def _fprime(name: str, z: np.ndarray) -> np.ndarray:
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "softplus":
        return 1 / (1 + np.exp(-z))
    raise AssertionError(name)


@pytest.mark.parametrize("form", ["current", "rate"])
@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_jacobian_matches_the_euler_formula(form, activation):
    # Dale network with different E and I time constants: per-unit alpha.
    cfg = nr.RNNConfig(n_inputs=2, n_units=10, n_outputs=1, activation=activation, form=form,
                       dt_ms=10.0, tau_ms=50.0, tau_inh_ms=20.0, exc_fraction=0.7, seed=3)
    m = nr.RNN(cfg).double()
    with torch.no_grad():
        m.b_rec.copy_(torch.linspace(-0.5, 0.5, 10, dtype=torch.float64))
    w = m.effective_weights()
    wr, wi, b = (t.detach().numpy() for t in (w.w_rec, w.w_in, w.b_rec))
    a = m.alpha.numpy()
    assert len(np.unique(a)) == 2
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 10))
    u = rng.normal(size=2)
    jac = step_jacobians(m, x, u).numpy()
    for p in range(7):
        if form == "current":
            expected = np.diag(1 - a) + np.diag(a) @ wr @ np.diag(_fprime(activation, x[p]))
        else:
            z = wr @ x[p] + wi @ u + b
            expected = np.diag(1 - a) + np.diag(a) @ np.diag(_fprime(activation, z)) @ wr
        np.testing.assert_allclose(jac[p], expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- hand-built bistable net
@pytest.mark.parametrize("form", ["current", "rate"])
def test_two_unit_bistable_net_has_nine_fixed_points(form):
    # W = 2 I, no input, no bias: each unit solves x = 2 tanh(x) (current form)
    # or r = tanh(2 r) (rate form): 3 roots each, so 3 x 3 = 9 fixed points.
    cfg = nr.RNNConfig(n_inputs=1, n_units=2, n_outputs=1, activation="tanh", form=form,
                       dt_ms=50.0, tau_ms=100.0)
    m = _model(cfg, 2 * np.eye(2), np.zeros((2, 1)), np.zeros(2))
    if form == "current":
        root = brentq(lambda x: x - 2 * np.tanh(x), 0.5, 5)
        slope = 2 * (1 - np.tanh(root) ** 2)  # d(W f(x))/dx at the root
    else:
        root = brentq(lambda r: r - np.tanh(2 * r), 0.1, 2)
        slope = 2 * (1 - np.tanh(2 * root) ** 2)
    starts = torch.as_tensor(np.random.default_rng(0).uniform(-3, 3, size=(300, 2)))
    fps = FixedPointFinder(m).fit([0.0], starts)
    assert len(fps) == 9
    expected = {(i * root, j * root) for i in (-1, 0, 1) for j in (-1, 0, 1)}
    found = fps.points_
    for e in expected:
        assert np.min(np.linalg.norm(found - np.array(e), axis=1)) < 1e-9
    # Stability: the corners are stable, the 4 edge points saddles, the origin a source.
    n_nonzero = (np.abs(found) > 1e-6).sum(axis=1)
    np.testing.assert_array_equal(fps.n_unstable_discrete_, 2 - n_nonzero)
    np.testing.assert_array_equal(fps.stable_, n_nonzero == 2)
    np.testing.assert_array_equal(fps.stable_continuous_, n_nonzero == 2)
    corner = np.nonzero(n_nonzero == 2)[0][0]
    np.testing.assert_allclose(np.sort(fps.eigenvalues_[corner].real), 0.5 + 0.5 * slope * np.ones(2), atol=1e-10)
    np.testing.assert_allclose(fps.eigenvalues_continuous_[corner], (fps.eigenvalues_[corner] - 1) / 50.0)
    assert fps.multiplicity_.sum() == fps.n_converged_ >= 290
    summary = fps.summary()
    assert summary["conditions"][0]["geometry"]["kind"] == "isolated"
    assert summary["conditions"][0]["n_stable"] == 4
    assert summary["conditions"][0]["settling"] == {"fixed_point": 300}  # the map from every start
    # Principal eigenvectors: J r = lambda r and l J = lambda l.
    for p in range(len(fps)):
        lam = fps.eigenvalues_[p, 0]
        np.testing.assert_allclose(fps.jacobians_[p] @ fps.right_eigenvectors_[p], lam * fps.right_eigenvectors_[p], atol=1e-10)
        np.testing.assert_allclose(fps.left_eigenvectors_[p] @ fps.jacobians_[p], lam * fps.left_eigenvectors_[p], atol=1e-10)


# --------------------------------------------------------------------------- cycles
def test_period_two_cycles_are_reported_not_spurious_points():
    # Elman map x -> -2 tanh(x): one fixed point (0, multiplier -2: unstable as a map,
    # stable as an ODE since Re(-2 - 1) < 0) and a stable 2-cycle at +-c, c = 2 tanh(c).
    cfg = nr.RNNConfig(n_inputs=1, n_units=1, n_outputs=1, activation="tanh", dt_ms=10.0, tau_ms=10.0)
    m = _model(cfg, [[-2.0]], [[0.0]], [0.0])
    starts = torch.linspace(-3, 3, 40, dtype=torch.float64)[:, None] + 0.01
    fps = FixedPointFinder(m).fit([0.0], starts)
    assert len(fps) == 1 and abs(fps.points_[0, 0]) < 1e-10
    assert fps.eigenvalues_[0, 0] == pytest.approx(-2.0)
    assert not fps.stable_discrete_[0] and fps.stable_continuous_[0]
    assert fps.n_unstable_discrete_[0] == 1 and fps.n_unstable_continuous_[0] == 0
    assert fps.cycles_.counts() == {"period_2": 40}
    c = brentq(lambda x: x - 2 * np.tanh(x), 0.5, 5)
    np.testing.assert_allclose(np.abs(fps.cycles_.final_states[0, :, 0]), c, atol=1e-6)
    message = fps.summary()["message"]
    assert "period-2 cycles" in message and "mostly uses cycles" in message


def test_descent_stops_where_q_does_not_fall():
    # x -> x + alpha b (W = I, identity f): q = 1/2 |alpha b|^2 everywhere, no fixed point.
    # Every start stalls at the first check (100 iterations), not after max_iters.
    cfg = nr.RNNConfig(n_inputs=1, n_units=3, n_outputs=1, activation="identity", dt_ms=10.0, tau_ms=20.0)
    m = _model(cfg, np.eye(3), np.zeros((3, 1)), [0.1, 0.0, 0.0])
    starts = np.random.default_rng(0).normal(size=(50, 3))
    fps = FixedPointFinder(m, max_iters=1000, detect_cycles=False).fit([0.0], starts)
    assert len(fps) == 0 and fps.n_converged_ == 0
    assert fps.n_descent_iters_ == 100
    assert "no fixed point" in fps.summary()["message"]


def test_detect_cycles_finds_fixed_points_and_cycles_separately():
    cfg = nr.RNNConfig(n_inputs=1, n_units=2, n_outputs=1, activation="tanh", dt_ms=10.0, tau_ms=10.0)
    m = _model(cfg, np.diag([-2.0, 0.5]), np.zeros((2, 1)), np.zeros(2))
    starts = np.array([[0.0, 1.0], [1.0, 1.0], [-0.5, 2.0]])
    cyc = detect_cycles(m, [0.0], starts, n_steps=300)
    np.testing.assert_array_equal(cyc.periods[0], [1, 2, 2])


# --------------------------------------------------------------------------- geometry
def test_line_attractor_of_a_linear_net_is_a_line():
    rng = np.random.default_rng(2)
    n = 8
    v = rng.normal(size=n)
    v /= np.linalg.norm(v)
    q, _ = np.linalg.qr(np.c_[v, rng.normal(size=(n, n - 1))])
    w = q @ np.diag(np.r_[1.0, np.full(n - 1, 0.3)]) @ q.T  # eigenvalue 1 along v
    cfg = nr.RNNConfig(n_inputs=1, n_units=n, n_outputs=1, activation="identity", dt_ms=20.0, tau_ms=100.0)
    m = _model(cfg, w, np.zeros((n, 1)), np.zeros(n))
    starts = torch.as_tensor(rng.normal(size=(60, n)))
    fps = FixedPointFinder(m, cycle_steps=50, merge_radius=None).fit([0.0], starts)
    assert len(fps) >= 40
    coarse = FixedPointFinder(m, cycle_steps=50).fit([0.0], starts)  # merged before refinement
    assert 8 <= len(coarse) < len(fps) and coarse.geometry_[0]["kind"] == "line"
    assert coarse.multiplicity_.sum() == coarse.n_converged_
    residual = fps.points_ - np.outer(fps.points_ @ v, v)
    assert np.abs(residual).max() < 1e-8
    assert fps.geometry_[0]["kind"] == "line" and fps.geometry_[0]["dimension"] == 1
    assert "line" in fps.summary()["message"]


def test_describe_geometry_ring_line_isolated():
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(10, 2)))
    theta = rng.uniform(0, 2 * np.pi, 80)
    ring = np.c_[np.cos(theta), np.sin(theta)] @ basis.T * 3.0
    assert describe_geometry(ring)["kind"] == "ring"
    arc = np.c_[np.cos(theta / 4), np.sin(theta / 4)] @ basis.T  # a quarter circle: a curve, not closed
    assert describe_geometry(arc)["kind"] == "line"
    grid = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], float)
    assert describe_geometry(grid)["kind"] == "isolated"
    assert describe_geometry(np.zeros((0, 3)))["kind"] == "none"


# --------------------------------------------------------------------------- never changes the model
def test_analysis_leaves_the_model_unchanged():
    cfg = nr.RNNConfig(n_inputs=2, n_units=16, n_outputs=2, activation="relu", exc_fraction=0.75,
                       p_connect=0.5, train_w_in=False, seed=1)
    m = nr.RNN(cfg)
    m.train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    flags = {k: p.requires_grad for k, p in m.named_parameters()}
    with torch.no_grad():
        traj = m(torch.rand(8, 30, 2), noise=False)
    starts = sample_states(traj.states, 50, noise_std=0.01, generator=torch.Generator().manual_seed(0))
    fps = FixedPointFinder(m, max_iters=300).fit(torch.tensor([0.5, 0.2]), starts)
    step_jacobians(m, starts[:3], [0.5, 0.2])
    assert m.training
    assert {k: p.requires_grad for k, p in m.named_parameters()} == flags
    for k, v in m.state_dict().items():
        assert v.dtype == before[k].dtype and torch.equal(v, before[k]), k
    assert np.isfinite(fps.q_).all() and (fps.q_ < fps.tol_q).all()
    assert fps.points_.dtype == np.float64


def test_several_inputs_are_searched_separately():
    cfg = nr.RNNConfig(n_inputs=1, n_units=2, n_outputs=1, activation="tanh", dt_ms=50.0, tau_ms=100.0)
    m = _model(cfg, 2 * np.eye(2), np.ones((2, 1)), np.zeros(2))
    starts = np.random.default_rng(0).uniform(-3, 3, size=(200, 2))
    fps = FixedPointFinder(m).fit([[0.0], [5.0]], starts)
    assert (fps.input_index_ == 0).sum() == 9
    # A strong input leaves one stable point per unit: x = 2 tanh(x) + 5.
    root = brentq(lambda x: x - 2 * np.tanh(x) - 5, 0, 10)
    sel = fps.select(1)
    assert sel.sum() == 1
    np.testing.assert_allclose(fps.points_[sel][0], [root, root], atol=1e-9)
    assert len(fps.summary()["conditions"]) == 2


def test_one_tolerance_per_input_condition():
    cfg = nr.RNNConfig(n_inputs=1, n_units=2, n_outputs=1, activation="tanh", dt_ms=50.0, tau_ms=100.0)
    m = _model(cfg, 2 * np.eye(2), np.ones((2, 1)), np.zeros(2))
    starts = np.random.default_rng(0).uniform(-3, 3, size=(100, 2))
    scalar = FixedPointFinder(m, detect_cycles=False).fit([[0.0], [5.0]], starts)
    per = FixedPointFinder(m, tol_q=[1e-12, 1e-12], detect_cycles=False).fit([[0.0], [5.0]], starts)
    np.testing.assert_array_equal(per.input_index_, scalar.input_index_)
    np.testing.assert_allclose(per.points_, scalar.points_, atol=1e-12)
    assert per.tol_of(1) == 1e-12 and per.summary()["tol_q"] == [1e-12, 1e-12]
    with pytest.raises(ValueError, match="tol_q has 2 values .one per input condition. but inputs has 3 rows"):
        FixedPointFinder(m, tol_q=[1e-12, 1e-12]).fit([[0.0], [1.0], [5.0]], starts)


# --------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def small_model():
    return nr.RNN(nr.RNNConfig(n_inputs=3, n_units=5, n_outputs=1))


@pytest.mark.parametrize(
    "inputs, starts, match",
    [
        (np.zeros(4), np.zeros((3, 5)), "n_inputs=3"),
        (np.zeros((2, 2)), np.zeros((3, 5)), "n_inputs=3"),
        (np.zeros(3), np.zeros((3, 4)), "n_units=5"),
        (np.zeros((2, 3)), np.zeros((3, 3, 5)), "3 conditions but inputs has 2"),
        (np.array([np.nan, 0, 0]), np.zeros((3, 5)), "NaN"),
    ],
)
def test_fit_rejects_bad_shapes(small_model, inputs, starts, match):
    with pytest.raises(ValueError, match=match):
        FixedPointFinder(small_model).fit(inputs, starts)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"tol_q": -1.0}, ValueError, "tol_q must be > 0"),
        ({"tol_q": [1e-12, -1.0]}, ValueError, r"tol_q\[1\] must be > 0"),
        ({"tol_q": []}, ValueError, "non-empty sequence"),
        ({"convention": "ode"}, ValueError, "convention must be one of"),
        ({"max_iters": 1.5}, TypeError, "max_iters must be an integer"),
        ({"refine": "yes"}, TypeError, "refine must be True or False"),
    ],
)
def test_finder_rejects_bad_parameters(small_model, kwargs, error, match):
    with pytest.raises(error, match=match):
        FixedPointFinder(small_model, **kwargs)


def test_finder_needs_an_rnn():
    with pytest.raises(TypeError, match="model must be a neurornn.RNN"):
        FixedPointFinder(torch.nn.Linear(2, 2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_runs_on_the_model_device():
    cfg = nr.RNNConfig(n_inputs=1, n_units=2, n_outputs=1, activation="tanh", dt_ms=50.0, tau_ms=100.0)
    m = _model(cfg, 2 * np.eye(2), np.zeros((2, 1)), np.zeros(2)).cuda()
    starts = torch.rand(100, 2, device="cuda", dtype=torch.float64) * 6 - 3
    fps = FixedPointFinder(m).fit(torch.zeros(1, device="cuda"), starts)
    assert len(fps) == 9 and fps.stable_.sum() == 4
    assert next(m.parameters()).device.type == "cuda"


# --------------------------------------------------------------------------- trained networks
def _train(task, model_kwargs, steps, lr):
    from neurornn.training import TrainConfig, train

    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_outputs=task.n_outputs, dt_ms=task.dt_ms, seed=0, **model_kwargs)
    run = train(nr.RNN(cfg), task, TrainConfig(steps=steps, batch_size=64, learning_rate=lr, acc_criterion=False,
                                               progress=False, seed=0, eval_every=100, history_every=0,
                                               checkpoint_every=0), out=None)
    return run


# The CLI default (`neurornn train --task flip_flop`, then `neurornn analyze RUN --fixed-points`) on
# seeds 0-2 and on one and two threads: measured 1100-1400 training steps, 27 fixed points under the
# hold input, 8 stable, one per corner of the output cube (issue 17: the old criterion passed a network
# with 6 stable points).
@pytest.mark.slow
@pytest.mark.parametrize("seed,threads", [(0, 1), (1, 1), (2, 1), (1, 2)])
def test_cli_default_flip_flop_has_eight_stable_corners_and_saddles(tmp_path, seed, threads):
    from neurornn.cli import main

    out = tmp_path / "ff"
    assert main(["train", "--task", "flip_flop", "--quiet", "--no-figures", "--threads", str(threads),
                 "--out", str(out), "--set", f"train.seed={seed}", f"model.seed={seed}"]) == 0
    run = nr.load_run(out)
    assert run.summary["stopped_because"] == "accuracy_criterion"
    assert run.summary["heldout_accuracy"] >= 0.9  # every memory held through the 2-s probe hold
    assert main(["analyze", str(out), "--fixed-points", "--threads", str(threads), "--no-report"]) == 0
    hold = json.loads((out / "analysis" / "fixed_points.json").read_text())["conditions"][0]
    assert hold["input_name"] == "hold period mean" and hold["input"] == [0.0, 0.0, 0.0]
    assert (hold["n_points"], hold["n_stable"], hold["geometry"]["kind"]) == (27, 8, "isolated"), hold["message"]
    saved = np.load(out / "analysis" / "fixed_points.npz")
    stable = saved["points"][(saved["input_index"] == 0) & saved["stable_discrete"]]
    with torch.no_grad():
        model = run.model
        readout = model.readout(model.rates_of(torch.as_tensor(stable, dtype=torch.float32))).numpy()
    assert {tuple(np.sign(o).astype(int)) for o in readout} == set(map(tuple, run.task.memory_patterns().int().tolist()))
    assert (np.abs(readout) > 0.5).all()  # one stable point per corner of the output cube


def test_trained_decision_network_has_an_approximate_line_attractor():
    # Perceptual decision making, 64 tanh units, Adam lr 3e-3 for 800 steps (about 8 s on one
    # core), trained to accuracy > 0.8 (the task's ceiling is about 0.9); slow points under the
    # zero-coherence stimulus.
    task = nr.tasks.make("perceptual_decision_making")
    run = _train(task, {"n_units": 64, "activation": "tanh", "sigma_rec": 0.05}, 800, 3e-3)
    assert run.summary["final_accuracy"] > 0.8
    model = run.model
    batch = task.batch(256, torch.Generator().manual_seed(1))
    with torch.no_grad():
        states = model(batch.inputs, noise=False).states
    u = torch.tensor([1.0, 0.5, 0.5])
    with torch.no_grad():
        q_traj = 0.5 * ((model.step(states, u) - states) ** 2).sum(-1)
    tol = 0.01 * float(q_traj.median())  # slow: 100x slower than the typical trajectory speed^2
    starts = sample_states(states, 512, generator=torch.Generator().manual_seed(0))
    fps = FixedPointFinder(model, tol_q=tol, refine=False, merge_radius=None, tol_unique=0.05).fit(u, starts)
    assert len(fps) >= 20
    geo = fps.geometry_[0]
    assert geo["kind"] == "line" and geo["pc_fractions"][0] > 0.8
    assert f"{len(fps)} slow points forming a line (dimension 1)" in fps.summary()["message"]
    # The line runs along the decision axis: its PC1 tracks the choice readout.
    from neurornn.analysis import PCA

    pc1 = PCA(1).fit(fps.points_).transform(fps.points_)[:, 0]
    with torch.no_grad():
        out = model.readout(model.rates_of(torch.as_tensor(fps.points_, dtype=torch.float32))).numpy()
    assert abs(np.corrcoef(pc1, out[:, 1] - out[:, 2])[0, 1]) > 0.8


def test_repr_is_one_readable_line(small_model):
    finder = FixedPointFinder(small_model, max_iters=50, detect_cycles=True, cycle_steps=20)
    points = finder.fit(torch.zeros(small_model.config.n_inputs),
                        torch.randn(16, small_model.config.n_units, generator=torch.Generator().manual_seed(0)))
    text = repr(points)
    assert text.startswith(f"FixedPoints({len(points)} points of {small_model.config.n_units} units")
    assert "\n" not in text and "array" not in text and "Cycles({" in repr(points.cycles_)


def test_the_finder_runs_small_networks_on_one_thread_and_restores_the_count():
    """The fast setting is the default from Python too: one thread for a small network, as train and analyze."""
    import neurornn as nr
    from neurornn.analysis import FixedPointFinder

    seen = []

    class Spy(FixedPointFinder):
        def _fit(self, inputs, initial_states):
            seen.append(torch.get_num_threads())
            return super()._fit(inputs, initial_states)

    model = nr.RNN(nr.RNNConfig(n_inputs=1, n_units=8, n_outputs=1, seed=0))
    before = torch.get_num_threads()
    Spy(model, max_iters=5, detect_cycles=False).fit(torch.zeros(1), torch.zeros(3, 8))
    Spy(model, max_iters=5, detect_cycles=False, threads=2).fit(torch.zeros(1), torch.zeros(3, 8))
    assert seen == [1, 2] and torch.get_num_threads() == before
