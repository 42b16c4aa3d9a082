"""The time-loop backend registry: one place picks the loop; a new backend is one registration."""

import pytest
import torch

import neurornn as nr
from neurornn.models import Backend, backend_names, reference_loop, register_backend, unregister_backend
from neurornn.models.backends import select_backend


def _config(**kw):
    return nr.RNNConfig(**{"n_inputs": 3, "n_units": 12, "n_outputs": 2, "seed": 1, **kw})


@pytest.fixture
def counting_backend():
    """A backend that runs the reference loop, counts its calls and refuses float64."""
    calls = []

    def run(dynamics, x0, drive, w_rec, noise):
        calls.append(tuple(drive.shape))
        return reference_loop(dynamics, x0, drive, w_rec, noise)

    def why_not(dynamics, x0, drive, w_rec, noise):
        return "float64 is not supported" if drive.dtype == torch.float64 else None

    backend = register_backend(Backend("counting", run, why_not), before="fused")
    yield backend, calls
    unregister_backend("counting")


def test_builtin_order_and_auto_choice():
    assert backend_names()[-1] == "reference"
    assert backend_names().index("fused") < backend_names().index("reference")
    model = nr.RNN(_config())
    w = model.effective_weights()
    x0 = w.x0.expand(4, 12)
    drive = torch.zeros(4, 7, 12)
    assert select_backend("auto", model.dynamics, x0, drive, w.w_rec, None).name == "fused"
    # bfloat16 has no fused form: auto falls back to the reference loop; asking for fused says why
    bf = model.dynamics.__class__(model.dynamics.form, model.dynamics.activation, model.alpha.bfloat16())
    args = (x0.bfloat16(), drive.bfloat16(), w.w_rec.bfloat16(), None)
    assert select_backend("auto", bf, *args).name == "reference"
    with pytest.raises(ValueError, match="loop='fused' cannot run here: dtype torch.bfloat16"):
        select_backend("fused", bf, *args)


def test_registered_backend_runs_the_model_and_auto_prefers_it(counting_backend):
    _, calls = counting_backend
    assert backend_names().index("counting") < backend_names().index("fused")
    ref = nr.RNN(_config(loop="reference")).eval()
    mine = nr.RNN(_config(loop="counting")).eval()
    auto = nr.RNN(_config(loop="auto")).eval()
    u = torch.randn(5, 9, 3)
    torch.testing.assert_close(mine(u).outputs, ref(u).outputs, rtol=0, atol=0)
    assert calls == [(5, 9, 12)]
    auto(u)
    assert len(calls) == 2  # auto tries it first
    # its why_not is honoured: auto moves on, an explicit request says why
    auto.double()(u.double())
    assert len(calls) == 2
    with pytest.raises(ValueError, match="loop='counting' cannot run here: float64 is not supported"):
        mine.double()(u.double())


def test_registry_refuses_bad_backends_and_unknown_loops(counting_backend):
    with pytest.raises(ValueError, match="already registered"):
        register_backend(Backend("counting", reference_loop))
    with pytest.raises(ValueError, match="identifier other than 'auto'"):
        register_backend(Backend("auto", reference_loop))
    with pytest.raises(TypeError, match="must be a neurornn.models.backends.Backend"):
        register_backend(reference_loop)
    with pytest.raises(ValueError, match="built-in backend 'fused' cannot be unregistered"):
        unregister_backend("fused")
    with pytest.raises(ValueError, match="did you mean 'counting'"):
        nr.RNNConfig(n_inputs=1, n_units=2, n_outputs=1, loop="countin")


def test_unregistered_backend_is_no_longer_a_loop():
    register_backend(Backend("temporary", reference_loop))
    assert nr.RNNConfig(n_inputs=1, n_units=2, n_outputs=1, loop="temporary").loop == "temporary"
    unregister_backend("temporary")
    with pytest.raises(ValueError, match="loop must be one of"):
        nr.RNNConfig(n_inputs=1, n_units=2, n_outputs=1, loop="temporary")


def test_noise_is_drawn_where_the_generator_lives():
    """The draw happens on the generator's device, then moves to the model's (CPU here: same values)."""
    model = nr.RNN(_config(sigma_rec=0.1, sigma_in=0.2))
    g = torch.Generator(device="cpu").manual_seed(3)
    input_noise, noise = model.draw_noise(2, 5, g)
    xi = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(input_noise, xi * 0.2, rtol=0, atol=0)
    assert noise.rec.device == model.alpha.device


@pytest.mark.parametrize("name", backend_names())
@pytest.mark.parametrize("form", ["current", "rate"])
def test_every_backend_computes_the_reference_loop(name, form):
    """The contract of a backend: where it runs, it gives the reference loop's trajectory and gradients
    (float64, noise on, one network and several)."""
    for configs in (_config(form=form, sigma_rec=0.1, sigma_post=0.05, loop=name),
                    [_config(form=form, sigma_rec=0.1, sigma_post=0.05, loop=name, seed=s) for s in (1, 2)]):
        model = nr.RNN(configs).double().train()
        ref = nr.RNN(configs if isinstance(configs, nr.RNNConfig) else list(configs)).double().train()
        ref.load_state_dict(model.state_dict())
        ref.configs = tuple(c.replace(loop="reference") for c in ref.configs)
        u = torch.randn(4, 11, 3, dtype=torch.float64)
        gens = (lambda: torch.Generator().manual_seed(9)) if not model.stacked else None
        args = {"generator": gens()} if gens else {"generator": [torch.Generator().manual_seed(9 + e)
                                                                 for e in range(2)]}
        out = model(u, **args).outputs
        args = {"generator": gens()} if gens else {"generator": [torch.Generator().manual_seed(9 + e)
                                                                 for e in range(2)]}
        expected = ref(u, **args).outputs
        torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
        out.square().sum().backward()
        expected.square().sum().backward()
        for p, q in zip(model.parameters(), ref.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-11)
