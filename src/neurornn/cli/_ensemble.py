"""``neurornn train --ensemble N`` / ``--vary``: train many networks at once (see
:func:`neurornn.training.ensemble.train_ensemble`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import RNNConfig
from ..training.ensemble import ensemble_members, train_ensemble
from ..training.ensemble_configs import ensemble_configs, parse_vary

__all__ = ["add_arguments", "wants_ensemble", "run_ensemble"]

EPILOG = """ensembles (many networks trained at once with batched matmuls, one run folder each):
  neurornn train --ensemble 8 --out runs/seeds                  # model seeds 0..7
  neurornn train --vary model.seed=range(32) --out runs/s32
  neurornn train --vary train.learning_rate=[1e-3,3e-3] model.sigma_rec=[0.05,0.1] --grid --ensemble 4
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ensemble", type=int, metavar="N",
                   help="train N networks at once (model seeds seed..seed+N-1 unless --vary sets them); "
                        "--out is then a folder holding one run folder per network")
    p.add_argument("--vary", metavar="KEY=VALUES", nargs="+", action="append", default=[],
                   help="settings that differ between the networks of an ensemble, one value each: "
                        "model.seed=range(8) train.learning_rate=[1e-3,3e-3] train.regularizers.0.strength=[0,1e-3]")
    p.add_argument("--grid", action="store_true",
                   help="with --vary: every combination of the values (times --ensemble seeds)")


def wants_ensemble(args: argparse.Namespace) -> bool:
    return args.ensemble is not None or bool(args.vary) or bool(args.grid)


def resume_ensemble(args: argparse.Namespace, sets: list[str], build) -> int:
    """``neurornn train --resume --out ENSEMBLE``: every network continues from its checkpoint;
    ``build(saved run config) -> (task, model config, train config)`` applies the --set items."""
    if wants_ensemble(args):
        raise ValueError("--resume reads the networks from the ensemble folder; do not give --ensemble, --vary "
                         "or --grid")
    bad = [s for s in sets if not s.startswith("train.")]
    if bad:
        raise ValueError(f"--resume only accepts train.* settings (the models and task are fixed), got {bad}")
    names, saved = ensemble_members(args.out)
    built = [build(config) for config in saved]
    models = [RNNConfig.from_dict(config["model"]) for config in saved]  # kept exactly as saved
    trains = [b[2].replace(progress=False) if args.quiet else b[2] for b in built]
    if args.no_criterion:
        trains = [t.replace(acc_criterion=False, loss_criterion=None) for t in trains]
    if args.threads is not None:
        trains = [t.replace(threads=args.threads) for t in trains]
    result = train_ensemble(models, built[0][0], trains, out=args.out, resume=True, names=names,
                            figures=not args.no_figures)
    return _report(result)


def run_ensemble(args: argparse.Namespace, task, model_config, train_config, out: Path) -> int:
    if args.ensemble is not None and args.ensemble < 1:
        raise ValueError(f"--ensemble must be >= 1, got {args.ensemble}")
    vary = parse_vary([item for group in args.vary for item in group])
    if args.grid and not vary:
        raise ValueError("--grid needs --vary")
    models, trains = ensemble_configs(model_config, train_config, vary, n=args.ensemble, grid=args.grid)
    result = train_ensemble(models, task, trains, out=out, overwrite=args.overwrite,
                            figures=not args.no_figures)
    return _report(result)


def _report(result) -> int:
    print(f"ensemble folder: {result.path} ({len(result)} networks, {result.wall_seconds:.1f} s; "
          f"summary.csv lists them)")
    for name, run in zip(result.names, result.runs):
        s = run.summary
        acc = s.get("final_accuracy")
        print(f"  {name}: final accuracy {'n/a' if acc is None else f'{acc:.3f}'} after {s['steps']} steps; "
              f"stopped because: {s['stopped_because']}", file=sys.stdout)
    return 0
