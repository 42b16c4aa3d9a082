"""``neurornn train``: train a network on a task and write a run folder.

Settings come, later ones winning, from: the task's ``defaults`` (model and
train), the ``--config`` YAML file (sections ``task`` {name, params}, ``model``,
``train``, as in a run's ``config.yaml``), and ``--set section.key=value``
(values parsed as YAML: numbers, lists ``[0, 51.2]``, ``true``/``false``, ``null``).
The model's ``n_inputs``, ``n_outputs`` and ``dt_ms`` follow the task; the
model's ``seed`` follows ``train.seed`` unless set.
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping

import torch

from .. import tasks
from .._validation import suggest
from .._folder import folder_kind, only_leftovers
from ..config import SMALL_NETWORK_UNITS, RNNConfig, TrainConfig
from ..models import RNN
from ..runs import is_run, load_yaml, read_config_file, read_run_config
from ..training import train
from ._ensemble import add_arguments as add_ensemble_arguments
from ._ensemble import resume_ensemble, run_ensemble, wants_ensemble

__all__ = ["register", "run", "build_configs", "parse_sets"]

DEFAULT_TASK = "perceptual_decision_making"
_SECTIONS = ("task", "model", "train")

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
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-figures", action="store_true",
                   help="do not draw figures (faster; report.html still holds the summary and config)")
    p.add_argument("--threads", type=int, metavar="N",
                   help=f"CPU threads for torch (default: train.threads, i.e. 1 for one network of up to "
                        f"{SMALL_NETWORK_UNITS} units, whose per-step matrix products are too small to share "
                        "and which a second thread slows down badly on a busy machine; torch's choice otherwise)")
    add_ensemble_arguments(p)
    p.set_defaults(handler=run)


def parse_sets(items: list[str]) -> dict[str, dict[str, Any]]:
    """Parse ``section.key=value`` items into ``{section: {key: value}}`` (values as YAML)."""
    out: dict[str, dict[str, Any]] = {s: {} for s in _SECTIONS}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects section.key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if "." not in key:
            raise ValueError(f"--set key must be section.key with section one of {list(_SECTIONS)}, got {key!r}")
        section, name = key.split(".", 1)
        if section not in _SECTIONS:
            raise ValueError(f"--set: unknown section {section!r}{suggest(section, _SECTIONS)} in {item!r}; "
                             f"sections: {list(_SECTIONS)}")
        if not name:
            raise ValueError(f"--set: empty key in {item!r}")
        try:
            value = load_yaml(text, source="it") if text.strip() else None
        except ValueError as err:
            raise ValueError(f"--set {key}: cannot parse value {text!r}: {str(err)[3:]}") from None
        out[section][name] = value
    return out


def build_configs(
    task_name: str | None = None,
    config_file: str | None = None,
    sets: list[str] | None = None,
    base: Mapping[str, Any] | None = None,
    trust_code: bool = False,
):
    """Resolve (task, RNNConfig, TrainConfig) from defaults, a config file/dict and --set items.

    A task named on the command line (``task_name``, ``--set task.name=``) may be code to
    import; one named by the config file or ``base`` only with ``trust_code``.
    """
    if task_name is not None and not task_name.strip():
        raise ValueError("--task must name a task (see `neurornn tasks`), got an empty string")
    cfg = {"task": {"name": None, "params": {}}, "model": {}, "train": {}}
    if base is not None:
        cfg = {"task": {"name": base["task"].get("name"), "params": dict(base["task"].get("params") or {})},
               "model": dict(base["model"]), "train": dict(base["train"])}
    if config_file is not None:
        cfg = read_config_file(config_file)
    overrides = parse_sets(sets or [])
    given = overrides["task"].pop("name", None) or task_name
    name = given or cfg["task"].get("name") or DEFAULT_TASK
    params = dict(cfg["task"].get("params") or {}) if name == cfg["task"].get("name") else {}
    params.update(overrides["task"])
    source = "--config" if config_file is not None else "--resume"
    if given is None and tasks.names_code(name) and not trust_code:
        raise tasks.UntrustedCodeError(
            f"the {'config file ' + repr(config_file) if config_file else 'run folder'} names task code "
            f"{name!r} (task.name); running it needs --trust-code (given with {source}), or name the task "
            "yourself with --task")
    task = tasks.make(name, **params)

    task_cls_defaults = getattr(task, "defaults", {}) or {}
    given_model = {**cfg["model"], **overrides["model"]}
    model = {**dict(task_cls_defaults.get("model", {})), **given_model}
    for key, value in (("n_inputs", task.n_inputs), ("n_outputs", task.n_outputs), ("dt_ms", task.dt_ms)):
        if key in given_model and given_model[key] != value:
            hint = " (set task.dt_ms instead)" if key == "dt_ms" else ""
            raise ValueError(f"model.{key}={given_model[key]!r} does not match the task's {key}={value!r}{hint}")
        model[key] = value
    train = {**dict(task_cls_defaults.get("train", {})), **cfg["train"], **overrides["train"]}
    train_config = TrainConfig.from_dict(train)
    model.setdefault("seed", train_config.seed)
    model_config = RNNConfig.from_dict(model)
    return task, model_config, train_config


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
    if args.resume and s.get("resumed_from_step") == s["steps"]:
        print("nothing to resume: the run had already stopped; raise train.steps or the criterion "
              "(--set train.steps=N / train.acc_criterion=A) to train on")
    return 0
