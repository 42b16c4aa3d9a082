"""The fused loop against the reference loop, autograd, gradcheck, the NumPy reference and training."""

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.models import ACTIVATION_FUNCTIONS, Dynamics, StepNoise, reference_loop
from neurornn.models.fused import fused_loop, fused_unsupported_reason

from numpy_reference import simulate

ACTIVATIONS = sorted(ACTIVATION_FUNCTIONS)
FORMS = ["current", "rate"]


def _problem(form, activation, *, nets=None, batch=3, time=6, units=5, dtype=torch.float64, seed=0,
             noise=True):
    """Random arguments of a loop, all requiring grad (``nets``: an ensemble)."""
    gen = torch.Generator().manual_seed(seed)
    lead = () if nets is None else (nets,)
    rand = lambda *s, scale=1.0: (torch.randn(*s, generator=gen, dtype=dtype) * scale).requires_grad_()  # noqa
    alpha_shape = (units,) if nets is None else (nets, 1, units)
    alpha = 0.2 + 0.7 * torch.rand(alpha_shape, generator=gen, dtype=dtype)  # per unit (E/I taus)
    dyn = Dynamics(form, activation, alpha)
    drive = rand(*lead, batch, time, units)
    w_rec = rand(*lead, units, units, scale=0.6)
    x0 = rand(*lead, batch, units, scale=0.5)
    if noise:
        nz = StepNoise(*(rand(*lead, batch, time, units, scale=0.3) for _ in range(3)))
    else:
        nz = None
    return dyn, x0, drive, w_rec, nz


def _leaves(x0, drive, w_rec, nz):
    return [x0, drive, w_rec] + ([] if nz is None else list(nz))


def _loss(states, rates, gen_seed=1):
    gen = torch.Generator().manual_seed(gen_seed)
    a = torch.randn(states.shape, generator=gen, dtype=states.dtype)
    b = torch.randn(rates.shape, generator=gen, dtype=rates.dtype)
    return (a * states).sum() + (b * rates**2).sum()


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_and_gradients_equal_reference_float64(form, activation):
    dyn, x0, drive, w_rec, nz = _problem(form, activation)
    s_f, r_f = fused_loop(dyn, x0, drive, w_rec, nz)
    s_r, r_r = reference_loop(dyn, x0, drive, w_rec, nz)
    torch.testing.assert_close(s_f, s_r, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r_f, r_r, rtol=1e-12, atol=1e-12)
    leaves = _leaves(x0, drive, w_rec, nz)
    g_f = torch.autograd.grad(_loss(s_f, r_f), leaves)
    g_r = torch.autograd.grad(_loss(s_r, r_r), leaves)
    for name, a, b in zip(["x0", "drive", "w_rec", "n_rec", "n_pre", "n_post"], g_f, g_r):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10, msg=f"gradient of {name}")


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradcheck(form, activation):
    dyn, x0, drive, w_rec, nz = _problem(form, activation, batch=2, time=4, units=3)

    def fn(x0, drive, w_rec, a, b, c):
        return fused_loop(dyn, x0, drive, w_rec, StepNoise(a, b, c))

    assert torch.autograd.gradcheck(fn, (x0, drive, w_rec, *nz))


