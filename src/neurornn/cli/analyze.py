"""``neurornn analyze RUN``: dynamical-systems and performance analyses of a run.

Writes JSON summaries and npz arrays into ``RUN/analysis/``, PNG figures into
``RUN/figures/`` and rebuilds ``RUN/report.html``. Existing analysis files are
never replaced unless ``--overwrite`` is given. With ``--snapshot I`` the
snapshot ``I`` of the weight history is analysed and every file name gets a
``_snapshotI`` suffix, so analyses before and after training sit side by side.

The analyses are those of ``neurornn.analysis.analyze_run`` (the built-in ones
have a flag each; ``--only NAME`` picks any registered analysis, e.g. one added
with ``neurornn.analysis.register_analysis``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..analysis.pipeline import AnalysisOptions, analyze_run

# The built-in analyses, each with its own flag (any registered analysis can be chosen with --only).
ANALYSES = ("performance", "activity", "pca", "psychometric", "fixed_points", "graph")
# How errors name the options of the pipeline: by these flags.
FLAGS = {"n_trials": "--n-trials", "score_trials": "--score-trials", "seed": "--seed", "fp_inputs": "--fp-input",
         "fp_starts": "--fp-starts", "fp_tol_q": "--fp-tol-q", "fp_slow": "--fp-slow", "area": "--area",
         "graph_keep": "--graph-keep", "graph_nulls": "--graph-nulls", "threads": "--threads",
         "overwrite": "--overwrite"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="analyse a trained run (fixed points, PCA, psychometrics, activity) and write report.html",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run folder written by `neurornn train`")
    p.add_argument("--performance", action="store_true", help="validation score and example trials")
    p.add_argument("--activity", action="store_true", help="record states and rates of every unit")
    p.add_argument("--pca", action="store_true", help="PCA of the activity, trajectories in PC space")
    p.add_argument("--psychometric", action="store_true", help="psychometric curves (decision tasks)")
    p.add_argument("--fixed-points", action="store_true", help="fixed points, stability, cycles")
    p.add_argument("--graph", action="store_true",
                   help="graph metrics of W_rec and of its weight history (modularity, small-worldness, ...)")
    p.add_argument("--graph-keep", type=float, default=0.1, metavar="F",
                   help="graph: keep the top fraction F of |W_rec| (default 0.1)")
    p.add_argument("--graph-nulls", type=int, default=1000, metavar="N",
                   help="graph: random null graphs for small-worldness (default 1000)")
    p.add_argument("--only", action="append", default=None, metavar="NAME[,NAME]",
                   help="run these analyses, by their registered name (repeatable): the built-in ones above "
                        "or any registered with neurornn.analysis.register_analysis")
    p.add_argument("--all", action="store_true",
                   help="every registered analysis (the default when none is chosen)")
    p.add_argument("--snapshot", type=int, default=None, metavar="I",
                   help="analyse weight-history snapshot I (0 = before training) instead of the final model")
    p.add_argument("--area", default=None, help="record/PCA only the units of this area")
    p.add_argument("--n-trials", type=int, default=256, help="trials of the analysis batch (default 256)")
    p.add_argument("--score-trials", type=int, default=2048, metavar="N",
                   help="fresh trials scored by --performance (default 2048: a sampling error of about "
                        "0.007 on an accuracy near 0.87, against 0.02 for 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the analysis batch and of the starts")
    p.add_argument("--fp-input", action="append", default=None, metavar="U1,U2,...",
                   help="constant input for the fixed-point search (repeatable); default: the mean "
                        "input of each task period, or zero")
    p.add_argument("--fp-starts", type=int, default=1024, help="starting states of the search (default 1024)")
    p.add_argument("--fp-tol-q", type=float, default=1e-12, help="q tolerance of a fixed point (default 1e-12)")
    p.add_argument("--fp-slow", type=float, default=None, metavar="F",
                   help="search slow points instead of exact fixed points (approximate line or ring "
                        "attractors): keep points whose q is below F times the median of "
                        "1/2 |x(t+1) - x(t)|^2 along the recorded trajectories (e.g. 0.01: 10 times slower "
                        "than the network typically moves), without exact refinement; replaces --fp-tol-q")
    p.add_argument("--device", default="cpu", help="torch device of the analysis (default cpu)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="CPU threads for torch (default: 1 for networks of up to 256 units, whose batched "
                        "matrix products are too small to share and which a second thread slows down badly "
                        "on a busy machine; torch's choice otherwise)")
    p.add_argument("--overwrite", action="store_true", help="replace existing analysis files")
    p.add_argument("--trust-code", action="store_true",
                   help="allow a run folder whose task is code ('module:Class', 'file.py:Class') to import it")
    p.add_argument("--no-report", action="store_true", help="do not rebuild report.html")
    p.set_defaults(handler=run)


def _chosen(args: argparse.Namespace) -> list[str] | None:
    """The analyses the flags choose, or None for every registered one."""
    chosen = [a for a in ANALYSES if getattr(args, a)]
    for text in args.only or ():
        chosen += [name for name in text.replace(" ", "").split(",") if name]
    return None if args.all or not chosen else chosen


def run(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    options = AnalysisOptions(n_trials=args.n_trials, score_trials=args.score_trials, seed=args.seed,
                              fp_inputs=args.fp_input, fp_starts=args.fp_starts, fp_tol_q=args.fp_tol_q,
                              fp_slow=args.fp_slow, area=args.area, graph_keep=args.graph_keep,
                              graph_nulls=args.graph_nulls, labels=FLAGS)

    def show(result) -> None:
        print(f"[{result.name}] {result.message} ({result.seconds:.1f} s)", flush=True)

    results = analyze_run(args.run, _chosen(args), snapshot=args.snapshot, options=options,
                          overwrite=args.overwrite, report=not args.no_report, device=args.device,
                          threads=args.threads, callback=show, trust_code=args.trust_code)
    if not args.no_report:
        print(f"report: {Path(args.run) / 'report.html'}")
    for result in results.values():
        for path in result.files:
            print(f"wrote {path}")
    return 0
