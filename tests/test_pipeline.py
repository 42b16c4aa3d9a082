"""The analysis pipeline: every registered analysis runs from Python and from the CLI and writes what it declares."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import neurornn as nr
from neurornn.analysis import (
    ANALYSES,
    PCA,
    Activity,
    AnalysisOptions,
    FixedPoints,
    analysis_names,
    analyze_run,
    register_analysis,
    unregister_analysis,
)
from neurornn.analysis import _memory, pipeline
from neurornn.analysis.pipeline import estimate_memory
from neurornn.cli import main
from neurornn.training import TrainConfig, train

BUILT_IN = ("performance", "activity", "pca", "psychometric", "fixed_points", "graph")
TINY = {"n_trials": 16, "score_trials": 64, "fp_starts": 32, "graph_nulls": 5}
TINY_FLAGS = ["--n-trials", "16", "--score-trials", "64", "--fp-starts", "32", "--graph-nulls", "5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=300.0)
    cfg = nr.RNNConfig(n_inputs=3, n_units=16, n_outputs=3, activation="tanh", seed=0)
    out = tmp_path_factory.mktemp("runs") / "pdm"
    train(nr.RNN(cfg), task, TrainConfig(steps=20, batch_size=16, learning_rate=0.01, eval_every=10,
                                         history_every=10, eval_batch_size=32, progress=False, threads=1),
          out=out, figures=False)
    return out


@pytest.fixture
def run_dir(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _files(run_dir) -> set[str]:
    return {p.relative_to(run_dir).as_posix() for folder in ("analysis", "figures") if (run_dir / folder).is_dir()
            for p in (run_dir / folder).iterdir()}


def _with_suffix(entry: str, suffix: str) -> str:
    stem, ext = entry.rsplit(".", 1)
    return f"{stem}{suffix}.{ext}"


def test_the_built_in_analyses_are_registered_in_order():
    assert analysis_names()[:6] == BUILT_IN
    for name in BUILT_IN:
        a = ANALYSES[name]
        assert a.name == name and a.help and a.writes and set(a.needs) <= set(pipeline.NEEDS)
    with pytest.raises(TypeError):
        ANALYSES["mine"] = ANALYSES["pca"]  # a read-only view: register_analysis adds


# ---------------------------------------------------------------------- the contract, for every analysis
@pytest.mark.parametrize("name", analysis_names())
def test_analysis_runs_from_python_and_writes_what_it_declares(name, run_dir):
    analysis = ANALYSES[name]
    results = analyze_run(run_dir, [name], options=TINY, report=False)
    assert list(results) == [name]
    result = results[name]
    written = _files(run_dir)
    assert written == set(analysis.writes)  # exactly what it declares (this run gets every optional file)
    assert len(result.files) == len(written) and {p.relative_to(run_dir).as_posix() for p in result.files} == written
    assert isinstance(result.message, str) and result.message and result.seconds >= 0
    # A snapshot's files sit beside them, with the suffix.
    snap = analyze_run(run_dir, [name], snapshot=0, options=TINY, report=False)[name]
    assert _files(run_dir) - written == {_with_suffix(e, "_snapshot0") for e in analysis.writes}
    assert {p.name for p in snap.files} == {_with_suffix(e, "_snapshot0").split("/")[1] for e in analysis.writes}
    # Never replaced without consent; replaced with it.
    with pytest.raises(FileExistsError, match="already exist; use overwrite=True to replace them"):
        analyze_run(run_dir, [name], options=TINY, report=False)
    assert analyze_run(run_dir, [name], options=TINY, report=False, overwrite=True)[name].files == result.files


@pytest.mark.parametrize("name", analysis_names())
def test_analysis_runs_from_the_cli_the_same_way(name, run_dir, capsys):
    report = (run_dir / "report.html").read_text()  # written by training
    code = main(["analyze", str(run_dir), "--only", name, "--no-report", *TINY_FLAGS])
    assert code == 0, capsys.readouterr().err
    assert _files(run_dir) == set(ANALYSES[name].writes)
    out = capsys.readouterr().out
    assert out.startswith(f"[{name}] ")
    assert set(out.splitlines()[1:]) == {f"wrote {run_dir / entry}" for entry in ANALYSES[name].writes}
    assert (run_dir / "report.html").read_text() == report  # --no-report


def test_analyze_run_returns_what_each_analysis_computed(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "run")
    run = nr.load_run(tmp_path / "run")  # a Run works as well as a path
    threads = torch.get_num_threads()
    seen = []
    results = analyze_run(run, options=TINY, callback=seen.append)
    assert torch.get_num_threads() == threads  # the thread setting is restored
    assert list(results) == list(analysis_names()) == [r.name for r in seen]
    perf = results["performance"].value
    assert perf["n_trials"] == 64 and 0 <= perf["score"] <= 1
    assert isinstance(results["activity"].value, Activity) and results["activity"].value.n_trials == 16
    assert isinstance(results["pca"].value, PCA)
    assert results["psychometric"].value[0].condition == "signed_coherence"
    assert isinstance(results["fixed_points"].value, FixedPoints)
    assert results["graph"].value["final"]["n_units"] == 16
    # The report is drawn from what the pipeline wrote.
    page = (tmp_path / "run" / "report.html").read_text()
    assert "analysis/fixed_points.json" in page and results["pca"].message.split(":")[0] in page
    saved = json.loads((tmp_path / "run" / "analysis" / "performance.json").read_text())
    assert saved == json.loads(json.dumps(perf))


# ---------------------------------------------------------------------- a new analysis
def test_a_registered_analysis_is_available_to_python_and_the_cli(run_dir, capsys):
    @register_analysis("mean_rate", needs=("activity",), writes=("analysis/mean_rate.json",),
                       help="mean rate of the recorded units")
    def mean_rate(ctx):
        value = float(ctx.activity.rates.mean())
        ctx.out.json("mean_rate", {"mean_rate": value, "snapshot": ctx.snapshot})
        return f"Mean rate {value:.4f}.", value

    try:
        assert analysis_names()[-1] == "mean_rate"
        result = analyze_run(run_dir, ["mean_rate"], options={"n_trials": 8}, report=False)["mean_rate"]
        run = nr.load_run(run_dir)
        expected = float(np.mean(nr.analysis.record_activity(
            run, run.task.batch(8, torch.Generator().manual_seed(0))).rates))
        assert result.value == pytest.approx(expected)
        assert json.loads((run_dir / "analysis" / "mean_rate.json").read_text())["mean_rate"] == result.value
        assert main(["analyze", str(run_dir), "--only", "mean_rate", "--snapshot", "0", "--n-trials", "8"]) == 0
        out = capsys.readouterr().out
        assert out.startswith("[mean_rate] Mean rate ") and "analysis/mean_rate_snapshot0.json" in out
        assert "analysis/mean_rate_snapshot0.json" in (run_dir / "report.html").read_text()  # the report shows it
        with pytest.raises(ValueError, match="already registered"):
            register_analysis("mean_rate")(mean_rate)
    finally:
        unregister_analysis("mean_rate")
    assert "mean_rate" not in analysis_names()


def test_the_contract_is_enforced(run_dir):
    @register_analysis("sneaky", needs=(), writes=("analysis/sneaky.json",))
    def sneaky(ctx):
        ctx.out.json("other", {})

    @register_analysis("greedy", needs=("batch",), writes=())
    def greedy(ctx):
        return str(ctx.activity.n_trials)

    try:
        with pytest.raises(RuntimeError, match="writes 'analysis/other.json', which it does not declare"):
            analyze_run(run_dir, ["sneaky"], report=False)
        with pytest.raises(RuntimeError, match="uses ctx.activity but does not declare 'activity' in needs"):
            analyze_run(run_dir, ["greedy"], options=TINY, report=False)
    finally:
        unregister_analysis("sneaky")
        unregister_analysis("greedy")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"name": "Bad Name"}, ValueError, "lower-case letters"),
        ({"name": "x", "needs": ("activty",)}, ValueError, "unknown need 'activty' \\(did you mean 'activity'"),
        ({"name": "x", "needs": "activity"}, TypeError, "sequence of names"),
        ({"name": "x", "writes": ("results/x.json",)}, ValueError, "must look like 'analysis/NAME.json'"),
        ({"name": "x", "writes": ("analysis/x.txt",)}, ValueError, "must look like"),
        ({"name": "x", "writes": ("analysis/x.json", "analysis/x.json")}, ValueError, "lists a file twice"),
        ({"name": "x", "plan": 3}, TypeError, "plan of analysis 'x' must be callable"),
        ({"name": "pca"}, ValueError, "'pca' is already registered; pass replace=True"),
    ],
)
def test_bad_registrations(kwargs, error, match):
    name = kwargs.pop("name")
    with pytest.raises(error, match=match):
        register_analysis(name, **kwargs)(lambda ctx: "")
    assert analysis_names()[:6] == BUILT_IN and "x" not in analysis_names()


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"analyses": ["pcaa"]}, ValueError, "unknown analysis 'pcaa' \\(did you mean 'pca'\\?\\); registered: "),
        ({"analyses": []}, ValueError, "at least one analysis"),
        ({"options": {"n_trial": 8}}, ValueError, "unknown analysis option key 'n_trial' \\(did you mean 'n_trials'"),
        ({"options": {"n_trials": 1}}, ValueError, "n_trials must be >= 2, got 1"),
        ({"options": {"fp_slow": 1.5}}, ValueError, "fp_slow must be in \\(0, 1\\), got 1.5"),
        ({"options": {"fp_tol_q": 0.0}}, ValueError, "fp_tol_q must be > 0"),
        ({"options": {"graph_keep": 0}}, ValueError, "graph_keep must be > 0"),
        ({"options": {"fp_inputs": ["1,x,0"]}}, ValueError, "fp_inputs must be comma-separated numbers"),
        ({"options": {"fp_inputs": [[1.0, 0.0]]}}, ValueError, "fp_inputs must have n_inputs=3 values, got 2"),
        ({"options": {"area": "V1"}}, ValueError, "area must be one of"),
        ({"options": "n_trials=8"}, TypeError, "options must be a dict or an AnalysisOptions"),
        ({"threads": 0}, ValueError, "threads must be >= 1, got 0"),
        ({"overwrite": "yes"}, TypeError, "overwrite must be True or False"),
        ({"snapshot": 9}, ValueError, "snapshot must be in \\[0, 2\\]"),
    ],
)
def test_bad_arguments(run_dir, kwargs, error, match):
    analyses = kwargs.pop("analyses", ["activity"])
    with pytest.raises(error, match=match):
        analyze_run(run_dir, analyses, report=False, **kwargs)
    assert not (run_dir / "analysis").exists()  # refused before anything was written


def test_bad_runs(tmp_path, run_dir, capsys):
    with pytest.raises(TypeError, match="run must be a Run or the path of a run folder"):
        analyze_run(3)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        analyze_run(tmp_path / "missing")
    assert main(["analyze", str(run_dir), "--only", "pcaa"]) == 2
    assert "unknown analysis 'pcaa' (did you mean 'pca'?)" in capsys.readouterr().err


def test_cli_options_are_named_by_their_flags():
    opts = AnalysisOptions(n_trials=8, labels={"n_trials": "--n-trials"})
    assert opts.label("n_trials") == "--n-trials" and opts.label("seed") == "seed"
    with pytest.raises(ValueError, match="^--n-trials must be >= 2, got 1$"):
        AnalysisOptions(n_trials=1, labels={"n_trials": "--n-trials"})
    assert AnalysisOptions.of({"fp_inputs": "1, 0.5,0.5"}).fp_input_array(3).tolist() == [[1.0, 0.5, 0.5]]
    assert AnalysisOptions.of({"fp_inputs": np.zeros((2, 3))}).fp_input_array(3).shape == (2, 3)


# ---------------------------------------------------------------------- memory
def test_memory_estimate():
    est = estimate_memory(["activity", "graph"], {"n_trials": 10}, 100, 50)
    assert est["batch"] == 10 * 50 * 100 * 4 * _memory.ACTIVITY_COPIES
    assert est["weights"] == 100 ** 2 * 4 * _memory.WEIGHT_COPIES
    assert est["total"] == est["batch"] + est["weights"] and est["option"] == "n_trials"
    assert estimate_memory(["performance"], {}, 100, 50)["option"] == "score_trials"  # 2048 scored trials
    assert estimate_memory(["graph"], {}, 100, 50)["batch"] == 0
    available = _memory.available_memory_bytes()
    assert available is None or available > 0


def test_a_batch_too_large_for_memory_is_refused(run_dir, monkeypatch, capsys):
    monkeypatch.setattr(_memory, "available_memory_bytes", lambda: 1_000_000)  # 1 MB
    with pytest.raises(ValueError, match=r"need about 0.00\d+ GB .* but 0.001 GB of memory is available; "
                                         r"lower n_trials or leave out the activity analysis"):
        analyze_run(run_dir, ["activity"], report=False)  # 256 trials x 25 steps x 16 units
    assert main(["analyze", str(run_dir), "--activity"]) == 2
    assert "lower --n-trials or leave out the activity analysis" in capsys.readouterr().err
    assert not (run_dir / "analysis").exists()
    assert analyze_run(run_dir, ["activity"], options={"n_trials": 16}, report=False)  # fits in 1 MB


def test_a_network_too_large_for_memory_is_refused_before_it_is_built(run_dir, monkeypatch, capsys):
    monkeypatch.setattr(_memory, "available_memory_bytes", lambda: 64 * 10 ** 9)
    config = (run_dir / "config.yaml").read_text()
    assert "n_units: 16" in config
    (run_dir / "config.yaml").write_text(config.replace("n_units: 16", "n_units: 150000"))
    (run_dir / "model.safetensors").unlink()  # were the check to fail, loading stops here, not at 90 GB
    with pytest.raises(ValueError, match="n_units=150000 needs about 360 GB for its weights alone"):
        analyze_run(run_dir, ["graph"])
    assert main(["analyze", str(run_dir)]) == 2
    assert "GB of memory is available" in capsys.readouterr().err
