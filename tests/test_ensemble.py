"""Ensembles: E networks at once equal E separate networks and E separate ``train`` runs."""

import csv
import json

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.models.ensemble import RNNEnsemble
from neurornn.runs import load_run
from neurornn.training import TrainConfig, train
from neurornn.training.ensemble import train_ensemble
from neurornn.training.ensemble_configs import ensemble_configs


@pytest.fixture(scope="module")
def task():
    return nr.tasks.make("perceptual_decision_making")


def _base(task, **kw):
    base = dict(n_inputs=task.n_inputs, n_units=16, n_outputs=task.n_outputs, dt_ms=task.dt_ms)
    base.update(kw)
    return nr.RNNConfig(**base)


def _configs(**kw):
    base = dict(n_inputs=3, n_units=10, n_outputs=2, dt_ms=10.0, tau_ms=50.0)
    n = len(next(iter(kw.values())))
    return [nr.RNNConfig(**{**base, **{k: v[i] for k, v in kw.items()}}) for i in range(n)]


# ---------------------------------------------------------------------- the module
@pytest.mark.parametrize("form", ["current", "rate"])
def test_ensemble_forward_equals_members(form):
    configs = _configs(seed=[0, 1, 2], form=[form] * 3, exc_fraction=[0.8] * 3, tau_inh_ms=[20.0, 50.0, 30.0],
                       p_connect=[1.0, 0.5, 0.8], sigma_rec=[0.1, 0.0, 0.2], sigma_in=[0.05, 0.0, 0.1],
                       sigma_post=[0.0, 0.0, 0.05])
    ens = RNNEnsemble(configs).train()
    nets = [nr.RNN(c).train() for c in configs]
    u = torch.randn(4, 9, 3)
    traj = ens(u, generators=[torch.Generator().manual_seed(7 + e) for e in range(3)])
    for e, net in enumerate(nets):
        ref = net(u, generator=torch.Generator().manual_seed(7 + e))
        torch.testing.assert_close(traj.outputs[e], ref.outputs, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(traj.states[e], ref.states, rtol=1e-5, atol=1e-6)
        for a, b in zip(ens.effective_weights(), net.effective_weights()):
            torch.testing.assert_close(a[e], b, rtol=0, atol=0)
        for a, b in zip(ens.member(e).effective_weights(), net.effective_weights()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    # per-network inputs (networks, batch, time, inputs) and gradients equal the members'
    u4 = torch.randn(3, 2, 6, 3)
    ens.eval()
    out = ens(u4).outputs
    (out**2).sum().backward()
    for e, net in enumerate(nets):
        net.eval()
        (net(u4[e]).outputs ** 2).sum().backward()
        torch.testing.assert_close(ens.w_rec.grad[e], net.w_rec.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(ens.w_in.grad[e], net.w_in.grad, rtol=1e-4, atol=1e-6)


def test_shared_generator_draws_once_and_scales_per_network():
    configs = _configs(seed=[0, 1], sigma_rec=[0.1, 0.3])
    ens = RNNEnsemble(configs)
    g = torch.Generator().manual_seed(3)
    _, noise = ens.draw_noise(2, 5, [g, g])
    torch.testing.assert_close(noise.rec[1], noise.rec[0] * 3, rtol=1e-5, atol=1e-7)
    mixed = RNNEnsemble(_configs(seed=[0, 1], sigma_rec=[0.1, 0.0]))
    with pytest.raises(ValueError, match="share a generator but not the same noise terms"):
        mixed.draw_noise(2, 5, [g, g])


@pytest.mark.parametrize(
    "members, match",
    [
        (_configs(seed=[0, 1], n_units=[10, 12]), "same n_units"),
        (_configs(seed=[0, 1], activation=["relu", "tanh"]), "same activation"),
        (_configs(seed=[0, 1], exc_fraction=[0.8, None]), "Dale's law on or all off"),
        ([], "at least one network"),
    ],
)
def test_ensemble_rejects_incompatible_members(members, match):
    with pytest.raises(ValueError, match=match):
        RNNEnsemble(members)


def test_ensemble_rejects_bad_inputs():
    ens = RNNEnsemble(_configs(seed=[0, 1]))
    with pytest.raises(ValueError, match="inputs must have shape"):
        ens(torch.zeros(3, 2, 5, 3))
    with pytest.raises(TypeError, match="members must be"):
        RNNEnsemble(_configs(seed=[0])[0])
    with pytest.raises(ValueError, match="network index"):
        ens.member(5)


# ---------------------------------------------------------------------- training
def _compare(ens_run, separate, *, atol=1e-5):
    """An ensemble network and its separate run: same weights, metrics, summary."""
    for a, b in zip(ens_run.model.effective_weights(), separate.model.effective_weights()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=atol)
    assert ens_run.metrics["step"].tolist() == separate.metrics["step"].tolist()
    for col in ("loss", "eval_loss", "accuracy", "grad_norm"):
        np.testing.assert_allclose(ens_run.metrics[col], separate.metrics[col], rtol=1e-4, atol=1e-5,
                                   err_msg=col)
    for key in ("steps", "stopped_because", "seed", "model_seed"):
        assert ens_run.summary[key] == separate.summary[key], key
    assert ens_run.history.steps == separate.history.steps


def test_ensemble_equals_separate_train_runs(task):
    """Different model seeds, train seeds, learning rates, clipping, regulariser strengths,
    noise levels and stop criteria: every network ends as its own ``train`` run."""
    base = _base(task, sigma_rec=0.05)
    tc = TrainConfig(steps=40, batch_size=8, eval_every=10, eval_batch_size=32, history_every=20,
                     checkpoint_every=0, progress=False, acc_criterion=False,
                     regularizers=({"kind": "l2_rates", "strength": 1e-3},))
    models, trains = ensemble_configs(base, tc, {
        "model.seed": [0, 1, 2, 3],
        "model.sigma_rec": [0.05, 0.05, 0.0, 0.1],
        "train.seed": [0, 0, 0, 1],
        "train.learning_rate": [1e-3, 3e-3, 1e-3, 1e-2],
        "train.grad_clip": [1.0, 0.1, None, 1.0],
        "train.regularizers.0.strength": [0.0, 1e-3, 1e-2, 1e-3],
        "train.loss_criterion": [None, None, 10.0, None],  # network 2 stops at its first evaluation
        "train.steps": [40, 40, 40, 30],
    })
    result = train_ensemble(models, task, trains)
    assert len(result) == 4
    assert result[2].summary["stopped_because"] == "loss_criterion" and result[2].summary["steps"] == 10
    assert result[3].summary["steps"] == 30
    for e in range(4):
        separate = train(nr.RNN(models[e]), task, trains[e])
        _compare(result[e], separate)
    # they learned something: the loss fell
    assert result[1].metrics["loss"][-1] < result[1].metrics["loss"][1]


def test_ensemble_sgd_momentum_equals_separate_runs(task):
    base = _base(task, activation="tanh")
    tc = TrainConfig(steps=15, batch_size=4, optimizer="sgd", eval_every=5, eval_batch_size=16,
                     history_every=0, checkpoint_every=0, progress=False, acc_criterion=False)
    models, trains = ensemble_configs(base, tc, {"model.seed": [3, 4], "train.momentum": [0.0, 0.9],
                                                 "train.learning_rate": [0.05, 0.02]})
    result = train_ensemble(models, task, trains)
    for e in range(2):
        _compare(result[e], train(nr.RNN(models[e]), task, trains[e]))


def test_ensemble_writes_one_run_folder_per_network(task, tmp_path):
    base = _base(task)
    tc = TrainConfig(steps=6, batch_size=4, eval_every=3, eval_batch_size=8, history_every=3,
                     checkpoint_every=3, progress=False, acc_criterion=False)
    models, trains = ensemble_configs(base, tc, {"model.seed": [0, 1], "train.learning_rate": [1e-3, 1e-2]})
    out = tmp_path / "ens"
    result = train_ensemble(models, task, trains, out=out, figures=False)
    meta = json.loads((out / "ensemble.json").read_text())
    assert meta["networks"] == ["net_000", "net_001"]
    assert meta["varied"]["model.seed"] == [0, 1]
    with open(out / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == ["net_000", "net_001"]
    for e in range(2):
        run = load_run(out / f"net_{e:03d}")
        assert run.config == trains[e] and run.model.config == models[e]
        assert run.history.steps == [0, 3, 6]
        for a, b in zip(run.model.effective_weights(), result[e].model.effective_weights()):
            torch.testing.assert_close(a, b)
        assert (out / f"net_{e:03d}" / "checkpoints" / "latest.json").is_file()
    # resuming one network with the plain trainer continues it as a separate run would
    resumed = train(nr.RNN(models[1]), task, trains[1].replace(steps=9), out=out / "net_001", resume=True,
                    figures=False)
    straight = train(nr.RNN(models[1]), task, trains[1].replace(steps=9))
    for a, b in zip(resumed.model.effective_weights(), straight.model.effective_weights()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(FileExistsError, match="already exists"):
        train_ensemble(models, task, trains, out=out)


def test_ensemble_configs_and_bad_train_configs(task):
    base = _base(task)
    models, trains = ensemble_configs(base, TrainConfig(progress=False), n=3)
    assert [m.seed for m in models] == [0, 1, 2] and len(trains) == 3
    with pytest.raises(ValueError, match="one value per network"):
        ensemble_configs(base, None, {"model.seed": [0, 1], "train.learning_rate": [1e-3]})
    with pytest.raises(ValueError, match="must start with 'model.' or 'train.'"):
        ensemble_configs(base, None, {"seed": [0, 1]})
    with pytest.raises(ValueError, match="train.regularizers.I.KEY"):
        ensemble_configs(base, None, {"train.regularizers.0.strength": [0, 1]})
    with pytest.raises(ValueError, match="give n"):
        ensemble_configs(base, None)
    with pytest.raises(ValueError, match="unknown"):
        ensemble_configs(base, None, {"model.n_unit": [1, 2]})
    tcs = [TrainConfig(batch_size=4), TrainConfig(batch_size=8)]
    with pytest.raises(ValueError, match="same train batch_size"):
        train_ensemble(models[:2], task, tcs)
    with pytest.raises(ValueError, match="one TrainConfig per network"):
        train_ensemble(models, task, tcs)


def test_parse_vary_and_grid(task):
    from neurornn.training.ensemble_configs import parse_vary

    vary = parse_vary(["model.seed=range(2, 5)", "train.learning_rate=[1e-3, 3e-3, 1e-2]"])
    assert vary == {"model.seed": [2, 3, 4], "train.learning_rate": [1e-3, 3e-3, 1e-2]}
    base = _base(task)
    models, trains = ensemble_configs(base, TrainConfig(progress=False),
                                      {"train.learning_rate": [1e-3, 1e-2], "model.sigma_rec": [0.0, 0.1]},
                                      n=2, grid=True)
    combos = [(t.learning_rate, m.sigma_rec, m.seed) for m, t in zip(models, trains)]
    assert len(set(combos)) == 8 and {c[2] for c in combos} == {0, 1}
    for bad, match in [(["seed=[1]"], "must start with"), (["model.seed=5"], "expected a list"),
                       (["model.seed=[]"], "no values"), (["model.seed"], "expects section.key")]:
        with pytest.raises(ValueError, match=match):
            parse_vary(bad)


def test_cli_ensemble(tmp_path, capsys):
    from neurornn.cli import main

    out = tmp_path / "cli_ens"
    code = main(["train", "--vary", "model.seed=range(2)", "train.learning_rate=[1e-3,1e-2]",
                 "--set", "train.steps=4", "train.eval_every=2", "train.batch_size=4", "train.eval_batch_size=8",
                 "model.n_units=8", "--out", str(out), "--quiet", "--no-figures"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "net_000" in printed and "net_001" in printed
    runs = [load_run(out / f"net_{i:03d}") for i in range(2)]
    assert [r.config.learning_rate for r in runs] == [1e-3, 1e-2]
    assert [r.model.config.seed for r in runs] == [0, 1]
    assert main(["train", "--ensemble", "0", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "--ensemble must be >= 1" in capsys.readouterr().err


def test_shared_inputs_gradients_equal_members_float64():
    """Shared (batch, time, inputs) trials: the ensemble's input and readout GEMMs in (time,
    batch) row order give every member's outputs and parameter gradients (float64)."""
    configs = _configs(seed=[0, 1, 2], exc_fraction=[0.8] * 3, tau_inh_ms=[20.0, 50.0, 30.0], learn_x0=[True] * 3)
    ens = RNNEnsemble(configs).double().eval()
    nets = [nr.RNN(c).double().eval() for c in configs]
    with torch.no_grad():
        for p in (ens.b_rec, ens.b_out, ens.x0):
            p.normal_(0, 0.3)
    for e, net in enumerate(nets):
        net.load_state_dict({k: v[e] for k, v in ens.state_dict().items()})
    u = torch.randn(4, 7, 3, dtype=torch.float64)
    traj = ens(u)
    assert traj.rates.transpose(1, 2).is_contiguous()  # the fused loop's (networks, time, batch, units)
    (traj.outputs**2).sum().backward()
    for e, net in enumerate(nets):
        ref = net(u)
        torch.testing.assert_close(traj.outputs[e], ref.outputs, rtol=1e-12, atol=1e-12)
        (ref.outputs**2).sum().backward()
        for name, p in net.named_parameters():
            torch.testing.assert_close(getattr(ens, name).grad[e], p.grad, rtol=1e-10, atol=1e-12, msg=name)


class _TensorScores(nr.tasks.Task):
    """Perceptual decision making whose evaluate() returns tensors, a bool and a per-trial tensor."""

    name = "tensor_scores_pdm"
    description = "PDM with tensor scores (a test task)"

    def __new__(cls, *args, **kwargs):  # a thin wrapper around the registered task
        inner = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0)
        original = inner.evaluate

        def evaluate(outputs, batch):
            base = original(outputs, batch)
            return {"accuracy": torch.tensor(base["accuracy"]), "above_chance": base["accuracy"] > 0.4,
                    "per_trial": outputs[:, -1, 0], "label": "text is left out"}

        inner.evaluate = evaluate
        return inner


def test_scores_that_are_not_plain_numbers_are_read_the_same_way_everywhere(tmp_path):
    """Issue 11, bug 1: tensor and bool scores were dropped by train and crashed train_ensemble."""
    task = _TensorScores()
    tc = TrainConfig(steps=6, batch_size=8, eval_every=3, eval_batch_size=16, checkpoint_every=0, progress=False,
                     acc_criterion=False)
    separate = train(nr.RNN(_base(task)), task, tc)
    for column in ("accuracy", "above_chance", "per_trial"):
        assert column in separate.metrics, column
    assert "label" not in separate.metrics
    result = train_ensemble([_base(task)], task, [tc])
    _compare(result[0], separate)
    np.testing.assert_allclose(result[0].metrics["per_trial"], separate.metrics["per_trial"], rtol=1e-4, atol=1e-5)
    scores = task.scores(separate.model(task.batch(4, torch.Generator().manual_seed(0)).inputs).outputs,
                         task.batch(4, torch.Generator().manual_seed(0)))
    assert set(scores) == {"accuracy", "above_chance", "per_trial"} and all(isinstance(v, float) for v in scores.values())


def test_a_regulariser_that_reads_the_model_trains_the_ensembles_weights():
    """Issue 11, bug 2: the ensemble gave regularisers a copy of each network made at the start,
    so a term reading ``model.w_rec`` had no gradient (|W_rec|^2 ended at 22.9 against 3.1)."""
    from neurornn.config.regularizer_kinds import _FACTORIES, register_regularizer

    if "test_parameter_l2" not in _FACTORIES:
        @register_regularizer("test_parameter_l2")
        def _parameter_l2(model, strength):
            return lambda m, weights, trajectory: strength * m.w_rec.pow(2).sum()

    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0)
    cfg = _base(task, n_units=32)
    tc = TrainConfig(steps=30, batch_size=8, eval_every=10, eval_batch_size=16, checkpoint_every=0, progress=False,
                     acc_criterion=False, learning_rate=1e-2, regularizers=({"kind": "test_parameter_l2", "strength": 1.0},))
    separate = train(nr.RNN(cfg), task, tc)
    result = train_ensemble([cfg], task, [tc])
    _compare(result[0], separate)
    before = nr.RNN(cfg).w_rec.detach().pow(2).sum()
    after = result[0].model.w_rec.detach().pow(2).sum()
    assert after < 0.5 * before
    torch.testing.assert_close(after, separate.model.w_rec.detach().pow(2).sum(), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------- one class
def test_ensemble_is_one_rnn_of_several_networks():
    configs = _configs(seed=[0, 1, 2], sigma_rec=[0.1, 0.0, 0.2])
    model = nr.RNN(configs)
    assert isinstance(RNNEnsemble(configs), nr.RNN) and model.stacked and model.n_networks == 3
    assert tuple(model.w_rec.shape) == (3, 10, 10) and not nr.RNN(configs[0]).stacked
    for a, b in zip(model.state_dict().values(), RNNEnsemble(configs).state_dict().values()):
        assert torch.equal(a, b)
    nets = [nr.RNN(c) for c in configs]
    with torch.no_grad():
        nets[1].w_rec.mul_(2)
    stacked = nr.RNN.stack(nets)
    torch.testing.assert_close(stacked.w_rec[1], nets[1].w_rec, rtol=0, atol=0)
    back = stacked.member(1)
    assert not back.stacked and back.config == configs[1]
    torch.testing.assert_close(back.w_rec, nets[1].w_rec, rtol=0, atol=0)
    # the analysis entry points (step, rates_of, readout) agree with each network's own
    state = torch.randn(3, 4, 10)
    u = torch.randn(3, 4, 3)
    for e, net in enumerate(nets):
        torch.testing.assert_close(stacked.step(state, u)[e], net.step(state[e], u[e]), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(stacked.readout(state)[e], net.readout(state[e]), rtol=1e-6, atol=1e-6)
    with pytest.raises(TypeError, match="one generator per network"):
        stacked.train()(torch.zeros(2, 5, 3), generator=torch.Generator())
    assert "3 networks x" in repr(stacked)


def test_analyses_take_one_network_of_several():
    from neurornn.analysis import record_activity

    model = nr.RNN(_configs(seed=[0, 1]))
    with pytest.raises(ValueError, match=r"holds 2 networks; analyses take one: model.member\(i\)"):
        record_activity(model, nr.tasks.make("perceptual_decision_making").batch(4))


def test_ensemble_interrupted_and_resumed_equals_uninterrupted(task, tmp_path):
    """Ctrl-C (a callback raising KeyboardInterrupt) checkpoints every network; resume=True continues them."""
    models = [_base(task, seed=s, sigma_rec=0.05) for s in (0, 1)]
    tcs = [TrainConfig(steps=30, batch_size=8, eval_every=10, eval_batch_size=16, checkpoint_every=10, seed=s,
                       progress=False, acc_criterion=False) for s in (3, 3)]
    whole = train_ensemble(models, task, tcs, out=tmp_path / "whole", figures=False)

    def stop_at_15(step, model, info):
        assert model.n_networks == 2 and info["loss"].shape == (2,)
        if step == 15:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_ensemble(models, task, tcs, out=tmp_path / "cut", figures=False, callback=stop_at_15)
    assert json.loads((tmp_path / "cut" / "net_001" / "summary.json").read_text())["stopped_because"] == "interrupted"
    resumed = train_ensemble(models, task, tcs, out=tmp_path / "cut", resume=True, figures=False)
    for a, b in zip(resumed, whole):
        assert a.summary["resumed_from_step"] == 15 and a.summary["steps"] == 30
        for x, y in zip(a.model.effective_weights(), b.model.effective_weights()):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
        assert a.metrics["step"].tolist() == b.metrics["step"].tolist()
        np.testing.assert_array_equal(a.metrics["eval_loss"], b.metrics["eval_loss"])
    with open(tmp_path / "cut" / "summary.csv") as f:
        assert [r["stopped_because"] for r in csv.DictReader(f)] == ["step_budget", "step_budget"]
    # networks that stop at different steps: one is done when the others are cut; resume finishes them
    staggered = [tcs[0].replace(steps=10), tcs[1]]
    whole = train_ensemble(models, task, staggered, out=tmp_path / "whole2", figures=False)
    with pytest.raises(KeyboardInterrupt):
        train_ensemble(models, task, staggered, out=tmp_path / "stag", figures=False, callback=stop_at_17)
    resumed = train_ensemble(models, task, staggered, out=tmp_path / "stag", resume=True, figures=False)
    assert [r.summary["steps"] for r in resumed] == [10, 30]
    for a, b in zip(resumed, whole):
        for x, y in zip(a.model.effective_weights(), b.model.effective_weights()):
            torch.testing.assert_close(x, y, rtol=0, atol=0)


def stop_at_17(step, model, info):
    if step == 17:
        raise KeyboardInterrupt


def test_a_diverging_network_stops_alone_and_the_others_train_on(task):
    """One network's non-finite loss or gradient stops that network only; the other ends as its own run."""
    models = [_base(task, seed=s) for s in (0, 1)]
    tcs = [TrainConfig(steps=25, batch_size=8, eval_every=5, eval_batch_size=16, progress=False, seed=2,
                       acc_criterion=False, learning_rate=lr, grad_clip=None) for lr in (1e-2, 1e9)]
    with pytest.warns(RuntimeWarning, match="network net_001: non-finite loss or gradient"):
        result = train_ensemble(models, task, tcs, figures=False)
    assert result[1].summary["stopped_because"] == "non_finite_loss"
    assert all(torch.isfinite(w).all() for w in result[1].model.effective_weights())
    alone = train(nr.RNN(models[0]), task, tcs[0])
    _compare(result[0], alone)
