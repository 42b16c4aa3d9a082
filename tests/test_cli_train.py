"""``neurornn train``: --set parsing, config files, run folders, resume, errors."""

from __future__ import annotations

import json
import sys

import pytest
import torch

import neurornn as nr
from neurornn.cli import main
from neurornn.cli.train import build_configs, parse_sets
from neurornn.runs import load_yaml

# A small, fast PDM run: 20 time steps, 16 units, 12 training steps.
SMALL = ["task.stimulus_ms=200", "model.n_units=16", "train.steps=12", "train.batch_size=8",
         "train.eval_every=4", "train.eval_batch_size=16", "train.acc_criterion=off"]


def _train(tmp_path, *extra, out="run"):
    return main(["train", "--quiet", "--no-figures", "--out", str(tmp_path / out), "--set", *SMALL, *extra])


def test_parse_sets_values():
    got = parse_sets(["model.n_units=64", "train.learning_rate=1e-3", "task.coherences=[0,51.2]",
                      "train.acc_criterion=off", "model.tau_inh_ms=null", "model.activation=tanh",
                      "task.name=flip_flop", "train.progress=false",
                      "train.regularizers=[{kind: l2_rates, strength: 1e-3}]"])
    assert got["model"] == {"n_units": 64, "tau_inh_ms": None, "activation": "tanh"}
    assert got["train"] == {"learning_rate": 1e-3, "acc_criterion": False, "progress": False,
                            "regularizers": [{"kind": "l2_rates", "strength": 1e-3}]}
    assert got["task"] == {"coherences": [0, 51.2], "name": "flip_flop"}


@pytest.mark.parametrize(
    "item, match",
    [
        ("model.n_units", "expects section.key=value"),
        ("n_units=3", "must be section.key"),
        ("modle.n_units=3", "unknown section 'modle' .*did you mean 'model'"),
        ("model.=3", "empty key"),
        ("model.n_units=[1, 2", "cannot parse value"),
    ],
)
def test_parse_sets_errors(item, match):
    with pytest.raises(ValueError, match=match):
        parse_sets([item])


def test_defaults_come_from_the_task():
    task, model, train = build_configs()
    assert task.name == "perceptual_decision_making"
    defaults = task.defaults
    assert model.n_units == defaults["model"]["n_units"] and model.exc_fraction == defaults["model"]["exc_fraction"]
    assert (model.n_inputs, model.n_outputs, model.dt_ms) == (3, 3, task.dt_ms)
    assert train.learning_rate == defaults["train"]["learning_rate"]
    task, model, _ = build_configs(sets=["task.dt_ms=10", "train.seed=4"])
    assert model.dt_ms == 10.0 and model.seed == 4  # dt from the task, model seed from train.seed


@pytest.mark.parametrize(
    "sets, error, match",
    [
        (["model.n_unit=3"], ValueError, "unknown model config key 'n_unit'.*did you mean 'n_units'"),
        (["train.step=3"], ValueError, "unknown train config key 'step'.*did you mean 'steps'"),
        (["task.coherence=[1]"], ValueError, "unknown parameter 'coherence'.*did you mean 'coherences'"),
        (["task.name=percepual_decision_making"], ValueError, "did you mean 'perceptual_decision_making'"),
        (["model.dt_ms=10"], ValueError, r"model.dt_ms=10 does not match the task's dt_ms=20.0 \(set task.dt_ms"),
        (["model.n_inputs=5"], ValueError, "model.n_inputs=5 does not match"),
        (["train.steps=-3"], ValueError, "steps must be >= 0"),
        (["model.tau_ms=-5"], ValueError, "tau_ms must be > 0"),
    ],
)
def test_build_configs_errors(sets, error, match):
    with pytest.raises(error, match=match):
        build_configs(sets=sets)


def test_cli_trains_and_writes_a_run(tmp_path, capsys):
    assert _train(tmp_path) == 0
    out = capsys.readouterr().out
    assert f"run folder: {tmp_path / 'run'}" in out
    assert "final accuracy: " in out and "task ceiling" in out
    run = nr.load_run(tmp_path / "run")
    assert run.summary["steps"] == 12 and run.model.config.n_units == 16
    assert run.task.params()["stimulus_ms"] == 200


def test_cli_errors_are_reported(tmp_path, capsys):
    assert _train(tmp_path) == 0
    capsys.readouterr()
    assert _train(tmp_path) == 2  # the folder exists
    assert "already exists" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "x"), "--set", "model.n_unit=3"]) == 2
    assert "did you mean 'n_units'" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--resume"]) == 2
    assert "--resume needs --out" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "run"), "--set", "model.n_units=8"]) == 2
    assert "only accepts train.*" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "empty")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["train", "--threads", "0", "--out", str(tmp_path / "t")]) == 2
    assert "--threads must be >= 1" in capsys.readouterr().err



