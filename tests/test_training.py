"""The trainer: losses, TrainConfig, regularisers, stop criteria, NaN handling, history,
checkpoint/resume, reproducibility, bad inputs, and a real train-to-criterion run."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.training import (
    TrainConfig,
    evaluate,
    make_generators,
    masked_cross_entropy,
    masked_mse,
    task_loss,
    train,
)


def _params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def _assert_same_params(a, b):
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.equal(pa[k], pb[k]), k


# ---------------------------------------------------------------------- losses
def _random_case(seed=0, b=4, t=7, k=3):
    g = torch.Generator().manual_seed(seed)
    out = torch.randn(b, t, k, generator=g, dtype=torch.float64)
    tgt = torch.softmax(torch.randn(b, t, k, generator=g, dtype=torch.float64), -1)
    mask = (torch.rand(b, t, generator=g, dtype=torch.float64) > 0.4).double() * 2.0  # weights 0 or 2
    return out, tgt, mask


def test_mse_matches_numpy():
    out, tgt, mask = _random_case()
    o, z, m = out.numpy(), tgt.numpy(), mask.numpy()
    expected = sum(m[b, t] * np.mean((o[b, t] - z[b, t]) ** 2) for b in range(4) for t in range(7)) / m.sum()
    assert math.isclose(float(masked_mse(out, tgt, mask)), expected, rel_tol=1e-12)
    assert math.isclose(float(task_loss("mse", out, tgt, mask)), expected, rel_tol=1e-12)


def test_cross_entropy_matches_numpy_soft_targets():
    out, tgt, mask = _random_case(1)
    o, z, m = out.numpy(), tgt.numpy(), mask.numpy()
    total = 0.0
    for b in range(4):
        for t in range(7):
            logp = o[b, t] - np.log(np.exp(o[b, t]).sum())
            total += m[b, t] * -(z[b, t] * logp).sum()
    expected = total / m.sum()
    assert math.isclose(float(masked_cross_entropy(out, tgt, mask)), expected, rel_tol=1e-12)


def test_cross_entropy_one_hot_equals_torch_on_masked_steps():
    out, _, mask = _random_case(2)
    labels = torch.randint(0, 3, (4, 7), generator=torch.Generator().manual_seed(3))
    onehot = torch.nn.functional.one_hot(labels, 3).double()
    binary = (mask > 0).double()
    ref = torch.nn.functional.cross_entropy(out[binary > 0], labels[binary > 0])
    assert torch.allclose(task_loss("cross_entropy", out, onehot, binary), ref, rtol=1e-12)


@pytest.mark.parametrize("kind", ["mse", "cross_entropy"])
def test_losses_ignore_masked_out_steps(kind):
    out, tgt, mask = _random_case(4)
    changed = out.clone()
    changed[mask == 0] += 100.0
    assert torch.equal(task_loss(kind, out, tgt, mask), task_loss(kind, changed, tgt, mask))
    changed2 = out.clone()
    changed2[..., 0][mask > 0] += 1.0  # one channel (softmax ignores a common shift)
    assert not torch.equal(task_loss(kind, out, tgt, mask), task_loss(kind, changed2, tgt, mask))


def test_task_loss_bad_inputs():
    out, tgt, mask = _random_case()
    with pytest.raises(ValueError, match="loss must be one of"):
        task_loss("mae", out, tgt, mask)
    with pytest.raises(ValueError, match="same shape"):
        task_loss("mse", out, tgt[..., :2], mask)
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, time\)"):
        task_loss("mse", out, tgt, mask[:, :3])


# ---------------------------------------------------------------------- TrainConfig
def test_train_config_round_trip():
    cfg = TrainConfig(steps=10, regularizers=[{"kind": "l2_rates", "strength": 1e-3}], acc_criterion=False,
                      loss_criterion=0.1, grad_clip=None, optimizer="sgd", momentum=0.9)
    again = TrainConfig.from_dict(cfg.to_dict())
    assert again == cfg
    assert again.regularizers == ({"kind": "l2_rates", "strength": 1e-3},)
    assert cfg.replace(steps=20).steps == 20


def test_train_config_unknown_key_suggests():
    with pytest.raises(ValueError, match=r"unknown train config key 'learning_rat'.*did you mean 'learning_rate'"):
        TrainConfig.from_dict({"learning_rat": 0.1})
    with pytest.raises(ValueError, match="did you mean 'steps'"):
        TrainConfig().replace(step=3)
    with pytest.raises(TypeError, match="must be a mapping"):
        TrainConfig.from_dict([("steps", 3)])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"steps": -1}, ValueError, "steps must be >= 0"),
        ({"steps": 2.5}, TypeError, "steps must be an integer"),
        ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
        ({"learning_rate": 0}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": "fast"}, TypeError, "learning_rate must be a finite number"),
        ({"optimizer": "adma"}, ValueError, "optimizer must be one of.*did you mean 'adam'"),
        ({"adam_eps": -1e-8}, ValueError, "adam_eps must be > 0"),
        ({"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\)"),
        ({"grad_clip": -1.0}, ValueError, "grad_clip must be > 0"),
        ({"loss": "mae"}, ValueError, "loss must be one of"),
        ({"acc_criterion": 1.5}, ValueError, r"acc_criterion must be in \[0, 1.0\]"),
        ({"acc_criterion": True}, TypeError, "acc_criterion must be a number, None"),
        ({"loss_criterion": -0.1}, ValueError, "loss_criterion must be in >= 0"),
        ({"regularizers": {"kind": "l2_rates"}}, TypeError, "regularizers must be a list"),
        ({"regularizers": [{"kind": "l2_rate", "strength": 1.0}]}, ValueError, "did you mean 'l2_rates'"),
        ({"regularizers": [{"strength": 1.0}]}, ValueError, r"regularizers\[0\] must be a mapping with a 'kind'"),
        ({"regularizers": [{"kind": "l2_rates"}]}, ValueError, "needs a 'strength'"),
        ({"regularizers": [{"kind": "l2_rates", "strength": -1}]}, ValueError, "strength must be a number >= 0"),
        ({"eval_every": 0}, ValueError, "eval_every must be >= 1"),
        ({"eval_batch_size": 0}, ValueError, "eval_batch_size must be >= 1"),
        ({"history_every": -1}, ValueError, "history_every must be >= 0"),
        ({"checkpoint_every": -5}, ValueError, "checkpoint_every must be >= 0"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"device": "gpu"}, ValueError, "device must be one of"),
        ({"progress": "yes"}, TypeError, "progress must be True or False"),
        ({"eval_noise": 1}, TypeError, "eval_noise must be True or False"),
    ],
)
def test_train_config_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**kwargs)


def test_device_resolution():
    assert TrainConfig(device="auto").resolved_device() in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            TrainConfig(device="cuda").resolved_device()


# ---------------------------------------------------------------------- train: bad inputs
def test_train_bad_inputs(small_task, small_model_config, fast_train_config, tmp_path):
    model = nr.RNN(small_model_config)
    with pytest.raises(TypeError, match="model must be a neurornn.RNN"):
        train("model", small_task, fast_train_config)
    with pytest.raises(TypeError, match="task must be a neurornn.tasks.Task"):
        train(model, "perceptual_decision_making", fast_train_config)
    with pytest.raises(TypeError, match="config must be a TrainConfig"):
        train(model, small_task, {"steps": 3})
    with pytest.raises(ValueError, match="model n_inputs=4 but task"):
        train(nr.RNN(small_model_config.replace(n_inputs=4)), small_task, fast_train_config)
    with pytest.raises(ValueError, match="model n_outputs=2 but task"):
        train(nr.RNN(small_model_config.replace(n_outputs=2)), small_task, fast_train_config)
    with pytest.raises(ValueError, match="model dt_ms=10.0 but task .* dt_ms=20.0"):
        train(nr.RNN(small_model_config.replace(dt_ms=10.0)), small_task, fast_train_config)
    with pytest.raises(ValueError, match="resume=True needs out"):
        train(model, small_task, fast_train_config, resume=True)
    frozen = small_model_config.replace(train_w_in=False, train_w_rec=False, train_b_rec=False,
                                        train_w_out=False, train_b_out=False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(nr.RNN(frozen), small_task, fast_train_config)
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        train(model, small_task, fast_train_config, out=tmp_path / "nothing", resume=True)


def test_existing_run_folder_is_not_overwritten(small_task, small_model_config, fast_train_config, tmp_path):
    cfg = fast_train_config.replace(steps=2)
    out = tmp_path / "run"
    train(nr.RNN(small_model_config), small_task, cfg, out=out, figures=False)
    before = (out / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="already exists"):
        train(nr.RNN(small_model_config.replace(seed=1)), small_task, cfg, out=out)
    assert (out / "model.safetensors").read_bytes() == before
    run = train(nr.RNN(small_model_config.replace(seed=1)), small_task, cfg, out=out, overwrite=True, figures=False)
    assert (out / "model.safetensors").read_bytes() != before
    assert run.summary["model_seed"] == 1


# ---------------------------------------------------------------------- regularisers in the loss
def test_regularizers_compose_and_are_logged(small_task, small_model_config):
    specs = ({"kind": "l2_rates", "strength": 0.5}, {"kind": "l1_weights", "strength": 0.01},
             {"kind": "l1_weights", "strength": 0.02, "matrices": ["w_in", "w_out"]},
             {"kind": "l1_rates", "strength": 0.3}, {"kind": "l2_weights", "strength": 0.1})
    cfg = TrainConfig(steps=1, batch_size=8, eval_every=1, eval_batch_size=8, regularizers=specs,
                      acc_criterion=False, progress=False, seed=3)
    model = nr.RNN(small_model_config)
    # Recompute step 1 independently: same generators, initial weights.
    reference = nr.RNN(small_model_config)
    gens = make_generators(3)
    batch = small_task.batch(8, gens["task"])
    reference.train()
    with torch.no_grad():
        traj = reference(batch.inputs, generator=gens["noise"])
        w = reference.effective_weights()
        main = masked_cross_entropy(traj.outputs, batch.targets, batch.mask)
        l2 = 0.5 * (traj.rates**2).mean()
        l1 = 0.01 * w.w_rec.abs().sum()
        l1b = 0.02 * (w.w_in.abs().sum() + w.w_out.abs().sum())
        l1r = 0.3 * traj.rates.abs().mean()
        l2w = 0.1 * (w.w_rec**2).sum()

    run = train(model, small_task, cfg)
    row = run.metrics.rows[-1]
    assert row["step"] == 1
    assert math.isclose(row["task_loss"], float(main), rel_tol=1e-5)
    assert math.isclose(row["l2_rates"], float(l2), rel_tol=1e-5)
    assert math.isclose(row["l1_weights"], float(l1), rel_tol=1e-5)
    assert math.isclose(row["l1_weights_2"], float(l1b), rel_tol=1e-5)
    assert math.isclose(row["l1_rates"], float(l1r), rel_tol=1e-5)
    assert math.isclose(row["l2_weights"], float(l2w), rel_tol=1e-5)
    assert math.isclose(row["loss"], float(main + l2 + l1 + l1b + l1r + l2w), rel_tol=1e-5)


def test_l2_rates_regularizer_lowers_rates(small_task, small_model_config):
    base = dict(steps=40, batch_size=16, learning_rate=1e-2, eval_every=40, acc_criterion=False, progress=False)
    plain = train(nr.RNN(small_model_config), small_task, TrainConfig(**base))
    reg = train(nr.RNN(small_model_config), small_task,
                TrainConfig(**base, regularizers=[{"kind": "l2_rates", "strength": 10.0}]))
    batch = small_task.batch(64, torch.Generator().manual_seed(9))
    with torch.no_grad():
        r_plain = plain.model(batch.inputs).rates.pow(2).mean()
        r_reg = reg.model(batch.inputs).rates.pow(2).mean()
    assert r_reg < 0.5 * r_plain


# ---------------------------------------------------------------------- stop criteria
def test_stop_on_accuracy_criterion(small_task, small_model_config, fast_train_config):
    run = train(nr.RNN(small_model_config), small_task, fast_train_config.replace(acc_criterion=0.0))
    assert run.summary["stopped_because"] == "accuracy_criterion"
    assert run.summary["steps"] == fast_train_config.eval_every
    assert run.summary["accuracy_criterion"] == 0.0


def test_task_criterion_is_the_default(small_task, small_model_config, fast_train_config):
    run = train(nr.RNN(small_model_config), small_task, fast_train_config.replace(acc_criterion=None, steps=4))
    assert run.summary["accuracy_criterion"] == small_task.criterion


def test_stop_on_loss_criterion(small_task, small_model_config, fast_train_config):
    run = train(nr.RNN(small_model_config), small_task, fast_train_config.replace(loss_criterion=100.0))
    assert run.summary["stopped_because"] == "loss_criterion"
    assert run.summary["steps"] == 4
    assert run.summary["final_loss"] <= 100.0


def test_stop_on_step_budget(small_task, small_model_config, fast_train_config):
    run = train(nr.RNN(small_model_config), small_task, fast_train_config.replace(steps=10))
    assert run.summary["stopped_because"] == "step_budget"
    assert run.summary["steps"] == 10
    assert [r["step"] for r in run.metrics.rows] == [0, 4, 8, 10]  # final evaluation at the last step
    assert run.path is None


# ---------------------------------------------------------------------- non-finite loss
def test_non_finite_loss_keeps_last_good_weights(small_task, small_model_config, fast_train_config, tmp_path):
    kept = {}

    def corrupt(step, model, info):
        if step == 2:
            kept.update({k: v.detach().clone() for k, v in model.named_parameters()})
        if step == 3:
            with torch.no_grad():
                model.w_out[0, 0] = float("inf")

    cfg = fast_train_config.replace(checkpoint_every=2, steps=20, history_every=1)
    with pytest.warns(RuntimeWarning, match="non-finite loss or gradient at step 4.*weights of step 2"):
        run = train(nr.RNN(small_model_config), small_task, cfg, out=tmp_path / "run", callback=corrupt,
                    figures=False)
    s = run.summary
    assert s["stopped_because"] == "non_finite_loss"
    assert (s["non_finite_step"], s["last_good_step"], s["steps"]) == (4, 2, 2)
    for k, v in run.model.named_parameters():
        assert torch.equal(v, kept[k]), k
    assert math.isfinite(s["final_loss"])
    assert run.history.steps == [0, 1, 2]  # the snapshot of the undone step 3 is dropped
    for a, b in zip(run.history[-1], run.model.effective_weights()):
        assert torch.equal(a, b.detach())
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["stopped_because"] == "non_finite_loss"
    latest = json.loads((tmp_path / "run" / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == 2  # the last good checkpoint is kept, nothing written after the failure
    reloaded = nr.load_run(tmp_path / "run")
    for k, v in reloaded.model.named_parameters():
        assert torch.equal(v, kept[k]), k


def test_diverging_learning_rate_stops_cleanly(small_task, small_model_config):
    cfg = TrainConfig(steps=200, batch_size=8, optimizer="sgd", learning_rate=1e30, grad_clip=None,
                      eval_every=50, eval_batch_size=8, acc_criterion=False, progress=False)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        run = train(nr.RNN(small_model_config), small_task, cfg)
    assert run.summary["stopped_because"] == "non_finite_loss"
    assert run.summary["steps"] < 200
    for p in run.model.parameters():
        assert torch.isfinite(p).all()


# ---------------------------------------------------------------------- history
def test_weight_history(small_task, small_model_config, fast_train_config, tmp_path):
    model = nr.RNN(small_model_config)
    initial = model.effective_weights()
    initial = [w.detach().clone() for w in initial]
    run = train(model, small_task, fast_train_config, out=tmp_path / "run", figures=False)
    hist = run.history
    assert hist.steps == [0, 5, 10, 12]
    for a, b in zip(hist[0], initial):
        assert torch.equal(a, b)
    for a, b in zip(hist[-1], run.model.effective_weights()):
        assert torch.equal(a, b.detach())
    assert not torch.equal(hist[1].w_rec, hist[0].w_rec)
    # model_at rebuilds a network with exactly these effective weights
    batch = small_task.batch(4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(hist.model_at(-1)(batch.inputs).outputs, run.model(batch.inputs).outputs)
    assert not hist.model_at(1).training
    assert hist.stack("w_rec").shape == (4, 16, 16)
    # the same history read back from disk
    loaded = nr.load_run(tmp_path / "run").history
    assert loaded.steps == hist.steps
    for i in range(len(hist)):
        for a, b in zip(loaded[i], hist[i]):
            assert torch.equal(a, b)
    with pytest.raises(IndexError, match="out of range"):
        hist[4]


def test_history_only_start_and_end(small_task, small_model_config, fast_train_config):
    run = train(nr.RNN(small_model_config), small_task, fast_train_config.replace(history_every=0))
    assert run.history.steps == [0, 12]


# ---------------------------------------------------------------------- reproducibility and resume
def test_same_seed_same_weights(small_task, small_model_config, fast_train_config):
    cfg = fast_train_config.replace(steps=8)
    cfg_noise = small_model_config.replace(sigma_rec=0.1)
    a = train(nr.RNN(cfg_noise), small_task, cfg)
    b = train(nr.RNN(cfg_noise), small_task, cfg)
    _assert_same_params(a.model, b.model)
    assert a.metrics.rows[-1]["accuracy"] == b.metrics.rows[-1]["accuracy"]
    c = train(nr.RNN(cfg_noise), small_task, cfg.replace(seed=1))
    assert not torch.equal(a.model.w_rec, c.model.w_rec)


def test_generators_are_independent():
    gens = make_generators(0)
    draws = {k: torch.randn(5, generator=g) for k, g in gens.items()}
    assert len({tuple(v.tolist()) for v in draws.values()}) == 4
    assert torch.equal(torch.randn(5, generator=make_generators(0)["noise"]), draws["noise"])


def test_resume_after_interrupt_is_bit_identical(small_task, small_model_config, fast_train_config, tmp_path):
    cfg = fast_train_config.replace(steps=14, checkpoint_every=5)
    noisy = small_model_config.replace(sigma_rec=0.05)
    full = train(nr.RNN(noisy), small_task, cfg, out=tmp_path / "full", figures=False)

    def stop_at_7(step, model, info):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(nr.RNN(noisy), small_task, cfg, out=tmp_path / "part", callback=stop_at_7, figures=False)
    summary = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert summary["stopped_because"] == "interrupted" and summary["steps"] == 7
    resumed = train(nr.RNN(noisy), small_task, cfg, out=tmp_path / "part", resume=True, figures=False)
    _assert_same_params(full.model, resumed.model)
    assert resumed.summary["resumed_from_step"] == 7
    assert resumed.history.steps == full.history.steps
    assert [r["step"] for r in resumed.metrics.rows] == [r["step"] for r in full.metrics.rows]
    assert np.allclose(resumed.metrics["loss"], full.metrics["loss"], rtol=1e-6, equal_nan=True)
    assert [r["accuracy"] for r in resumed.metrics.rows] == [r["accuracy"] for r in full.metrics.rows]


def test_resume_extends_a_finished_run(small_task, small_model_config, fast_train_config, tmp_path):
    full = train(nr.RNN(small_model_config), small_task, fast_train_config.replace(steps=16))
    train(nr.RNN(small_model_config), small_task, fast_train_config.replace(steps=8), out=tmp_path / "r",
          figures=False)
    more = train(nr.RNN(small_model_config), small_task, fast_train_config.replace(steps=16), out=tmp_path / "r",
                 resume=True, figures=False)
    _assert_same_params(full.model, more.model)


def test_resume_of_a_run_that_met_its_criterion_trains_no_further(small_task, small_model_config,
                                                                   fast_train_config, tmp_path):
    cfg = fast_train_config.replace(acc_criterion=0.0)  # met at the first evaluation (step 4)
    done = train(nr.RNN(small_model_config), small_task, cfg, out=tmp_path / "r", figures=False)
    assert (done.summary["stopped_because"], done.summary["steps"]) == ("accuracy_criterion", 4)
    again = train(nr.RNN(small_model_config), small_task, cfg, out=tmp_path / "r", resume=True, figures=False)
    _assert_same_params(done.model, again.model)
    assert (again.summary["stopped_because"], again.summary["steps"]) == ("accuracy_criterion", 4)
    assert [r["step"] for r in again.metrics.rows] == [0, 4] and again.history.steps == done.history.steps
    # A stricter criterion trains on, exactly as a run that never had the lenient one would.
    strict = cfg.replace(acc_criterion=False)
    on = train(nr.RNN(small_model_config), small_task, strict, out=tmp_path / "r", resume=True, figures=False)
    assert (on.summary["stopped_because"], on.summary["steps"]) == ("step_budget", 12)
    _assert_same_params(train(nr.RNN(small_model_config), small_task, strict).model, on.model)


def test_resume_rejects_a_different_model(small_task, small_model_config, fast_train_config, tmp_path):
    train(nr.RNN(small_model_config), small_task, fast_train_config.replace(steps=2), out=tmp_path / "r",
          figures=False)
    with pytest.raises(ValueError, match="its model config differs"):
        train(nr.RNN(small_model_config.replace(n_units=8)), small_task, fast_train_config, out=tmp_path / "r",
              resume=True)


# ---------------------------------------------------------------------- evaluation, optimisers
def test_evaluate_scores_and_loss(small_task, small_model_config):
    model = nr.RNN(small_model_config).eval()
    scores = evaluate(model, small_task, 32, torch.Generator().manual_seed(0), noise=False)
    batch = small_task.batch(32, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(batch.inputs).outputs
    assert scores["accuracy"] == small_task.evaluate(out, batch)["accuracy"]
    assert math.isclose(scores["eval_loss"], float(masked_cross_entropy(out, batch.targets, batch.mask)),
                        rel_tol=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_optimizers_reduce_the_loss(small_task, small_model_config, optimizer):
    lr = 1e-2 if optimizer == "adam" else 0.5
    cfg = TrainConfig(steps=60, batch_size=32, learning_rate=lr, optimizer=optimizer, momentum=0.0 if optimizer == "adam" else 0.9,
                      eval_every=60, eval_batch_size=128, acc_criterion=False, progress=False)
    run = train(nr.RNN(small_model_config), small_task, cfg)
    assert run.metrics["eval_loss"][-1] < 0.6 * run.metrics["eval_loss"][0]


def test_mse_loss_override(small_task, small_model_config, fast_train_config):
    run = train(nr.RNN(small_model_config), small_task, fast_train_config.replace(loss="mse", steps=4))
    assert run.summary["loss"] == "mse"
    model = run.model
    batch = small_task.batch(16, torch.Generator().manual_seed(0))
    with torch.no_grad():
        value = masked_mse(model(batch.inputs).outputs, batch.targets, batch.mask)
    assert math.isfinite(float(value))


# ---------------------------------------------------------------------- train to criterion (CI)
def test_pdm_trains_to_criterion():
    """A 32-unit Dale network learns perceptual decision making (default timing, ceiling 0.896)
    to >= 0.80 decision-step accuracy in a few hundred steps (a few seconds on one CPU thread)."""
    task = nr.tasks.make("perceptual_decision_making")
    model_cfg = nr.RNNConfig(n_inputs=3, n_outputs=3, **{**task.defaults["model"], "n_units": 32})
    cfg = TrainConfig(steps=800, batch_size=64, learning_rate=1e-2, eval_every=25, acc_criterion=0.8,
                      progress=False, seed=0)
    run = train(nr.RNN(model_cfg), task, cfg)
    assert run.summary["stopped_because"] == "accuracy_criterion", run.summary
    # independent check on fresh trials (different seed), noise-free network
    batch = task.batch(1000, torch.Generator().manual_seed(12345))
    with torch.no_grad():
        acc = task.evaluate(run.model(batch.inputs).outputs, batch)["accuracy"]
    assert acc >= 0.77, acc  # 0.8 criterion minus sampling error of the 256-trial evaluation
    assert acc <= task.accuracy_ceiling() + 0.03


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGINT"), reason="needs SIGINT")
def test_ctrl_c_finishes_the_step_and_checkpoints(small_task, small_model_config, fast_train_config, tmp_path):
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    cfg = fast_train_config.replace(steps=10, checkpoint_every=100)
    full = train(nr.RNN(small_model_config), small_task, cfg)

    def ctrl_c(step, model, info):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train(nr.RNN(small_model_config), small_task, cfg, out=tmp_path / "r", callback=ctrl_c, figures=False)
    assert signal.getsignal(signal.SIGINT) is previous  # the handler is restored
    latest = json.loads((tmp_path / "r" / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == 3
    resumed = train(nr.RNN(small_model_config), small_task, cfg, out=tmp_path / "r", resume=True, figures=False)
    _assert_same_params(full.model, resumed.model)


@pytest.mark.parametrize("threads,n_units,expected", [(None, 16, 1), (2, 16, 2), (None, 300, 3)])
def test_training_threads_are_set_and_restored(small_task, fast_train_config, threads, n_units, expected):
    """``TrainConfig.threads``: None = one thread for small networks, torch's setting for large ones."""
    cfg = nr.RNNConfig(n_inputs=small_task.n_inputs, n_units=n_units, n_outputs=small_task.n_outputs,
                       dt_ms=small_task.dt_ms)
    seen = []
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        train(nr.RNN(cfg), small_task, fast_train_config.replace(steps=2, threads=threads),
              callback=lambda step, model, info: seen.append(torch.get_num_threads()))
        assert seen == [expected, expected]
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads"):
        fast_train_config.replace(threads=0)


