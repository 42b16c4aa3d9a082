"""The run folder: writer, reader, metrics CSV, weight history files, checkpoints, figures."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from matplotlib.figure import Figure

import neurornn as nr
from neurornn import plotting
from neurornn.runs import Metrics, RunWriter, is_run, load_yaml, save_run, write_report
from neurornn.training import TrainConfig, WeightHistory, load_checkpoint, make_generators, save_checkpoint, train
from neurornn._files import write_text


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small trained run with figures, shared by the module (do not modify it)."""
    task = nr.tasks.make("perceptual_decision_making", stimulus_ms=200.0)
    config = nr.RNNConfig(n_inputs=3, n_units=16, n_outputs=3, dt_ms=20.0, seed=0)
    cfg = TrainConfig(steps=12, batch_size=8, learning_rate=1e-2, eval_every=4, eval_batch_size=16,
                      history_every=5, checkpoint_every=4, acc_criterion=False, progress=False, seed=0)
    return train(nr.RNN(config), task, cfg, out=tmp_path_factory.mktemp("trained") / "run")


def test_run_folder_layout(trained):
    path = trained.path
    for name in ("config.yaml", "metrics.csv", "summary.json", "model.safetensors", "report.html"):
        assert (path / name).is_file(), name
    assert (path / "history" / "index.json").is_file()
    assert (path / "checkpoints" / "latest.json").is_file()
    assert (path / "figures" / "training_curves.png").stat().st_size > 1000
    assert (path / "figures" / "example_trials.png").stat().st_size > 1000
    config = load_yaml((path / "config.yaml").read_text())
    assert list(config) == ["task", "model", "train"]
    assert config["task"]["name"] == "perceptual_decision_making"
    assert config["task"]["params"]["stimulus_ms"] == 200.0
    summary = json.loads((path / "summary.json").read_text())
    for key in ("task", "steps", "final_loss", "final_accuracy", "wall_seconds", "seed", "stopped_because"):
        assert key in summary, key
    assert summary["steps"] == 12 and summary["stopped_because"] == "step_budget"
    report = (path / "report.html").read_text()
    assert "figures/training_curves.png" in report and "stopped_because" in report
    assert not list(path.rglob("*.pkl")) and not list(path.rglob("*.pt"))


