"""``train(model, task, config)``: the training loop.

Per step: a batch of ``batch_size`` trials from the task (training-trial
generator), a forward pass with the network's noise on (noise generator), the
masked task loss plus the regularisers, backward, gradient clipping, one
optimiser update. Every ``eval_every`` steps the network is scored on a fresh
batch of ``eval_batch_size`` trials from a separate evaluation generator (noise
on as in training unless ``eval_noise=False``), a row goes to ``metrics.csv`` and
the stop criteria are checked. The four generators (training trials, training
noise, evaluation trials, evaluation noise) are seeded from ``TrainConfig.seed``.

Non-finite loss or gradient: the update is not applied, the network goes back to
the last weights whose loss was finite, the last periodic checkpoint is kept,
training stops with ``stopped_because = "non_finite_loss"`` and a warning.

Ctrl-C (SIGINT, main thread) or a ``KeyboardInterrupt`` raised by the callback:
the current step finishes, a checkpoint of it is written, the summary says
``"interrupted"`` and the ``KeyboardInterrupt`` is raised again. Resume with
``train(..., out=SAME, resume=True)``; the result is bit-identical to an
uninterrupted run.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..models import RNN
from ..tasks.base import Task
from ..runs import (Metrics, Run, RunWriter, WeightHistory, checkpoint_step, has_checkpoint, load_checkpoint,
                    resume_hint, run_config, save_checkpoint, write_report)
from ..runs import read_run_config as _read_config
from ..config import TrainConfig
from ..ops.losses import task_loss
from .._files import read_manifest
from .._folder import remove_if_bare, verified_bytes
from ._setup import (apply_hyperparameters, check_compatible, check_resume_changes, criteria, make_optimizer,
                     metric_columns, regularizer_names, run_summary, training_threads)
from .regularizers import build_regularizer

__all__ = ["train", "make_generators", "evaluate", "STOP_REASONS"]

STOP_REASONS = ("accuracy_criterion", "loss_criterion", "step_budget", "non_finite_loss", "interrupted")
_GENERATORS = ("task", "noise", "eval_task", "eval_noise")


def make_generators(seed: int) -> dict[str, torch.Generator]:
    """The four independent CPU generators of a run, derived from ``seed``.

    Keys: ``task`` (training trials), ``noise`` (network noise in training),
    ``eval_task`` and ``eval_noise`` (evaluation).
    """
    states = np.random.SeedSequence(seed).generate_state(len(_GENERATORS), dtype=np.uint64)
    return {name: torch.Generator().manual_seed(int(s)) for name, s in zip(_GENERATORS, states)}


def evaluate(
    model: RNN,
    task: Task,
    n_trials: int,
    generator: torch.Generator | None = None,
    noise_generator: torch.Generator | None = None,
    *,
    noise: bool = True,
    loss: str | None = None,
) -> dict[str, float]:
    """Score ``model`` on a fresh batch of ``n_trials`` trials (no gradients).

    Returns the task's scores (``accuracy``, ...) and ``eval_loss`` (the masked
    task loss).
    """
    device = model.alpha.device
    batch = task.batch(n_trials, generator).to(device)
    with torch.no_grad():
        traj = model(batch.inputs, noise=noise, generator=noise_generator)
        value = task_loss(loss or task.loss, traj.outputs, batch.targets, batch.mask)
        scores = task.scores(traj.outputs, batch)
    return {"eval_loss": float(value), **metric_columns(scores)}



class _Interrupt:
    """Defers SIGINT to the end of the current step (main thread only)."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):  # noqa: ARG001
            self.requested = True
            signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

        signal.signal(signal.SIGINT, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


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
    with training_threads(config, model.config.n_units, config.resolved_device()):
        return _train(model, task, config, out=out, overwrite=overwrite, resume=resume, figures=figures,
                      callback=callback)


def _train(model, task, config, *, out, overwrite, resume, figures, callback):
    if not isinstance(task, Task):
        raise TypeError(f"task must be a neurornn.tasks.Task, got {type(task).__name__}")
    if resume and out is None:
        raise ValueError("resume=True needs out= the run folder to resume")
    check_compatible(model, task)
    loss_kind = config.loss or task.loss
    acc_criterion, loss_criterion = criteria(task, config)

    device = config.resolved_device()
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all train_* flags are False)")
    regularizers = [build_regularizer(spec, model) for spec in config.regularizers]
    reg_names = regularizer_names(config.regularizers)
    optimizer = make_optimizer(config, params)
    gens = make_generators(config.seed)

    existed = out is not None and Path(out).exists()
    writer = RunWriter(out, overwrite=overwrite, resume=resume) if out is not None else None
    try:
        return _train_in(model, task, config, writer, resume, figures, callback, loss_kind, acc_criterion,
                         loss_criterion, device, params, regularizers, reg_names, optimizer, gens)
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