def test_a_criterion_above_the_task_ceiling_is_announced(small_model_config, fast_train_config):
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0, coherences=[0.0, 6.4])
    assert task.criterion < task.accuracy_ceiling() < 0.65
    with pytest.warns(RuntimeWarning, match=r"acc_criterion 0.9 is above the best accuracy possible .*0\.619"):
        run = train(nr.RNN(small_model_config), task, fast_train_config.replace(acc_criterion=0.9, steps=4))
    assert run.summary["stopped_because"] == "step_budget"


def test_summary_scores_the_final_network_on_held_out_trials(small_task):
    """final_accuracy is the evaluation that stopped training; heldout_accuracy comes from trials no stopping
    decision saw (its own generators: the run's streams, and so its weights, are unchanged)."""
    from neurornn.training.scoring import evaluate, heldout_generators

    cfg = nr.RNNConfig(n_inputs=small_task.n_inputs, n_units=16, n_outputs=small_task.n_outputs,
                       dt_ms=small_task.dt_ms, sigma_rec=0.05)
    tc = TrainConfig(steps=30, batch_size=16, eval_every=10, eval_batch_size=64, progress=False,
                     acc_criterion=False)
    run = train(nr.RNN(cfg), small_task, tc)
    s = run.summary
    assert s["heldout_trials"] == 64 and 0 <= s["heldout_accuracy"] <= 1
    trials, noise = heldout_generators(tc.seed)
    again = evaluate(run.model, small_task, 64, trials, noise, noise=tc.eval_noise)
    assert again["accuracy"] == s["heldout_accuracy"] and again["eval_loss"] == s["heldout_loss"]
    assert s["final_accuracy"] == run.metrics["accuracy"].tolist()[-1]


