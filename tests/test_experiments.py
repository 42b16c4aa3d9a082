"""The experiment functions and ``neurornn experiment`` (tiny settings; the full runs are in the docs)."""

import json

import numpy as np
import pytest

from neurornn.analysis.graph_run import analyze_run_graph
from neurornn.cli import main
from neurornn.experiments import SeRNNConfig, run_sernn, run_sernn_sweep
from neurornn.models.space import config_distances

TINY = {"epochs": 2, "steps_per_epoch": 3, "batch_size": 16, "n_nulls": 20, "history_nulls": 5}


def test_sernn_config_is_the_seed_setup():
    cfg = SeRNNConfig()
    m = cfg.model_config()
    assert (m.n_units, m.activation, m.w_rec_init, m.sigma_in, m.alpha) == (100, "relu", "orthogonal", 0.05, 1.0)
    t = cfg.train_config()
    assert t.regularizers == ({"kind": "spatial_communicability", "strength": 0.3, "comms_factor": 1.0},)
    assert (t.batch_size, t.learning_rate, t.history_every, t.steps) == (128, 1e-3, 40, 400)
    assert SeRNNConfig(strength=0.0).train_config().regularizers == ()
    np.testing.assert_allclose(config_distances(m)[0, 1], 1.0)


def test_sernn_run_writes_graph_analysis(tmp_path):
    res = run_sernn(TINY, out=tmp_path / "run")
    assert 0 <= res["accuracy"] <= 1
    assert [r["step"] for r in res["graph_history"]] == [0, 3, 6]
    assert res["graph"]["n_units"] == 100
    analysis = tmp_path / "run" / "analysis"
    for name in ("analysis/graph.json", "analysis/graph_history.csv", "analysis/space.npz",
                 "figures/graph_connectivity.png", "figures/graph_history.png"):
        assert (tmp_path / "run" / name).exists(), name
    data = json.loads((analysis / "graph.json").read_text())
    assert data["settings"]["keep_fraction"] == 0.1 and len(data["final"]["communities"]) == 100
    space = np.load(analysis / "space.npz")
    np.testing.assert_allclose(space["distances"], config_distances(res["run"].model.config))
    with pytest.raises(FileExistsError, match="exist"):
        analyze_run_graph(tmp_path / "run", n_nulls=5, history=False)
    again = analyze_run_graph(tmp_path / "run", n_nulls=5, history=False, overwrite=True)
    assert again["final"]["total_weight"] == pytest.approx(res["graph"]["total_weight"])
    # the CLI: `neurornn analyze RUN --graph` refuses to overwrite, then writes with --overwrite
    assert main(["analyze", str(tmp_path / "run"), "--graph", "--graph-nulls", "5", "--no-report"]) == 2
    assert main(["analyze", str(tmp_path / "run"), "--graph", "--graph-nulls", "5", "--no-report",
                 "--overwrite"]) == 0
    data = json.loads((analysis / "graph.json").read_text())
    assert data["settings"]["n_nulls"] == 5
    assert main(["analyze", str(tmp_path / "run"), "--graph", "--snapshot", "0", "--graph-nulls", "5",
                 "--no-report"]) == 0
    snap0 = json.loads((analysis / "graph_snapshot0.json").read_text())["final"]
    assert snap0["total_weight"] == pytest.approx(res["graph_history"][0]["total_weight"], rel=1e-5)


def test_sweep_table_and_figure(tmp_path):
    rows = run_sernn_sweep([0.0, 0.3], TINY, out=tmp_path / "sweep", model_seeds=[0, 1])
    assert [(r["strength"], r["model_seed"]) for r in rows] == [(0.0, 0), (0.3, 0), (0.0, 1), (0.3, 1)]
    for name in ("sweep.csv", "sweep.md", "sweep.json", "sweep.png", "strength_0_seed_0/config.yaml",
                 "strength_0.3_seed_1/analysis/graph.json"):
        assert (tmp_path / "sweep" / name).exists(), name
    text = (tmp_path / "sweep" / "sweep.md").read_text()
    assert "| strength |" in text and "Mean over seeds" in text
    means = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["means"]
    assert means[0]["n_seeds"] == 2
    assert means[0]["total_weight"] == pytest.approx((rows[0]["total_weight"] + rows[2]["total_weight"]) / 2)
    with pytest.raises(FileExistsError):
        run_sernn_sweep([0.0], TINY, out=tmp_path / "sweep")


