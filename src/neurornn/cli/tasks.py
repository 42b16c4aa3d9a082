"""``neurornn tasks``: list the registered tasks; ``neurornn tasks show NAME``: an example batch."""

from __future__ import annotations

import argparse

import torch
import yaml

from .. import tasks
from ..plotting import save_figure
from ..tasks.plotting import describe_batch, plot_task_batch

_EPILOG = """examples:
  neurornn tasks                                   # every task with its one-line description
  neurornn tasks show flip_flop                    # shapes, periods, conditions
  neurornn tasks show go_no_go --out gng.png       # and a figure of an example batch
  neurornn tasks show xor --set delay_ms=100 dt_ms=10
  neurornn tasks show neurogym:GoNogo-v0 --set dt_ms=20
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list the tasks, or show one", description="List every registered task, "
                       "or show an example batch of one.", epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(handler=run, action=None)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    show = actions.add_parser("show", help="print shapes, periods and conditions of an example batch; "
                              "optionally save a figure of it")
    show.add_argument("name", help="task name, 'module:Class', 'file.py:Class' or 'neurogym:Env-v0'")
    show.add_argument("--out", metavar="FILE.png", help="save a figure of the batch (png, pdf or svg); "
                      "an existing file is not overwritten")
    show.add_argument("--set", nargs="+", action="append", default=[], metavar="KEY=VALUE",
                      help="task parameters, values parsed as YAML: --set n_bits=2 pulse_ms=30 "
                           "(a 'task.' prefix, as in `neurornn train --set task.n_bits=2`, is accepted)")
    show.add_argument("--trials", type=int, default=3, help="trials in the figure (default 3)")
    show.add_argument("--seed", type=int, default=0, help="seed of the example batch (default 0)")


def _parse_sets(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if key.startswith("task."):
            key = key[len("task."):]
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        if "." in key:
            raise ValueError(f"--set {item!r}: `tasks show` takes task parameters only (KEY=VALUE or task.KEY=VALUE)")
        params[key] = yaml.safe_load(value)
    return params


def run(args: argparse.Namespace) -> int:
    if args.action == "show":
        return show(args)
    described = tasks.describe()
    width = max(len(n) for n in described)
    for name, text in described.items():
        print(f"{name:<{width}}  {text}")
    print(f"{'neurogym:<Env-v0>':<{width}}  any NeuroGym environment (needs neurornn[neurogym])")
    return 0


def show(args: argparse.Namespace) -> int:
    task = tasks.make(args.name, **_parse_sets([item for group in args.set for item in group]))
    if args.trials < 1:
        raise ValueError(f"--trials must be >= 1, got {args.trials}")
    batch = task.batch(max(args.trials, 8), torch.Generator().manual_seed(args.seed))
    print(describe_batch(task, batch))
    if args.out:
        path = save_figure(plot_task_batch(task, batch, n_trials=args.trials), args.out)
        print(f"figure: {path}")
    return 0
