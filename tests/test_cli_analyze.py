"""`neurornn analyze RUN` on a small trained run."""

from __future__ import annotations

import base64
import json
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.cli import main
from neurornn.training import TrainConfig, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=300.0)
    cfg = nr.RNNConfig(n_inputs=3, n_units=16, n_outputs=3, activation="tanh", seed=0)
    out = tmp_path_factory.mktemp("runs") / "pdm"
    train(nr.RNN(cfg), task, TrainConfig(steps=30, batch_size=16, learning_rate=0.01, eval_every=10,
                                         history_every=10, eval_batch_size=32, progress=False),
          out=out, figures=False)
    yield out
    torch.set_num_threads(old)


@pytest.fixture
def run_dir(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def test_analyze_all(run_dir, capsys):
    code = main(["analyze", str(run_dir), "--n-trials", "64", "--fp-starts", "128", "--score-trials", "300"])
    assert code == 0, capsys.readouterr().err
    a, f = run_dir / "analysis", run_dir / "figures"
    for name in ("performance", "activity", "pca", "psychometric", "fixed_points"):
        assert json.loads((a / f"{name}.json").read_text())
    perf = json.loads((a / "performance.json").read_text())
    assert perf["n_trials"] == 300 and 0.0 <= perf["score"] <= 1.0 and "on 300 fresh" in perf["message"]
    for name in ("trials", "activity_units", "pca_trajectories", "pca_trajectories_3d",
                 "pca_explained_variance", "psychometric", "fixed_points"):
        assert (f / f"{name}.png").stat().st_size > 1000
    fp = json.loads((a / "fixed_points.json").read_text())
    assert fp["input_names"] == ["fixation period mean", "stimulus period mean", "decision period mean"]
    with np.load(a / "fixed_points.npz") as arrays:
        assert arrays["points"].shape == (fp["n_points"], 16)
        assert (arrays["q"] < 1e-12).all()
    with np.load(a / "activity.npz") as arrays:
        assert arrays["states"].shape[0] == 64 and arrays["states"].shape[2] == 16
    psy = json.loads((a / "psychometric.json").read_text())
    assert psy["curves"][0]["condition"] == "signed_coherence"
    page = (run_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 7 and fp["message"].split(":")[0] in page
    _check_report(run_dir, page)
    out = capsys.readouterr().out
    assert "[fixed_points]" in out and "report:" in out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.alts, self.headings, self._in_heading = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key):
                self.refs.append(attrs[key])
        if tag == "img":
            self.alts.append(attrs.get("alt"))
        self._in_heading = tag in ("h1", "h2", "h3")

    def handle_endtag(self, tag):
        self._in_heading = False

    def handle_data(self, data):
        if self._in_heading and data.strip():
            self.headings.append(data.strip())


def _check_report(run_dir, page):
    """The report points only at files that exist, shows every figure and has the key sections."""
    parser = _Links()
    parser.feed(page)
    for ref in parser.refs:
        if ref.startswith("data:image/png;base64,"):
            assert base64.b64decode(ref.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert not ref.startswith(("http:", "https:", "//")), ref  # nothing fetched from elsewhere
            assert (run_dir / ref.split("#")[0]).exists(), ref
    pngs = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.glob("figures/*.png"))
    assert sorted(a for a in parser.alts if a != "training curves") == pngs
    assert "training curves" in parser.alts  # drawn from metrics.csv (this run saved no figures)
    for heading in ("Key numbers", "Summary", "Figures", "Training", "Performance", "Activity and PCA",
                    "Fixed points", "Analyses", "Configuration (config.yaml)"):
        assert heading in parser.headings, (heading, parser.headings)
    assert "n_units: 16" in page  # the configuration itself


def test_no_overwrite_without_consent(run_dir, capsys):
    assert main(["analyze", str(run_dir), "--pca", "--n-trials", "16"]) == 0
    before = (run_dir / "analysis" / "pca.json").read_text()
    assert main(["analyze", str(run_dir), "--pca", "--n-trials", "32"]) == 2
    assert "already exist; use --overwrite" in capsys.readouterr().err
    assert (run_dir / "analysis" / "pca.json").read_text() == before
    assert main(["analyze", str(run_dir), "--pca", "--n-trials", "32", "--overwrite"]) == 0


def test_snapshot(run_dir, capsys):
    assert main(["analyze", str(run_dir), "--activity", "--snapshot", "0", "--n-trials", "8"]) == 0
    data = json.loads((run_dir / "analysis" / "activity_snapshot0.json").read_text())
    assert data["snapshot"] == 0
    assert main(["analyze", str(run_dir), "--activity", "--snapshot", "99"]) == 2
    assert "snapshot must be in [0," in capsys.readouterr().err


def test_fixed_points_for_a_given_input(run_dir, capsys):
    code = main(["analyze", str(run_dir), "--fixed-points", "--fp-input", "1,0.5,0.5", "--fp-starts", "64",
                 "--n-trials", "16", "--no-report"])
    assert code == 0, capsys.readouterr().err
    fp = json.loads((run_dir / "analysis" / "fixed_points.json").read_text())
    assert fp["conditions"][0]["input"] == [1.0, 0.5, 0.5]
    assert not (run_dir / "report.html").exists() or "fixed_points" not in (run_dir / "report.html").read_text()


def test_slow_points(run_dir, capsys):
    code = main(["analyze", str(run_dir), "--fixed-points", "--fp-slow", "0.01", "--fp-starts", "64",
                 "--n-trials", "16", "--no-report"])
    assert code == 0, capsys.readouterr().err
    fp = json.loads((run_dir / "analysis" / "fixed_points.json").read_text())
    slow = fp["slow_points"]
    # The tolerance is 1 % of the median 1/2 |x(t+1) - x(t)|^2 along the analysis batch's trajectories.
    from neurornn.analysis import record_activity

    run = nr.load_run(run_dir)
    states = record_activity(run.model, run.task.batch(16, torch.Generator().manual_seed(0))).states
    speed_q = np.median(0.5 * (np.diff(states, axis=1) ** 2).sum(-1))
    assert slow["median_trajectory_q"] == pytest.approx(speed_q, rel=1e-6)
    assert slow["fraction"] == 0.01 and fp["tol_q"] == pytest.approx(0.01 * speed_q, rel=1e-6)
    with np.load(run_dir / "analysis" / "fixed_points.npz") as arrays:
        assert (arrays["q"] < fp["tol_q"]).all()


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--fixed-points", "--fp-input", "1,0"], "n_inputs=3 values"),
        (["--fixed-points", "--fp-input", "a,b,c"], "comma-separated numbers"),
        (["--area", "V1"], "--area must be one of"),
        (["--n-trials", "1"], "--n-trials must be >= 2"),
        (["--threads", "0"], "--threads must be >= 1, got 0"),
        (["--fp-slow", "2"], "--fp-slow must be in (0, 1), got 2.0"),
        (["--activity", "--snapshot", "-9"], "snapshot must be in [0, 3] (or [-4, -1])"),
    ],
)
def test_bad_arguments(run_dir, capsys, extra, match):
    assert main(["analyze", str(run_dir), *extra]) == 2
    assert match in capsys.readouterr().err


def test_folders_that_are_not_runs(tmp_path, run_dir, capsys):
    assert main(["analyze", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (run_dir / "model.safetensors").unlink()
    assert main(["analyze", str(run_dir)]) == 2
    assert "no model.safetensors" in capsys.readouterr().err
