"""``train_ensemble``: E independent networks trained at once with batched matmuls.

Each network keeps everything a separate :func:`~neurornn.training.train` run
would have: its own trial batches and noise (from generators seeded by its own
``TrainConfig.seed``), its own loss and regularisers, its own gradient clipping,
learning rate and optimiser state, its own evaluations, stop criterion, weight
history and run folder. The result equals E separate ``train`` runs with the same
configs (to float32 rounding; tested), only faster: one batched forward and
backward pass per step for all networks.

Networks whose generators are seeded alike share one trial batch and one noise
draw per step (each scaled by its own noise levels), exactly as their separate
runs would draw them; when their draws would diverge (one stops, or evaluates
at a step the others do not) the generators are split.

Folder ``out``::

    OUT/
      ensemble.json   the networks, their names and what varies between them
      summary.csv     one row per network: name, varied settings, final metrics
      net_000/        a complete run folder per network (see neurornn.runs)
      net_001/ ...
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from tqdm.auto import tqdm

from .._files import write_json, write_text
from .._folder import make_folder
from ..models import RNN, RNNConfig
from ..models.ensemble import RNNEnsemble
from ..tasks.base import Task
from ..runs import Metrics, Run, RunWriter, WeightHistory, save_checkpoint, write_report
from ..config import TrainConfig
from ..ops.losses import task_loss
from .regularizers import build_regularizer
from ._ensemble_parts import (
    EnsembleOptimizer,
    Generators,
    draw_batches,
    member_trajectory,
    member_weights,
    stack_inputs,
)
from ._setup import check_compatible, criteria, metric_columns, regularizer_names, run_summary

__all__ = ["train_ensemble", "EnsembleRun", "SHARED_TRAIN_FIELDS"]

#: TrainConfig fields every network of an ensemble must share.
SHARED_TRAIN_FIELDS = ("batch_size", "eval_batch_size", "eval_every", "optimizer", "loss", "device",
                       "eval_noise")


# ---------------------------------------------------------------------- result
@dataclass
class EnsembleRun:
    """What :func:`train_ensemble` returns.

    Attributes
    ----------
    path : Path or None
        The ensemble folder (``None`` when nothing was written).
    runs : list of Run
        One :class:`~neurornn.runs.Run` per network (each with its own folder
        ``path / name`` when written).
    names : list of str
    ensemble : RNNEnsemble
        The trained networks, stacked (eval mode).
    wall_seconds : float
    """

    path: Path | None
    runs: list
    names: list[str]
    ensemble: RNNEnsemble
    wall_seconds: float

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, i: int):
        return self.runs[i]

    def __iter__(self):
        return iter(self.runs)

    def __repr__(self) -> str:
        accs = [r.summary.get("final_accuracy") for r in self.runs]
        text = ", ".join("None" if a is None else f"{a:.3f}" for a in accs)
        return f"EnsembleRun({len(self.runs)} networks, path={str(self.path) if self.path else None!r}, final_accuracy=[{text}])"


# ---------------------------------------------------------------------- helpers
def _check_train_configs(configs: Any, n_nets: int) -> list[TrainConfig]:
    if configs is None:
        configs = TrainConfig()
    if isinstance(configs, TrainConfig):
        configs = [configs] * n_nets
    if not isinstance(configs, Sequence):
        raise TypeError(f"configs must be a TrainConfig or a sequence of them, got {type(configs).__name__}")
    configs = list(configs)
    if len(configs) != n_nets:
        raise ValueError(f"configs must have one TrainConfig per network ({n_nets}), got {len(configs)}")
    for i, c in enumerate(configs):
        if not isinstance(c, TrainConfig):
            raise TypeError(f"configs[{i}] must be a TrainConfig, got {type(c).__name__}")
    for name in SHARED_TRAIN_FIELDS:
        values = [getattr(c, name) for c in configs]
        if any(v != values[0] for v in values):
            raise ValueError(f"all networks of an ensemble must have the same train {name}, got {values}")
    return configs


def _varied(model_configs: Sequence[RNNConfig], train_configs: Sequence[TrainConfig]) -> dict[str, list]:
    out = {}
    for section, configs in (("model", model_configs), ("train", train_configs)):
        dicts = [c.to_dict() for c in configs]
        for key in dicts[0]:
            values = [d[key] for d in dicts]
            if any(v != values[0] for v in values):
                out[f"{section}.{key}"] = values
    return out


# ---------------------------------------------------------------------- training
def train_ensemble(
    models: RNNEnsemble | Sequence[RNN] | Sequence[RNNConfig],
    task: Task,
    configs: TrainConfig | Sequence[TrainConfig] | None = None,
    *,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    figures: bool = True,
    names: Sequence[str] | None = None,
    progress: bool | None = None,
) -> EnsembleRun:
    """Train E networks at once; each is the same as its own :func:`~neurornn.training.train` run.

    Parameters
    ----------
    models : RNNEnsemble, or sequence of RNN or of RNNConfig (E networks)
        Networks with the same shapes (see :data:`neurornn.models.ensemble.SHARED_FIELDS`).
        Given RNNs are not changed: the trained weights are in the result.
    task : Task
    configs : TrainConfig or sequence of E TrainConfig, optional
        Per network: seed, learning rate, Adam eps, momentum, gradient clipping,
        regularisers, steps, stop criteria, history and checkpoint intervals may
        differ; :data:`SHARED_TRAIN_FIELDS` must not.
    out : path, optional
        Ensemble folder (``ensemble.json``, ``summary.csv``, one run folder per
        network); never overwritten unless ``overwrite=True``.
    figures : bool
        Draw each network's figures and report (needs ``out``).
    names : sequence of str, optional
        Folder names of the networks (default ``net_000``, ``net_001``, ...).
    progress : bool, optional
        Progress bar; default: ``configs[0].progress``.

    Returns
    -------
    EnsembleRun
    """
    if isinstance(models, RNNEnsemble):
        ens = RNNEnsemble(models.members())
    else:
        ens = RNNEnsemble(models)
    if not isinstance(task, Task):
        raise TypeError(f"task must be a neurornn.tasks.Task, got {type(task).__name__}")
    n_nets = ens.n_networks
    tcs = _check_train_configs(configs, n_nets)
    names = [f"net_{e:03d}" for e in range(n_nets)] if names is None else [str(n) for n in names]
    if len(names) != n_nets or len(set(names)) != n_nets:
        raise ValueError(f"names must be {n_nets} distinct folder names, got {names}")
    proxies = ens.members()  # per-network RNNs: the regularisers' model, and what is written
    for proxy in proxies:
        check_compatible(proxy, task)
    shared = tcs[0]
    device = shared.resolved_device()
    ens.to(device)
    for proxy in proxies:
        proxy.to(device)
    params = [p for p in ens.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the networks have no trainable parameters (all train_* flags are False)")
    loss_kind = shared.loss or task.loss
    regs = [[build_regularizer(spec, proxies[e]) for spec in tcs[e].regularizers] for e in range(n_nets)]
    live = [_LiveMember(proxy) for proxy in proxies]
    reg_names = [regularizer_names(tc.regularizers) for tc in tcs]
    acc_crit, loss_crit = (list(c) for c in zip(*[criteria(task, tc) for tc in tcs]))
    patterns = [tuple(getattr(c, s) != 0 for s in ("sigma_in", "sigma_rec", "sigma_pre", "sigma_post"))
                for c in ens.configs]
    gens = Generators([tc.seed for tc in tcs], patterns)
    optimizer = EnsembleOptimizer(params, tcs)

    root, root_folder = None, None
    if out is not None:
        root_folder = make_folder(out, "ensemble", overwrite=overwrite, what="ensemble folder")
        root = root_folder.path
    writers = [RunWriter(root / name) if root is not None else None for name in names]
    if root is not None:
        write_json(root / "ensemble.json", {"format": "neurornn-ensemble", "version": 1, "task": task.name,
                                            "networks": names, "varied": _varied(ens.configs, tcs)})
        for w, c, tc in zip(writers, ens.configs, tcs):
            w.write_config(task, c, tc)
    metrics = [Metrics() for _ in range(n_nets)]
    histories = [WeightHistory(c, w.history_dir if w else None) for c, w in zip(ens.configs, writers)]
    accum = [{"n": 0, "loss": 0.0, "task_loss": 0.0, "grad_norm": 0.0, **{n: 0.0 for n in reg_names[e]}}
             for e in range(n_nets)]
    stopped = ["step_budget"] * n_nets
    final_step = [0] * n_nets
    bad_step: list = [None] * n_nets
    last_good: list = [None] * n_nets
    active = [tc.steps > 0 for tc in tcs]
    t0 = time.perf_counter()
    wall = lambda: time.perf_counter() - t0  # noqa: E731
    stop_wall = [0.0] * n_nets

    def do_eval(step: int, members: list[int]) -> dict[int, dict[str, Any]]:
        ens.eval()
        task_gens = gens.for_draw("eval_task", members)
        batches = draw_batches(task, shared.eval_batch_size, task_gens, members, device)
        inputs, lengths = stack_inputs(batches, ens.config.n_inputs)
        noise_gens = gens.for_draw("eval_noise", members)
        with torch.no_grad():
            traj = ens(inputs, noise=shared.eval_noise, generators=noise_gens)
        ens.train()
        rows = {}
        for e in members:
            tr = member_trajectory(traj, e, lengths[e])
            b = batches[e]
            with torch.no_grad():
                value = task_loss(loss_kind, tr.outputs, b.targets, b.mask)
                scores = task.scores(tr.outputs, b)
            row: dict[str, Any] = {"step": step}
            acc = accum[e]
            n = acc["n"]
            for key in ("loss", "task_loss", *reg_names[e], "grad_norm"):
                row[key] = float(acc[key]) / n if n else None
            row["eval_loss"] = float(value)
            row.update(metric_columns(scores))
            row["wall_seconds"] = round(wall(), 3)
            for key in acc:
                acc[key] = 0 if key == "n" else 0.0
            metrics[e].append(row)
            if writers[e] is not None:
                writers[e].write_metrics(metrics[e])
            rows[e] = row
        return rows

    def checkpoint(e: int, step: int) -> None:
        if writers[e] is None:
            return
        proxy = proxies[e]
        proxy.load_state_dict({k: v[e].detach().clone() for k, v in ens.state_dict().items()})
        member_params = [p for p in proxy.parameters() if p.requires_grad]
        opt = optimizer.member_state(e, member_params, tcs[e])
        save_checkpoint(writers[e].checkpoint_dir, step, proxy, opt, gens.of[e],
                        extra={"wall_seconds": wall(), "accum": {k: float(v) for k, v in accum[e].items()},
                               "ensemble": str(root)})

    ens.train()
    weights = ens.effective_weights()
    for e in range(n_nets):
        histories[e].append(0, member_weights(weights, e))
    do_eval(0, list(range(n_nets)))
    for e in range(n_nets):
        checkpoint(e, 0)
    prev = [p.detach().clone() for p in params]
    clips = torch.tensor([tc.grad_clip if tc.grad_clip is not None else math.inf for tc in tcs],
                         dtype=params[0].dtype, device=device)
    show = shared.progress if progress is None else bool(progress)
    bar = tqdm(total=max(tc.steps for tc in tcs), disable=not show, file=sys.stderr, desc=f"ensemble x{n_nets}",
               unit="step", dynamic_ncols=True, mininterval=0.5)

    def finish(e: int, step: int, reason: str) -> None:
        active[e] = False
        stopped[e] = reason
        final_step[e] = step
        stop_wall[e] = wall()

    step = 0
    for step in range(1, max(tc.steps for tc in tcs) + 1):
        members = [e for e in range(n_nets) if active[e]]
        if not members:
            break
        task_gens = gens.for_draw("task", members)
        batches = draw_batches(task, shared.batch_size, task_gens, members, device)
        inputs, lengths = stack_inputs(batches, ens.config.n_inputs)
        traj = ens(inputs, generators=gens.for_draw("noise", members))
        weights = ens.effective_weights() if any(regs[e] for e in members) else None
        losses: dict[int, tuple] = {}
        total = None
        non_finite_loss = []
        for e in members:
            tr = member_trajectory(traj, e, lengths[e])
            b = batches[e]
            main = task_loss(loss_kind, tr.outputs, b.targets, b.mask)
            reg_values = live_terms(ens, live[e], regs[e], member_weights(weights, e), tr, e) if regs[e] else []
            loss = main + sum(reg_values) if reg_values else main
            if not bool(torch.isfinite(loss)):
                non_finite_loss.append(e)
                continue
            losses[e] = (loss, main, reg_values)
            total = loss if total is None else total + loss
        for p in params:
            p.grad = None
        if total is not None:
            total.backward()
        # per-network gradient norm (as torch.nn.utils.clip_grad_norm_) and clipping
        norms = torch.zeros(n_nets, dtype=params[0].dtype, device=device)
        grads = [p.grad for p in params if p.grad is not None]
        if grads:
            per_param = torch.stack([torch.linalg.vector_norm(g.reshape(n_nets, -1), dim=1) for g in grads])
            norms = torch.linalg.vector_norm(per_param, dim=0)
            coef = torch.clamp(clips / (norms + 1e-6), max=1.0)
            for g in grads:
                g.mul_(coef.view((-1,) + (1,) * (g.ndim - 1)))
        norm_list = norms.tolist()
        update = []
        for e in members:
            if e in non_finite_loss:
                with torch.no_grad():
                    for p, q in zip(params, prev):
                        p[e].copy_(q[e])
                bad_step[e], last_good[e] = step, max(step - 2, 0)
                finish(e, last_good[e], "non_finite_loss")
            elif not math.isfinite(norm_list[e]):
                bad_step[e], last_good[e] = step, step - 1
                finish(e, step - 1, "non_finite_loss")
            else:
                update.append(e)
        with torch.no_grad():  # keep the weights before this update (one op per parameter)
            if len(update) == n_nets:
                for p, q in zip(params, prev):
                    q.copy_(p)
            elif update:
                index = torch.tensor(update, device=device)
                for p, q in zip(params, prev):
                    q.index_copy_(0, index, p.index_select(0, index))
        optimizer.step(update)
        for e in update:
            loss, main, reg_values = losses[e]
            acc = accum[e]
            acc["n"] += 1
            acc["loss"] = acc["loss"] + loss.detach()
            acc["task_loss"] = acc["task_loss"] + main.detach()
            acc["grad_norm"] = acc["grad_norm"] + norms[e].detach()
            for name, value in zip(reg_names[e], reg_values):
                acc[name] = acc[name] + value.detach()
        evaluating = [e for e in update if step % tcs[e].eval_every == 0 or step == tcs[e].steps]
        if evaluating:
            rows = do_eval(step, evaluating)
            for e, row in rows.items():
                if acc_crit[e] is not None and row["accuracy"] >= acc_crit[e]:
                    finish(e, step, "accuracy_criterion")
                elif loss_crit[e] is not None and row["eval_loss"] <= loss_crit[e]:
                    finish(e, step, "loss_criterion")
        weights = None
        for e in update:
            tc = tcs[e]
            if tc.history_every and step % tc.history_every == 0:
                weights = ens.effective_weights() if weights is None else weights
                histories[e].append(step, member_weights(weights, e))
            if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                checkpoint(e, step)
            if active[e] and step == tc.steps:
                finish(e, step, "step_budget")
        bar.update(1)
    bar.close()
    for e in range(n_nets):
        if active[e]:  # pragma: no cover - every network ends by its budget
            finish(e, step, "step_budget")

    # finish each network as its own run would
    ens.eval()
    weights = ens.effective_weights()
    runs = []
    for e in range(n_nets):
        step_e = final_step[e]
        if stopped[e] == "non_finite_loss":
            import warnings

            warnings.warn(
                f"network {names[e]}: non-finite loss or gradient at step {bad_step[e]}: its training stopped; "
                f"it keeps the weights of step {last_good[e]}", RuntimeWarning, stacklevel=2)
            final = do_eval(step_e, [e])[e]
            metrics[e].rows.pop()  # the trainer scores the final network without adding a row
            if writers[e] is not None:
                writers[e].write_metrics(metrics[e])
            ens.eval()
        else:
            if not metrics[e].rows or metrics[e].rows[-1]["step"] < step_e:
                do_eval(step_e, [e])
                ens.eval()
            final = metrics[e].last
            checkpoint(e, step_e)
        if not histories[e].steps or histories[e].steps[-1] < step_e:
            histories[e].append(step_e, member_weights(weights, e))
        model = ens.member(e).eval()
        summary = run_summary(task, model, tcs[e], final, step_e, stopped[e], stop_wall[e], device, None,
                           bad_step[e], last_good[e], acc_crit[e])
        summary["ensemble"] = {"path": str(root) if root else None, "name": names[e], "index": e,
                               "size": n_nets, "wall_seconds_total": round(wall(), 3)}
        if writers[e] is not None:
            writers[e].write_model(model)
            writers[e].write_summary(summary)
            if figures:
                writers[e].write_figures(model, task, metrics[e], seed=tcs[e].seed)
            write_report(writers[e].path, figures=figures)
        runs.append(Run(writers[e].path if writers[e] else None, model, task, tcs[e], metrics[e], summary,
                        histories[e]))
    if root is not None:
        _write_summary_csv(root / "summary.csv", names, runs, _varied(ens.configs, tcs))
        for w in writers:
            w.close()
        root_folder.close()
    return EnsembleRun(root, runs, names, ens, round(wall(), 3))


class _LiveMember(torch.nn.Module):
    """Network ``e`` of an ensemble as a regulariser sees it: its proxy RNN, whose parameters
    :func:`live_terms` swaps for the ensemble's own (so gradients reach the weights being trained)."""

    def __init__(self, proxy: RNN) -> None:
        super().__init__()
        self.proxy = proxy

    def forward(self, term, weights, trajectory):
        return term(self.proxy, weights, trajectory)


def live_terms(ens, live: _LiveMember, terms, weights, trajectory, e: int) -> list:
    """The regularisers of network ``e``, called with a model whose parameters are the ensemble's slices."""
    own = dict(live.proxy.named_parameters())
    params = {f"proxy.{name}": p[e] for name, p in ens.named_parameters() if name in own}
    return [torch.func.functional_call(live, params, (term, weights, trajectory)) for term in terms]


def _write_summary_csv(path: Path, names, runs, varied) -> None:
    cols = ["name", *varied, "steps", "stopped_because", "final_loss", "final_accuracy", "wall_seconds"]
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(cols)
    for i, (name, run) in enumerate(zip(names, runs)):
        s = run.summary
        row = [name, *[json.dumps(v[i]) if isinstance(v[i], (list, dict)) else v[i] for v in varied.values()],
               s.get("steps"), s.get("stopped_because"), s.get("final_loss"), s.get("final_accuracy"),
               s.get("wall_seconds")]
        writer.writerow(["" if v is None else v for v in row])
    write_text(path, buf.getvalue())