def _restore(writer, task, model, config, optimizer, gens):
    """Resume the run ``writer`` holds: checks, then the checkpoint; returns (metrics, history, meta) or
    ``None`` when the run was killed before its first checkpoint (it then starts again from step 0)."""
    saved = _read_config(writer.path)
    now = run_config(task, model.config, config)
    for section in ("task", "model"):
        if saved[section] != now[section]:
            raise ValueError(
                f"cannot resume {str(writer.path)!r}: its {section} config differs from the one given "
                f"(saved {saved[section]!r}, given {now[section]!r})"
            )
    check_resume_changes(TrainConfig.from_dict(saved["train"]), config)
    if not has_checkpoint(writer.checkpoint_dir):
        if "checkpoints/latest.json" in read_manifest(writer.path)["files"]:
            raise FileNotFoundError(f"cannot resume {str(writer.path)!r}: its checkpoints/latest.json, which "
                                    "neurornn wrote, was deleted; the run cannot continue (start it again with "
                                    "--overwrite)")
        warnings.warn(f"run {str(writer.path)!r} stopped before its first checkpoint: it starts again from "
                      "step 0 (the same seeds give the same run)", RuntimeWarning, stacklevel=4)
        writer.reset()
        return None
    meta = load_checkpoint(writer.checkpoint_dir, model, optimizer, gens)
    apply_hyperparameters(optimizer, config)
    start_step = int(meta["step"])
    hint = resume_hint(writer.path)
    written = read_manifest(writer.path)["files"]  # a file neurornn wrote must be there and whole
    metrics = Metrics()
    if "metrics.csv" in written or (writer.path / "metrics.csv").exists():
        metrics = Metrics.from_csv(writer.path / "metrics.csv", verified_bytes(writer.path / "metrics.csv", hint))
        metrics.truncate(start_step)
    history = WeightHistory(model.config, writer.history_dir)
    if "history/index.json" in written or (writer.history_dir / "index.json").exists():
        history = WeightHistory.load(writer.history_dir, model.config)
        history.truncate(start_step)
    return metrics, history, meta