@pytest.mark.slow
def test_sernn_demo_regularisation_shrinks_weights():
    """The seed's setup: the spatial regulariser prunes weights and raises small-worldness."""
    rows = run_sernn_sweep([0.0, 0.3], {"n_nulls": 200})
    assert rows[1]["total_weight"] < 0.5 * rows[0]["total_weight"]
    assert rows[1]["sigma_efficiency"] > rows[0]["sigma_efficiency"]
    assert rows[0]["accuracy"] >= 0.95


def test_cli_teacher_student_and_recording(tmp_path, capsys):
    out = tmp_path / "ts"
    assert main(["experiment", "teacher-student", "--out", str(out), "--set", "n_a=4", "n_b=3",
                 "steps=300"]) == 0
    text = capsys.readouterr().out
    assert "A->B recovered: Pearson r =" in text
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["n_a"] == 4 and results["pearson_r_A_to_B"] > 0.9
    w = np.load(out / "weights.npz")
    rng = np.random.default_rng(0)
    stim = rng.normal(size=(50, 10, 4)).astype(np.float32)
    np.savez(tmp_path / "rec.npz", stimulation=stim, activity=np.tanh(stim[..., :3]))
    assert w["teacher"].shape == (7, 7)
    assert main(["experiment", "teacher-student", "--recording", str(tmp_path / "rec.npz"),
                 "--out", str(tmp_path / "rec"), "--set", "tau_ms=10.0"]) == 0
    assert "variance of the activity explained" in capsys.readouterr().out
    assert (tmp_path / "rec" / "weights.npz").exists()


def test_cli_sernn_sweep(tmp_path, capsys):
    sets = [f"{k}={v}" for k, v in TINY.items()]
    assert main(["experiment", "sernn-sweep", "--strengths", "0,0.1", "--out", str(tmp_path / "s"),
                 "--set", *sets]) == 0
    out = capsys.readouterr().out
    assert "modularity" in out and (tmp_path / "s" / "sweep.csv").exists()


@pytest.mark.parametrize(
    "argv, match",
    [
        (["experiment", "teacher-studnt"], "did you mean 'teacher-student'"),
        (["experiment", "sernn-sweep", "--strengths", "0,abc"], "strengths"),
        (["experiment", "sernn-sweep", "--strengths", "0,-1"], "strengths"),
        (["experiment", "teacher-student", "--strengths", "0.1"], "sernn-sweep only"),
        (["experiment", "sernn-sweep", "--recording", "x.npz"], "teacher-student only"),
        (["experiment", "teacher-student", "--set", "n_aa=3"], "n_a"),
        (["experiment", "teacher-student", "--set", "novalue"], "key=value"),
        (["experiment", "sign-tca", "--set", "rank=0"], "rank"),
        (["experiment", "teacher-student", "--seeds", "0,1"], "sernn-sweep only"),
        (["experiment", "sernn-sweep", "--seeds", "0,x"], "seeds"),
        (["experiment", "sign-tca", "--threads", "0"], "threads"),
        (["experiment", "teacher-student", "--recording", "/nonexistent.npz"], "does not exist"),
    ],
)
def test_cli_bad_arguments(argv, match, capsys):
    assert main(argv) == 2
    assert match in capsys.readouterr().err


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"strength": -1.0}, "strength"),
        ({"regularizer": "spatial_l2"}, "regularizer"),
        ({"grid_shape": (3, 3, 3)}, "grid_shape"),
        ({"epoch": 3}, "epochs"),
    ],
)
def test_bad_sernn_config(cfg, match):
    with pytest.raises(ValueError, match=match):
        SeRNNConfig.from_dict(cfg)
