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
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
import yaml
from safetensors.torch import load_file, save_file

from . import tasks as _tasks
from ._files import prepare_folder, to_plain, write_json, write_text
from .models import RNN, RNNConfig
from .tasks.base import Task
from .training.config import TrainConfig
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


def load_yaml(text: str) -> Any:
    """Parse YAML safely (no object construction); ``1e-3`` is a float."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


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
        path = Path(path)
        cols = self.columns
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(cols)
            for row in self.rows:
                writer.writerow(["" if row.get(c) is None else _fmt(row.get(c)) for c in cols])
        os.replace(tmp, path)

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "Metrics":
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            rows = []
            for raw in reader:
                row: dict[str, Any] = {}
                for k, v in raw.items():
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
    """True when ``path`` is a folder holding a run's ``config.yaml``."""
    return (Path(path) / "config.yaml").is_file()


class RunWriter:
    """Writes the pieces of a run folder.

    Parameters
    ----------
    path : path
        The run folder. If it exists and is not empty, it is an error unless
        ``overwrite=True`` (then, only if it is a run folder, it is deleted first)
        or ``resume=True`` (then it must be a run folder and is kept).
    overwrite, resume : bool
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"out must be a path, got {type(path).__name__}")
        if overwrite and resume:
            raise ValueError("give overwrite=True or resume=True, not both")
        if resume:
            if not is_run(path):
                raise FileNotFoundError(f"cannot resume: {str(path)!r} is not a run folder (no config.yaml)")
            self.path = Path(path)
            return
        self.path = prepare_folder(
            path, overwrite=overwrite, what="run folder", is_ours=is_run,
            hint="choose another out, resume it (resume=True / --resume) or replace it (overwrite=True / --overwrite)")

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
        save_file(tensors, str(self.path / "model.safetensors"), metadata={"format": "neurornn-model"})

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

    def write_report(self) -> Path:
        return write_report(self.path)


def task_spec(task: Task) -> str:
    """The name that rebuilds ``task`` with ``tasks.make``: its registered name, or
    ``"module:Class"`` / ``"path/file.py:Class"`` for a task class that is not registered."""
    if task.name in _tasks.names() and isinstance(task, _tasks.get(task.name)) or task.name.startswith("neurogym:"):
        return task.name
    cls = type(task)
    if cls.__module__.startswith("_neurornn_user_task_"):  # loaded from a file by tasks.make
        import inspect

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
    writer = RunWriter(path, overwrite=overwrite)
    writer.write_config(task, model.config, train_config)
    writer.write_metrics(metrics)
    summary = dict(summary or {})
    summary.setdefault("task", task.name)
    summary.setdefault("seed", train_config.seed)
    writer.write_summary(summary)
    writer.write_model(model)
    if history is not None and len(history):
        writer.write_history(history)
    if figures:
        writer.write_figures(model, task, metrics, seed=train_config.seed)
    writer.write_report()
    hist = WeightHistory.load(writer.history_dir, model.config) if (writer.history_dir / "index.json").is_file() \
        else WeightHistory(model.config)
    return Run(writer.path, model, task, train_config, metrics, summary, hist)


def _read_config(path: Path) -> dict[str, Any]:
    config = load_yaml((path / "config.yaml").read_text())
    if not isinstance(config, Mapping):
        raise ValueError(f"{str(path / 'config.yaml')!r} must hold a mapping with task, model and train")
    for section in ("task", "model", "train"):
        if section not in config:
            raise ValueError(f"{str(path / 'config.yaml')!r} has no {section!r} section")
    return dict(config)


def load_run(path: str | os.PathLike, device: str = "cpu", task: Task | None = None) -> Run:
    """Read a run folder back: the task (``tasks.make(name, **params)``), the final
    model (``config.yaml`` + ``model.safetensors``, eval mode), the configs,
    metrics, summary and weight history.

    ``task``: use this task instead of rebuilding the one ``config.yaml`` names
    (for tasks that cannot be rebuilt from keyword parameters alone, e.g. a
    teacher network's task, or a custom task whose module is not importable here).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a path, got {type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run folder {str(path)!r} does not exist")
    if not is_run(path):
        raise ValueError(f"{str(path)!r} is not a run folder (no config.yaml)")
    config = _read_config(path)
    task_section = config["task"]
    if not isinstance(task_section, Mapping) or "name" not in task_section:
        raise ValueError(f"config.yaml task section must have a name, got {task_section!r}")
    if task is None:
        try:
            task = _tasks.make(task_section["name"], **dict(task_section.get("params") or {}))
        except (ValueError, TypeError, ImportError) as err:
            raise ValueError(f"cannot rebuild the task of run {str(path)!r}: {err}; build it yourself and "
                             "pass it: load_run(path, task=...)") from err
    elif not isinstance(task, Task):
        raise TypeError(f"task must be a Task, got {type(task).__name__}")
    model_config = RNNConfig.from_dict(config["model"])
    train_config = TrainConfig.from_dict(config["train"])
    model_file = path / "model.safetensors"
    if not model_file.is_file():
        raise FileNotFoundError(
            f"run folder {str(path)!r} has no model.safetensors (training unfinished? "
            "resume it with neurornn train --resume --out DIR)"
        )
    model = RNN(model_config)
    model.load_state_dict(load_file(str(model_file)))
    model = model.to(device).eval()
    metrics = Metrics.from_csv(path / "metrics.csv") if (path / "metrics.csv").is_file() else Metrics()
    summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
    history = (
        WeightHistory.load(path / "history", model_config)
        if (path / "history" / "index.json").is_file()
        else WeightHistory(model_config)
    )
    return Run(path, model, task, train_config, metrics, summary, history)


# ---------------------------------------------------------------------- report
def write_report(path: str | os.PathLike) -> Path:
    """Write ``report.html`` (see :func:`neurornn.analysis.report.write_report`)."""
    from .analysis.report import write_report as _write_report

    return _write_report(path)
