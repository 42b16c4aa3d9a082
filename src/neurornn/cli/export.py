"""``neurornn export RUN --nwb FILE``: a run's activity, weights, units and trials in an NWB file.

Runs the trained network on ``--n-trials`` fresh trials of its task (drawn with ``--seed``) and writes
them with :func:`neurornn.io.to_nwb` (needs the extra: ``pip install 'neurornn[nwb]'``).
"""

from __future__ import annotations

import argparse

from ..io import to_nwb
from ..runs import load_run


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a run's activity to an NWB file", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="run folder written by `neurornn train`")
    p.add_argument("--nwb", required=True, metavar="FILE", help="NWB file to write (.nwb)")
    p.add_argument("--n-trials", type=int, default=32, metavar="N", help="trials to run and write (default 32)")
    p.add_argument("--seed", type=int, default=0, help="seed of the trials (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing FILE")
    p.add_argument("--trust-code", action="store_true", help="rebuild a task that is user code")
    p.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    run = load_run(args.run, trust_code=args.trust_code)
    path = to_nwb(run, args.nwb, n_trials=args.n_trials, seed=args.seed, overwrite=args.overwrite)
    print(f"wrote {path}")
    return 0
