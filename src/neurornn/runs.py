"""The run folder: everything a training run leaves behind, written and read back.

::

    RUN/
      config.yaml        task {name, params}, model (RNNConfig), train (TrainConfig): rerunnable
                         with ``neurornn train --config RUN/config.yaml``
      metrics.csv        one row per evaluation: step, loss, task_loss, regularisers, grad_norm,
                         eval_loss, accuracy, the task's other scores, wall_seconds
      summary.json       task, steps, final_loss, final_accuracy, wall_seconds, seed,
                         stopped_because, ...
      model.safetensors  the final model (parameters and buffers, ``RNN.state_dict()``)
      history/           effective-weight snapshots (see neurornn.training.history)
      checkpoints/       resumable state (see neurornn.training.checkpoint)
      figures/           training curves, example trials
      analysis/          written by ``neurornn analyze``
      report.html        one page a person can read

Use :class:`RunWriter` to write the pieces one by one (the trainer does), or
:func:`save_run` to write a finished run at once (e.g. each network of an
ensemble); :func:`load_run` reads a folder back into a :class:`Run`.
"""

from __future__ import annotations

import csv
import inspect
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from . import tasks as _tasks
from ._files import forget, read_json, read_manifest, to_plain, write_bytes, write_json, write_text
from ._folder import CorruptFileError, folder_kind, make_folder, open_folder, verified_bytes
from .models import RNN, RNNConfig
from .tasks.base import Task
from .config import TrainConfig
from .training.history import WeightHistory

__all__ = [
    "Metrics",
    "Run",
    "RunWriter",
    "save_run",
    "load_run",
    "is_run",
    "write_report",
    "task_spec",
    "load_yaml",
    "dump_yaml",
    "read_yaml_file",
    "read_tensors",
    "rebuild_task",
    "resume_hint",
    "CorruptFileError",
    "RUN_FILES",
]

RUN_FILES = ("config.yaml", "metrics.csv", "summary.json", "model.safetensors", "history",
             "checkpoints", "figures", "analysis", "report.html")


# ---------------------------------------------------------------------- YAML
class _Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads ``1e-3`` as a float (YAML 1.2 style)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def load_yaml(text: str, source: str = "YAML") -> Any:
    """Parse YAML safely (no object construction); ``1e-3`` is a float.

    Broken YAML, or YAML with tags that would build objects (``!!python/...``), is a
    ``ValueError`` naming ``source`` (the file or option it came from).
    """
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(err, "problem", None) or getattr(err, "context", None) or str(err).splitlines()[0]
        raise ValueError(f"{source} is not valid YAML{at}: {problem} (only plain values are read: numbers, "
                         "strings, lists, mappings; no tags)") from None


def read_yaml_file(path: str | os.PathLike, data: bytes | None = None) -> Any:
    """Parse a YAML file (UTF-8); errors name the file."""
    path = Path(path)
    raw = path.read_bytes() if data is None else data
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    return load_yaml(text, source=repr(str(path)))


def dump_yaml(data: Any) -> str:
    return yaml.safe_dump(to_plain(data), sort_keys=False, default_flow_style=None)