def test_a_curriculum_carries_the_network_from_stage_to_stage(tmp_path):
    """Easy coherences first, then hard ones: each stage stops on its own criterion, the weights carry over,
    and metrics and histories join on one step axis."""
    from neurornn.training import Stage, train_curriculum

    easy = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0, coherences=[51.2])
    hard = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0, coherences=[6.4, 12.8])
    cfg = nr.RNNConfig(n_inputs=easy.n_inputs, n_units=16, n_outputs=easy.n_outputs, dt_ms=easy.dt_ms)
    tc = TrainConfig(steps=200, batch_size=32, eval_every=10, eval_batch_size=64, history_every=10,
                     learning_rate=1e-2, progress=False)
    model = nr.RNN(cfg)
    stages = [Stage(easy, tc.replace(acc_criterion=0.9)), Stage(hard, tc.replace(steps=20))]
    result = train_curriculum(model, stages, out=tmp_path / "curriculum", figures=False)
    first, second = result.runs
    assert first.summary["stopped_because"] == "accuracy_criterion" and first.summary["final_accuracy"] >= 0.9
    assert second.summary["steps"] == 20 and result.model is model
    start = second.history[0]
    for a, b in zip(start, first.history[-1]):
        assert torch.equal(a, b)  # stage 2 starts where stage 1 ended
    joined = [r["curriculum_step"] for r in result.metrics_rows()]
    assert joined == sorted(joined) and joined[-1] == first.summary["steps"] + 20
    assert nr.load_run(tmp_path / "curriculum" / "stage_01").summary["steps"] == 20
    with pytest.raises(ValueError, match="at least one stage"):
        train_curriculum(model, [])
