"""The training loop's checks, criteria, metric and regulariser column names, run summary and threads."""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import torch

from .._version import __version__
from ..models import RNN
from ..tasks.base import Task
from ..config import TrainConfig
from ..config.threads import cpu_threads

__all__ = ["check_compatible", "criteria", "check_resume_changes",
           "metric_columns", "regularizer_names", "run_summary", "training_threads"]

# Settings a resumed run cannot take: the generators and the optimiser's state continue from the checkpoint.
_FIXED_ON_RESUME = {
    "seed": "the random generators continue from the checkpoint",
    "optimizer": "the optimiser's state continues from the checkpoint",
}


def check_compatible(model: RNN, task: Task) -> None:
    """The model's inputs, outputs and ``dt_ms`` match the task's, or a ValueError naming them."""
    cfg = model.config
    if cfg.n_inputs != task.n_inputs:
        raise ValueError(f"model n_inputs={cfg.n_inputs} but task {task.name!r} has {task.n_inputs} inputs")
    if cfg.n_outputs != task.n_outputs:
        raise ValueError(f"model n_outputs={cfg.n_outputs} but task {task.name!r} has {task.n_outputs} outputs")
    if not math.isclose(cfg.dt_ms, task.dt_ms):
        raise ValueError(f"model dt_ms={cfg.dt_ms} but task {task.name!r} has dt_ms={task.dt_ms}; they must match")


def criteria(task: Task, config: TrainConfig) -> tuple[float | None, float | None]:
    """The (accuracy, loss) criteria a training stops at; ``None`` where there is none.

    The accuracy criterion is the task's unless the config gives one. Above the task's
    ``accuracy_ceiling()`` (an ideal observer's accuracy) it cannot be reached: a warning says so.
    """
    acc = task.criterion if config.acc_criterion is None else config.acc_criterion
    acc = None if acc is False else float(acc)
    loss = None if config.loss_criterion in (None, False) else float(config.loss_criterion)
    ceiling = getattr(task, "accuracy_ceiling", None)
    if acc is not None and callable(ceiling) and acc > ceiling():
        warnings.warn(f"acc_criterion {acc:g} is above the best accuracy possible in task {task.name!r} "
                      f"({ceiling():.3f}, an ideal observer's): training will run its whole step budget",
                      RuntimeWarning, stacklevel=3)
    return acc, loss


def check_resume_changes(saved: TrainConfig, given: TrainConfig) -> None:
    """Every train setting changed on resume takes effect, or a ValueError says why it cannot."""
    for key, why in _FIXED_ON_RESUME.items():
        if getattr(saved, key) != getattr(given, key):
            raise ValueError(f"train.{key} cannot change when resuming ({why}): saved {getattr(saved, key)!r}, "
                             f"given {getattr(given, key)!r}; start a new run for another {key}")
    unused = "momentum" if given.optimizer == "adam" else "adam_eps"
    if getattr(saved, unused) != getattr(given, unused):
        raise ValueError(f"train.{unused} has no effect with optimizer {given.optimizer!r}: saved "
                         f"{getattr(saved, unused)!r}, given {getattr(given, unused)!r}")


_RESERVED = ("step", "loss", "task_loss", "eval_loss", "grad_norm", "wall_seconds")


def metric_columns(scores: dict[str, float]) -> dict[str, float]:
    """A task's scores (``Task.scores``) as ``metrics.csv`` columns; a name the trainer uses itself gets
    ``eval_``."""
    return {key if key not in _RESERVED else f"eval_{key}": value for key, value in scores.items()}


def regularizer_names(specs) -> list[str]:
    """Column names of the regularisers in ``metrics.csv``: the kind, numbered when repeated."""
    names, seen = [], {}
    for spec in specs:
        kind = spec["kind"]
        seen[kind] = seen.get(kind, 0) + 1
        names.append(kind if seen[kind] == 1 else f"{kind}_{seen[kind]}")
    return names


def run_summary(task, model, config, final, step, stopped, wall_seconds, device, resumed_from,
                bad_step, last_good_step, acc_criterion) -> dict[str, Any]:
    """The content of ``summary.json``."""
    summary: dict[str, Any] = {
        "task": task.name,
        "steps": int(step),
        "step_budget": config.steps,
        "stopped_because": stopped,
        "final_loss": final.get("eval_loss"),
        "final_train_loss": final.get("loss"),
        "final_accuracy": final.get("accuracy"),
        "accuracy_criterion": acc_criterion,
        "loss_criterion": config.loss_criterion if config.loss_criterion not in (None, False) else None,
        "wall_seconds": round(wall_seconds, 3),
        "seconds_per_step": round(wall_seconds / step, 5) if step else None,
        "seed": config.seed,
        "model_seed": model.config.seed,
        "n_units": model.config.n_units,
        "loss": config.loss or task.loss,
        "device": device,
        "resumed_from_step": resumed_from,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "neurornn_version": __version__,
        "torch_version": torch.__version__,
    }
    if "ceiling" in final:
        summary["accuracy_ceiling"] = final["ceiling"]
    if stopped == "non_finite_loss":
        summary["non_finite_step"] = bad_step
        summary["last_good_step"] = last_good_step
    return summary


@contextmanager
def training_threads(config: TrainConfig, n_units: int, device: str):
    """Run the block with ``config.threads`` torch threads (see ``TrainConfig.threads`` and
    :func:`~neurornn.config.threads.cpu_threads`)."""
    with cpu_threads(n_units, device, config.threads):
        yield
