"""Reading a run folder back: :func:`load_run` gives the :class:`Run` its training left behind."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from .. import tasks as _tasks
from .._files import read_json, read_manifest
from .._folder import CorruptFileError, folder_kind, verified_bytes
from ..config import RNNConfig, TrainConfig
from ..models import RNN
from ..tasks.base import Task
from .config_yaml import read_run_config
from .history import WeightHistory
from .metrics import Metrics

__all__ = ["Run", "is_run", "load_run", "read_tensors", "rebuild_task", "resume_hint"]


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


def resume_hint(path: str | os.PathLike) -> str:
    """How to rebuild a run's files: resume it from its last checkpoint (named when readable)."""
    step = ""
    try:
        latest = read_json(Path(path) / "checkpoints" / "latest.json")
        step = f" from its checkpoint of step {int(latest['step'])}"
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"resume the run{step} to write it again: neurornn train --resume --out {path}"


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
    config = read_run_config(path)
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
        WeightHistory.load(path / "history", model_config, model.masks())
        if (path / "history" / "index.json").exists() or "history/index.json" in written
        else WeightHistory(model_config, masks=model.masks())
    )
    return Run(path, model, task, train_config, metrics, summary, history)


def read_tensors(path: Path, hint: str = "") -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, checked against its folder's manifest."""
    data = verified_bytes(path, hint)
    try:
        return load_safetensors(data)
    except SafetensorError as err:
        raise CorruptFileError(f"{str(path)!r} is not a readable safetensors file ({err}); {hint}") from None