def test_cli_reports_a_missing_optional_dependency(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "neurogym", None)  # import neurogym -> ImportError
    assert main(["train", "--task", "neurogym:PerceptualDecisionMaking-v0", "--out", str(tmp_path / "n")]) == 2
    err = capsys.readouterr().err
    assert "neurornn train: error:" in err and "neurornn[neurogym]" in err and "Traceback" not in err

def test_cli_overwrite(tmp_path):
    assert _train(tmp_path) == 0
    first = (tmp_path / "run" / "model.safetensors").read_bytes()
    assert main(["train", "--quiet", "--no-figures", "--overwrite", "--out", str(tmp_path / "run"),
                 "--set", *SMALL, "train.seed=1"]) == 0
    assert (tmp_path / "run" / "model.safetensors").read_bytes() != first


def test_cli_config_file_reruns_identically(tmp_path):
    assert _train(tmp_path, "train.seed=3") == 0
    assert main(["train", "--quiet", "--no-figures", "--config", str(tmp_path / "run" / "config.yaml"),
                 "--out", str(tmp_path / "again")]) == 0
    a, b = nr.load_run(tmp_path / "run"), nr.load_run(tmp_path / "again")
    assert a.model.config == b.model.config and a.config == b.config
    for (k, x), (_, y) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert torch.equal(x, y), k


