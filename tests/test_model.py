"""The RNN against an independent NumPy reference, gradcheck, constraints and bad input."""

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.models import ACTIVATION_FUNCTIONS, StepNoise, reference_loop

from numpy_reference import simulate

ACTIVATIONS = sorted(ACTIVATION_FUNCTIONS)


def _config(**kw):
    base = dict(n_inputs=3, n_units=12, n_outputs=2, dt_ms=10.0, tau_ms=50.0, seed=1)
    base.update(kw)
    return nr.RNNConfig(**base)


def _numpy_run(model, inputs, noise=None, input_noise=None):
    w = {k: v.detach().double().numpy() for k, v in model.effective_weights().as_dict().items()}
    alpha = model.alpha.double().numpy()
    u = inputs.double().numpy() + (0 if input_noise is None else input_noise.double().numpy())
    kw = {}
    if noise is not None:
        kw = {k: None if v is None else v.double().numpy() for k, v in noise._asdict().items()}
    return simulate(model.config.form, model.config.activation, alpha, w["w_in"], w["w_rec"], w["b_rec"],
                    w["w_out"], w["b_out"], w["x0"], u, **kw)


@pytest.mark.parametrize("form", ["current", "rate"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_matches_numpy_reference(form, activation):
    cfg = _config(form=form, activation=activation, exc_fraction=0.75, p_connect=0.5, tau_inh_ms=25.0,
                  learn_x0=True)
    model = nr.RNN(cfg).double().eval()
    with torch.no_grad():
        model.b_rec.normal_(0, 0.3)
        model.x0.normal_(0, 0.5)
    inputs = torch.randn(4, 15, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    traj = model(inputs)
    states, rates, outputs = _numpy_run(model, inputs)
    np.testing.assert_allclose(traj.states.detach().numpy(), states, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.rates.detach().numpy(), rates, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.outputs.detach().numpy(), outputs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("form", ["current", "rate"])
def test_noisy_forward_matches_numpy_reference(form):
    cfg = _config(form=form, activation="tanh", sigma_rec=0.1, sigma_in=0.2, sigma_pre=0.05, sigma_post=0.03)
    model = nr.RNN(cfg).double()
    inputs = torch.randn(3, 10, 3, dtype=torch.float64)
    traj = model(inputs, noise=True, generator=torch.Generator().manual_seed(5))
    input_noise, noise = model.draw_noise(3, 10, torch.Generator().manual_seed(5))
    _, rates, outputs = _numpy_run(model, inputs, noise, input_noise)
    np.testing.assert_allclose(traj.rates.detach().numpy(), rates, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(traj.outputs.detach().numpy(), outputs, rtol=1e-10, atol=1e-12)


def test_noise_scaling_and_seeding():
    cfg = _config(n_units=200, sigma_rec=0.5, sigma_in=0.3)
    model = nr.RNN(cfg)
    input_noise, noise = model.draw_noise(64, 50, torch.Generator().manual_seed(0))
    alpha = cfg.dt_ms / cfg.tau_ms
    assert noise.rec.std().item() == pytest.approx(np.sqrt(2 * alpha) * 0.5, rel=0.02)
    assert input_noise.std().item() == pytest.approx(0.3, rel=0.02)
    assert noise.pre is None and noise.post is None
    # rate form scales the noise inside f by sqrt(2 / alpha)
    rate = nr.RNN(cfg.replace(form="rate"))
    _, noise_rate = rate.draw_noise(64, 50, torch.Generator().manual_seed(0))
    assert noise_rate.rec.std().item() == pytest.approx(np.sqrt(2 / alpha) * 0.5, rel=0.02)
    # noise: off in eval, on in training, reproducible under a seed
    x = torch.randn(2, 20, 3)
    model.eval()
    assert torch.equal(model(x).outputs, model(x).outputs)
    model.train()
    a = model(x, generator=torch.Generator().manual_seed(3)).outputs
    b = model(x, generator=torch.Generator().manual_seed(3)).outputs
    c = model(x, generator=torch.Generator().manual_seed(4)).outputs
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert not torch.allclose(model(x, noise=False).outputs, a)


def test_elman_case_equals_torch_rnn():
    """alpha = 1 with tanh is the discrete-time Elman RNN (torch.nn.RNN, Keras SimpleRNN)."""
    cfg = _config(dt_ms=20.0, tau_ms=20.0, activation="tanh")
    model = nr.RNN(cfg).double()
    w = model.effective_weights()
    ref = torch.nn.RNN(3, 12, nonlinearity="tanh", batch_first=True).double()
    with torch.no_grad():
        ref.weight_ih_l0.copy_(w.w_in)
        ref.weight_hh_l0.copy_(w.w_rec)
        ref.bias_ih_l0.copy_(w.b_rec)
        ref.bias_hh_l0.zero_()
    x = torch.randn(5, 30, 3, dtype=torch.float64)
    expected, _ = ref(x)
    torch.testing.assert_close(model(x).rates, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("form", ["current", "rate"])
def test_gradcheck_of_the_loop(form):
    cfg = _config(n_units=5, form=form, activation="softplus", tau_inh_ms=30.0, exc_fraction=0.6)
    model = nr.RNN(cfg).double()
    dyn = model.dynamics
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    drive = torch.randn(2, 6, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    w_rec = (0.5 * torch.randn(5, 5, dtype=torch.float64, generator=gen)).requires_grad_()
    rec = 0.1 * torch.randn(2, 6, 5, dtype=torch.float64, generator=gen)

    def run(x0, drive, w_rec):
        states, rates = reference_loop(dyn, x0, drive, w_rec, StepNoise(rec=rec))
        return states, rates

    assert torch.autograd.gradcheck(run, (x0, drive, w_rec))


def test_gradcheck_through_model_parameters():
    """Gradients reach the raw parameters through masks, |.| and Dale signs."""
    cfg = _config(n_units=6, exc_fraction=0.5, p_connect=0.7, activation="tanh", learn_x0=True)
    model = nr.RNN(cfg).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    names = [n for n, p in model.named_parameters() if p.requires_grad]

    def outputs(*params):
        return torch.func.functional_call(model, dict(zip(names, params)), (x,)).outputs

    leaves = tuple(getattr(model, n).detach().clone().requires_grad_() for n in names)
    assert torch.autograd.gradcheck(outputs, leaves)


def _train_a_bit(model, steps=25, lr=0.05):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    x = torch.randn(8, 20, model.config.n_inputs, generator=torch.Generator().manual_seed(0))
    target = torch.randn(8, 20, model.config.n_outputs, generator=torch.Generator().manual_seed(1))
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x).outputs - target) ** 2).mean()
        loss.backward()
        opt.step()
        yield model.effective_weights()


def test_constraints_hold_after_every_optimiser_step():
    cfg = _config(n_units=20, exc_fraction=0.8, p_connect=0.3, autapses=False,
                  areas={"A": 8, "B": 12}, area_projections=[("A", "A"), ("A", "B"), ("B", "B")],
                  input_areas=["A"], output_areas=["B"], train_b_out=False)
    model = nr.RNN(cfg)
    mask = model.rec_mask.clone()
    sign = model.dale_sign.clone()
    b_out = model.b_out.detach().clone()
    assert (sign[:6] > 0).all() and (sign[6:8] < 0).all()  # A: 6 E, 2 I
    assert (sign[8:18] > 0).all() and (sign[18:] < 0).all()  # B: 10 E (round(9.6)), 2 I
    assert mask[:8, 8:].sum() == 0, "no B -> A projection"
    assert torch.diagonal(mask).sum() == 0, "no autapses"
    for w in _train_a_bit(model):
        assert (w.w_rec[:, sign > 0] >= 0).all() and (w.w_rec[:, sign < 0] <= 0).all()
        assert (w.w_rec[mask == 0] == 0).all()
        assert (w.w_in[8:] == 0).all(), "only area A receives input"
        assert (w.w_out[:, :8] == 0).all(), "only area B is read out"
        assert torch.equal(w.b_out, b_out), "frozen b_out"


def test_given_frozen_identity_input_stays():
    cfg = _config(n_inputs=4, n_units=8, areas={"A": 4, "B": 4}, input_areas=["A"], w_in_init="identity",
                  train_w_in=False)
    model = nr.RNN(cfg)
    expected = torch.cat([torch.eye(4), torch.zeros(4, 4)])
    assert torch.equal(model.effective_weights().w_in, expected)
    for w in _train_a_bit(model, steps=5):
        assert torch.equal(w.w_in, expected)
    given = torch.randn(8, 8) * model.rec_mask
    frozen = nr.RNN(cfg.replace(train_w_rec=False), weights={"w_rec": given})
    for w in _train_a_bit(frozen, steps=5):
        assert torch.equal(w.w_rec, given)


@pytest.mark.parametrize("init", ["gaussian", "gamma", "orthogonal", "kaiming"])
def test_initialisations(init):
    cfg = _config(n_units=200, w_rec_init=init, w_rec_gain=1.0)
    w = nr.RNN(cfg).effective_weights().w_rec
    if init == "orthogonal":
        torch.testing.assert_close(w @ w.T, torch.eye(200), atol=1e-4, rtol=0)
    if init == "gaussian":
        assert w.std().item() == pytest.approx(1 / np.sqrt(200), rel=0.05)
    if init == "gamma":
        assert w.abs().mean().item() == pytest.approx(1 / np.sqrt(200), rel=0.05)  # mean of Gamma(2, g/2sqrtN)
    scaled = nr.RNN(cfg.replace(spectral_radius=1.5, exc_fraction=0.8, p_connect=0.2)).effective_weights().w_rec
    assert torch.linalg.eigvals(scaled.double()).abs().max().item() == pytest.approx(1.5, rel=1e-6)
    # same seed, same weights; other seed, other weights
    assert torch.equal(nr.RNN(cfg).w_rec, nr.RNN(cfg).w_rec)
    assert not torch.equal(nr.RNN(cfg).w_rec, nr.RNN(cfg.replace(seed=2)).w_rec)


def test_step_equals_one_forward_step():
    cfg = _config(activation="tanh", learn_x0=True)
    model = nr.RNN(cfg).double().eval()
    u = torch.randn(4, 1, 3, dtype=torch.float64)
    x0 = torch.randn(4, 12, dtype=torch.float64)
    traj = model(u, initial_state=x0)
    # forward runs the fused loop (loop='auto'): equal to float64 rounding, not bit for bit
    torch.testing.assert_close(model.step(x0, u[:, 0]), traj.states[:, 0], rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(model.readout(model.rates_of(traj.states)), traj.outputs)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"tau_ms": -5.0}, "tau_ms must be > 0, got -5"),
        ({"dt_ms": 0.0}, "dt_ms must be > 0"),
        ({"dt_ms": 200.0}, "dt_ms must be <= tau_ms"),
        ({"exc_fraction": 1.2}, r"exc_fraction must be in \[0, 1\], got 1.2"),
        ({"p_connect": -0.1}, r"p_connect must be in \[0, 1\]"),
        ({"activation": "rellu"}, "did you mean 'relu'"),
        ({"form": "voltage"}, "form must be one of"),
        ({"n_units": 0}, "n_units must be >= 1"),
        ({"areas": {"A": 5, "B": 5}}, "sum to n_units=12"),
        ({"input_areas": ["A"]}, "needs areas"),
        ({"grid_shape": (2, 2, 2)}, "holds 8 units"),
        ({"sigma_rec": -1.0}, "sigma_rec must be >= 0"),
    ],
)
def test_bad_config(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        _config(**kw)


def test_unknown_config_key_suggests():
    with pytest.raises(ValueError, match="unknown model config key 'n_unit'.*did you mean 'n_units'"):
        nr.RNNConfig.from_dict({"n_inputs": 1, "n_unit": 4, "n_outputs": 1})
    cfg = _config()
    assert nr.RNNConfig.from_dict(cfg.to_dict()) == cfg


def test_bad_given_weights_and_inputs():
    cfg = _config(exc_fraction=0.5)
    with pytest.raises(ValueError, match=r"given w_in must have shape \(12, 3\), got \(3, 12\)"):
        nr.RNN(cfg, weights={"w_in": torch.zeros(3, 12)})
    with pytest.raises(ValueError, match="breaks Dale's law"):
        nr.RNN(cfg, weights={"w_rec": -torch.ones(12, 12)})
    with pytest.raises(ValueError, match="unknown weight 'w_hh'"):
        nr.RNN(cfg, weights={"w_hh": torch.zeros(12, 12)})
    model = nr.RNN(cfg)
    with pytest.raises(ValueError, match=r"inputs must have shape \(batch, time, n_inputs=3\), got \(2, 5, 4\)"):
        model(torch.zeros(2, 5, 4))
    with pytest.raises(ValueError, match=r"inputs must have shape"):
        model(torch.zeros(5, 3))
    bad = torch.zeros(2, 5, 3)
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="inputs contain NaN"):
        model(bad)
    with pytest.raises(TypeError, match="inputs must be a torch.Tensor"):
        model(np.zeros((2, 5, 3)))


def test_save_and_load_a_model_and_an_ensemble(tmp_path):
    """RNN.save writes one safetensors file with the config(s); RNN.load gives the same network back."""
    model = nr.RNN(_config(exc_fraction=0.8, sigma_rec=0.1))
    with torch.no_grad():
        model.w_rec.mul_(1.5)
    back = nr.RNN.load(model.save(tmp_path / "net.safetensors"))
    assert back.config == model.config and not back.training
    for (k, a), (_, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), k
    stacked = nr.RNN([_config(seed=s) for s in (0, 1, 2)])
    again = nr.RNN.load(stacked.save(tmp_path / "ens.safetensors"))
    assert again.stacked and again.configs == stacked.configs and torch.equal(again.w_rec, stacked.w_rec)
    model.save(tmp_path / "net.safetensors")  # a model file neurornn wrote is replaced
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="a file neurornn did not write"):
        model.save(tmp_path / "notes.txt")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="is not a model file written by RNN.save"):
        nr.RNN.load(tmp_path / "notes.txt")
    with pytest.raises(IsADirectoryError, match="load_run"):
        nr.RNN.load(tmp_path)


