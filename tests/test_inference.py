"""Teacher-student connectivity inference (seed 000, example 3)."""

import numpy as np
import pytest
import torch

from neurornn.analysis.inference import (
    RecordedTask,
    TeacherTask,
    block,
    load_recording,
    make_network,
    plot_recovery,
    plot_recovery_history,
    recovery_scores,
    student_like,
    two_area_config,
)
from neurornn.experiments import TeacherStudentConfig, infer_from_recording, run_teacher_student


def test_two_area_circuit_structure():
    cfg = two_area_config(4, 3)
    net = make_network(cfg)
    w = net.effective_weights()
    assert cfg.n_inputs == 4 and cfg.n_units == 7 and cfg.n_outputs == 3
    # identity stimulation of A, nothing into B
    np.testing.assert_array_equal(w.w_in.detach().numpy(), np.vstack([np.eye(4), np.zeros((3, 4))]))
    # no B -> A connections, all others present
    assert torch.all(w.w_rec[:4, 4:] == 0)
    assert torch.all(net.rec_mask[4:, :4] == 1) and torch.all(net.rec_mask[:4, :4] == 1)
    # frozen stimulation and readout
    assert not net.w_in.requires_grad and not net.w_out.requires_grad and net.w_rec.requires_grad
    # outputs are exactly B's rates
    u = torch.randn(2, 5, 4)
    traj = net.eval()(u)
    torch.testing.assert_close(traj.outputs, traj.rates[:, :, 4:])


def test_teacher_task_targets_are_the_teachers_b_rates():
    teacher = make_network(two_area_config(5, 4)).eval()
    task = TeacherTask(teacher, n_steps=7)
    b = task.batch(3, torch.Generator().manual_seed(0))
    assert b.inputs.shape == (3, 7, 5) and b.targets.shape == (3, 7, 4) and b.mask.shape == (3, 7)
    with torch.no_grad():
        rates = teacher(b.inputs).rates
    torch.testing.assert_close(b.targets, rates[:, :, 5:])
    b2 = task.batch(3, torch.Generator().manual_seed(0))
    torch.testing.assert_close(b.inputs, b2.inputs)
    scores = task.evaluate(b.targets, b)
    assert scores["accuracy"] == pytest.approx(1.0) and scores["mse"] == 0.0
    assert task.evaluate(torch.zeros_like(b.targets) + b.targets.mean(), b)["accuracy"] == pytest.approx(0.0, abs=1e-6)


def test_student_keeps_anatomy_but_not_weights():
    teacher = make_network(two_area_config(6, 6, exc_fraction=0.5, p_connect=0.5))
    student = student_like(teacher, seed=3)
    torch.testing.assert_close(student.rec_mask, teacher.rec_mask)
    ws, wt = student.effective_weights().w_rec.detach(), teacher.effective_weights().w_rec.detach()
    assert not torch.allclose(ws, wt)
    assert torch.all((ws == 0) | (torch.sign(ws) == teacher.dale_sign[None, :].expand_as(ws)))
    assert torch.all(ws[teacher.rec_mask == 0] == 0)


def test_recovery_scores_against_numpy():
    cfg = two_area_config(5, 5)
    rng = np.random.default_rng(0)
    t = rng.normal(size=(10, 10))
    s = t + 0.3 * rng.normal(size=(10, 10))
    out = recovery_scores(t, s, cfg)
    tb, sb = t[5:, :5].ravel(), s[5:, :5].ravel()
    assert out["A->B"]["pearson_r"] == pytest.approx(np.corrcoef(tb, sb)[0, 1])
    assert out["A->B"]["relative_error"] == pytest.approx(np.linalg.norm(sb - tb) / np.linalg.norm(tb))
    assert out["B->B"]["n_weights"] == 25
    same = recovery_scores(t, t, cfg)
    assert same["A->A"]["pearson_r"] == pytest.approx(1.0) and same["A->A"]["relative_error"] == 0.0
    mask = np.ones((10, 10))
    mask[5:, :5] = rng.uniform(size=(5, 5)) < 0.5
    masked = recovery_scores(t, s, cfg, mask=mask)["A->B"]
    keep = mask[5:, :5] > 0
    assert masked["n_weights"] == keep.sum()
    assert masked["pearson_r"] == pytest.approx(np.corrcoef(t[5:, :5][keep], s[5:, :5][keep])[0, 1])
    np.testing.assert_array_equal(block(t, cfg, "A->B"), t[5:, :5])
    fig = plot_recovery(t, np.zeros_like(t), s, cfg, scores=out["A->B"])
    assert len(fig.axes) >= 4
    assert len(plot_recovery_history([{"step": 0, "pearson_r": 0.1, "relative_error": 1.0}]).axes) == 2


