"""Writing a run folder: :class:`RunWriter` writes its pieces one by one (the trainer does),
:func:`save_run` a finished run at once (e.g. each network of an ensemble)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from .. import plotting
from .._files import forget, read_manifest, write_bytes, write_json, write_text
from .._folder import make_folder, open_folder
from ..config import RNNConfig, TrainConfig
from ..models import RNN
from ..tasks.base import Task
from .config_yaml import run_config
from .history import WeightHistory
from .metrics import Metrics
from .reading import Run
from .report import write_report
from .yaml_io import dump_yaml

__all__ = ["RunWriter", "save_run"]


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
        write_bytes(self.path / "model.safetensors", model.to_bytes())

    def write_history(self, history: WeightHistory) -> None:
        if history.directory is not None and history.directory.resolve() == self.history_dir.resolve():
            return
        history.save(self.history_dir)

    def write_figures(self, model: RNN, task: Task, metrics: Metrics, seed: int = 0,
                      criterion: float | None = None) -> list[Path]:
        """Training curves and example trials into ``figures/`` (PNG)."""
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
    hist = WeightHistory.load(writer.history_dir, model.config, model.masks()) \
        if (writer.history_dir / "index.json").is_file() else WeightHistory(model.config, masks=model.masks())
    return Run(writer.path, model, task, train_config, metrics, summary, hist)
