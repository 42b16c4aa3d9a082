"""Benchmark: fixed points of a trained 3-bit flip-flop network (N=128) from 1024 starts.

Trains the network first (3-bit flip-flop with 1 s trials, 128 tanh units,
tau 20 ms, Adam lr 1e-3, ``--train-steps`` steps (1000), seed 0; not timed), or
loads a run folder given with ``--run``, then times
``FixedPointFinder(model).fit(zeros, starts)`` with 1024 starting states
sampled from 128 noise-free trials (+ gaussian noise, std 0.05) ``--repeats``
times for each torch thread count in ``--threads``, and prints the best and
median wall time with the counts found (stable points, saddles, q values) and
the time of each stage of the last run. Other people's jobs on the same cores
disturb single runs: read the best and the median, not one run.

With 1000 training steps the network stores its 8 memories as 8 stable fixed
points (plus 19 saddles); trained longer (1500 steps) the same network keeps
some memories as slow points that are not fixed points (q > 1e-12), which the
finder reports as trajectories that "had not settled".

    .venv/bin/python benchmarks/bench_fixed_points.py [--run RUN] [--repeats 5] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

import neurornn as nr
from neurornn.analysis import FixedPointFinder, sample_states
from neurornn.training import TrainConfig, train


def trained_model(run: str | None, steps: int) -> nr.RNN:
    if run:
        return nr.load_run(run).model
    task = nr.tasks.make("flip_flop")
    cfg = nr.RNNConfig(n_inputs=3, n_units=128, n_outputs=3, dt_ms=task.dt_ms, tau_ms=20.0,
                       activation="tanh", w_rec_gain=0.9, seed=0)
    t0 = time.perf_counter()
    result = train(nr.RNN(cfg), task, TrainConfig(steps=steps, batch_size=64, learning_rate=1e-3,
                                                  acc_criterion=False, progress=False, seed=0), out=None)
    print(f"trained flip_flop N=128 for {steps} steps in {time.perf_counter() - t0:.1f} s, "
          f"accuracy {result.summary.get('final_accuracy'):.4f}")
    return result.model


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None, help="analyse this run folder's model instead of training one")
    parser.add_argument("--train-steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--starts", type=int, default=1024)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    model = trained_model(args.run, args.train_steps)
    task = nr.tasks.make("flip_flop")
    batch = task.batch(128, torch.Generator().manual_seed(1))
    with torch.no_grad():
        states = model(batch.inputs, noise=False).states
    starts = sample_states(states, args.starts, noise_std=0.05, generator=torch.Generator().manual_seed(0))
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs ({cpu_name()}), "
          f"torch {torch.__version__}, python {sys.version.split()[0]}, "
          f"1-min load average {os.getloadavg()[0]:.2f}; {args.starts} starts, N={model.config.n_units}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        times, result = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = FixedPointFinder(model).fit(torch.zeros(3), starts)
            times.append(time.perf_counter() - t0)
        s = result.summary()
        stages = ", ".join(f"{k} {v:.2f}" for k, v in result.timings_.items())
        stable = result.stable_
        saddles = (~stable).sum()
        print(f"threads={threads}: best {min(times):.2f} s, median {statistics.median(times):.2f} s "
              f"over {args.repeats} runs; {s['n_points']} points: {s['n_stable']} stable, {saddles} unstable "
              f"(unstable directions: {s['conditions'][0]['unstable_directions']}); "
              f"q max {result.q_.max():.1e}, median {np.median(result.q_):.1e}; "
              f"{s['n_converged']} of {s['n_starts']} starts converged, {s['n_descent_iters']} descent iterations; "
              f"stages of the last run (s): {stages}")
        print(f"  {s['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