def test_cli_config_file_sections(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("task: perceptual_decision_making\nmodel: {n_units: 8}\ntrain: {learning_rate: 1e-3}\n")
    task, model, train = build_configs(config_file=str(cfg), sets=["model.n_units=12"])
    assert model.n_units == 12 and train.learning_rate == 1e-3  # --set wins over the file
    cfg.write_text("tsk: {name: x}\n")
    with pytest.raises(ValueError, match="unknown section 'tsk'.*did you mean 'task'"):
        build_configs(config_file=str(cfg))
    cfg.write_text("task: {name: perceptual_decision_making, stimulus_ms: 200}\n")
    with pytest.raises(ValueError, match="task parameters go under task.params"):
        build_configs(config_file=str(cfg))


def test_cli_resume_continues_to_the_same_weights(tmp_path):
    assert _train(tmp_path, "train.steps=16", out="full") == 0
    assert _train(tmp_path, "train.steps=8", out="part") == 0
    assert main(["train", "--quiet", "--no-figures", "--resume", "--out", str(tmp_path / "part"),
                 "--set", "train.steps=16"]) == 0
    a, b = nr.load_run(tmp_path / "full"), nr.load_run(tmp_path / "part")
    for (k, x), (_, y) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert torch.equal(x, y), k
    summary = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert summary["resumed_from_step"] == 8 and summary["steps"] == 16
    assert load_yaml((tmp_path / "part" / "config.yaml").read_text())["train"]["steps"] == 16


def test_cli_resumes_an_ensemble_folder(tmp_path, capsys):
    """`--resume --out ENSEMBLE` continues every network; `--set train.*` applies to each."""
    ens = ["--ensemble", "2", "--vary", "train.learning_rate=[0.01,0.003]"]
    assert main(["train", "--quiet", "--no-figures", "--out", str(tmp_path / "full"), "--set", *SMALL,
                 "train.steps=16", *ens]) == 0
    assert main(["train", "--quiet", "--no-figures", "--out", str(tmp_path / "part"), "--set", *SMALL,
                 "train.steps=8", *ens]) == 0
    assert main(["train", "--quiet", "--no-figures", "--resume", "--out", str(tmp_path / "part"),
                 "--set", "train.steps=16"]) == 0
    assert "net_001: final accuracy" in capsys.readouterr().out
    for name in ("net_000", "net_001"):
        a, b = nr.load_run(tmp_path / "full" / name), nr.load_run(tmp_path / "part" / name)
        for (k, x), (_, y) in zip(a.model.named_parameters(), b.model.named_parameters()):
            assert torch.equal(x, y), k
        assert b.summary["resumed_from_step"] == 8 and b.summary["steps"] == 16
        assert b.config.learning_rate == a.config.learning_rate
    assert main(["train", "--resume", "--out", str(tmp_path / "part"), "--set", "model.n_units=8"]) == 2
    assert "only accepts train.* settings" in capsys.readouterr().err


def test_cli_default_out_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--quiet", "--no-figures", "--set", *SMALL, "train.steps=1"]) == 0
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("perceptual_decision_making-")


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--task", "--config", "--set", "--out", "--resume", "--overwrite"):
        assert flag in text


def _trains_from_cli(tmp_path, task_name, sets):
    args = ["train", "--quiet", "--no-figures", "--task", task_name, "--out", str(tmp_path / task_name)]
    assert main(args + (["--set", *sets] if sets else [])) == 0
    run = nr.load_run(tmp_path / task_name)
    criterion = run.task.criterion
    assert run.summary["stopped_because"] == "accuracy_criterion", run.summary
    assert run.summary["final_accuracy"] >= criterion
    return run


# The two tasks below train to their criterion from the CLI with the tasks' default settings
# in seconds on one thread (benchmarks/bench_tasks.py: Mante ~1.5 s, PDM ~1.3 s); the flip-flop's
# CLI default is trained (about 30 s) and its fixed points counted in tests/test_fixed_points.py.
def test_cli_context_dependent_dm_to_criterion(tmp_path):
    _trains_from_cli(tmp_path, "context_dependent_dm", [])


def test_cli_default_pdm_to_criterion(tmp_path):
    """The main job: `neurornn train` with the default task and settings reaches 0.85 on fresh trials."""
    run = _trains_from_cli(tmp_path, "perceptual_decision_making", [])
    batch = run.task.batch(4000, torch.Generator().manual_seed(99))
    with torch.no_grad():
        acc = run.task.evaluate(run.model(batch.inputs).outputs, batch)["accuracy"]
    assert acc >= 0.85, acc


CUSTOM_TASK = '''
import torch
from neurornn.tasks import Batch, Task


class Echo(Task):
    """Output half the input (MSE)."""

    name = "echo"
    input_names = ("u",)
    output_names = ("y",)
    loss = "mse"
    criterion = 0.5
    defaults = {"model": {"n_units": 8, "tau_ms": 20.0}, "train": {"steps": 3}}

    def __init__(self, dt_ms=20.0, n_steps=5):
        super().__init__(dt_ms)
        self.n_steps = n_steps
        self._params.update(n_steps=n_steps)

    def build(self, n, generator):
        u = torch.rand(n, 1, 1, generator=generator).expand(n, self.n_steps, 1).clone()
        return Batch(u, 0.5 * u, torch.ones(n, self.n_steps))

    def evaluate(self, outputs, batch):
        return {"accuracy": float(((outputs - batch.targets).abs() < 0.1).float().mean())}
'''


def test_cli_custom_task_file_is_rerunnable(tmp_path):
    file = tmp_path / "my_tasks.py"
    file.write_text(CUSTOM_TASK)
    assert main(["train", "--quiet", "--no-figures", "--task", f"{file}:Echo", "--out", str(tmp_path / "run"),
                 "--set", "task.n_steps=4", "train.acc_criterion=off"]) == 0
    config = load_yaml((tmp_path / "run" / "config.yaml").read_text())
    assert config["task"] == {"name": f"{file}:Echo", "params": {"dt_ms": 20.0, "n_steps": 4}}
    with pytest.raises(nr.tasks.UntrustedCodeError, match="trust_code=True"):
        nr.load_run(tmp_path / "run")  # the folder names code: it runs only when asked
    run = nr.load_run(tmp_path / "run", trust_code=True)
    assert type(run.task).__name__ == "Echo" and run.summary["steps"] == 3 and run.model.config.n_units == 8


def test_cli_resume_no_criterion_trains_past_a_met_criterion(tmp_path, capsys):
    """A run that met its criterion continues with --resume --no-criterion and more steps."""
    assert _train(tmp_path, "train.steps=40", "train.acc_criterion=0.0", out="met") == 0
    assert json.loads((tmp_path / "met" / "summary.json").read_text())["stopped_because"] == "accuracy_criterion"
    assert main(["train", "--quiet", "--no-figures", "--resume", "--out", str(tmp_path / "met"),
                 "--set", "train.steps=40"]) == 0
    assert "--no-criterion" in capsys.readouterr().out  # the hint names the flag
    assert main(["train", "--quiet", "--no-figures", "--resume", "--no-criterion", "--out", str(tmp_path / "met"),
                 "--set", "train.steps=20"]) == 0
    summary = json.loads((tmp_path / "met" / "summary.json").read_text())
    assert summary["stopped_because"] == "step_budget" and summary["steps"] == 20
    assert summary["resumed_from_step"] == 4 and summary["accuracy_criterion"] is None
