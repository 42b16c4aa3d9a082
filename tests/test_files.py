"""Output files: plain JSON/CSV values and output folders that never lose the user's files."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from neurornn._files import MANIFEST, to_plain, write_csv, write_json, write_text
from neurornn._folder import make_folder, prepare_experiment_folder


def test_to_plain_converts_arrays_scalars_and_paths():
    data = {"a": np.float32(1.5), "b": torch.tensor([1, 2]), "c": (np.arange(2), Path("x/y")), 3: np.bool_(True)}
    assert to_plain(data) == {"a": 1.5, "b": [1, 2], "c": [[0, 1], "x/y"], "3": True}
    assert math.isnan(to_plain(float("nan")))
    assert to_plain([float("nan"), np.float64("inf"), 1.0], finite=True) == [None, None, 1.0]


def test_write_json_is_valid_json_without_nan(tmp_path):
    path = write_json(tmp_path / "x.json", {"loss": float("nan"), "w": np.eye(2), "n": np.int64(3)})
    assert json.loads(path.read_text()) == {"loss": None, "w": [[1.0, 0.0], [0.0, 1.0]], "n": 3}
    assert not list(tmp_path.glob("*.tmp"))
    with pytest.raises(TypeError, match="cannot write object to JSON"):
        write_json(tmp_path / "bad.json", {"x": object()})


def test_write_csv_takes_every_column_in_order(tmp_path):
    path = write_csv(tmp_path / "x.csv", [{"a": 1, "b": np.float32(0.5)}, {"a": 2, "c": float("nan")}])
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"a": "1", "b": "0.5", "c": ""}, {"a": "2", "b": "", "c": ""}]


def test_make_folder_never_deletes_what_is_not_ours(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="already exists"):
        make_folder(folder, "run", overwrite=False)
    with pytest.raises(ValueError, match="refusing to replace .*neurornn did not make it"):
        make_folder(folder, "run", overwrite=True)
    assert (folder / "thesis.tex").read_text() == "years of work"
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="exists and is not a folder"):
        make_folder(tmp_path / "file", "run", overwrite=True)
    with pytest.raises(TypeError, match="out must be a path, got int"):
        make_folder(3, "run")


def test_experiment_folder_is_marked_and_only_then_replaced(tmp_path):
    out = prepare_experiment_folder(tmp_path / "exp", "sign-tca")
    assert json.loads((out / MANIFEST).read_text())["experiment"] == "sign-tca"
    write_text(out / "result.txt", "old")
    with pytest.raises(FileExistsError, match="experiment folder .* already exists"):
        prepare_experiment_folder(out, "sign-tca")
    prepare_experiment_folder(out, "sign-tca", overwrite=True)
    assert not (out / "result.txt").exists() and (out / MANIFEST).is_file()

    user = tmp_path / "home"
    user.mkdir()
    (user / "data.npz").write_bytes(b"precious")
    with pytest.raises(ValueError, match="neurornn did not make it"):
        prepare_experiment_folder(user, "sign-tca", overwrite=True)
    assert (user / "data.npz").read_bytes() == b"precious"
    assert prepare_experiment_folder(None, "sign-tca") is None


def test_a_file_neurornn_did_not_write_is_never_replaced(tmp_path):
    with make_folder(tmp_path / "run", "run") as folder:
        (folder.path / "notes.txt").write_text("mine")
        with pytest.raises(FileExistsError, match="neurornn did not write it"):
            write_text(folder.path / "notes.txt", "theirs")
        assert (folder.path / "notes.txt").read_text() == "mine"
        assert sorted(p.name for p in folder.path.iterdir()) == [".neurornn.json", ".neurornn.lock", "notes.txt"]
        write_text(folder.path / "report.html", "a")  # its own files it may rewrite
        write_text(folder.path / "report.html", "b")
        assert (folder.path / "report.html").read_text() == "b"
