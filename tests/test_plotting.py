"""Figures without pyplot: matplotlib loaded only to draw, figures drawn from several threads at once."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn import plotting
from neurornn.analysis import PCA, plot_explained_variance, plot_trajectories, plot_trials, record_activity
from neurornn.analysis.graph import plot_connectivity
from neurornn.runs import Metrics
from neurornn.tasks.plotting import plot_task_batch

PNG = b"\x89PNG\r\n\x1a\n"


def _python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports this checkout's neurornn."""
    src = str(Path(nr.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def _train(out, seed=0, figures=False, steps=6):
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0)
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_units=16, n_outputs=task.n_outputs, dt_ms=task.dt_ms, seed=seed)
    config = nr.TrainConfig(steps=steps, batch_size=8, eval_every=3, eval_batch_size=16, history_every=3,
                            acc_criterion=False, progress=False, seed=seed, threads=1)
    return nr.train(nr.RNN(cfg), task, config, out=out, figures=figures)


def test_importing_neurornn_does_not_import_matplotlib():
    done = _python("import sys\n"
                   "import neurornn, neurornn.analysis, neurornn.plotting, neurornn.tasks.plotting\n"
                   "from neurornn.cli import build_parser\n"
                   "build_parser()\n"
                   "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')\n"
                   "assert not loaded, loaded\n"
                   "from neurornn.analysis import PCA, plot_explained_variance  # plain imports, no matplotlib\n"
                   "assert 'matplotlib' not in sys.modules\n")
    assert done.returncode == 0, done.stderr


def test_report_without_figures_does_not_import_matplotlib(tmp_path):
    _train(tmp_path / "run")
    done = _python("import sys\n"
                   "from neurornn.runs.report import write_report\n"
                   f"page = write_report({str(tmp_path / 'run')!r}, figures=False).read_text()\n"
                   "assert '<svg' in page and 'training curves (metrics.csv)' in page, page[:300]\n"
                   "assert 'matplotlib' not in sys.modules\n")
    assert done.returncode == 0, done.stderr


def _draw(model, task, seed: int, kinds: slice) -> list[bytes]:
    """Figures of every kind the package draws (those ``kinds`` picks), as PNG bytes."""
    batch = task.batch(8, torch.Generator().manual_seed(seed))
    act = record_activity(model, batch)
    pca = PCA(n_components=3).fit(act)
    metrics = Metrics([{"step": s, "loss": 1.0 / (s + 1), "eval_loss": 1.2 / (s + 1), "accuracy": s / 10}
                       for s in range(5)])
    draw = [
        lambda: plotting.plot_training_curves(metrics, title=f"thread {seed}", criterion=0.8),
        lambda: plotting.plot_example_trials(model, task, n_trials=2),
        lambda: plot_task_batch(task, batch, n_trials=2),
        lambda: plot_trials(model, task, batch=batch, n_trials=2),
        lambda: plot_trajectories(act, pca, color_by="signed_coherence", dims=2),
        lambda: plot_trajectories(act, pca, color_by="signed_coherence", dims=3),
        lambda: plot_connectivity(model.effective_weights().w_rec.detach().numpy(), title="W_rec"),
        lambda: plot_explained_variance(pca),
    ]
    out = []
    for make in draw[kinds]:
        buf = io.BytesIO()
        make().savefig(buf, format="png", dpi=50)
        out.append(buf.getvalue())
    return out


def test_figures_from_four_threads_at_once(small_task, small_model_config):
    # Before the drawing lock, two threads' tight_layout parsed log-axis mathtext at once and one failed.
    model = nr.RNN(small_model_config)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda s: _draw(model, small_task, s, slice(s % 2, None, 2)), range(4)))
    assert [len(r) for r in results] == [4, 4, 4, 4]  # every kind drawn twice, in two threads at once
    assert all(p[:8] == PNG and len(p) > 1000 for pngs in results for p in pngs)


def test_training_in_two_threads_with_figures(tmp_path):
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda s: _train(tmp_path / f"run{s}", seed=s, figures=True), range(2)))
    for s, run in enumerate(runs):
        folder = tmp_path / f"run{s}"
        assert run.path == folder
        for name in ("figures/training_curves.png", "figures/example_trials.png"):
            assert (folder / name).read_bytes()[:8] == PNG, name
        page = (folder / "report.html").read_text()
        assert page.count("data:image/png;base64,") == 2
    w0, w1 = (np.asarray(r.model.effective_weights().w_rec.detach()) for r in runs)
    assert not np.allclose(w0, w1)  # two different networks, each in its own folder


@pytest.mark.parametrize("bad", [1, "yes", None])
def test_report_figures_flag_is_checked(tmp_path, bad):
    from neurornn.analysis import write_report

    with pytest.raises(TypeError, match="figures must be True or False"):
        write_report(tmp_path, figures=bad)


def test_training_without_figures_does_not_import_matplotlib(tmp_path):
    done = _python("import sys\nimport neurornn as nr\n"
                   "task = nr.tasks.make('perceptual_decision_making', stimulus_ms=200.0)\n"
                   "cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_units=16, n_outputs=task.n_outputs, dt_ms=task.dt_ms)\n"
                   "nr.train(nr.RNN(cfg), task, nr.TrainConfig(steps=3, batch_size=8, eval_every=3, progress=False), "
                   f"out={str(tmp_path / 'run')!r}, figures=False)\n"
                   "assert 'matplotlib' not in sys.modules\n")
    assert done.returncode == 0, done.stderr