def _train_in(model, task, config, writer, resume, figures, callback, loss_kind, acc_criterion, loss_criterion,
              device, params, regularizers, reg_names, optimizer, gens):
    metrics = Metrics()
    history = WeightHistory(model.config, writer.history_dir if writer else None)
    start_step, wall_before, resumed_from = 0, 0.0, None
    accum = {"n": 0, "loss": 0.0, "task_loss": 0.0, "grad_norm": 0.0, **{n: 0.0 for n in reg_names}}

    restored = _restore(writer, task, model, config, optimizer, gens) if resume else None
    if restored is not None:
        metrics, history, meta = restored
        start_step = resumed_from = int(meta["step"])
        extra = meta.get("extra", {})
        wall_before = float(extra.get("wall_seconds", 0.0))
        accum.update(extra.get("accum", {}))
    if writer is not None:
        writer.write_config(task, model.config, config)

    t0 = time.perf_counter()
    wall = lambda: wall_before + time.perf_counter() - t0  # noqa: E731

    def do_eval(step: int) -> dict[str, Any]:
        model.eval()
        scores = evaluate(model, task, config.eval_batch_size, gens["eval_task"], gens["eval_noise"],
                          noise=config.eval_noise, loss=loss_kind)
        model.train()
        row: dict[str, Any] = {"step": step}
        n = accum["n"]
        for key in ("loss", "task_loss", *reg_names, "grad_norm"):
            row[key] = float(accum[key]) / n if n else None
        row.update(scores)
        row["wall_seconds"] = round(wall(), 3)
        for key in ("n", "loss", "task_loss", "grad_norm", *reg_names):
            accum[key] = 0 if key == "n" else 0.0
        metrics.append(row)
        if writer is not None:
            writer.write_metrics(metrics)
        return row

    checkpointed = [resumed_from]

    def checkpoint(step: int) -> None:
        if writer is not None and checkpointed[0] != step:  # a step's checkpoint is written once
            save_checkpoint(writer.checkpoint_dir, step, model, optimizer, gens,
                            extra={"wall_seconds": wall(), "accum": {k: float(v) for k, v in accum.items()}})
            checkpointed[0] = step

    model.train()
    if resumed_from is None:
        history.append(0, model.effective_weights())
        do_eval(0)
        checkpoint(0)

    def criterion_met(row: dict[str, Any]) -> str | None:
        if acc_criterion is not None and row["accuracy"] >= acc_criterion:
            return "accuracy_criterion"
        if loss_criterion is not None and row["eval_loss"] <= loss_criterion:
            return "loss_criterion"
        return None

    prev = [p.detach().clone() for p in params]
    clip = config.grad_clip if config.grad_clip is not None else float("inf")
    stopped, step, bad_step, last_good_step = "step_budget", start_step, None, None
    if resume and metrics.rows and metrics.rows[-1]["step"] == start_step:
        # A run that stopped on its criterion has nothing left to do (unless the criterion changed).
        stopped = criterion_met(metrics.rows[-1]) or stopped
    first_step = start_step + 1 if stopped == "step_budget" else config.steps + 1
    interrupt = _Interrupt()
    bar = _progress(config, start_step)
    try:
        with interrupt.installed():
            for step in range(first_step, config.steps + 1):
                batch = task.batch(config.batch_size, gens["task"]).to(device)
                traj = model(batch.inputs, generator=gens["noise"])
                main = task_loss(loss_kind, traj.outputs, batch.targets, batch.mask)
                reg_values = []
                if regularizers:
                    weights = model.effective_weights()
                    reg_values = [term(model, weights, traj) for term in regularizers]
                loss = main + sum(reg_values) if reg_values else main
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
                # the one host sync per step: never apply a non-finite update
                if not bool(torch.isfinite(loss) & torch.isfinite(grad_norm)):
                    bad_step = step
                    if not bool(torch.isfinite(loss)):  # these weights give a non-finite loss: undo one update
                        with torch.no_grad():
                            for p, q in zip(params, prev):
                                p.copy_(q)
                        last_good_step = max(step - 2, start_step)
                    else:
                        last_good_step = step - 1
                    step -= 1
                    stopped = "non_finite_loss"
                    break
                with torch.no_grad():
                    torch._foreach_copy_(prev, [p.detach() for p in params])
                optimizer.step()
                accum["n"] += 1
                accum["loss"] = accum["loss"] + loss.detach()  # tensors: no sync until logging
                accum["task_loss"] = accum["task_loss"] + main.detach()
                accum["grad_norm"] = accum["grad_norm"] + grad_norm.detach()
                for name, value in zip(reg_names, reg_values):
                    accum[name] = accum[name] + value.detach()

                info: dict[str, Any] = {"loss": loss.detach()}
                if step % config.eval_every == 0 or step == config.steps:
                    row = info["row"] = do_eval(step)
                    bar.set_postfix(loss=f"{row['loss']:.4g}", acc=f"{row['accuracy']:.3f}", refresh=False)
                    stopped = criterion_met(row) or stopped
                if config.history_every and step % config.history_every == 0:
                    history.append(step, model.effective_weights())
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    checkpoint(step)
                bar.update(1)
                if callback is not None:
                    try:
                        callback(step, model, info)
                    except KeyboardInterrupt:
                        interrupt.requested = True
                if interrupt.requested:
                    stopped = "interrupted"
                    break
                if stopped != "step_budget":
                    break
    except KeyboardInterrupt:
        # Raised outside a step boundary: keep the last periodic checkpoint, record why.
        bar.close()
        if writer is not None:
            writer.write_summary(run_summary(task, model, config, metrics.last, step, "interrupted", wall(),
                                          device, resumed_from, None, None, acc_criterion))
        raise
    bar.close()

    if stopped == "interrupted":
        checkpoint(step)
        if writer is not None:
            writer.write_summary(run_summary(task, model, config, metrics.last, step, stopped, wall(), device,
                                          resumed_from, None, None, acc_criterion))
        print(f"\ninterrupted at step {step}; resume with neurornn train --resume --out {writer.path}"
              if writer is not None else f"\ninterrupted at step {step}", file=sys.stderr)
        raise KeyboardInterrupt

    if stopped == "non_finite_loss":
        warnings.warn(
            f"non-finite loss or gradient at step {bad_step}: training stopped; the network keeps the "
            f"weights of step {last_good_step} (the last with a finite loss)"
            + ("" if writer is None else "; the last good checkpoint in checkpoints/ is kept"),
            RuntimeWarning,
            stacklevel=2,
        )
        step = last_good_step
        model.eval()
        final = evaluate(model, task, config.eval_batch_size, gens["eval_task"], gens["eval_noise"],
                         noise=config.eval_noise, loss=loss_kind)
        history.truncate(step)  # snapshots and rows after it hold weights that were undone
        if not history.steps or history.steps[-1] < step:
            history.append(step, model.effective_weights())
        if metrics.rows and metrics.rows[-1]["step"] > step:
            metrics.truncate(step)
            if writer is not None:
                writer.write_metrics(metrics)
    else:
        if not history.steps or history.steps[-1] < step:
            history.append(step, model.effective_weights())
        if not metrics.rows or metrics.rows[-1]["step"] < step:
            do_eval(step)
        final = metrics.last
        checkpoint(step)
    model.eval()
    summary = run_summary(task, model, config, final, step, stopped, wall(), device, resumed_from,
                       bad_step, last_good_step, acc_criterion)
    if writer is not None:
        writer.write_model(model)
        writer.write_summary(summary)
        if figures:
            writer.write_figures(model, task, metrics, seed=config.seed, criterion=acc_criterion)
        write_report(writer.path, figures=figures)
    return Run(writer.path if writer else None, model, task, config, metrics, summary, history)


def _progress(config: TrainConfig, start_step: int):
    return tqdm(total=config.steps, initial=start_step, disable=not config.progress, file=sys.stderr,
                desc="train", unit="step", dynamic_ncols=True, mininterval=0.5)
