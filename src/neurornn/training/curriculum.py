"""``train_curriculum``: one network trained through a sequence of stages (PsychRNN's ``train_curric``,
Yang et al. 2019's sequential training).

Each stage is a task (a task, a difficulty, a rule mixture: any :class:`~neurornn.tasks.Task` with the
network's inputs, outputs and ``dt_ms``) with a :class:`~neurornn.config.TrainConfig` of its own, whose
criterion ends the stage. The network carries its weights from stage to stage; each stage is an ordinary
run folder ``OUT/stage_NN/`` (resumable, analysable), and :class:`CurriculumRun` joins their metrics and
weight histories on one step axis.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..config.train import TrainConfig
from ..models import RNN
from ..runs import Run
from ..tasks.base import Task
from .trainer import train

__all__ = ["Stage", "CurriculumRun", "train_curriculum"]


@dataclass(frozen=True)
class Stage:
    """One stage of a curriculum: a task and how to train on it (its criterion ends the stage)."""

    task: Task
    config: TrainConfig
    name: str | None = None


@dataclass
class CurriculumRun:
    """What :func:`train_curriculum` returns: one run per stage, joined on one step axis."""

    path: Path | None
    runs: list[Run]
    names: list[str]
    model: RNN

    @property
    def offsets(self) -> list[int]:
        """The first step of each stage on the joined axis."""
        out, total = [], 0
        for run in self.runs:
            out.append(total)
            total += int(run.summary["steps"])
        return out

    def metrics_rows(self) -> list[dict[str, Any]]:
        """Every stage's metrics rows, with ``stage`` and ``curriculum_step`` (the joined step) added."""
        rows = []
        for name, offset, run in zip(self.names, self.offsets, self.runs):
            for row in run.metrics.rows:
                rows.append({"stage": name, "curriculum_step": offset + int(row["step"]), **row})
        return rows

    def history_steps(self) -> list[tuple[str, int, int]]:
        """``(stage, step in the stage, joined step)`` of every weight snapshot kept."""
        return [(name, step, offset + step) for name, offset, run in zip(self.names, self.offsets, self.runs)
                for step in run.history.steps]

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, i: int) -> Run:
        return self.runs[i]


def train_curriculum(model: RNN, stages: Sequence[Stage], *, out: str | os.PathLike | None = None,
                     overwrite: bool = False, figures: bool = True) -> CurriculumRun:
    """Train ``model`` through ``stages`` in order (in place; returned in eval mode).

    Each stage trains until its own criterion or step budget, starting from the weights the
    previous stage ended with; its run folder is ``out/stage_NN`` (or ``out/NAME``).
    """
    if not isinstance(model, RNN) or model.stacked:
        raise TypeError(f"model must be a single-network neurornn.RNN, got {type(model).__name__}")
    stages = list(stages)
    if not stages:
        raise ValueError("a curriculum needs at least one stage, got none")
    for i, stage in enumerate(stages):
        if not isinstance(stage, Stage):
            raise TypeError(f"stages[{i}] must be a neurornn.training.Stage(task, config), got {type(stage).__name__}")
    names = [stage.name or f"stage_{i:02d}" for i, stage in enumerate(stages)]
    if len(set(names)) != len(names):
        raise ValueError(f"stage names must be distinct, got {names}")
    root = None if out is None else Path(out)
    runs = []
    for name, stage in zip(names, stages):
        runs.append(train(model, stage.task, stage.config, out=None if root is None else root / name,
                          overwrite=overwrite, figures=figures))
        model.train()
    return CurriculumRun(root, runs, names, model.eval())
