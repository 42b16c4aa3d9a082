"""``train(model, task, config)``: train one network (the loop is :mod:`neurornn.training.loop`).

See :mod:`neurornn.training.loop` for what a step does, how non-finite losses and
Ctrl-C are handled. Resume with ``train(..., out=SAME, resume=True)``; the result
is bit-identical to an uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .._folder import remove_if_bare
from ..models import RNN
from ..config.train import TrainConfig
from ..runs import RunWriter
from ..runs.checkpoint import checkpoint_step
from ..tasks.base import Task
from ._setup import check_compatible, training_threads
from .generators import make_generators
from .loop import STOP_REASONS, train_networks
from .scoring import evaluate

__all__ = ["train", "make_generators", "evaluate", "STOP_REASONS"]


def train(
    model: RNN,
    task: Task,
    config: TrainConfig | None = None,
    *,
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    figures: bool = True,
    callback: Callable[[int, RNN, dict[str, Any]], None] | None = None,
):
    """Train ``model`` on ``task`` and return a :class:`neurornn.runs.Run`.

    Parameters
    ----------
    model : RNN
        Trained in place (its weights change); returned in eval mode.
    task : Task
    config : TrainConfig, optional
        Defaults to ``TrainConfig()``.
    out : path, optional
        Run folder to write (config.yaml, metrics.csv, summary.json,
        model.safetensors, history/, checkpoints/, figures/, report.html).
        ``None``: nothing is written; history and metrics stay in memory.
        An existing folder is never overwritten unless ``overwrite=True``.
    overwrite : bool
        Replace an existing run folder at ``out``.
    resume : bool
        Continue the run at ``out`` from its last checkpoint (the model and task
        must be those of its config.yaml; ``config`` may change e.g. ``steps``).
    figures : bool
        Write figures and report.html at the end (needs ``out``).
    callback : callable, optional
        ``callback(step, model, info)`` after every step; ``info`` has ``loss``
        (a 0-d tensor) and, at evaluation steps, ``row`` (the metrics row).
        Raising ``KeyboardInterrupt`` stops like Ctrl-C (a checkpoint is written).

    Returns
    -------
    Run with ``path``, ``model``, ``task``, ``config``, ``metrics``, ``summary``,
    ``history``.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(model, RNN):
        raise TypeError(f"model must be a neurornn.RNN, got {type(model).__name__}")
    if model.stacked:
        raise ValueError(f"model holds {model.n_networks} networks: train them with train_ensemble "
                         "(each gets its own run folder), or train one of them (model.member(i))")
    if not isinstance(task, Task):
        raise TypeError(f"task must be a neurornn.tasks.Task, got {type(task).__name__}")
    if resume and out is None:
        raise ValueError("resume=True needs out= the run folder to resume")
    check_compatible(model, task)
    with training_threads(config, model.config.n_units, config.resolved_device()):
        existed = out is not None and Path(out).exists()
        writer = RunWriter(out, overwrite=overwrite, resume=resume) if out is not None else None
        try:
            return train_networks(model, task, [config], [writer], resume=resume, figures=figures,
                                  callback=callback)[0]
        except Exception:
            if writer is not None and not resume and _nothing_trained(writer):
                writer.reset()  # a run that failed before its first step leaves nothing behind
                writer.close()
                remove_if_bare(writer.path, keep_top=existed)
            raise
        finally:
            if writer is not None:
                writer.close()


def _nothing_trained(writer) -> bool:
    try:
        return checkpoint_step(writer.checkpoint_dir) == 0
    except (OSError, ValueError):
        return True
