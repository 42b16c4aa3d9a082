"""Benchmark: fixed points of a trained 3-bit flip-flop network (N=128) from 1024 starts.

Trains the network first (3-bit flip-flop, 128 tanh units, Adam lr 1e-3, 1500
steps, seed 0; not timed), or loads a run folder given with ``--run``, then
times ``FixedPointFinder(model).fit(zeros, starts)`` with 1024 starting states
sampled from 128 trials (+ noise) ``--repeats`` times for each torch thread
count in ``--threads``, and prints the best and median wall time with the
counts found. Other people's jobs on the same cores disturb single runs: read
the best and the median, not one run.

    .venv/bin/python benchmarks/bench_fixed_points.py [--run RUN] [--repeats 5] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

import neurornn as nr
from neurornn.analysis import FixedPointFinder, sample_states
from neurornn.training import TrainConfig, train


def trained_model(run: str | None) -> nr.RNN:
    if run:
        return nr.load_run(run).model
    task = nr.tasks.make("flip_flop")
    cfg = nr.RNNConfig(n_inputs=3, n_units=128, n_outputs=3, dt_ms=task.dt_ms, tau_ms=20.0,
                       activation="tanh", w_rec_gain=0.9, seed=0)
    t0 = time.perf_counter()
    result = train(nr.RNN(cfg), task, TrainConfig(steps=1500, batch_size=64, learning_rate=1e-3,
                                                  acc_criterion=False, progress=False, seed=0), out=None)
    print(f"trained flip_flop N=128 in {time.perf_counter() - t0:.1f} s, "
          f"accuracy {result.summary.get('final_accuracy')}")
    return result.model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--starts", type=int, default=1024)
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    model = trained_model(args.run)
    task = nr.tasks.make("flip_flop")
    batch = task.batch(128, torch.Generator().manual_seed(1))
    with torch.no_grad():
        states = model(batch.inputs, noise=False).states
    starts = sample_states(states, args.starts, noise_std=0.05, generator=torch.Generator().manual_seed(0))
    print(f"nproc={os.cpu_count()} torch={torch.__version__} python={sys.version.split()[0]} "
          f"loadavg={os.getloadavg()[0]:.2f}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        times, result = [], None
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = FixedPointFinder(model).fit(torch.zeros(3), starts)
            times.append(time.perf_counter() - t0)
        s = result.summary()
        stages = ", ".join(f"{k} {v:.2f}" for k, v in result.timings_.items())
        print(f"threads={threads}: best {min(times):.2f} s, median {statistics.median(times):.2f} s "
              f"over {args.repeats} runs; {s['n_points']} points ({s['n_stable']} stable), "
              f"q max {max(result.q_):.1e}; last run stages: {stages}")
        print(f"  {s['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
