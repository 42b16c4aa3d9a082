"""Benchmark: small-worldness of a 100-unit graph against 1000 seeded random null graphs.

Times ``small_worldness(a, n_nulls=1000)`` (the seRNN seed's number of nulls) on an
Erdos-Renyi graph with p = 0.1, median of ``--repeats`` runs, and prints one line.

    .venv/bin/python benchmarks/bench_graph.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import networkx as nx
import torch

from neurornn.analysis import small_worldness


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    a = nx.to_numpy_array(nx.gnp_random_graph(100, 0.1, seed=0))
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = small_worldness(a, n_nulls=1000, seed=0)
        times.append(time.perf_counter() - start)
    print(f"1000 nulls, 100 units, p 0.1: median {statistics.median(times):.2f} s, best {min(times):.2f} s "
          f"({args.repeats} runs); sigma {out['sigma']:.3f}")


if __name__ == "__main__":
    main()