# ---------------------------------------------------------------------- metrics
class Metrics:
    """The rows of ``metrics.csv``: one dict per evaluation.

    ``metrics["accuracy"]`` is a column as a float array (NaN where a row has no
    value); ``metrics.rows`` the rows; ``metrics.last`` the last row.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self.rows: list[dict[str, Any]] = [dict(r) for r in rows]

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols.extend(k for k in row if k not in cols)
        return cols

    def __getitem__(self, column: str) -> np.ndarray:
        if column not in self.columns:
            from ._validation import suggest

            raise KeyError(f"no metrics column {column!r}{suggest(column, self.columns)}; columns: {self.columns}")
        out = []
        for row in self.rows:
            value = row.get(column)
            out.append(np.nan if value is None or value == "" else float(value))
        return np.asarray(out, dtype=float)

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, column: str) -> bool:
        return column in self.columns

    @property
    def last(self) -> dict[str, Any]:
        return dict(self.rows[-1]) if self.rows else {}

    def truncate(self, max_step: int) -> "Metrics":
        """Keep the rows of steps <= ``max_step`` (in place); returns self."""
        self.rows = [r for r in self.rows if int(r["step"]) <= max_step]
        return self

    def to_csv(self, path: str | os.PathLike) -> None:
        cols = self.columns
        buf = io.StringIO(newline="")
        writer = csv.writer(buf)
        writer.writerow(cols)
        for row in self.rows:
            writer.writerow(["" if row.get(c) is None else _fmt(row.get(c)) for c in cols])
        write_text(path, buf.getvalue())

    @classmethod
    def from_csv(cls, path: str | os.PathLike, data: bytes | None = None) -> "Metrics":
        """Read ``metrics.csv`` (``data``: its bytes, already read); a malformed file is a ValueError naming it."""
        path = Path(path)
        raw = path.read_bytes() if data is None else data
        try:
            reader = csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))
            rows = []
            for raw_row in reader:
                if None in raw_row or "step" not in raw_row:
                    raise ValueError(f"line {reader.line_num} does not match the header {reader.fieldnames}")
                row: dict[str, Any] = {}
                for k, v in raw_row.items():
                    if v == "" or v is None:
                        row[k] = None
                    elif k == "step":
                        row[k] = int(v)
                    else:
                        try:
                            row[k] = float(v)
                        except ValueError:
                            row[k] = v
                rows.append(row)
        except (UnicodeDecodeError, csv.Error, ValueError) as err:
            raise ValueError(f"{str(path)!r} is not a neurornn metrics table: {err}") from None
        return cls(rows)

    def __repr__(self) -> str:
        return f"Metrics({len(self)} rows, columns={self.columns})"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


# ---------------------------------------------------------------------- run
@dataclass
class Run:
    """A trained network with everything its training left behind.

    Attributes
    ----------
    path : Path or None
        The run folder (``None`` when nothing was written).
    model : RNN
        The final network (eval mode).
    task : Task
    config : TrainConfig
    metrics : Metrics
        One row per evaluation (see ``metrics.csv``).
    summary : dict
        What ``summary.json`` holds.
    history : WeightHistory
        Effective-weight snapshots through training.
    """

    path: Path | None
    model: RNN
    task: Task
    config: TrainConfig
    metrics: Metrics
    summary: dict
    history: WeightHistory

    def __repr__(self) -> str:
        acc = self.summary.get("final_accuracy")
        acc_text = f"{acc:.3f}" if isinstance(acc, float) else str(acc)
        return (
            f"Run(path={str(self.path) if self.path else None!r}, task={self.task.name!r}, "
            f"steps={self.summary.get('steps')}, final_accuracy={acc_text}, "
            f"stopped_because={self.summary.get('stopped_because')!r})"
        )


def is_run(path: str | os.PathLike) -> bool:
    """True when ``path`` is a run folder neurornn made (its manifest says so)."""
    return folder_kind(path) == "run"


class RunWriter:
    """Writes the pieces of a run folder, holding its lock until :meth:`close`.

    Parameters
    ----------
    path : path
        The run folder. If it exists and is not empty, it is an error unless
        ``overwrite=True`` (then it is replaced, but only if it is a run folder
        holding nothing but what neurornn wrote) or ``resume=True`` (then it
        must be a run folder and is kept).
    overwrite, resume : bool
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> None:
        if overwrite and resume:
            raise ValueError("give overwrite=True or resume=True, not both")
        if resume:
            self._folder = open_folder(path, "run", what="run folder")
        else:
            self._folder = make_folder(
                path, "run", overwrite=overwrite, what="run folder",
                hint="choose another out, resume it (resume=True / --resume) or replace it "
                     "(overwrite=True / --overwrite)")
        self.path = self._folder.path

    def close(self) -> None:
        """Release the folder's lock."""
        self._folder.close()

    def reset(self) -> None:
        """Delete every file neurornn wrote in the run folder (a run starting again from step 0)."""
        forget(self.path, [self.path / rel for rel in read_manifest(self.path)["files"]])

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def history_dir(self) -> Path:
        return self.path / "history"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def figures_dir(self) -> Path:
        return self.path / "figures"

    def write_config(self, task: Task, model_config: RNNConfig, train_config: TrainConfig) -> None:
        write_text(self.path / "config.yaml", dump_yaml(run_config(task, model_config, train_config)))

    def write_metrics(self, metrics: Metrics) -> None:
        metrics.to_csv(self.path / "metrics.csv")

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_json(self.path / "summary.json", summary)

    def write_model(self, model: RNN) -> None:
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        write_bytes(self.path / "model.safetensors", save_safetensors(tensors, metadata={"format": "neurornn-model"}))

    def write_history(self, history: WeightHistory) -> None:
        if history.directory is not None and history.directory.resolve() == self.history_dir.resolve():
            return
        history.save(self.history_dir)

    def write_figures(self, model: RNN, task: Task, metrics: Metrics, seed: int = 0,
                      criterion: float | None = None) -> list[Path]:
        """Training curves and example trials into ``figures/`` (PNG)."""
        from . import plotting

        self.figures_dir.mkdir(exist_ok=True)
        written = []
        if len(metrics):
            fig = plotting.plot_training_curves(metrics, title=task.name, criterion=criterion)
            written.append(plotting.save_figure(fig, self.figures_dir / "training_curves.png", overwrite=True))
        fig = plotting.plot_example_trials(model, task, generator=torch.Generator().manual_seed(seed))
        written.append(plotting.save_figure(fig, self.figures_dir / "example_trials.png", overwrite=True))
        return written

    def write_report(self, *, figures: bool = True) -> Path:
        return write_report(self.path, figures=figures)


