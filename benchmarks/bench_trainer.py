"""Seconds per training step of the whole loop (``train`` and ``train_ensemble``), not only the model.

Runs ``neurornn.train`` on perceptual decision making (the default task) and
``neurornn.train_ensemble`` of several networks for a fixed number of steps with
no run folder, and prints the median seconds per step over repeats (the first
run of each is a warm-up). Uses only the public API, so the same script times
an older tree: ``PYTHONPATH=OLD/src python benchmarks/bench_trainer.py``; run the
two trees interleaved (old, new, old, new) to compare them on a shared machine.

    python benchmarks/bench_trainer.py                 # prints one JSON line
    python benchmarks/bench_trainer.py --repeats 5 --steps 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import neurornn as nr


def _configs(task, n_units: int, steps: int, seed: int = 0):
    model = nr.RNNConfig(n_inputs=task.n_inputs, n_units=n_units, n_outputs=task.n_outputs, dt_ms=task.dt_ms,
                         sigma_rec=0.05, seed=seed)
    train = nr.TrainConfig(steps=steps, batch_size=32, eval_every=steps, eval_batch_size=64, checkpoint_every=0,
                           history_every=0, acc_criterion=False, progress=False, seed=seed,
                           regularizers=({"kind": "l2_rates", "strength": 1e-3},))
    return model, train


CLOCK = time.perf_counter  # --cpu-time: time.process_time (robust to other load with one thread)


def time_train(task, n_units: int, steps: int) -> float:
    model, train = _configs(task, n_units, steps)
    t0 = CLOCK()
    nr.train(nr.RNN(model), task, train, figures=False)
    return (CLOCK() - t0) / steps


def time_ensemble(task, n_units: int, steps: int, n_nets: int) -> float:
    pairs = [_configs(task, n_units, steps, seed=s) for s in range(n_nets)]
    t0 = CLOCK()
    nr.train_ensemble([m for m, _ in pairs], task, [t for _, t in pairs], figures=False, progress=False)
    return (CLOCK() - t0) / steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--units", type=int, default=64)
    p.add_argument("--ensemble", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cpu-time", action="store_true", help="process CPU time instead of wall time")
    args = p.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    torch.set_num_threads(args.threads)
    task = nr.tasks.make("perceptual_decision_making")
    single = [time_train(task, args.units, args.steps) for _ in range(args.repeats + 1)][1:]
    ens = [time_ensemble(task, args.units, args.steps, args.ensemble) for _ in range(args.repeats + 1)][1:] \
        if args.ensemble else [float("nan")]
    print(json.dumps({"train_ms_per_step": round(1e3 * statistics.median(single), 3),
                      f"train_ensemble_x{args.ensemble}_ms_per_step": round(1e3 * statistics.median(ens), 3),
                      "units": args.units, "steps": args.steps, "repeats": args.repeats, "threads": args.threads,
                      "clock": "cpu" if args.cpu_time else "wall"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