def test_load_run_round_trip(trained):
    run = nr.load_run(trained.path)
    assert run.config == trained.config
    assert run.model.config == trained.model.config
    assert run.task.params() == trained.task.params()
    assert not run.model.training
    batch = run.task.batch(8, torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(run.model(batch.inputs).outputs, trained.model(batch.inputs).outputs)
    assert run.metrics.rows == trained.metrics.rows
    assert run.summary == json.loads(json.dumps(trained.summary))
    assert run.history.steps == trained.history.steps
    assert "final_accuracy=" in repr(run)


def test_config_yaml_rebuilds_the_same_run(trained, tmp_path):
    """config.yaml is enough to rerun: same weights."""
    config = load_yaml((trained.path / "config.yaml").read_text())
    task = nr.tasks.make(config["task"]["name"], **config["task"]["params"])
    model = nr.RNN(nr.RNNConfig.from_dict(config["model"]))
    again = train(model, task, TrainConfig.from_dict(config["train"]))
    for (k, a), (_, b) in zip(again.model.named_parameters(), trained.model.named_parameters()):
        assert torch.equal(a, b), k


def test_load_run_errors(trained, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nr.load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a run folder"):
        nr.load_run(tmp_path / "empty")
    copy = tmp_path / "copy"
    shutil.copytree(trained.path, copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        nr.load_run(copy)
    with pytest.raises(TypeError, match="path must be a path"):
        nr.load_run(3)



def test_load_run_with_a_task_that_cannot_be_rebuilt(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained.path, copy)
    config = load_yaml((copy / "config.yaml").read_text())
    config["task"]["name"] = "gone_module:GoneTask"  # e.g. a custom task whose file is not here
    from neurornn.runs import dump_yaml

    write_text(copy / "config.yaml", dump_yaml(config))  # as neurornn would write it (its manifest records it)
    with pytest.raises(ValueError, match=r"cannot rebuild the task .*load_run\(path, task=\.\.\.\)"):
        nr.load_run(copy)
    run = nr.load_run(copy, task=trained.task)
    assert run.task is trained.task
    assert torch.equal(run.model.effective_weights().w_rec, trained.model.effective_weights().w_rec)
    with pytest.raises(TypeError, match="task must be a Task"):
        nr.load_run(copy, task="perceptual_decision_making")

def test_load_run_bad_config(tmp_path):
    with RunWriter(tmp_path / "run") as writer:
        write_text(writer.path / "config.yaml", "task: {name: perceptual_decision_making}\nmodel: {}\n")
    with pytest.raises(ValueError, match="has no 'train' section"):
        nr.load_run(tmp_path / "run")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "config.yaml").write_text("task: {name: perceptual_decision_making}\n")
    with pytest.raises(ValueError, match="is not a run folder"):
        nr.load_run(tmp_path / "plain")  # another tool's config.yaml does not make a run folder


def test_run_writer_never_overwrites(tmp_path):
    folder = tmp_path / "run"
    RunWriter(folder).close()  # creates it
    write_text(folder / "config.yaml", "task: {}\n")
    with pytest.raises(FileExistsError, match="already exists"):
        RunWriter(folder)
    assert (folder / "config.yaml").is_file()
    RunWriter(folder, overwrite=True)  # a run folder may be replaced when asked
    assert not (folder / "config.yaml").exists()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="neurornn did not make it"):
        RunWriter(other, overwrite=True)
    assert (other / "thesis.tex").read_text() == "precious"
    with pytest.raises(ValueError, match="not both"):
        RunWriter(tmp_path / "x", overwrite=True, resume=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="is not a folder"):
        RunWriter(tmp_path / "file")


def test_save_run_for_external_trainers(small_task, small_model_config, tmp_path):
    model = nr.RNN(small_model_config)
    hist = WeightHistory(small_model_config)
    hist.append(0, model.effective_weights())
    metrics = [{"step": 0, "loss": None, "accuracy": 0.5}, {"step": 10, "loss": 0.3, "accuracy": 0.75}]
    run = save_run(tmp_path / "net0", model, small_task, TrainConfig(steps=10), metrics,
                   {"final_accuracy": 0.75, "stopped_because": "step_budget"}, hist, figures=False)
    assert is_run(run.path)
    back = nr.load_run(tmp_path / "net0")
    assert back.summary["final_accuracy"] == 0.75 and back.summary["task"] == small_task.name
    assert back.metrics["accuracy"].tolist() == [0.5, 0.75]
    assert math.isnan(back.metrics["loss"][0])
    assert back.history.steps == [0]
    for a, b in zip(back.history[0], model.effective_weights()):
        assert torch.equal(a, b.detach())
    with pytest.raises(FileExistsError):
        save_run(tmp_path / "net0", model, small_task, TrainConfig(), metrics)
    with pytest.raises(TypeError, match="model must be an RNN"):
        save_run(tmp_path / "net1", "model", small_task, TrainConfig())


def test_metrics_csv_round_trip(tmp_path):
    m = Metrics([{"step": 0, "loss": None, "accuracy": 0.1}, {"step": 5, "loss": 0.123456789012345, "accuracy": 1.0,
                                                            "extra": 3.0}])
    m.to_csv(tmp_path / "m.csv")
    back = Metrics.from_csv(tmp_path / "m.csv")
    assert back.columns == ["step", "loss", "accuracy", "extra"]
    assert back.rows[1]["loss"] == 0.123456789012345  # exact float round trip
    assert back.rows[0]["loss"] is None and back.rows[0]["extra"] is None
    assert back["step"].tolist() == [0.0, 5.0]
    with pytest.raises(KeyError, match="did you mean 'accuracy'"):
        back["acuracy"]
    assert len(back.truncate(0)) == 1


def test_yaml_reads_exponent_floats():
    assert load_yaml("a: 1e-3\nb: [0, 51.2]\nc: off\nd: 3") == {"a": 1e-3, "b": [0, 51.2], "c": False, "d": 3}
    with pytest.raises(Exception):
        load_yaml("!!python/object:os.system {}")


def test_weight_history_errors(small_model_config, tmp_path):
    model = nr.RNN(small_model_config)
    hist = WeightHistory(small_model_config, tmp_path / "h")
    hist.append(0, model.effective_weights())
    with pytest.raises(ValueError, match="steps must increase"):
        hist.append(0, model.effective_weights())
    with pytest.raises(TypeError, match="must be an int"):
        hist["0"]
    with pytest.raises(ValueError, match="name must be one of"):
        hist.stack("w_recurrent")
    with pytest.raises(ValueError, match="no snapshot at step 7"):
        hist.index_of(7)
    with pytest.raises(FileNotFoundError, match="index.json missing"):
        WeightHistory.load(tmp_path / "nothing", small_model_config)
    (tmp_path / "h" / "step_0000000.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="is missing"):
        WeightHistory.load(tmp_path / "h", small_model_config)
    with pytest.raises(TypeError, match="config must be an RNNConfig"):
        WeightHistory({"n_units": 3})


def test_checkpoint_round_trip(small_task, small_model_config, tmp_path):
    model = nr.RNN(small_model_config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    batch = small_task.batch(4, torch.Generator().manual_seed(0))
    model(batch.inputs).outputs.pow(2).mean().backward()
    opt.step()
    gens = make_generators(5)
    torch.randn(3, generator=gens["task"])
    save_checkpoint(tmp_path, 1, model, opt, gens, extra={"note": "x"})
    expected_next = torch.randn(3, generator=gens["task"])

    model2 = nr.RNN(small_model_config.replace(seed=9))
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2)
    gens2 = make_generators(0)
    meta = load_checkpoint(tmp_path, model2, opt2, gens2)
    assert meta["step"] == 1 and meta["extra"] == {"note": "x"}
    for (k, a), (_, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert torch.equal(a, b), k
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    for pid in s1:
        for key in s1[pid]:
            assert torch.equal(torch.as_tensor(s1[pid][key]), torch.as_tensor(s2[pid][key]))
    assert torch.equal(torch.randn(3, generator=gens2["task"]), expected_next)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "none", model2)


def test_figures_and_save_figure(small_task, small_model_config, tmp_path, trained):
    fig = plotting.plot_example_trials(nr.RNN(small_model_config), small_task, n_trials=2)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * small_task.n_outputs
    curves = plotting.plot_training_curves(trained.metrics)
    assert isinstance(curves, Figure) and len(curves.axes) == 2
    path = plotting.save_figure(fig, tmp_path / "f.png")
    assert path.stat().st_size > 1000
    with pytest.raises(FileExistsError, match="overwrite=True"):
        plotting.save_figure(fig, tmp_path / "f.png")
    plotting.save_figure(fig, tmp_path / "f.png", overwrite=True)
    with pytest.raises(ValueError, match="must end in .png"):
        plotting.save_figure(fig, tmp_path / "f.jpeg")
    with pytest.raises(TypeError, match="must be a matplotlib.figure.Figure"):
        plotting.save_figure("fig", tmp_path / "g.png")
    with pytest.raises(ValueError, match="n_trials must be >= 1"):
        plotting.plot_example_trials(nr.RNN(small_model_config), small_task, n_trials=0)


def test_report_lists_analysis_figures(trained, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained.path, copy)
    fig = plotting.new_figure()
    fig.subplots().plot([0, 1])
    plotting.save_figure(fig, copy / "analysis" / "pca.png")
    text = write_report(copy).read_text()
    assert "analysis/pca.png" in text
