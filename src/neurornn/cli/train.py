"""``neurornn train``: train a network on a task and write a run folder.

The arguments only: the settings are assembled by :mod:`neurornn.runs.settings`
(the task's defaults, ``--config`` or the run folder, then ``--set section.key=value``)
and trained by :mod:`neurornn.training`.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path

import torch

from .._folder import folder_kind, only_leftovers
from ..config import SMALL_NETWORK_UNITS, RNNConfig
from ..models import RNN
from ..runs import is_run, read_run_config
from ..runs.settings import DEFAULT_TASK, build_configs, parse_sets
from ..training import train
from ._ensemble import add_arguments as add_ensemble_arguments
from ._ensemble import resume_ensemble, run_ensemble, wants_ensemble

__all__ = ["register", "run", "build_configs", "parse_sets"]


_EPILOG = """examples:
  neurornn train                                   # perceptual decision making, defaults
  neurornn train --task flip_flop --out runs/ff
  neurornn train --set model.n_units=64 train.steps=500 task.coherences=[0,51.2]
  neurornn train --config runs/ff/config.yaml --out runs/ff2   # rerun a run
  neurornn train --resume --out runs/ff            # continue from the last checkpoint
  neurornn train --ensemble 8 --out runs/seeds     # 8 networks at once (see --vary, --grid)
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a network on a task",
        description="Train a network on a task and write a run folder (config, metrics, weights, "
        "history, checkpoints, figures, report).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", metavar="NAME",
                   help=f"task name (see `neurornn tasks`), 'module:Class' or 'neurogym:Env-v0' "
                        f"(default: {DEFAULT_TASK}, or the config file's task)")
    p.add_argument("--config", metavar="FILE.yaml", help="YAML file with sections task, model, train")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="append", default=[],
                   help="override settings, e.g. model.n_units=64 train.steps=500 task.coherences=[0,51.2]")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<task>-<timestamp>)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint (train.* may be --set, e.g. more steps)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing run folder at --out (only a folder neurornn made, holding nothing "
                        "but what neurornn wrote)")
    p.add_argument("--trust-code", action="store_true",
                   help="allow a config file or run folder (--config, --resume) to name task code "
                        "('module:Class', 'file.py:Class') and run it; never needed for --task")
    p.add_argument("--no-criterion", action="store_true",
                   help="train the whole step budget: no accuracy or loss criterion stops it (with --resume: "
                        "continue a run that met its criterion, e.g. --resume --no-criterion --set train.steps=5000)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-figures", action="store_true",
                   help="do not draw figures (faster; report.html still holds the summary and config)")
    p.add_argument("--threads", type=int, metavar="N",
                   help=f"CPU threads for torch (default: train.threads, i.e. 1 for one network of up to "
                        f"{SMALL_NETWORK_UNITS} units, whose per-step matrix products are too small to share "
                        "and which a second thread slows down badly on a busy machine; torch's choice otherwise)")
    add_ensemble_arguments(p)
    p.set_defaults(handler=run)


def _default_out(task_name: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", task_name).strip("_") or "task"
    base = Path("runs") / f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    out, k = base, 2
    while out.exists():
        out = base.with_name(f"{base.name}-{k}")
        k += 1
    return out


def run(args: argparse.Namespace) -> int:
    sets = [item for group in args.set for item in group]
    if args.out is not None and not args.out.strip():
        raise ValueError("--out must be a folder path, got an empty string")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.resume:
        if not args.out:
            raise ValueError("--resume needs --out DIR (the run folder to continue)")
        if args.config or args.task:
            raise ValueError("--resume reads the task and model from DIR/config.yaml; do not give --task or --config")
        if args.overwrite:
            raise ValueError("give --resume or --overwrite, not both")
        out_dir = Path(args.out)
        if folder_kind(out_dir) == "ensemble":
            return resume_ensemble(args, sets, lambda saved: build_configs(base=saved, sets=sets,
                                                                           trust_code=args.trust_code))
        if out_dir.is_dir() and (only_leftovers(out_dir) or (is_run(out_dir) and not (out_dir / "config.yaml").exists())):
            raise FileNotFoundError(f"cannot resume {args.out!r}: its run stopped before it wrote its config.yaml, so "
                                    "there is nothing to resume; start it again with the same command and --overwrite")
        if not is_run(out_dir):
            raise FileNotFoundError(f"cannot resume: {args.out!r} is not a run folder that neurornn made")
        bad = [s for s in sets if not s.startswith("train.")]
        if bad:
            raise ValueError(f"--resume only accepts train.* settings (the model and task are fixed), got {bad}")
        saved = read_run_config(args.out)
        task, model_config, train_config = build_configs(base=saved, sets=sets, trust_code=args.trust_code)
        # the saved config is complete: keep its model section exactly
        model_config = RNNConfig.from_dict(saved["model"])
    else:
        task, model_config, train_config = build_configs(args.task, args.config, sets, trust_code=args.trust_code)
    if args.quiet:
        train_config = train_config.replace(progress=False)
    if args.no_criterion:
        train_config = train_config.replace(acc_criterion=False, loss_criterion=None)
    out = Path(args.out) if args.out else _default_out(task.name)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
        train_config = train_config.replace(threads=args.threads)
    if wants_ensemble(args):
        return run_ensemble(args, task, model_config, train_config, out)
    model = RNN(model_config)
    try:
        result = train(model, task, train_config, out=out, overwrite=args.overwrite, resume=args.resume,
                       figures=not args.no_figures)
    except KeyboardInterrupt:
        print(f"interrupted; resume with: neurornn train --resume --out {out}", file=sys.stderr)
        return 130
    s = result.summary
    acc = s.get("final_accuracy")
    extra = []
    if s.get("accuracy_criterion") is not None:
        extra.append(f"criterion {s['accuracy_criterion']:g}")
    if s.get("accuracy_ceiling") is not None:
        extra.append(f"task ceiling {s['accuracy_ceiling']:.3f}")
    acc_text = "n/a" if acc is None else f"{acc:.3f}"
    print(f"run folder: {result.path} (report: {result.path / 'report.html'})" if not args.no_figures
          else f"run folder: {result.path}")
    print(f"final accuracy: {acc_text}" + (f" ({', '.join(extra)})" if extra else "")
          + f" after {s['steps']} steps, {s['wall_seconds']:.1f} s; stopped because: {s['stopped_because']}")
    if s.get("heldout_accuracy") is not None:
        print(f"held-out accuracy: {s['heldout_accuracy']:.3f} on {s['heldout_trials']} fresh trials that no "
              "stopping decision saw")
    if args.resume and s.get("resumed_from_step") == s["steps"]:
        print("nothing to resume: the run had already stopped; to train on past its criterion, give "
              "--no-criterion and more steps (--resume --no-criterion --set train.steps=N)")
    return 0