def task_spec(task: Task) -> str:
    """The name that rebuilds ``task`` with ``tasks.make``: its registered name, or
    ``"module:Class"`` / ``"path/file.py:Class"`` for a task class that is not registered."""
    if task.name in _tasks.names() and isinstance(task, _tasks.get(task.name)) or task.name.startswith("neurogym:"):
        return task.name
    cls = type(task)
    if cls.__module__.startswith("_neurornn_user_task_"):  # loaded from a file by tasks.make
        return f"{inspect.getfile(cls)}:{cls.__qualname__}"
    return f"{cls.__module__}:{cls.__qualname__}"


def run_config(task: Task, model_config: RNNConfig, train_config: TrainConfig) -> dict[str, Any]:
    """The ``config.yaml`` dict: sections task {name, params}, model, train."""
    return {
        "task": {"name": task_spec(task), "params": to_plain(task.params())},
        "model": to_plain(model_config.to_dict()),
        "train": to_plain(train_config.to_dict()),
    }


def save_run(
    path: str | os.PathLike,
    model: RNN,
    task: Task,
    train_config: TrainConfig,
    metrics: Metrics | Iterable[Mapping[str, Any]] = (),
    summary: Mapping[str, Any] | None = None,
    history: WeightHistory | None = None,
    *,
    overwrite: bool = False,
    figures: bool = True,
) -> Run:
    """Write a finished run to ``path`` at once and return it as a :class:`Run`.

    For trainers that do not write as they go (e.g. an ensemble writing each of
    its networks as its own run). Never overwrites an existing folder unless
    ``overwrite=True``.
    """
    if not isinstance(model, RNN):
        raise TypeError(f"model must be an RNN, got {type(model).__name__}")
    if not isinstance(task, Task):
        raise TypeError(f"task must be a Task, got {type(task).__name__}")
    if not isinstance(train_config, TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig, got {type(train_config).__name__}")
    metrics = metrics if isinstance(metrics, Metrics) else Metrics(metrics)
    with RunWriter(path, overwrite=overwrite) as writer:
        writer.write_config(task, model.config, train_config)
        writer.write_metrics(metrics)
        summary = dict(summary or {})
        summary.setdefault("task", task.name)
        summary.setdefault("seed", train_config.seed)
        writer.write_model(model)
        if history is not None and len(history):
            writer.write_history(history)
        writer.write_summary(summary)
        if figures:
            writer.write_figures(model, task, metrics, seed=train_config.seed)
        write_report(writer.path, figures=figures)
    hist = WeightHistory.load(writer.history_dir, model.config) if (writer.history_dir / "index.json").is_file() \
        else WeightHistory(model.config)
    return Run(writer.path, model, task, train_config, metrics, summary, hist)


def resume_hint(path: str | os.PathLike) -> str:
    """How to rebuild a run's files: resume it from its last checkpoint (named when readable)."""
    step = ""
    try:
        latest = read_json(Path(path) / "checkpoints" / "latest.json")
        step = f" from its checkpoint of step {int(latest['step'])}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"resume the run{step} to write it again: neurornn train --resume --out {path}"


def _read_config(path: Path) -> dict[str, Any]:
    file = path / "config.yaml"
    config = read_yaml_file(file, verified_bytes(file, "the run cannot be rebuilt without it"))
    if not isinstance(config, Mapping):
        raise ValueError(f"{str(file)!r} must hold a mapping with task, model and train")
    for section in ("task", "model", "train"):
        if section not in config:
            raise ValueError(f"{str(file)!r} has no {section!r} section")
    if not isinstance(config["task"], Mapping) or not isinstance(config["task"].get("name"), str):
        raise ValueError(f"{str(file)!r}: the task section must be a mapping with a name, got {config['task']!r}")
    return dict(config)


def rebuild_task(path: Path, task_section: Mapping[str, Any], trust_code: bool) -> Task:
    """The task a run's ``config.yaml`` names (code it names runs only with ``trust_code``)."""
    params = task_section.get("params") or {}
    if not isinstance(params, Mapping):
        raise ValueError(f"{str(path / 'config.yaml')!r}: task.params must be a mapping, got {params!r}")
    try:
        return _tasks.make(task_section["name"], trust_code=trust_code, **dict(params))
    except _tasks.UntrustedCodeError as err:
        raise _tasks.UntrustedCodeError(
            f"cannot rebuild the task of run {str(path)!r} without running code: its config.yaml names task "
            f"{task_section['name']!r}, and a run folder is data, not code. If you trust the folder, pass "
            "trust_code=True (--trust-code on the command line), or build the task yourself and pass it: "
            "load_run(path, task=...)") from None
    except (ValueError, TypeError, ImportError) as err:
        raise ValueError(f"cannot rebuild the task of run {str(path)!r}: {err}; build it yourself and "
                         "pass it: load_run(path, task=...)") from err


def load_run(path: str | os.PathLike, device: str = "cpu", task: Task | None = None, *,
             trust_code: bool = False) -> Run:
    """Read a run folder back: the task (``tasks.make(name, **params)``), the final
    model (``config.yaml`` + ``model.safetensors``, eval mode), the configs,
    metrics, summary and weight history.

    Every file is checked against the sha256 neurornn recorded when it wrote it; a
    missing, truncated or changed file is a ``CorruptFileError`` naming it.

    ``task``: use this task instead of rebuilding the one ``config.yaml`` names
    (for tasks that cannot be rebuilt from keyword parameters alone, e.g. a
    teacher network's task, or a custom task whose module is not importable here).
    ``trust_code``: a run whose task is user code (``module:Class`` or
    ``file.py:Class``) is refused unless this is True: a run folder is data, and
    loading it never runs code that was not asked for.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a path, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run folder {str(path)!r} does not exist")
    if not is_run(path):
        raise ValueError(f"{str(path)!r} is not a run folder (no readable .neurornn.json manifest saying so)")
    config = _read_config(path)
    if task is None:
        task = rebuild_task(path, config["task"], trust_code)
    elif not isinstance(task, Task):
        raise TypeError(f"task must be a Task, got {type(task).__name__}")
    model_config = RNNConfig.from_dict(config["model"])
    train_config = TrainConfig.from_dict(config["train"])
    hint = resume_hint(path)
    model_file = path / "model.safetensors"
    if not model_file.is_file():
        raise FileNotFoundError(f"run folder {str(path)!r} has no model.safetensors (training unfinished?); {hint}")
    model = RNN(model_config)
    model.load_state_dict(read_tensors(model_file, hint))
    model = model.to(device).eval()
    metrics = Metrics.from_csv(path / "metrics.csv", verified_bytes(path / "metrics.csv", hint))
    summary = read_json(path / "summary.json", verified_bytes(path / "summary.json", hint))
    if not isinstance(summary, dict):
        raise CorruptFileError(f"{str(path / 'summary.json')!r} must hold a mapping, got {type(summary).__name__}")
    written = read_manifest(path)["files"]
    history = (
        WeightHistory.load(path / "history", model_config)
        if (path / "history" / "index.json").exists() or "history/index.json" in written
        else WeightHistory(model_config)
    )
    return Run(path, model, task, train_config, metrics, summary, history)


def read_tensors(path: Path, hint: str = "") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, checked against its folder's manifest."""
    data = verified_bytes(path, hint)
    try:
        return load_safetensors(data)
    except SafetensorError as err:
        raise CorruptFileError(f"{str(path)!r} is not a readable safetensors file ({err}); {hint}") from None


# ---------------------------------------------------------------------- report
def write_report(path: str | os.PathLike, *, figures: bool = True) -> Path:
    """Write ``report.html`` (see :func:`neurornn.analysis.report.write_report`)."""
    from .analysis.report import write_report as _write_report

    return _write_report(path, figures=figures)
