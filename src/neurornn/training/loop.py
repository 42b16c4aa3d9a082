"""The training loop: one network or several stacked in one model, each as its own run.

Per step, for every network still training: a batch of ``batch_size`` trials from
the task (its training-trial generator), one forward pass of the model with the
networks' noise on (their noise generators), each network's masked task loss plus
its regularisers (which see the step's effective weights and trajectory, never a
copy), one backward pass, each network's gradient clipping, one optimiser update
of the networks whose loss and gradient are finite. Every ``eval_every`` steps a
network is scored on a fresh batch of ``eval_batch_size`` trials from its
evaluation generators (noise on as in training unless ``eval_noise=False``), a row
goes to its ``metrics.csv`` and its stop criteria are checked. The four
generators of a network are seeded from its ``TrainConfig.seed``: a network trained
with others ends as its own run would (to float32 rounding).

Non-finite loss or gradient: the network's update is not applied, it goes back to
the last weights whose loss was finite, its last periodic checkpoint is kept, and
it stops with ``stopped_because = "non_finite_loss"`` and a warning.

Ctrl-C (SIGINT, main thread) or a ``KeyboardInterrupt`` raised by the callback: the
current step finishes, a checkpoint of it is written for every network, their
summaries say ``"interrupted"`` and the ``KeyboardInterrupt`` is raised again.
Resuming from the checkpoints gives a result bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..models import RNN
from ..models.noise import noise_pattern
from ..config.train import TrainConfig
from ..ops.losses import task_loss
from ..runs import Metrics, Run, write_report
from ..runs.checkpoint import save_checkpoint
from ..runs.history import WeightHistory
from ..tasks.base import Task
from ._interrupt import Interrupt
from ._network import LiveMember, Network, live_terms
from ._resume import restore
from ._setup import check_compatible, criteria, metric_columns, regularizer_names, run_summary
from .generators import Generators, draw_batches, stack_inputs
from .optimizers import network_optimizer
from .regularizers import build_regularizer
from .scoring import heldout_scores

__all__ = ["train_networks", "STOP_REASONS"]

STOP_REASONS = ("accuracy_criterion", "loss_criterion", "step_budget", "non_finite_loss", "interrupted")

Callback = Callable[[int, RNN, dict[str, Any]], None]


def train_networks(model: RNN, task: Task, configs: Sequence[TrainConfig], writers: Sequence, *,
                   resume: bool = False, figures: bool = True, callback: Callback | None = None,
                   progress: bool | None = None, ensemble: dict | None = None) -> list[Run]:
    """Train ``model`` (one network, or several stacked) on ``task``; one :class:`~neurornn.runs.Run` per
    network.

    ``configs`` and ``writers`` (RunWriter or None) have one entry per network; with ``resume`` every
    network continues from its run folder's last checkpoint. ``callback(step, model, info)`` runs
    after every step (``info``: ``loss``, and at evaluation steps ``rows`` by network, ``row`` for one
    network); raising ``KeyboardInterrupt`` in it stops like Ctrl-C. ``ensemble`` (``path``,
    ``names``) goes into each network's summary.
    """
    loop = _Loop(model, task, list(configs), list(writers), callback, ensemble)
    if resume:
        loop.restore()
    for net in loop.nets:
        if net.writer is not None:
            net.writer.write_config(task, model.configs[net.index], net.config)
    loop.t0 = time.perf_counter()
    return loop.run(figures, configs[0].progress if progress is None else bool(progress))


class _Loop:
    def __init__(self, model, task, configs, writers, callback, ensemble):
        for tc in configs:
            if not isinstance(tc, TrainConfig):
                raise TypeError(f"config must be a TrainConfig, got {type(tc).__name__}")
        if not isinstance(task, Task):
            raise TypeError(f"task must be a neurornn.tasks.Task, got {type(task).__name__}")
        self.model, self.task, self.configs, self.callback, self.ensemble = model, task, configs, callback, ensemble
        self.stacked = model.stacked
        shared = configs[0]
        self.device = shared.resolved_device()
        self.loss_kind = shared.loss or task.loss
        model.to(self.device)
        check_compatible(model, task)  # inputs, outputs and dt_ms are shared by every network
        # per-network single RNNs: what regularisers see of a stacked model, and what is checkpointed
        self.proxies = model.members() if self.stacked else [model]
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            what = "the networks have" if self.stacked else "the model has"
            raise ValueError(f"{what} no trainable parameters (all train_* flags are False)")
        self.live = [LiveMember(p) for p in self.proxies] if self.stacked else None
        self.nets = []
        for e, (tc, writer) in enumerate(zip(configs, writers)):
            acc, loss = criteria(task, tc)
            history = WeightHistory(model.configs[e], writer.history_dir if writer else None,
                                    self.proxies[e].masks())
            self.nets.append(Network(e, tc, writer, Metrics(), history,
                                     [build_regularizer(spec, self.proxies[e]) for spec in tc.regularizers],
                                     regularizer_names(tc.regularizers), acc, loss, active=tc.steps > 0))
        self.gens = Generators([tc.seed for tc in configs], [noise_pattern(c) for c in model.configs], self.device)
        self.optimizer = network_optimizer(self.params, configs, self.stacked)
        self.start_step = 0
        self.t0 = time.perf_counter()

    def wall(self, net: Network) -> float:
        return net.wall_before + time.perf_counter() - self.t0

    # ------------------------------------------------------------------ pieces
    def restore(self) -> None:
        """Continue every network from its run folder's last checkpoint (see :mod:`._resume`)."""
        self.start_step = restore(self)

    def evaluate(self, step: int, members: list[int], record: bool = True) -> dict[int, dict[str, Any]]:
        """Score the networks in ``members`` on fresh evaluation trials; with ``record`` a metrics row each."""
        model, shared = self.model, self.configs[0]
        model.eval()
        batches = draw_batches(self.task, shared.eval_batch_size, self.gens.for_draw("eval_task", members), members,
                               self.device, evaluation=True)
        inputs, lengths = stack_inputs(batches, model.config.n_inputs)
        with torch.no_grad():
            traj = model(inputs, noise=shared.eval_noise, generator=self.gens.for_draw("eval_noise", members))
        model.train()
        rows = {}
        for e in members:
            net, batch = self.nets[e], batches[e]
            outputs = traj.member(e, lengths[e]).outputs if self.stacked else traj.outputs
            with torch.no_grad():
                scores = {"eval_loss": float(task_loss(self.loss_kind, outputs, batch.targets, batch.mask)),
                          **metric_columns(self.task.scores(outputs, batch))}
            if not record:
                rows[e] = scores
                continue
            row = {**net.mean_row(step), **scores, "wall_seconds": round(self.wall(net), 3)}
            net.metrics.append(row)
            if net.writer is not None:
                net.writer.write_metrics(net.metrics)
            rows[e] = row
        return rows

    def checkpoint(self, e: int, step: int) -> None:
        net = self.nets[e]
        if net.writer is None or net.checkpointed == step:  # a step's checkpoint is written once
            return
        proxy = self.proxies[e]
        if self.stacked:
            proxy.load_state_dict({k: v[e].detach().clone() for k, v in self.model.state_dict().items()})
        opt = self.optimizer.member(e, [p for p in proxy.parameters() if p.requires_grad])
        extra = {"wall_seconds": self.wall(net), "accum": {k: float(v) for k, v in net.accum.items()}}
        if self.ensemble is not None:
            extra["ensemble"] = self.ensemble["path"]
        save_checkpoint(net.writer.checkpoint_dir, step, proxy, opt, self.gens.of[e], extra=extra)
        net.checkpointed = step

    def weights_of(self, weights, e: int):
        return weights.member(e) if self.stacked else weights

    def regularizer_values(self, e: int, weights, traj) -> list:
        net = self.nets[e]
        if not net.regularizers:
            return []
        if self.stacked:
            return live_terms(self.model, self.live[e], net.regularizers, weights, traj, e)
        return [term(self.model, weights, traj) for term in net.regularizers]

    # ------------------------------------------------------------------ one step
    def step(self, step: int, members: list[int], prev: list[torch.Tensor]) -> tuple[list[int], dict]:
        model, shared = self.model, self.configs[0]
        batches = draw_batches(self.task, shared.batch_size, self.gens.for_draw("task", members), members,
                               self.device)
        inputs, lengths = stack_inputs(batches, model.config.n_inputs)
        traj = model(inputs, generator=self.gens.for_draw("noise", members))
        weights = model.effective_weights() if any(self.nets[e].regularizers for e in members) else None
        losses = {}
        for e in members:
            tr = traj.member(e, lengths[e]) if self.stacked else traj
            b = batches[e]
            main = task_loss(self.loss_kind, tr.outputs, b.targets, b.mask)
            reg_values = self.regularizer_values(e, None if weights is None else self.weights_of(weights, e), tr)
            losses[e] = (main + sum(reg_values) if reg_values else main, main, reg_values)
        for p in self.params:
            p.grad = None
        loss_vec = torch.stack([losses[e][0] for e in members])
        # a network's non-finite loss is left out of the sum; its gradient slices (its own: the networks
        # are independent) may turn non-finite, and it is not updated
        if self.stacked:
            total = torch.where(torch.isfinite(loss_vec), loss_vec, 0.0).sum()
        else:
            total = losses[members[0]][0]
        total.backward()
        norms = self.optimizer.clip()
        norm_vec = norms if len(members) == model.n_networks else norms[torch.tensor(members, device=norms.device)]
        # the one host sync of the step: never apply a non-finite update
        finite, finite_norm = torch.stack([torch.isfinite(loss_vec), torch.isfinite(norm_vec)]).tolist()
        update = []
        for e, ok, ok_norm in zip(members, finite, finite_norm):
            net = self.nets[e]
            if not ok:  # these weights give a non-finite loss: undo one update
                with torch.no_grad():
                    for p, q in zip(self.params, prev):
                        (p[e] if self.stacked else p).copy_(q[e] if self.stacked else q)
                net.bad_step, net.last_good = step, max(step - 2, self.start_step)
                net.finish(net.last_good, "non_finite_loss", self.wall(net))
            elif not ok_norm:
                net.bad_step, net.last_good = step, step - 1
                net.finish(step - 1, "non_finite_loss", self.wall(net))
            else:
                update.append(e)
        with torch.no_grad():  # keep the weights before this update (one op per parameter)
            if len(update) == model.n_networks:
                torch._foreach_copy_(prev, [p.detach() for p in self.params])
            elif update:
                index = torch.tensor(update, device=self.device)
                for p, q in zip(self.params, prev):
                    q.index_copy_(0, index, p.index_select(0, index))
        self.optimizer.step(update)
        for e in update:
            loss, main, reg_values = losses[e]
            self.nets[e].add_step(loss, main, reg_values, norms[e])
        return update, {"loss": torch.stack([losses[e][0].detach() for e in members]) if self.stacked
                        else losses[members[0]][0].detach()}

    # ------------------------------------------------------------------ the run
    def run(self, figures: bool, show: bool) -> list[Run]:
        model, nets, start = self.model, self.nets, self.start_step
        model.train()
        fresh = [net.index for net in nets if net.resumed_from is None]  # the others continue a checkpoint
        if fresh:
            weights = model.effective_weights()
            for e in fresh:
                nets[e].history.append(0, self.weights_of(weights, e))
            self.evaluate(0, fresh)
            for e in fresh:
                self.checkpoint(e, 0)
        prev = [p.detach().clone() for p in self.params]
        last = max(tc.steps for tc in self.configs)
        desc = f"ensemble x{model.n_networks}" if self.stacked else "train"
        bar = tqdm(total=last, initial=start, disable=not show, file=sys.stderr, desc=desc, unit="step",
                   dynamic_ncols=True, mininterval=0.5)
        interrupt, step = Interrupt(), start
        try:
            with interrupt.installed():
                for step in range(start + 1, last + 1):
                    members = [net.index for net in nets if net.active]
                    if not members:
                        step -= 1
                        break
                    update, info = self.step(step, members, prev)
                    self.after_step(step, update, info, bar)
                    bar.update(1)
                    if self.callback is not None and update:
                        try:
                            self.callback(step, model, info)
                        except KeyboardInterrupt:
                            interrupt.requested = True
                    if interrupt.requested:
                        self.interrupted(step, at_boundary=True)
        except KeyboardInterrupt:
            bar.close()
            self.interrupted(step, at_boundary=False)
        bar.close()
        for net in nets:
            if net.active:
                net.finish(step, "step_budget", self.wall(net))
        return [self.finish(net, figures) for net in nets]

    def after_step(self, step: int, update: list[int], info: dict, bar) -> None:
        evaluating = [e for e in update if step % self.nets[e].config.eval_every == 0
                      or step == self.nets[e].config.steps]
        if evaluating:
            rows = self.evaluate(step, evaluating)
            info["rows"] = rows
            if not self.stacked:
                info["row"] = row = rows[0]
                bar.set_postfix(loss=f"{row['loss']:.4g}", acc=f"{row['accuracy']:.3f}", refresh=False)
            for e, row in rows.items():
                reason = self.nets[e].criterion_met(row)
                if reason is not None:
                    self.nets[e].finish(step, reason, self.wall(self.nets[e]))
        weights = None
        for e in update:
            net, tc = self.nets[e], self.nets[e].config
            if tc.history_every and step % tc.history_every == 0:
                weights = self.model.effective_weights() if weights is None else weights
                net.history.append(step, self.weights_of(weights, e))
            if tc.checkpoint_every and step % tc.checkpoint_every == 0:
                self.checkpoint(e, step)
            if net.active and step == tc.steps:
                net.finish(step, "step_budget", self.wall(net))

    def interrupted(self, step: int, at_boundary: bool) -> None:
        """Ctrl-C: at a step boundary, checkpoint that step; either way write why, then raise."""
        for net in self.nets:
            if not net.active:
                continue
            if at_boundary:
                self.checkpoint(net.index, step)
            if net.writer is not None:
                net.writer.write_summary(self.summary(net, net.metrics.last, step, "interrupted"))
        if at_boundary and any(net.writer is not None for net in self.nets):
            print(f"\ninterrupted at step {step}: its checkpoint is written (continue with resume=True)",
                  file=sys.stderr)
        raise KeyboardInterrupt

    def summary(self, net: Network, final: dict, step: int, stopped: str) -> dict[str, Any]:
        wall = net.stop_wall if stopped != "interrupted" else self.wall(net)
        summary = run_summary(self.task, self.proxies[net.index], net.config, final, step, stopped, wall,
                              self.device, net.resumed_from, net.bad_step, net.last_good, net.acc_criterion)
        if self.ensemble is not None:
            summary["ensemble"] = {"path": self.ensemble["path"], "name": self.ensemble["names"][net.index],
                                   "index": net.index, "size": self.model.n_networks,
                                   "wall_seconds_total": round(time.perf_counter() - self.t0, 3)}
        return summary

    def finish(self, net: Network, figures: bool) -> Run:
        """End network ``net`` as its own run: final scores, history, checkpoint, model, summary, figures."""
        e, step = net.index, net.final_step
        if net.stopped == "non_finite_loss":
            warnings.warn(
                f"{'network ' + self.ensemble['names'][e] + ': ' if self.ensemble else ''}non-finite loss or "
                f"gradient at step {net.bad_step}: training stopped; the network keeps the weights of step "
                f"{net.last_good} (the last with a finite loss)"
                + ("" if net.writer is None else "; the last good checkpoint in checkpoints/ is kept"),
                RuntimeWarning, stacklevel=4)
            final = self.evaluate(step, [e], record=False)[e]
            net.history.truncate(step)  # snapshots and rows after it hold weights that were undone
            if net.metrics.rows and net.metrics.rows[-1]["step"] > step:
                net.metrics.truncate(step)
                if net.writer is not None:
                    net.writer.write_metrics(net.metrics)
        else:
            if not net.metrics.rows or net.metrics.rows[-1]["step"] < step:
                self.evaluate(step, [e])
            final = net.metrics.last
            self.checkpoint(e, step)
        self.model.eval()
        member = self.model.member(e).eval() if self.stacked else self.model
        if not net.history.steps or net.history.steps[-1] < step:
            net.history.append(step, member.effective_weights())
        summary = self.summary(net, final, step, net.stopped)
        heldout = heldout_scores(member, self.task, net.config.eval_batch_size, net.config.seed,
                                 noise=net.config.eval_noise, loss=self.loss_kind)
        summary.update(heldout_accuracy=heldout.get("accuracy"), heldout_loss=heldout["eval_loss"],
                       heldout_trials=net.config.eval_batch_size)
        if net.writer is not None:
            net.writer.write_model(member)
            net.writer.write_summary(summary)
            if figures:
                net.writer.write_figures(member, self.task, net.metrics, seed=net.config.seed,
                                         criterion=net.acc_criterion)
            write_report(net.writer.path, figures=figures)
        return Run(net.writer.path if net.writer else None, member, self.task, net.config, net.metrics, summary,
                   net.history)