@pytest.mark.parametrize("form", FORMS)
def test_gradgradcheck_falls_back_to_reference(form):
    dyn, x0, drive, w_rec, _ = _problem(form, "tanh", batch=2, time=3, units=3, noise=False)

    def fn(x0, drive, w_rec):
        return fused_loop(dyn, x0, drive, w_rec)

    assert torch.autograd.gradgradcheck(fn, (x0, drive, w_rec))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_ensemble_equals_reference_and_separate_networks(form, activation):
    nets = 3
    dyn, x0, drive, w_rec, nz = _problem(form, activation, nets=nets, batch=2, time=5, units=4)
    s_f, r_f = fused_loop(dyn, x0, drive, w_rec, nz)
    s_r, r_r = reference_loop(dyn, x0, drive, w_rec, nz)  # broadcasts over networks
    torch.testing.assert_close(s_f, s_r, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(r_f, r_r, rtol=1e-12, atol=1e-12)
    leaves = _leaves(x0, drive, w_rec, nz)
    g_f = torch.autograd.grad(_loss(s_f, r_f), leaves)
    g_r = torch.autograd.grad(_loss(s_r, r_r), leaves)
    for a, b in zip(g_f, g_r):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    # network k of the ensemble is the single network k
    for k in range(nets):
        dyn_k = Dynamics(form, activation, dyn.alpha[k, 0])
        s_k, r_k = fused_loop(dyn_k, x0[k], drive[k], w_rec[k], StepNoise(*(n[k] for n in nz)))
        torch.testing.assert_close(s_k, s_f[k], rtol=1e-12, atol=1e-12)

    small = _problem(form, activation, nets=2, batch=2, time=3, units=3)

    def fn(x0, drive, w_rec, a, b, c):
        return fused_loop(small[0], x0, drive, w_rec, StepNoise(a, b, c))

    assert torch.autograd.gradcheck(fn, (small[1], small[2], small[3], *small[4]))


@pytest.mark.parametrize("form", FORMS)
def test_float32_forward_matches_numpy_reference(form):
    """Independent check (NumPy, float64) of the float32 fused forward with all noises."""
    cfg = nr.RNNConfig(n_inputs=3, n_units=16, n_outputs=2, dt_ms=10.0, tau_ms=50.0, tau_inh_ms=20.0,
                       exc_fraction=0.75, p_connect=0.6, form=form, activation="softplus", sigma_rec=0.2,
                       sigma_in=0.1, sigma_pre=0.1, sigma_post=0.05, learn_x0=True, seed=3)
    model = nr.RNN(cfg)
    with torch.no_grad():
        model.x0.normal_(0, 0.3)
        model.b_rec.normal_(0, 0.3)
    u = torch.randn(4, 30, 3)
    _, noise = model.draw_noise(4, 30, torch.Generator().manual_seed(5))
    w = model.effective_weights()
    drive = u @ w.w_in.T + w.b_rec
    x0 = w.x0.expand(4, 16)
    states, rates = fused_loop(model.dynamics, x0, drive, w.w_rec, noise)
    wd = {k: v.detach().double().numpy() for k, v in w.as_dict().items()}
    ref_states, ref_rates, _ = simulate(
        form, "softplus", model.alpha.double().numpy(), wd["w_in"], wd["w_rec"], wd["b_rec"], wd["w_out"],
        wd["b_out"], wd["x0"], u.double().numpy(),
        **{k: v.double().numpy() for k, v in noise._asdict().items()},
    )
    np.testing.assert_allclose(states.detach().numpy(), ref_states, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rates.detach().numpy(), ref_rates, rtol=1e-4, atol=1e-5)


def _model_pair(**kw):
    base = dict(n_inputs=3, n_units=20, n_outputs=2, dt_ms=10.0, tau_ms=50.0, seed=2)
    base.update(kw)
    fused = nr.RNN(nr.RNNConfig(**base, loop="fused"))
    ref = nr.RNN(nr.RNNConfig(**base, loop="reference"))
    ref.load_state_dict(fused.state_dict())
    return fused, ref


@pytest.mark.parametrize(
    "kw",
    [
        dict(form="current", activation="relu", exc_fraction=0.8, tau_inh_ms=20.0, p_connect=0.5,
             learn_x0=True, sigma_rec=0.1, sigma_in=0.1),
        dict(form="rate", activation="tanh", exc_fraction=0.8, autapses=False, train_w_in=False,
             sigma_rec=0.05, sigma_post=0.05),
        dict(form="current", activation="sigmoid", areas={"A": 10, "B": 10},
             area_projections=[("A", "A"), ("A", "B"), ("B", "B")], input_areas=["A"], output_areas=["B"],
             train_w_rec=False, sigma_pre=0.1),
    ],
    ids=["dale-current", "dale-rate", "areas-frozen-wrec"],
)
def test_rnn_parameter_gradients_equal_reference(kw):
    """Dale, masks, areas and frozen matrices go through the effective weights."""
    fused, ref = _model_pair(**kw)
    fused, ref = fused.double(), ref.double()
    u = torch.randn(5, 12, 3, dtype=torch.float64)
    outs = []
    for model in (fused, ref):
        traj = model(u, generator=torch.Generator().manual_seed(9))
        loss = (traj.outputs**2).mean() + (traj.rates**2).mean()
        model.zero_grad()
        loss.backward()
        outs.append((traj, {n: p.grad for n, p in model.named_parameters()}))
    (t_f, g_f), (t_r, g_r) = outs
    torch.testing.assert_close(t_f.outputs, t_r.outputs, rtol=1e-12, atol=1e-12)
    assert g_f.keys() == g_r.keys()
    for name in g_f:
        if g_r[name] is None:
            assert g_f[name] is None, name
        else:
            torch.testing.assert_close(g_f[name], g_r[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("form", FORMS)
def test_training_fused_and_reference_give_close_weights(form):
    """300 Adam steps in float32 with each loop end at the same weights (to float32 tolerance)."""
    fused, ref = _model_pair(form=form, activation="tanh", exc_fraction=0.8, sigma_rec=0.05)
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(300, 8, 15, 3, generator=gen)
    target = torch.tanh(u.cumsum(2)[..., :2] / 4)
    finals = []
    for model in (fused, ref):
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        noise_gen = torch.Generator().manual_seed(1)
        losses = []
        for step in range(300):
            traj = model(u[step], generator=noise_gen)
            loss = ((traj.outputs - target[step]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        finals.append((model.effective_weights(), losses))
    (w_f, l_f), (w_r, l_r) = finals
    assert np.mean(l_f[-20:]) < 0.5 * np.mean(l_f[:20])  # it learned
    np.testing.assert_allclose(l_f, l_r, rtol=2e-3, atol=1e-5)
    for a, b in zip(w_f, w_r):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_auto_falls_back_and_fused_refuses():
    fused, ref = _model_pair()
    auto = nr.RNN(fused.config.replace(loop="auto"))
    auto.load_state_dict(fused.state_dict())
    u = torch.randn(2, 5, 3)
    # bfloat16 has no fused form: auto falls back to the reference loop (same result)
    auto_b, ref_b = auto.to(torch.bfloat16), ref.to(torch.bfloat16)
    torch.testing.assert_close(auto_b(u).outputs, ref_b(u).outputs)
    with pytest.raises(ValueError, match="loop='fused' cannot run here: dtype torch.bfloat16"):
        fused.to(torch.bfloat16)(u)
    # alpha that requires a gradient
    dyn = Dynamics("current", "relu", torch.full((4,), 0.2, requires_grad=True))
    reason = fused_unsupported_reason(dyn, torch.zeros(4), torch.zeros(1, 2, 4), torch.zeros(4, 4))
    assert reason == "alpha requires a gradient"


def test_torch_func_transforms_use_reference():
    fused, ref = _model_pair(activation="tanh")
    auto = nr.RNN(fused.config.replace(loop="auto")).eval()
    auto.load_state_dict(fused.state_dict())
    ref.eval()
    u = torch.randn(1, 4, 3)

    def final_state(model, x0):
        return model(u, initial_state=x0).states[0, -1]

    x0 = torch.randn(20) * 0.1
    j_auto = torch.func.jacrev(lambda x: final_state(auto, x))(x0)
    j_ref = torch.func.jacrev(lambda x: final_state(ref, x))(x0)
    torch.testing.assert_close(j_auto, j_ref)


def test_no_grad_forward_matches():
    fused, ref = _model_pair(form="rate", activation="relu")
    u = torch.randn(3, 10, 3)
    with torch.no_grad():
        torch.testing.assert_close(fused(u).rates, ref(u).rates, rtol=1e-5, atol=1e-6)
    with torch.inference_mode():
        torch.testing.assert_close(fused(u).states, ref(u).states, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "args, match",
    [
        (dict(w_rec=torch.zeros(2, 3, 4, 4), drive=torch.zeros(2, 3, 5, 4)), "w_rec must be"),
        (dict(w_rec=torch.zeros(4, 4), drive=torch.zeros(3, 3, 5, 4)), "drive must be \\(batch, time, units\\)"),
        (dict(w_rec=torch.zeros(2, 4, 4), drive=torch.zeros(3, 3, 5, 4)), "drive must be \\(networks"),
        (dict(w_rec=torch.zeros(4, 4), drive=torch.zeros(3, 5, 6)), "units dimensions disagree"),
        (dict(w_rec=torch.zeros(4, 4), drive=torch.zeros(3, 5, 4, dtype=torch.float64)), "mixed dtypes"),
        (dict(w_rec=torch.zeros(4, 4), drive=torch.zeros(3, 0, 4)), "no time steps"),
        (dict(w_rec=torch.zeros(4, 4), drive=torch.zeros(3, 5, 4), x0=torch.zeros(2, 4)),
         "initial_state \\(2, 4\\) does not broadcast"),
        (dict(w_rec=torch.zeros(4, 4), drive=torch.zeros(3, 5, 4),
              noise=StepNoise(rec=torch.zeros(3, 4, 4))), "noise of shape"),
    ],
)
def test_bad_arguments_raise(args, match):
    dyn = Dynamics("current", "relu", torch.full((4,), 0.2))
    x0 = args.pop("x0", torch.zeros(4))
    with pytest.raises(ValueError, match=match):
        fused_loop(dyn, x0, args["drive"], args["w_rec"], args.get("noise"))


def test_reused_buffers_never_overwrite_results_still_held():
    """The fused loop reuses large scratch buffers only when nothing holds them."""
    from neurornn.models import _fused_kernels, fused

    dyn = Dynamics("current", "tanh", torch.full((64,), 0.2))
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(64, 64, generator=gen) / 8
    drives = [torch.randn(16, 300, 64, generator=gen) for _ in range(3)]  # 1.2 MB buffers: pooled
    held = [fused_loop(dyn, torch.zeros(64), d, w)[1] for d in drives]
    copies = [h.clone() for h in held]
    for _ in range(3):  # more calls of the same shape while the results are held
        fused_loop(dyn, torch.zeros(64), drives[0] * 2, w)
    for h, c in zip(held, copies):
        torch.testing.assert_close(h, c, rtol=0, atol=0)
    # once released, a buffer is handed out again
    del held
    before = _fused_kernels.pool.empty((16 * 300 * 64,), torch.float32, "cpu")
    ptr = before.data_ptr()
    del before
    again = _fused_kernels.pool.empty((16 * 300 * 64,), torch.float32, "cpu")
    assert again.data_ptr() == ptr
    fused.clear_buffers()


@pytest.mark.parametrize("batch, time", [(1, 7), (4, 1), (1, 1), (3, 9)])
@pytest.mark.parametrize("form", FORMS)
def test_rnn_time_major_rows_equal_reference_at_edge_shapes(form, batch, time):
    """RNN.forward takes its input and readout rows in (time, batch) order with the fused
    loop; outputs and every parameter gradient equal the reference loop's (float64)."""
    fused, ref = _model_pair(form=form, activation="softplus", learn_x0=True, sigma_rec=0.1, sigma_in=0.1)
    fused, ref = fused.double(), ref.double()
    u = torch.randn(batch, time, 3, dtype=torch.float64)
    outs = []
    for model in (fused, ref):
        traj = model(u, generator=torch.Generator().manual_seed(4))
        loss = (traj.outputs**2).sum() + (traj.rates**3).sum() + traj.states.sum()
        model.zero_grad()
        loss.backward()
        outs.append((traj, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}))
    (t_f, g_f), (t_r, g_r) = outs
    for a, b in zip(t_f, t_r):
        assert a.shape == b.shape == (batch, time, a.shape[-1])
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert g_f.keys() == g_r.keys() and "w_rec" in g_f
    for name in g_f:
        torch.testing.assert_close(g_f[name], g_r[name], rtol=1e-10, atol=1e-12, msg=name)


def test_loop_buffers_are_time_major_views():
    """No layout copies: the outputs are (batch, time, units) views of time-major buffers."""
    dyn = Dynamics("current", "tanh", torch.full((6,), 0.3))
    s, r = fused_loop(dyn, torch.zeros(6), torch.randn(4, 5, 6), torch.randn(6, 6) / 3)
    assert r.shape == (4, 5, 6) and r.transpose(0, 1).is_contiguous()
    dyn_e = Dynamics("current", "tanh", torch.full((2, 1, 6), 0.3))
    s, r = fused_loop(dyn_e, torch.zeros(2, 4, 6), torch.randn(2, 4, 5, 6), torch.randn(2, 6, 6) / 3)
    assert r.shape == (2, 4, 5, 6) and r.transpose(1, 2).is_contiguous()  # (networks, time, batch, units)
    assert s.permute(2, 0, 1, 3).is_contiguous()  # GEMM output: (time, networks, batch, units)


@pytest.mark.parametrize("nets", [None, 3])
def test_one_thread_loop_switch_gives_same_results_and_restores_threads(nets, monkeypatch):
    from neurornn.models import fused

    dyn, x0, drive, w_rec, nz = _problem("current", "relu", nets=nets, dtype=torch.float32)
    leaves = _leaves(x0, drive, w_rec, nz)
    results = []
    threads = torch.get_num_threads()
    for flag in (False, True):
        monkeypatch.setattr(fused, "LOOP_ONE_THREAD", flag)
        s, r = fused_loop(dyn, x0, drive, w_rec, nz)
        grads = torch.autograd.grad(_loss(s, r), leaves)
        assert torch.get_num_threads() == threads
        results.append((s.detach(), r.detach(), grads))
    for a, b in zip(results[0][:2] + results[0][2], results[1][:2] + results[1][2]):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
