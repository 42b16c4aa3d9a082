"""Fault injection: real training processes killed with SIGKILL at many moments, every file of a run
folder corrupted in several ways, ``--overwrite`` against folders that are not (only) neurornn's,
crafted paths and code references in run folders.

Run alone with ``pytest -m faults``. The kill grid kills a forked ``neurornn train`` process (the
command line's own ``main``) inside every one of its file writes, at one of three phases (the
temporary file half written; the manifest updated but the file not yet renamed; just renamed),
rotating the phase with the write; ``NEURORNN_FAULTS_ALL=1`` tries every phase of every write.
Three more runs are real ``python -m neurornn train`` processes killed from outside at set times.
After each kill, ``--resume`` (or, when the run had not yet written its config, the same command
with ``--overwrite``) must end bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import neurornn as nr
from neurornn import cli
from forking import run_in_child
from neurornn._files import MANIFEST, read_manifest, write_text
from neurornn._folder import CorruptFileError, FolderInUseError, _foreign
from neurornn.runs import RunWriter

pytestmark = pytest.mark.faults

SETTINGS = ["model.n_units=16", "task.stimulus_ms=200", "train.steps=12", "train.eval_every=4",
            "train.checkpoint_every=4", "train.history_every=4", "train.batch_size=8", "train.eval_batch_size=16",
            "train.acc_criterion=false"]
PHASES = ("partial", "recorded", "renamed")
# columns that measure time, not the run
_CLOCK = {"wall_seconds", "seconds_per_step", "created", "resumed_from_step"}


def train_argv(out: Path, *extra: str) -> list[str]:
    return ["train", "--quiet", "--no-figures", "--out", str(out), "--set", *SETTINGS, *extra]


def in_child(argv: list[str], fault: str | None = None) -> int:
    """Run ``neurornn ARGV`` in a forked process; its exit code, or -9 when it was killed."""
    return run_in_child(lambda: cli.main(argv), fault)


def run_files(folder: Path) -> dict:
    """What must be bit-identical between two runs: weights, history, metrics and summary (no clocks)."""
    out = {"model": load_file(str(folder / "model.safetensors"))}
    index = json.loads((folder / "history" / "index.json").read_text())
    out["history"] = [(e["step"], load_file(str(folder / "history" / e["file"]))) for e in index["snapshots"]]
    rows = nr.runs.Metrics.from_csv(folder / "metrics.csv").rows
    out["metrics"] = [{k: v for k, v in r.items() if k not in _CLOCK} for r in rows]
    summary = json.loads((folder / "summary.json").read_text())
    out["summary"] = {k: v for k, v in summary.items() if k not in _CLOCK}
    return out


def assert_same(a: dict, b: dict) -> None:
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert [s for s, _ in a["history"]] == [s for s, _ in b["history"]]
    for (_, x), (_, y) in zip(a["history"], b["history"]):
        assert all(torch.equal(x[k], y[k]) for k in x)
    assert a["metrics"] == b["metrics"]
    assert a["summary"] == b["summary"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "reference"
    assert in_child(train_argv(out)) == 0
    assert in_child(["train", "--out", str(out.parent / "x"), "--set", "train.steps=0"], "1:partial") == -9  # hook works
    return run_files(out), out


def _count_writes(tmp_path: Path) -> int:
    """How many files a run writes (one kill point each), counted by killing at ever later writes."""
    return 52  # checked by test_the_kill_grid_covers_every_write


def test_the_kill_grid_covers_every_write(reference, tmp_path):
    # the write after the last one never comes: the run finishes untouched
    assert in_child(train_argv(tmp_path / "a"), f"{_count_writes(tmp_path) + 1}:partial") == 0
    assert in_child(train_argv(tmp_path / "b"), f"{_count_writes(tmp_path)}:renamed") == -9


def _kill_points() -> list[str]:
    every = os.environ.get("NEURORNN_FAULTS_ALL") == "1"
    n = _count_writes(Path())
    return [f"{k}:{p}" for k in range(1, n + 1) for i, p in enumerate(PHASES) if every or i == k % len(PHASES)]


def resume_after_kill(out: Path) -> None:
    """Resume a killed run; a run killed before it wrote its config starts again with --overwrite."""
    code = in_child(["train", "--quiet", "--no-figures", "--resume", "--out", str(out)])
    if code != 0:
        assert not (out / "config.yaml").exists(), f"--resume failed with exit code {code}"
        assert in_child(train_argv(out, "--overwrite")) == 0


@pytest.mark.parametrize("fault", _kill_points())
def test_killed_inside_a_file_write_resumes_bit_identical(reference, tmp_path, fault):
    expected, _ = reference
    out = tmp_path / "run"
    assert in_child(train_argv(out), fault) == -9
    try:  # a killed run either loads or says which file is missing or damaged
        nr.load_run(out)
    except (FileNotFoundError, CorruptFileError, ValueError) as err:
        assert str(out) in str(err) or "does not exist" in str(err)
    resume_after_kill(out)
    assert_same(run_files(out), expected)
    assert _foreign(out) == []  # nothing is left that neurornn did not record: the folder can be replaced


LONG = [s.replace("train.steps=12", "train.steps=300") for s in SETTINGS]  # the kill falls inside training
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def neurornn_process(*args: str, **kwargs):
    return subprocess.run([sys.executable, "-m", "neurornn", *args], env=ENV, capture_output=True, **kwargs)


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults") / "long"
    neurornn_process("train", "--quiet", "--no-figures", "--set", *LONG, "--out", str(out), check=True)
    return run_files(out)


@pytest.mark.parametrize("delay", [0.5, 4.0, 6.0])
def test_real_process_killed_from_outside_resumes_bit_identical(long_reference, tmp_path, delay):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "neurornn", "train", "--quiet", "--no-figures", "--set", *LONG, "--out", str(out)]
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (out / "config.yaml").exists():
        neurornn_process("train", "--quiet", "--no-figures", "--resume", "--out", str(out), check=True)
    else:
        subprocess.run([*argv, "--overwrite"], env=ENV, capture_output=True, check=True)
    assert_same(run_files(out), long_reference)


# ---------------------------------------------------------------------- corrupted files
def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _garbage(p: Path) -> None:
    p.write_bytes(b"\xff\xfe not what neurornn wrote \x00")


def _delete(p: Path) -> None:
    p.unlink()


CORRUPTIONS = {"truncated": _truncate, "bit-flip": _flip, "empty": _empty, "garbage": _garbage, "deleted": _delete}
LOADED_FILES = ["config.yaml", "model.safetensors", "metrics.csv", "summary.json", "history/index.json"]
RESUMED_FILES = ["checkpoints/latest.json", "checkpoints/step_0000012.safetensors", "config.yaml",
                 "history/index.json", "metrics.csv"]


@pytest.fixture
def finished(reference, tmp_path):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(reference[1], out)
    return out


@pytest.mark.parametrize("how", list(CORRUPTIONS))
@pytest.mark.parametrize("name", LOADED_FILES)
def test_a_corrupted_file_is_named_when_loading(finished, name, how):
    CORRUPTIONS[how](finished / name)
    with pytest.raises((CorruptFileError, FileNotFoundError, ValueError)) as info:
        nr.load_run(finished)
    assert Path(name).name in str(info.value)


@pytest.mark.parametrize("how", list(CORRUPTIONS))
@pytest.mark.parametrize("name", RESUMED_FILES)
def test_a_corrupted_file_is_named_when_resuming(finished, name, how, capsys):
    CORRUPTIONS[how](finished / name)
    code = cli.main(["train", "--quiet", "--no-figures", "--resume", "--out", str(finished),
                     "--set", "train.steps=16"])
    err = capsys.readouterr().err
    assert code in (2, 4), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert Path(name).name in err or "config.yaml" in err


@pytest.mark.parametrize("how", ["bit-flip", "truncated"])
def test_a_corrupted_snapshot_is_named_when_read(finished, how):
    CORRUPTIONS[how](finished / "history" / "step_0000004.safetensors")
    run = nr.load_run(finished)
    run.history[0]  # the others still read
    with pytest.raises(CorruptFileError, match="step_0000004.safetensors"):
        run.history[1]


def test_model_corruption_says_how_to_recover(finished):
    _flip(finished / "model.safetensors")
    with pytest.raises(CorruptFileError, match=r"model.safetensors.*step 12.*--resume --out "):
        nr.load_run(finished)
    assert cli.main(["train", "--quiet", "--no-figures", "--resume", "--out", str(finished)]) == 0
    nr.load_run(finished)  # resuming wrote it again


# ---------------------------------------------------------------------- --overwrite
def test_overwrite_refuses_a_folder_with_another_tools_config(tmp_path, capsys):
    other = tmp_path / "project"
    other.mkdir()
    (other / "config.yaml").write_text("lr: 0.1\n")
    (other / "ensemble.json").write_text("{}")
    (other / "experiment.json").write_text("{}")
    assert cli.main(train_argv(other, "--overwrite")) == 2
    assert "neurornn did not make it" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["config.yaml", "ensemble.json", "experiment.json"]


def test_overwrite_lists_and_keeps_foreign_files_in_a_run_folder(finished, capsys):
    (finished / "notes.txt").write_text("my notes")
    (finished / "history" / "extra.npz").write_bytes(b"data")
    write_text(finished / "summary.json", "{}")  # neurornn's own files may be rewritten by neurornn...
    (finished / "metrics.csv").write_text("edited by hand\n")  # ...a file changed by someone else is theirs
    assert cli.main(train_argv(finished, "--overwrite")) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "history/extra.npz" in err and "metrics.csv (changed" in err
    assert (finished / "notes.txt").read_text() == "my notes" and (finished / "model.safetensors").is_file()


@pytest.mark.parametrize("where", ["cwd", "home", "parent", "root"])
def test_overwrite_refuses_special_folders(tmp_path, monkeypatch, capsys, where):
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    (inner / "keep.txt").write_text("x")
    monkeypatch.chdir(inner)
    monkeypatch.setenv("HOME", str(tmp_path / "a"))
    target = {"cwd": ".", "home": str(tmp_path / "a"), "parent": "..", "root": "/"}[where]
    code = cli.main(train_argv(Path(target), "--overwrite"))
    err = capsys.readouterr().err
    assert code == 2 and "refusing to replace" in err, err
    assert (inner / "keep.txt").read_text() == "x"


def test_overwrite_refuses_a_symlink(finished, tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(finished)
    assert cli.main(train_argv(link, "--overwrite")) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert (finished / "model.safetensors").is_file()


def test_a_live_run_refuses_a_second_writer(finished, capsys):
    with RunWriter(finished, resume=True):  # a live run holds the folder
        for argv in (train_argv(finished, "--overwrite"),
                     ["train", "--quiet", "--resume", "--out", str(finished)]):
            assert cli.main(argv) == 5
            err = capsys.readouterr().err
            assert f"in use by process {os.getpid()}" in err
        with pytest.raises(FolderInUseError, match="in use"):
            RunWriter(finished, resume=True)
    assert (finished / "model.safetensors").is_file()
    assert cli.main(train_argv(finished, "--overwrite")) == 0  # the lock went with its holder


def test_an_ensemble_is_replaced_only_whole(tmp_path, capsys):
    out = tmp_path / "ens"
    argv = ["train", "--quiet", "--no-figures", "--ensemble", "2", "--out", str(out), "--set", *SETTINGS]
    assert cli.main(argv) == 0
    (out / "net_001" / "mine.txt").write_text("x")
    assert cli.main([*argv, "--overwrite"]) == 2
    assert "net_001/mine.txt" in capsys.readouterr().err
    (out / "net_001" / "mine.txt").unlink()
    assert cli.main([*argv, "--overwrite"]) == 0


# ---------------------------------------------------------------------- crafted run folders
def test_a_crafted_history_index_cannot_reach_outside(finished, tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    index = json.loads((finished / "history" / "index.json").read_text())
    index["snapshots"].append({"step": 99, "file": "../../victim.txt"})
    write_text(finished / "history" / "index.json", json.dumps(index))  # even with a valid checksum
    with pytest.raises(CorruptFileError, match=r"snapshots\[4\]"):
        nr.load_run(finished)
    code = cli.main(["train", "--quiet", "--no-figures", "--resume", "--out", str(finished),
                     "--set", "train.steps=16"])
    assert code == 4 and "snapshots[4]" in capsys.readouterr().err
    assert victim.read_text() == "precious"


def test_a_crafted_manifest_or_checkpoint_cannot_reach_outside(finished, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    manifest = read_manifest(finished)
    manifest["files"]["../victim.txt"] = {"sha256": "0" * 64, "bytes": 8}
    (finished / MANIFEST).write_text(json.dumps(manifest))
    latest = json.loads((finished / "checkpoints" / "latest.json").read_text())
    latest["file"] = "../../victim.txt"
    write_text(finished / "checkpoints" / "latest.json", json.dumps(latest))
    assert in_child(["train", "--quiet", "--resume", "--out", str(finished)]) == 4
    assert in_child(train_argv(finished, "--overwrite")) == 0  # replaced: only what neurornn wrote is gone
    assert victim.read_text() == "precious"


EVIL = '''
from pathlib import Path
Path(__file__).with_name("ran.txt").write_text("the code ran")
from neurornn.tasks.perceptual_decision_making import PerceptualDecisionMaking as Evil
'''


@pytest.mark.parametrize("spec", ["file", "module"])
def test_code_named_by_a_run_folder_never_runs_uninvited(finished, tmp_path, capsys, monkeypatch, spec):
    (tmp_path / "evil_task.py").write_text(EVIL)
    name = f"{tmp_path / 'evil_task.py'}:Evil" if spec == "file" else "evil_task:Evil"
    monkeypatch.chdir(tmp_path)  # the current folder is never put on the import path
    config = nr.runs.load_yaml((finished / "config.yaml").read_text())
    config["task"]["name"] = name
    write_text(finished / "config.yaml", nr.runs.dump_yaml(config))
    before = list(sys.path)
    with pytest.raises(nr.tasks.UntrustedCodeError, match="trust_code=True"):
        nr.load_run(finished)
    for argv in (["train", "--quiet", "--resume", "--out", str(finished)],
                 ["train", "--quiet", "--config", str(finished / "config.yaml"), "--out", str(tmp_path / "new")],
                 ["analyze", str(finished), "--pca", "--no-report"]):
        assert cli.main(argv) == 2
        assert "--trust-code" in capsys.readouterr().err
    assert not (tmp_path / "ran.txt").exists() and sys.path == before
    if spec == "file":  # when asked, it runs
        nr.load_run(finished, trust_code=True)
        assert (tmp_path / "ran.txt").exists()
        assert cli.main(["analyze", str(finished), "--pca", "--no-report", "--trust-code"]) == 0


def test_analysis_waits_for_a_live_run(finished, capsys):
    with RunWriter(finished, resume=True):
        assert cli.main(["analyze", str(finished), "--pca", "--no-report"]) == 5
        assert "in use by process" in capsys.readouterr().err
    assert not (finished / "analysis").exists()


# ---------------------------------------------------------------------- resume settings, CLI errors
def test_resume_applies_the_settings_it_records(finished):
    assert cli.main(["train", "--quiet", "--no-figures", "--resume", "--out", str(finished), "--set",
                     "train.steps=16", "train.learning_rate=0.05", "train.adam_eps=0.001"]) == 0
    config = nr.runs.load_yaml((finished / "config.yaml").read_text())["train"]
    assert (config["steps"], config["learning_rate"], config["adam_eps"]) == (16, 0.05, 0.001)
    latest = json.loads((finished / "checkpoints" / "latest.json").read_text())
    group = latest["optimizer"]["param_groups"][0]
    assert (latest["step"], group["lr"], group["eps"]) == (16, 0.05, 0.001)  # in effect, not only recorded


@pytest.mark.parametrize("setting, match", [
    ("train.seed=3", "train.seed cannot change when resuming"),
    ("train.optimizer=sgd", "train.optimizer cannot change when resuming"),
    ("train.momentum=0.9", "train.momentum has no effect with optimizer 'adam'"),
    ("model.n_units=8", "only accepts train"),
])
def test_resume_refuses_settings_it_cannot_apply(finished, capsys, setting, match):
    before = (finished / "config.yaml").read_bytes()
    assert cli.main(["train", "--quiet", "--resume", "--out", str(finished), "--set", "train.steps=16",
                     setting]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
    assert (finished / "config.yaml").read_bytes() == before  # nothing recorded that is not in effect
    assert cli.main(["train", "--quiet", "--no-figures", "--resume", "--out", str(finished),
                     "--set", "train.steps=16"]) == 0  # and the run is still resumable


@pytest.mark.parametrize("text, match", [
    ("task: [unclosed\n", "is not valid YAML at line"),
    ("task: !!python/object/apply:os.system ['echo hi']\n", "no tags"),
    ("\xff\xfe", "not UTF-8"),
])
def test_broken_config_files_are_one_line(tmp_path, capsys, text, match):
    file = tmp_path / "c.yaml"
    file.write_bytes(text.encode("latin-1"))
    assert cli.main(["train", "--config", str(file), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert match in err and "c.yaml" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, code, match", [
    (["--set", "train.device=cuda"], 2, "CUDA is not available"),
    (["--set", "train.device=tpu"], 2, "device"),
    (["--task", ""], 2, "--task must name a task"),
])
def test_device_and_empty_arguments_are_one_line(tmp_path, capsys, argv, code, match):
    if "cuda" in argv[-1] and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    assert cli.main(["train", "--quiet", "--out", str(tmp_path / "r"), *argv]) == code
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_empty_out_and_debug(tmp_path, capsys, monkeypatch):
    assert cli.main(["train", "--quiet", "--out", ""]) == 2
    assert "--out must be a folder path" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--out must be a folder path"):
        cli.main(["train", "--quiet", "--out", "", "--debug"])
    monkeypatch.setenv("NEURORNN_DEBUG", "1")
    with pytest.raises(ValueError):
        cli.main(["train", "--quiet", "--out", ""])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_one_line(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert cli.main(train_argv(ro / "run")) == 3
        err = capsys.readouterr().err
        assert "permission denied" in err and len(err.strip().splitlines()) == 1
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("error, code, match", [
    (MemoryError(), 6, "out of memory"),
    (OSError(28, "No space left on device", "/x/metrics.csv"), 6, "the disk is full"),
    (PermissionError(13, "Permission denied", "/x/run"), 3, "permission denied"),
    (RuntimeError("Expected all tensors to be on the same device"), 6, "device error"),
    (ZeroDivisionError("boom"), 1, "internal error .*--debug"),
])
def test_every_kind_of_failure_is_one_line_with_its_exit_code(monkeypatch, capsys, tmp_path, error, code, match):
    import re

    from neurornn.cli import train as train_cli

    def fail(args):
        raise error

    monkeypatch.setattr(train_cli, "run", fail)
    assert cli.main(["train", "--out", str(tmp_path / "r")]) == code
    err = capsys.readouterr().err
    assert re.search(match, err) and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_truncated_model_points_to_resume(finished, capsys):
    _truncate(finished / "model.safetensors")
    assert cli.main(["tasks"]) == 0
    capsys.readouterr()
    with pytest.raises(CorruptFileError, match="--resume"):
        nr.load_run(finished)


def test_a_run_that_fails_before_its_first_step_leaves_nothing(tmp_path, capsys):
    huge = "train.batch_size=100000000000"
    assert cli.main(train_argv(tmp_path / "new", huge)) == 2
    assert "batch_size" in capsys.readouterr().err and not (tmp_path / "new").exists()
    (tmp_path / "given").mkdir()
    assert cli.main(train_argv(tmp_path / "given", huge)) == 2
    assert (tmp_path / "given").is_dir() and not any((tmp_path / "given").iterdir())  # the user's folder stays
