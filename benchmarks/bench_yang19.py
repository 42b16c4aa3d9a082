"""Train a multitask network on the 20 rules of Yang et al. (2019) and report its task-variance clusters.

Trains ``neurornn.train`` on ``yang19`` (all rules mixed per trial), then prints the per-rule
accuracy on fresh trials and runs the ``task_variance`` analysis (clusters chosen by silhouette,
the lesion table, the unit x task map ``RUN/figures/task_variance.png``). The paper's result to look
for: units form clusters that serve groups of tasks, and lesioning a cluster hurts those tasks most
(a well-trained network needs ~ 10^5 steps of batch 64 at 256 units; the defaults here are short).

    python benchmarks/bench_yang19.py --out runs/yang19                   # short (minutes on 2 cores)
    python benchmarks/bench_yang19.py --steps 40000 --units 256 --out runs/yang19_long
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import neurornn as nr
from neurornn.analysis import analyze_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--eval-trials", type=int, default=128, help="trials per rule for scores and task variance")
    parser.add_argument("--out", default="runs/yang19_bench")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    task = nr.tasks.make("yang19")
    cfg = nr.RNNConfig(n_inputs=task.n_inputs, n_units=args.units, n_outputs=task.n_outputs, dt_ms=task.dt_ms,
                       tau_ms=100.0, activation="relu", w_rec_init="orthogonal", sigma_rec=0.05, seed=args.seed)
    train_cfg = nr.TrainConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                               eval_every=max(1, args.steps // 10), eval_batch_size=512, acc_criterion=False,
                               progress=False, seed=args.seed, device=args.device)
    t0 = time.perf_counter()
    run = nr.train(nr.RNN(cfg), task, train_cfg, out=args.out)
    train_s = time.perf_counter() - t0
    model = run.model.eval()
    per_rule = {}
    for i, rule in enumerate(task.rules):
        batch = task.rule_batch(rule, args.eval_trials, torch.Generator().manual_seed(1000 + i))
        with torch.no_grad():
            out = model(batch.inputs.to(model.alpha.device), noise=False).outputs
        per_rule[rule] = round(task.scores(out, batch.to(out.device))["accuracy"], 3)
    t0 = time.perf_counter()
    result = analyze_run(args.out, ["task_variance"], options={"n_trials": args.eval_trials}, overwrite=True,
                         device=args.device)["task_variance"]
    tv = result.value
    lesion = tv["lesion"]
    worst = {f"cluster {c}": [lesion["tasks"][j] for j in sorted(range(len(row)), key=lambda j: -row[j])[:3]]
             for c, row in enumerate(lesion["drop"])}
    print(json.dumps({"steps": args.steps, "units": args.units, "train_seconds": round(train_s, 1),
                      "analysis_seconds": round(time.perf_counter() - t0, 1),
                      "mean_accuracy": round(sum(per_rule.values()) / len(per_rule), 3), "per_rule": per_rule,
                      "n_active": tv["n_active"], "n_clusters": tv["n_clusters"],
                      "cluster_sizes": [len(c) for c in tv["clusters"]],
                      "most_hurt_by_lesion": worst, "figure": f"{args.out}/figures/task_variance.png"}, indent=1))


if __name__ == "__main__":
    main()
