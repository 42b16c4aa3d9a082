"""Sweep benchmark: a 64-point sweep of small networks with the local executor against training the
points one by one, and the Ray executor's overhead per point.

Every variant trains the same 64 points (perceptual decision making, ``N`` units, model seeds 0..63,
``STEPS`` steps of batch ``BATCH``, evaluations, checkpoints and history every ``STEPS // 2`` steps,
no figures) into run folders:

- ``one by one``: ``neurornn.train`` for each point, one after another (what a shell loop over
  ``neurornn train`` does, less the start of a Python process each time);
- ``local, shards of S``: ``neurornn.sweeps.run_sweep`` in this process (each shard one ensemble);
- ``local, S, W workers``: the same with a pool of W spawned processes;
- ``ray, shards of S``: the Ray executor on a local cluster of one CPU (one shard at a time, as the
  local executor in process), started before the timing (its start is reported apart). Overhead per
  point: (ray - local in process, same shards) / 64, with the cluster's worker process warm.

Usage::

    python benchmarks/bench_sweep.py                 # print the table
    python benchmarks/bench_sweep.py --write         # and append it to benchmarks/RESULTS.md
    python benchmarks/bench_sweep.py --quick         # 16 points, few steps
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

import neurornn as nr
from neurornn import sweeps

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return (f"{os.cpu_count()} CPUs ({cpu}), torch {torch.__version__}, Python {platform.python_version()}, "
            f"1-min load average {os.getloadavg()[0]:.2f}")


def sweep_file(points: int, units: int, steps: int, batch: int, shard: int) -> dict:
    every = max(1, steps // 2)
    return {"base": {"task": {"name": "perceptual_decision_making", "params": {}},
                     "model": {"n_units": units},
                     "train": {"steps": steps, "batch_size": batch, "eval_batch_size": 64, "eval_every": every,
                               "checkpoint_every": every, "history_every": every, "acc_criterion": False}},
            "grid": {"model.seed": f"range({points})"}, "shard_size": shard}


def one_by_one(spec: dict, root: Path) -> float:
    plan = sweeps.plan_sweep(sweeps.read_sweep(spec))
    t0 = time.perf_counter()
    for p in plan.points:
        cfg = nr.TrainConfig.from_dict(p.train).replace(progress=False)
        nr.train(nr.RNN(nr.RNNConfig.from_dict(p.model)), plan.task, cfg, out=root / p.name, figures=False)
    return time.perf_counter() - t0


def timed_sweep(spec: dict, root: Path, **kw) -> float:
    t0 = time.perf_counter()
    result = sweeps.run_sweep(spec, root, progress=False, **kw)
    assert result.count("done") == len(result), result
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=64)
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="workers of the local pool")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved rounds; the best of each is shown")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write", action="store_true", help=f"append the table to {RESULTS}")
    args = ap.parse_args()
    if args.quick:
        args.points, args.steps, args.repeats = 16, 10, 1
    n = args.points
    tmp = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    base = sweep_file(n, args.units, args.steps, args.batch, 16)
    one = sweep_file(n, args.units, args.steps, args.batch, 1)
    variants = [
        ("one by one (`neurornn.train` per point)", lambda d: one_by_one(base, d)),
        ("local, shards of 16", lambda d: timed_sweep(base, d)),
        ("local, shards of 64", lambda d: timed_sweep(sweep_file(n, args.units, args.steps, args.batch, 64), d)),
        (f"local, shards of 16, {args.cpus} workers (spawned: each imports torch)",
         lambda d: timed_sweep(base, d, workers=args.cpus)),
        ("local, shards of 1 (in process)", lambda d: timed_sweep(one, d)),
    ]
    ray_note = ""
    try:
        timed_sweep(sweep_file(2, args.units, 2, args.batch, 2), tmp / "warm-up")  # imports, the first figure
        if not args.no_ray:
            import ray

            t0 = time.perf_counter()
            # one CPU: Ray runs one shard at a time, as the local executor does in process
            ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False,
                     runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}})
            ray_start = time.perf_counter() - t0
            ray_cold = timed_sweep(base, tmp / "ray-cold", executor="ray")  # Ray starts its worker process
            variants += [("ray (1 CPU), shards of 16, worker warm", lambda d: timed_sweep(base, d, executor="ray")),
                         ("ray (1 CPU), shards of 1, worker warm", lambda d: timed_sweep(one, d, executor="ray"))]
        times: dict[str, list[float]] = {label: [] for label, _ in variants}
        for r in range(args.repeats):  # interleaved rounds: the machine may be shared
            for i, (label, fn) in enumerate(variants):
                times[label].append(fn(tmp / f"v{i}-r{r}"))
        rows = [(label, min(ts)) for label, ts in times.items()]
        alone = rows[0][1]
        if not args.no_ray:
            ray.shutdown()
            best = dict(rows)
            ray16, ray1 = best["ray (1 CPU), shards of 16, worker warm"], best["ray (1 CPU), shards of 1, worker warm"]
            ray_note = (f"Ray: cluster start {ray_start:.1f} s and the first sweep on a fresh cluster "
                        f"{ray_cold - ray16:+.1f} s (its worker process starts and imports torch), not in the "
                        f"times; overhead per point with a warm worker, against the local executor in process: "
                        f"{(ray16 - best['local, shards of 16']) / n * 1000:+.0f} ms with shards of 16, "
                        f"{(ray1 - best['local, shards of 1 (in process)']) / n * 1000:+.0f} ms per task with one "
                        "point per task.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [f"### Run of {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             "", f"Machine: {machine()}. Command: `python benchmarks/bench_sweep.py"
             + (" --quick" if args.quick else "") + f"` ({n} points: perceptual decision making, {args.units} "
             f"units, model seeds 0..{n - 1}, {args.steps} steps of batch {args.batch}, evaluation, checkpoint and "
             f"history every half, no figures; one thread per shard; the best of {args.repeats} "
             "interleaved rounds, as the machine is shared).", "",
             "| how | wall s | per point ms | against one by one |", "|---|---|---|---|"]
    for label, wall in rows:
        lines.append(f"| {label} | {wall:.1f} | {wall / n * 1000:.0f} | {wall / alone:.2f}x |")
    if ray_note:
        lines += ["", ray_note]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        old = RESULTS.read_text()
        header = "## Sweeps (issue 16)\n\n"
        RESULTS.write_text(old.rstrip("\n") + "\n\n" + ("" if header in old else header) + text)


if __name__ == "__main__":
    main()