def test_default_teacher_student_recovers_a_to_b(tmp_path):
    """The judged setting: A -> B recovered with Pearson r >= 0.9."""
    res = run_teacher_student(out=tmp_path / "ts")
    assert res["pearson_r_A_to_B"] >= 0.9
    assert res["relative_error_A_to_B"] < 0.2
    assert res["recovery_before"]["A->B"]["pearson_r"] < 0.5
    assert res["final_variance_explained"] >= 0.999
    hist = res["history"]
    assert hist[0]["step"] == 0 and hist[-1]["pearson_r"] == pytest.approx(res["pearson_r_A_to_B"], abs=1e-6)
    for name in ("results.json", "weights.npz", "recovery_A_to_B.png", "recovery_history.csv",
                 "teacher.safetensors", "run/config.yaml", "run/history/index.json"):
        assert (tmp_path / "ts" / name).exists(), name
    with pytest.raises(FileExistsError, match="exists"):
        run_teacher_student(out=tmp_path / "ts")


def test_inference_from_a_recording_npz(tmp_path):
    teacher = make_network(two_area_config(6, 5, seed=4)).eval()
    task = TeacherTask(teacher, n_steps=15)
    data = task.batch(400, torch.Generator().manual_seed(1))
    path = tmp_path / "rec.npz"
    np.savez(path, stimulation=data.inputs.numpy(), activity=data.targets.numpy())
    stim, act = load_recording(path)
    assert stim.shape == (400, 15, 6) and act.shape == (400, 15, 5)
    res = infer_from_recording(path, None, dt_ms=10.0)
    true_ab = block(teacher.effective_weights().w_rec.detach(), teacher.config, "A->B")
    r = np.corrcoef(true_ab.ravel(), res["A->B"].ravel())[0, 1]
    assert r >= 0.9
    assert res["final_variance_explained"] >= 0.99


@pytest.mark.slow
def test_dale_and_sparse_teacher_student():
    res = run_teacher_student({"exc_fraction": 0.8, "p_connect": 0.5})
    assert res["pearson_r_A_to_B"] >= 0.9
    assert res["recovery_after"]["A->B"]["n_weights"] < 100


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: two_area_config(0, 3), ValueError, "n_a"),
        (lambda: two_area_config(3, 3, n_units=7), ValueError, "n_units"),
        (lambda: two_area_config(3, 3, activaton="tanh"), ValueError, "activation"),
        (lambda: TeacherTask(make_network(two_area_config(2, 2)), stimulus="poisson"), ValueError, "stimulus"),
        (lambda: TeacherTask("net"), TypeError, "teacher"),
        (lambda: RecordedTask(np.zeros((3, 4)), np.zeros((3, 4, 2))), ValueError, "stimulation"),
        (lambda: RecordedTask(np.zeros((3, 4, 2)), np.zeros((2, 4, 2))), ValueError, "same"),
        (lambda: RecordedTask(np.zeros((3, 4, 2)), np.full((3, 4, 2), np.nan)), ValueError, "NaN"),
        (lambda: load_recording("/nonexistent/rec.npz"), FileNotFoundError, "does not exist"),
        (lambda: block(np.zeros((4, 4)), two_area_config(2, 2), "A-B"), ValueError, "A->B"),
        (lambda: block(np.zeros((4, 4)), two_area_config(2, 2), "A->C"), ValueError, "block area"),
        (lambda: recovery_scores(np.zeros((4, 4)), np.zeros((5, 5)), two_area_config(2, 2)), ValueError, "shape"),
        (lambda: TeacherStudentConfig.from_dict({"n_aa": 3}), ValueError, "n_a"),
        (lambda: TeacherStudentConfig(stimulus_scale=0.0), ValueError, "stimulus_scale"),
        (lambda: run_teacher_student(config=3), TypeError, "TeacherStudentConfig"),
    ],
)
def test_bad_inputs(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_recording_missing_arrays(tmp_path):
    np.savez(tmp_path / "bad.npz", stim=np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="stimulation"):
        load_recording(tmp_path / "bad.npz")
