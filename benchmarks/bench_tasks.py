"""Benchmark: every registered task trained to its criterion with its own defaults.

Seed 0, the settings `neurornn train --task NAME` uses (plus NeuroGym's perceptual decision
making at dt 100 with 32 units). Prints one Markdown table row per task: steps to criterion,
accuracy at the stop, why it stopped, wall seconds.

    .venv/bin/python benchmarks/bench_tasks.py
"""

from __future__ import annotations

import time

import neurornn as nr
from neurornn.cli.train import build_configs

EXTRA = {"neurogym:PerceptualDecisionMaking-v0": ["task.dt_ms=100", "model.n_units=32",
                                                  "train.learning_rate=0.01"]}


def main() -> None:
    print("| task | steps | accuracy | stopped because | wall s |\n|---|---|---|---|---|")
    total = time.perf_counter()
    for name in nr.tasks.names() + list(EXTRA):
        sets = ["train.progress=false", "train.seed=0", "model.seed=0", *EXTRA.get(name, [])]
        task, model_config, train_config = build_configs(name, None, sets)
        start = time.perf_counter()
        run = nr.train(nr.RNN(model_config), task, train_config)
        s = run.summary
        print(f"| `{name}` | {s['steps']} | {s['final_accuracy']:.3f} | {s['stopped_because']} | "
              f"{time.perf_counter() - start:.1f} |", flush=True)
    print(f"\nall tasks: {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
