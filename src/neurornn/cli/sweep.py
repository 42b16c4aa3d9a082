"""``neurornn sweep``: train every point of a sweep file (see :mod:`neurornn.sweeps`); the arguments only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..sweeps import EXECUTORS, collect_sweep, is_sweep, run_sweep

__all__ = ["register", "run", "EXIT_POINTS_FAILED"]

#: Exit code of a sweep that ended with failed points (the others are done).
EXIT_POINTS_FAILED = 7

_EPILOG = """examples:
  neurornn sweep sweep.yaml --out runs/sweep                      # in this process
  neurornn sweep sweep.yaml --out runs/sweep --workers 2          # a pool of 2 processes
  neurornn sweep sweep.yaml --out runs/sweep --executor ray       # a local Ray cluster, started if none runs
  neurornn sweep sweep.yaml --out runs/sweep --executor ray --address ray://head:10001
  neurornn sweep sweep.yaml --out runs/sweep                      # again: done points skipped, the rest resumed
  neurornn sweep collect runs/sweep                               # results.csv and results.png

exit codes as for every command (see neurornn --help), and 7: the sweep ended with failed points (the table
says why; run it again to retry them).
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="train many networks (a sweep file) as ensembles, locally or on Ray; resumable",
        description="Train every point of a sweep file (docs/sweeps.md): each an ordinary run folder, points of "
        "one shape trained together as ensembles; run again to continue. `neurornn sweep collect DIR` writes the "
        "results table.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sweep", metavar="SWEEP.yaml", help="the sweep file (or a sweep folder: continue it), or "
                                                       "'collect' followed by a sweep folder")
    p.add_argument("folder", metavar="DIR", nargs="?", help="with collect: the sweep folder")
    p.add_argument("--out", metavar="DIR", help="the sweep folder (default: runs/<sweep file name>)")
    p.add_argument("--executor", choices=list(EXECUTORS), default="local",
                   help="where the shards train: local (this machine) or ray (a Ray cluster); default local")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local executor: N processes training shards at once (default 1: in this process)")
    p.add_argument("--address", metavar="ADDR",
                   help="ray executor: the cluster to join ('auto', HOST:6379, ray://HOST:10001); default: a "
                        "local cluster, started if none runs")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="append", default=[],
                   help="override base settings, e.g. train.steps=500 model.n_units=64")
    p.add_argument("--vary", metavar="KEY=VALUES", nargs="+", action="append", default=[],
                   help="more grid settings, e.g. model.seed=range(8) train.learning_rate=[1e-3,3e-3]")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the sweep folder (only what neurornn wrote) instead of continuing it")
    p.add_argument("--trust-code", action="store_true", help="allow the sweep's base to name task code")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.sweep == "collect":
        if not args.folder:
            raise ValueError("collect needs the sweep folder: neurornn sweep collect DIR")
        result = collect_sweep(args.folder)
        print(f"results: {result.path / 'results.csv'} ({_counts(result)})")
        return 0
    if args.folder:
        raise ValueError(f"unexpected argument {args.folder!r}: give the sweep folder with --out DIR")
    sets = [item for group in args.set for item in group]
    vary = [item for group in args.vary for item in group]
    if args.out is not None and not args.out.strip():
        raise ValueError("--out must be a folder path, got an empty string")
    if args.out is None:
        out = Path(args.sweep) if is_sweep(args.sweep) else Path("runs") / Path(args.sweep).stem
    else:
        out = Path(args.out)
    try:
        result = run_sweep(args.sweep, out, executor=args.executor, workers=args.workers, address=args.address,
                           overwrite=args.overwrite, sets=sets, vary=vary, trust_code=args.trust_code,
                           progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"interrupted; every shard stopped at a checkpoint: run the same command again to continue "
              f"(neurornn sweep {args.sweep} --out {out})", file=sys.stderr)
        return 130
    print(f"sweep folder: {result.path} ({_counts(result)}; {result.wall_seconds:.1f} s); results: "
          f"{result.path / 'results.csv'}")
    for row in result.failed[:10]:
        print(f"  failed {row['point']}: {row['error']}", file=sys.stderr)
    if len(result.failed) > 10:
        print(f"  ... and {len(result.failed) - 10} more (see points.csv)", file=sys.stderr)
    return EXIT_POINTS_FAILED if result.failed else 0


def _counts(result) -> str:
    return (f"{len(result)} points: {result.count('done')} done, {result.count('failed')} failed, "
            f"{result.count('pending')} pending")
