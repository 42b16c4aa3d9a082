"""Resuming: every network of the loop continues from its run folder's last checkpoint."""

from __future__ import annotations

import warnings

from .._files import read_manifest
from .._folder import verified_bytes
from ..config.train import TrainConfig
from ..runs import Metrics, read_run_config, resume_hint, run_config
from ..runs.checkpoint import has_checkpoint, load_checkpoint
from ..runs.history import WeightHistory
from ._setup import check_resume_changes
from .generators import make_generators
from .optimizers import make_optimizer

__all__ = ["restore"]


def restore(loop) -> int:
    """Restore every network of ``loop`` (a training loop); returns the step they continue from."""
    starts = [_restore_network(loop, net) for net in loop.nets]
    for net, start in zip(loop.nets, starts):
        if net.active and start >= net.config.steps:  # its step budget is spent: nothing left to do
            net.finish(start, "step_budget", net.wall_before)
    live = sorted({start for net, start in zip(loop.nets, starts) if net.active})
    if len(live) > 1:
        raise ValueError(f"cannot resume these networks together: the last checkpoints of those still training "
                         f"are at steps {live}; resume each run folder on its own (neurornn train --resume --out "
                         "FOLDER)")
    return live[0] if live else max(starts)


def _restore_network(loop, net) -> int:
    """Network ``net``'s checks and checkpoint; 0 when it was killed before its first checkpoint
    (it then starts again from step 0: the same seeds give the same run)."""
    writer, e = net.writer, net.index
    if writer is None:
        raise ValueError("resume=True needs out= the run folder to resume")
    saved = read_run_config(writer.path)
    now = run_config(loop.task, loop.model.configs[e], net.config)
    for section in ("task", "model"):
        if saved[section] != now[section]:
            raise ValueError(
                f"cannot resume {str(writer.path)!r}: its {section} config differs from the one given "
                f"(saved {saved[section]!r}, given {now[section]!r})"
            )
    check_resume_changes(TrainConfig.from_dict(saved["train"]), net.config)
    if not has_checkpoint(writer.checkpoint_dir):
        if "checkpoints/latest.json" in read_manifest(writer.path)["files"]:
            raise FileNotFoundError(f"cannot resume {str(writer.path)!r}: its checkpoints/latest.json, which "
                                    "neurornn wrote, was deleted; the run cannot continue (start it again with "
                                    "--overwrite)")
        warnings.warn(f"run {str(writer.path)!r} stopped before its first checkpoint: it starts again from "
                      "step 0 (the same seeds give the same run)", RuntimeWarning, stacklevel=5)
        writer.reset()
        return 0
    proxy = loop.proxies[e]
    params = [p for p in proxy.parameters() if p.requires_grad]
    if loop.stacked:  # restored into a copy of network e, then into the stacked model
        opt, gens = make_optimizer(net.config, params), make_generators(net.config.seed, loop.device)
        meta = load_checkpoint(writer.checkpoint_dir, proxy, opt, gens)
        loop.model.load_member(e, proxy)
        loop.gens.replace(e, gens)
    else:
        opt = loop.optimizer.member(e, params)
        meta = load_checkpoint(writer.checkpoint_dir, proxy, opt, loop.gens.of[e])
    loop.optimizer.load_member(e, opt, net.config)
    start = int(meta["step"])
    hint = resume_hint(writer.path)
    written = read_manifest(writer.path)["files"]  # a file neurornn wrote must be there and whole
    if "metrics.csv" in written or (writer.path / "metrics.csv").exists():
        net.metrics = Metrics.from_csv(writer.path / "metrics.csv", verified_bytes(writer.path / "metrics.csv", hint))
        net.metrics.truncate(start)
    if "history/index.json" in written or (writer.history_dir / "index.json").exists():
        net.history = WeightHistory.load(writer.history_dir, loop.model.configs[e], proxy.masks())
        net.history.truncate(start)
    extra = meta.get("extra", {})
    net.wall_before = float(extra.get("wall_seconds", 0.0))
    net.accum.update(extra.get("accum", {}))
    net.resumed_from = net.checkpointed = start
    if net.metrics.rows and net.metrics.rows[-1]["step"] == start:
        # a run that stopped on its criterion has nothing left to do (unless the criterion changed)
        reason = net.criterion_met(net.metrics.rows[-1])
        if reason is not None:
            net.finish(start, reason, net.wall_before)
    return start