def test_a_run_folder_model_file_loads_with_rnn_load(tmp_path):
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0)
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_units=8, n_outputs=task.n_outputs, dt_ms=task.dt_ms)
    run = nr.train(nr.RNN(cfg), task, nr.TrainConfig(steps=2, progress=False), out=tmp_path / "run", figures=False)
    loaded = nr.RNN.load(tmp_path / "run" / "model.safetensors")
    assert torch.equal(loaded.w_rec, run.model.w_rec)


def test_given_masks_replace_the_drawn_ones_and_hold_through_training_saving_and_history(tmp_path):
    """A connectome-like mask: zero stays zero after every step, and the mask travels with the model."""
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0)
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_units=12, n_outputs=task.n_outputs, dt_ms=task.dt_ms,
                       exc_fraction=0.75, p_connect=0.3, seed=4)
    mask = (torch.rand(12, 12, generator=torch.Generator().manual_seed(0)) < 0.6).float()
    model = nr.RNN(cfg, masks={"w_rec": mask})
    assert torch.equal(model.masks()["w_rec"], mask)
    off = mask == 0

    def check(step, net, info):
        assert torch.all(net.effective_weights().w_rec[off] == 0), step

    run = nr.train(model, task, nr.TrainConfig(steps=12, history_every=4, progress=False), out=tmp_path / "run",
                   figures=False, callback=check)
    assert torch.equal(nr.RNN.load(tmp_path / "run" / "model.safetensors").rec_mask, mask)
    loaded = nr.load_run(tmp_path / "run")
    assert torch.equal(loaded.model.rec_mask, mask)
    for i in range(len(loaded.history)):  # entries the drawn mask forbids are allowed by the given one
        assert torch.equal(loaded.history.model_at(i).rec_mask, mask)
    torch.testing.assert_close(loaded.history.model_at(-1).effective_weights().w_rec,
                               run.model.effective_weights().w_rec)
    # several networks: each its own mask, kept by stack and member
    other = nr.RNN(cfg.replace(seed=5))
    stacked = nr.RNN.stack([model, other])
    assert torch.equal(stacked.member(0).rec_mask, mask) and torch.equal(stacked.member(1).rec_mask, other.rec_mask)
    both = nr.RNN([cfg, cfg.replace(seed=5)], masks=[{"w_rec": mask}, None])
    assert torch.equal(both.rec_mask[0], mask)


@pytest.mark.parametrize("masks, exc, match", [
    ({"w_recc": torch.ones(12, 12)}, ValueError, "unknown mask 'w_recc' \\(did you mean 'w_rec'"),
    ({"w_rec": torch.ones(12, 11)}, ValueError, "mask w_rec must have shape \\(12, 12\\), got \\(12, 11\\)"),
    ({"w_rec": torch.full((12, 12), 0.5)}, ValueError, "must hold only 0 and 1"),
    ({"w_in": "dense"}, TypeError, "mask w_in must be a tensor"),
    ([torch.ones(12, 12)], TypeError, "masks must be a mapping"),
])
def test_bad_masks_are_refused(masks, exc, match):
    with pytest.raises(exc, match=match):
        nr.RNN(_config(), masks=masks)
