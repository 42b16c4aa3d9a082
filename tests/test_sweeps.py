"""Sweeps (issue 16): a real sweep of tiny points, its tables, resuming after a kill or Ctrl-C, failing
points, bad sweep files, the command line, a process pool and the Ray executor (the same weights)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import neurornn as nr
from neurornn import cli
from neurornn import sweeps
from neurornn.sweeps import shard as shard_module
from forking import run_in_child

BASE = {
    "task": {"name": "perceptual_decision_making", "params": {"stimulus_ms": 200}},
    "model": {"n_units": 16},
    "train": {"steps": 8, "eval_every": 4, "checkpoint_every": 4, "history_every": 4, "batch_size": 8,
              "eval_batch_size": 16, "acc_criterion": False},
}
# 8 points: two shapes (16 and 12 units), shards of at most 3 points of one shape
SWEEP = {"base": BASE, "grid": {"model.n_units": [16, 12], "model.seed": "range(2)",
                                "train.learning_rate": [0.001, 0.01]},
         "shard_size": 3}
_CLOCK = {"wall_seconds", "seconds_per_step", "created", "resumed_from_step", "ensemble", "finished",
          "started", "versions"}


def point_files(run_dir: Path) -> dict:
    """What must be bit-identical between two sweeps: weights, metrics and summary (no clocks or paths)."""
    rows = nr.runs.Metrics.from_csv(run_dir / "metrics.csv").rows
    summary = json.loads((run_dir / "summary.json").read_text())
    return {"model": load_file(str(run_dir / "model.safetensors")),
            "metrics": [{k: v for k, v in r.items() if k not in _CLOCK} for r in rows],
            "summary": {k: v for k, v in summary.items() if k not in _CLOCK}}


def sweep_files(root: Path) -> dict:
    rows = list(csv.DictReader((root / "points.csv").open()))
    return {r["point"]: point_files(root / r["shard"] / r["point"]) for r in rows if r["state"] == "done"}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        x, y = a[name], b[name]
        assert x["model"].keys() == y["model"].keys()
        for key in x["model"]:
            assert torch.equal(x["model"][key], y["model"][key]), (name, key)
        assert x["metrics"] == y["metrics"], name
        assert x["summary"] == y["summary"], name


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep") / "reference"
    before = nr._files._writes
    result = sweeps.run_sweep(SWEEP, root, progress=False)
    return result, sweep_files(root), nr._files._writes - before


def test_a_local_sweep_writes_its_tables_and_every_point_is_its_own_run(reference):
    result, files, _ = reference
    root = result.path
    assert len(result) == 8 and result.count("done") == 8
    plan = sweeps.plan_sweep(sweeps.read_sweep(SWEEP))
    assert [s.points for s in plan.shards] == [["p0000", "p0001", "p0002"], ["p0003"],
                                               ["p0004", "p0005", "p0006"], ["p0007"]]
    assert nr._folder.folder_kind(root) == "sweep" and nr._folder.folder_kind(root / "shard_000") == "ensemble"
    points = list(csv.DictReader((root / "points.csv").open()))
    assert [p["state"] for p in points] == ["done"] * 8
    assert list(points[0]) == ["point", "shard", "state", "error", "model.n_units", "model.seed",
                               "train.learning_rate"]
    results = list(csv.DictReader((root / "results.csv").open()))
    assert list(results[0]) == ["point", "state", "model.n_units", "model.seed", "train.learning_rate",
                                "model_seed", "train_seed", "steps", "stopped_because", "final_loss",
                                "final_accuracy", "wall_seconds", "run", "error"]
    assert [(r["model.n_units"], r["model.seed"], r["train.learning_rate"]) for r in results][:3] == [
        ("16", "0", "0.001"), ("16", "0", "0.01"), ("16", "1", "0.001")]
    assert all(r["steps"] == "8" and r["stopped_because"] == "step_budget" for r in results)
    assert (root / "results.png").is_file()
    assert sweeps.read_sweep(root / "sweep.yaml").to_dict() == sweeps.read_sweep(SWEEP).to_dict()
    # each point is an ordinary run, and equals the same run trained alone (float32 rounding)
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=200)
    for name in ("p0001", "p0006"):
        run = nr.load_run(result.run_path(name))
        alone = nr.train(nr.RNN(run.model.config), task, run.config, out=None)
        assert run.model.config.n_units == (16 if name == "p0001" else 12)
        for key, value in alone.model.state_dict().items():
            torch.testing.assert_close(run.model.state_dict()[key], value, rtol=1e-5, atol=1e-6)
        assert run.summary["final_loss"] == pytest.approx(alone.summary["final_loss"], rel=1e-5)


def test_a_rerun_skips_done_points(reference, monkeypatch):
    result, files, _ = reference
    manifests = {p: p.read_text() for p in result.path.glob("shard_*/.neurornn.json")}
    monkeypatch.setattr(shard_module, "train_ensemble", lambda *a, **k: pytest.fail("a done shard trained again"))
    again = sweeps.run_sweep(SWEEP, result.path, progress=False)
    assert again.count("done") == 8
    assert {p: p.read_text() for p in result.path.glob("shard_*/.neurornn.json")} == manifests
    assert_same(sweep_files(result.path), files)


@pytest.mark.parametrize("fraction", [0.3, 0.75])
def test_a_sweep_killed_mid_shard_resumes_bit_identical(reference, tmp_path, fraction):
    _, files, n_writes = reference
    out = tmp_path / "killed"
    kill_at = int(n_writes * fraction)
    assert run_in_child(lambda: sweeps.run_sweep(SWEEP, out, progress=False), f"{kill_at}:partial") == -9
    states = [r["state"] for r in csv.DictReader((out / "points.csv").open())]
    assert set(states) <= set(sweeps.STATES) and "running" in states and states.count("done") < 8
    result = sweeps.run_sweep(SWEEP, out, progress=False)
    assert result.count("done") == 8
    assert_same(sweep_files(out), files)


def test_ctrl_c_leaves_a_consistent_table_and_the_sweep_resumes(reference, tmp_path, monkeypatch):
    _, files, _ = reference
    real = shard_module.train_ensemble

    def interrupted(*args, **kwargs):  # Ctrl-C at step 5 of the second shard
        if Path(kwargs["out"]).name == "shard_001" and not kwargs.get("resume"):
            def stop(step, model, info):
                if step == 5:
                    raise KeyboardInterrupt
            kwargs["callback"] = stop
        return real(*args, **kwargs)

    monkeypatch.setattr(shard_module, "train_ensemble", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweeps.run_sweep(SWEEP, tmp_path / "s", progress=False)
    states = {r["point"]: r["state"] for r in csv.DictReader((tmp_path / "s" / "points.csv").open())}
    assert states == {"p0000": "done", "p0001": "done", "p0002": "done", **{f"p000{i}": "pending"
                                                                            for i in range(3, 8)}}
    summary = json.loads((tmp_path / "s" / "shard_001" / "p0003" / "summary.json").read_text())
    assert summary["stopped_because"] == "interrupted" and summary["steps"] == 5
    monkeypatch.setattr(shard_module, "train_ensemble", real)
    assert sweeps.run_sweep(SWEEP, tmp_path / "s", progress=False).count("done") == 8
    assert_same(sweep_files(tmp_path / "s"), files)


def test_a_failing_point_is_marked_failed_and_the_others_finish(tmp_path, capsys):
    bad = {**SWEEP, "grid": {"train.learning_rate": [0.001, -1.0, 0.01]}}
    (tmp_path / "bad.yaml").write_text(nr.runs.dump_yaml(bad))
    code = cli.main(["sweep", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "s"), "--quiet"])
    assert code == 7
    err = capsys.readouterr().err
    assert "failed p0001: ValueError: learning_rate must be > 0, got -1.0" in err
    rows = {r["point"]: r for r in csv.DictReader((tmp_path / "s" / "points.csv").open())}
    assert [rows[p]["state"] for p in ("p0000", "p0001", "p0002")] == ["done", "failed", "done"]
    assert rows["p0001"]["shard"] == "" and "learning_rate" in rows["p0001"]["error"]
    results = list(csv.DictReader((tmp_path / "s" / "results.csv").open()))
    assert results[1]["state"] == "failed" and results[1]["final_loss"] == ""
    # a shard that fails while training fails its points only; the rerun retries them
    assert cli.main(["sweep", "collect", str(tmp_path / "s")]) == 0


def test_a_training_error_fails_its_shard_only_and_a_rerun_retries_it(tmp_path, monkeypatch):
    sweep = {**SWEEP, "grid": {"model.seed": "range(4)"}, "shard_size": 2}
    real = shard_module.train_ensemble

    def broken(*args, **kwargs):
        if Path(kwargs["out"]).name == "shard_000":
            raise RuntimeError("out of luck")
        return real(*args, **kwargs)

    monkeypatch.setattr(shard_module, "train_ensemble", broken)
    result = sweeps.run_sweep(sweep, tmp_path / "s", progress=False)
    assert [r["state"] for r in result.rows] == ["failed", "failed", "done", "done"]
    assert result.rows[0]["error"] == "RuntimeError: out of luck"
    monkeypatch.setattr(shard_module, "train_ensemble", real)
    assert sweeps.run_sweep(sweep, tmp_path / "s", progress=False).count("done") == 4


def test_recorded_scalars_go_into_the_results(tmp_path):
    sweep = {**SWEEP, "grid": {"model.seed": "range(2)"}, "record": ["graph.final.modularity",
                                                                      "graph.final.total_weight"],
             "analysis": {"graph_nulls": 2}}
    result = sweeps.run_sweep(sweep, tmp_path / "s", progress=False)
    assert result.count("done") == 2
    for row in result.rows:
        assert isinstance(row["graph.final.modularity"], float) and row["graph.final.total_weight"] > 0
    assert (result.run_path("p0000") / "analysis" / "graph.json").is_file()
    collected = sweeps.collect_sweep(tmp_path / "s")
    assert [r["graph.final.modularity"] for r in collected.rows] == [r["graph.final.modularity"]
                                                                     for r in result.rows]


def test_random_draws_and_zip_are_seeded_and_combined(tmp_path):
    spec = sweeps.read_sweep({"base": BASE, "zip": {"train.learning_rate": [0.001, 0.002],
                                                   "train.grad_clip": [1.0, 2.0]},
                              "random": {"n": 3, "seed": 4, "settings": {
                                  "train.adam_eps": {"loguniform": [1e-9, 1e-6]},
                                  "model.activation": {"choice": ["relu", "tanh"]},
                                  "model.n_units": {"integers": [8, 12]}}}})
    points = spec.points()
    assert len(points) == 6 and points == sweeps.read_sweep(spec.to_dict()).points()
    assert [(p["train.learning_rate"], p["train.grad_clip"]) for p in points[:4]] == [
        (0.001, 1.0), (0.001, 1.0), (0.001, 1.0), (0.002, 2.0)]
    assert all(1e-9 <= p["train.adam_eps"] <= 1e-6 and 8 <= p["model.n_units"] <= 12 for p in points)
    assert points[0]["train.adam_eps"] == points[3]["train.adam_eps"]  # the same draws for each zip row


def test_a_changed_sweep_file_is_refused_for_an_existing_folder(reference):
    other = {**SWEEP, "shard_size": 2}
    with pytest.raises(ValueError, match="holds another sweep.*'shard_size'.*--overwrite"):
        sweeps.run_sweep(other, reference[0].path, progress=False)


@pytest.mark.parametrize("sweep, message", [
    ({"base": BASE, "grids": {}}, r"unknown key 'grids' \(did you mean 'grid'"),
    ({"grid": {"model.seed": [0]}}, r"'base' is missing"),
    ({"base": BASE, "shard_size": 0}, r"shard_size must be a positive integer, got 0"),
    ({"base": BASE, "grid": {"model.n_unit": [8]}}, r"grid: unknown setting 'model.n_unit' \(did you mean 'n_units'"),
    ({"base": BASE, "grid": {"task.coherences": [[0]]}}, r"grid: a varied key must start with 'model.' or 'train.'"),
    ({"base": BASE, "grid": {"model.seed": "range(x)"}}, r"grid: model.seed: expected a list like \[1, 2\] or range\(N\), got 'range\(x\)'"),
    ({"base": BASE, "grid": {"model.seed": []}}, r"grid: model.seed must be a non-empty list"),
    ({"base": BASE, "zip": {"model.seed": [0, 1], "train.seed": [0]}}, r"zip: every list needs the same length"),
    ({"base": BASE, "random": {"n": 2, "settings": {"model.seed": {"choice": [1]}}}}, r"random: 'seed' is missing"),
    ({"base": BASE, "random": {"n": 2, "seed": 0, "settings": {"train.learning_rate": {"normal": [0, 1]}}}},
     r"random: settings: train.learning_rate must be one of"),
    ({"base": BASE, "random": {"n": 2, "seed": 0, "settings": {"train.learning_rate": {"loguniform": [0, 1]}}}},
     r"loguniform takes \[low, high\] with low <= high, numbers > 0"),
    ({"base": BASE, "grid": {"model.seed": [0]}, "zip": {"model.seed": [1]}}, r"'model.seed' varies in more than one"),
    ({"base": BASE, "record": ["grahp.final.modularity"]}, r"record: .*unknown analysis 'grahp' \(did you mean 'graph'"),
    ({"base": BASE, "figures": "yes"}, r"figures must be true or false"),
    ({"base": {"modle": {}}}, r"base: unknown section 'modle'"),
    ({"base": "missing.yaml"}, r"base: config file .*missing.yaml' does not exist"),
])
def test_bad_sweep_files_are_one_line_errors_naming_the_key(sweep, message):
    with pytest.raises(ValueError, match=message):
        sweeps.read_sweep(sweep)


def test_the_command_line(tmp_path, capsys):
    (tmp_path / "s.yaml").write_text(nr.runs.dump_yaml({**SWEEP, "grid": {"model.seed": "range(2)"}}))
    assert cli.main(["sweep", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--quiet",
                     "--set", "train.steps=4", "--vary", "train.learning_rate=[0.001,0.01]"]) == 0
    assert "4 points: 4 done, 0 failed" in capsys.readouterr().out
    results = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert [r["steps"] for r in results] == ["4"] * 4 and "train.learning_rate" in results[0]
    assert cli.main(["sweep", str(tmp_path / "out"), "--quiet"]) == 0  # a sweep folder continues itself
    assert cli.main(["sweep", "collect", str(tmp_path / "out")]) == 0
    (tmp_path / "bad.yaml").write_text("base: {}\nshard_size: -1\n")
    assert cli.main(["sweep", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("neurornn sweep: error: sweep file") and "shard_size" in err[-1]
    assert cli.main(["sweep", "collect", str(tmp_path)]) == 2
    assert cli.main(["sweep", str(tmp_path / "s.yaml"), "--executor", "local", "--address", "x:1"]) == 2


def test_a_process_pool_gives_the_same_weights(reference, tmp_path):
    _, files, _ = reference
    result = sweeps.run_sweep(SWEEP, tmp_path / "pool", workers=2, progress=False)
    assert result.count("done") == 8
    assert_same(sweep_files(tmp_path / "pool"), files)


# ---------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'neurornn[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
                 [str(Path(nr.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}})
    yield ray
    ray.shutdown()


def test_the_ray_executor_gives_the_local_executors_weights(reference, ray_cluster, tmp_path):
    _, files, _ = reference
    result = sweeps.run_sweep(SWEEP, tmp_path / "ray", executor="ray", progress=False)
    assert result.count("done") == 8 and ray_cluster.is_initialized()  # the cluster given is kept
    assert_same(sweep_files(tmp_path / "ray"), files)
    # a rerun on Ray skips what is done; a shard interrupted locally resumes on Ray
    assert sweeps.run_sweep(SWEEP, tmp_path / "ray", executor="ray", progress=False).count("done") == 8
    out = tmp_path / "killed"
    assert run_in_child(lambda: sweeps.run_sweep(SWEEP, out, progress=False), f"{reference[2] // 2}:partial") == -9
    assert sweeps.run_sweep(SWEEP, out, executor="ray", progress=False).count("done") == 8
    assert_same(sweep_files(out), files)
