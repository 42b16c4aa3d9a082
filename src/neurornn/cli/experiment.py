"""``neurornn experiment NAME``: the seed experiments as commands.

  neurornn experiment teacher-student [--out DIR] [--set key=value ...]
  neurornn experiment teacher-student --recording rec.npz --out DIR
  neurornn experiment sernn-sweep [--strengths 0,0.1,0.3] [--seeds 0,1,2] [--out DIR] [--set key=value ...]
  neurornn experiment sign-tca [--out DIR] [--set key=value ...]

``--set`` values are read as YAML (``--set n_a=20 exc_fraction=0.8``); the keys are
the fields of the experiment's config (``TeacherStudentConfig``, ``SeRNNConfig``,
``SignTCAConfig``).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import torch

from .. import experiments as ex
from .._validation import suggest
from ..runs import load_yaml

__all__ = ["register", "run", "parse_sets", "EXPERIMENTS"]

EXPERIMENTS = ("teacher-student", "sernn-sweep", "sign-tca")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "experiment",
        help="run a seed experiment (teacher-student, sernn-sweep, sign-tca)",
        description=__doc__.replace("``", "`"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", metavar="NAME", help=f"one of {', '.join(EXPERIMENTS)}")
    p.add_argument("--out", metavar="DIR", default=None, help="output folder (never overwritten unless --overwrite)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--set", metavar="KEY=VALUE", nargs="+", action="append", default=[],
                   help="override config fields, e.g. n_a=20 exc_fraction=0.8")
    p.add_argument("--strengths", metavar="S1,S2,...", default=None,
                   help="sernn-sweep: regularisation strengths (default 0,0.01,0.03,0.1,0.3)")
    p.add_argument("--seeds", metavar="K1,K2,...", default=None,
                   help="sernn-sweep: initial-weight seeds, one network per seed and strength")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (1 is often fastest on a busy machine)")
    p.add_argument("--recording", metavar="NPZ", default=None,
                   help="teacher-student: infer from recorded 'stimulation' and 'activity' arrays instead")
    p.add_argument("--dt-ms", type=float, default=10.0, help="teacher-student --recording: time step (ms)")
    p.set_defaults(handler=run)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``key=value`` items into a dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ValueError(f"--set: empty key in {item!r}")
        try:
            out[key] = load_yaml(text) if text.strip() else None
        except Exception as err:  # yaml.YAMLError
            raise ValueError(f"--set {key}: cannot parse value {text!r} as YAML: {err}") from None
    return out


def _strengths(text: str | None) -> list[float]:
    if text is None:
        return [0.0, 0.01, 0.03, 0.1, 0.3]
    try:
        values = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--strengths must be comma-separated numbers, got {text!r}") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"--strengths must be comma-separated numbers >= 0, got {text!r}")
    return values


def _seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers >= 0, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise ValueError(f"--seeds must be comma-separated integers >= 0, got {text!r}")
    return values


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run(args: argparse.Namespace) -> int:
    if args.name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {args.name!r}{suggest(args.name, EXPERIMENTS)}; "
                         f"known: {list(EXPERIMENTS)}")
    sets = parse_sets([item for group in args.set for item in group])
    if args.strengths is not None and args.name != "sernn-sweep":
        raise ValueError("--strengths applies to sernn-sweep only")
    if args.recording is not None and args.name != "teacher-student":
        raise ValueError("--recording applies to teacher-student only")
    if args.seeds is not None and args.name != "sernn-sweep":
        raise ValueError("--seeds applies to sernn-sweep only")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.name == "teacher-student":
        if args.recording is not None:
            res = ex.infer_from_recording(args.recording, None, dt_ms=args.dt_ms, model=sets or None,
                                          out=args.out, overwrite=args.overwrite)
            print(f"variance of the activity explained: {_fmt(res['final_variance_explained'])} "
                  f"({res['train_steps']} steps, {res['train_seconds']:.1f} s)")
        else:
            res = ex.run_teacher_student(sets, out=args.out, overwrite=args.overwrite)
            print(f"A->B recovered: Pearson r = {res['pearson_r_A_to_B']:.4f}, relative error = "
                  f"{res['relative_error_A_to_B']:.4f} ({res['train_steps']} steps, {res['train_seconds']:.1f} s)")
            for name, s in res["recovery_after"].items():
                print(f"  {name}: r = {s['pearson_r']:.4f}, relative error = {s['relative_error']:.4f}")
    elif args.name == "sernn-sweep":
        rows = ex.run_sernn_sweep(_strengths(args.strengths), sets or None, out=args.out, overwrite=args.overwrite,
                                  model_seeds=_seeds(args.seeds))
        cols = ("strength", "model_seed", "accuracy", "total_weight", "modularity", "sigma", "sigma_efficiency")
        print("  ".join(f"{c:>16}" for c in cols))
        for r in rows:
            print("  ".join(f"{_fmt(r.get(c)):>16}" for c in cols))
    else:
        res = ex.run_sign_tca(sets or None, out=args.out, overwrite=args.overwrite)
        print(json.dumps({k: res[k] for k in ("accuracy", "rank", "rel_error", "auc", "best_auc",
                                              "best_auc_before", "best_dprime", "best_dprime_before")}))
    if args.out:
        print(f"written to {args.out}")
    return 0
