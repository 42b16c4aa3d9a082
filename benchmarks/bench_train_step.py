"""Training-step benchmark: the eager reference loop against the fused loop, side by side.

One training step = forward (input GEMM, time loop, readout), masked-free MSE loss,
backward, Adam update, as ``neurornn.train`` does it. Eager and fused are timed
interleaved (eager, fused, eager, fused, ...) in the same process and reported as
medians over repeats, because the machine is shared and noisy: compare the ratios.

FLOP floor of one training step (float32, multiply-add = 2 FLOPs), written out:

    recurrent   forward   T GEMMs (B x N) @ (N x N)            2 B T N^2
                backward  T GEMMs for the adjoint (B x N)@(N x N) 2 B T N^2
                          1 GEMM for dW_rec over all steps     2 B T N^2
    input       forward   (B T x I) @ (I x N)                  2 B T N I
                backward  dW_in (and d inputs are not needed)  2 B T N I
    readout     forward   (B T x N) @ (N x O)                  2 B T N O
                backward  dW_out and d rates                   4 B T N O
    total       6 B T N^2 + 4 B T N I + 6 B T N O

    floor_ms = total / (GEMM rate measured in this run on a large square float32 GEMM)

Peak memory of a training step: each variant runs in its own subprocess, which
resets its peak RSS (``/proc/self/clear_refs``) after building the model and the
batch and reports the peak RSS of two training steps minus the RSS before them
(``ru_maxrss`` delta where that is not possible).

Usage::

    python benchmarks/bench_train_step.py                 # print the tables
    python benchmarks/bench_train_step.py --write         # and append them to benchmarks/RESULTS.md
    python benchmarks/bench_train_step.py --quick         # small sizes, few repeats
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import neurornn as nr
from neurornn.models import Backend, backend_names, register_backend
from neurornn.models.ensemble import RNNEnsemble

SIZES = [(64, 16, 100), (128, 64, 200), (256, 64, 500), (512, 128, 300)]
N_INPUTS, N_OUTPUTS = 3, 2
RESULTS = Path(__file__).with_name("RESULTS.md")


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "load_1min": round(load, 2),
    }


def gemm_gflops(n: int = 2048, repeats: int = 7) -> float:
    """Rate of a large square float32 GEMM (median of repeats), GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    torch.mm(a, b, out=out)
    times = []
    for _ in range(repeats):
        t = CLOCK()
        torch.mm(a, b, out=out)
        times.append(CLOCK() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


GEMM_N = 2048
GEMM_FLOPS = 2 * GEMM_N**3


def make_gemm():
    """A closure running one large square float32 GEMM (the FLOP floor's rate)."""
    a, b = torch.randn(GEMM_N, GEMM_N), torch.randn(GEMM_N, GEMM_N)
    out = torch.empty(GEMM_N, GEMM_N)
    return lambda: torch.mm(a, b, out=out)


def step_flops(n: int, batch: int, time_steps: int, n_in: int = N_INPUTS, n_out: int = N_OUTPUTS) -> float:
    return 6 * batch * time_steps * n * n + 4 * batch * time_steps * n * n_in + 6 * batch * time_steps * n * n_out


def unbind_loop(dynamics, initial_state, drive, w_rec, noise=None):
    """Eager loop over ``drive.unbind(time)``, kept independent of the package: until
    2026-11-25 11:20 UTC ``reference_loop`` indexed ``drive[..., t, :]``, whose backward
    writes a full-size zero tensor per step (O(T^2)); it unbinds too since then."""
    assert noise is None or noise.is_empty
    state = initial_state
    rate = dynamics.rate(state)
    states, rates = [], []
    for drive_t in drive.unbind(-2):
        state, rate = dynamics.step(state, rate, drive_t, w_rec)
        states.append(state)
        rates.append(rate)
    return torch.stack(states, dim=-2), torch.stack(rates, dim=-2)


def make_step(loop: str, n: int, batch: int, time_steps: int, seed: int = 0):
    """A closure running one training step of a fresh network (forward, MSE, backward, Adam).

    ``loop``: "reference" (the package's reference loop), "unbind" (eager, see
    :func:`unbind_loop`) or "fused".
    """
    if loop == "unbind" and "bench_unbind" not in backend_names():
        register_backend(Backend("bench_unbind", unbind_loop, description="the benchmark's eager loop"))
    cfg = nr.RNNConfig(n_inputs=N_INPUTS, n_units=n, n_outputs=N_OUTPUTS,
                       loop="bench_unbind" if loop == "unbind" else loop, seed=seed)
    model = nr.RNN(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(seed)
    inputs = torch.randn(batch, time_steps, N_INPUTS, generator=gen)
    targets = torch.randn(batch, time_steps, N_OUTPUTS, generator=gen)

    def step():
        opt.zero_grad(set_to_none=True)
        outputs = model(inputs).outputs
        loss = ((outputs - targets) ** 2).mean()
        loss.backward()
        opt.step()
        return loss

    return step


def make_ensemble_step(n_nets: int, n: int, batch: int, time_steps: int):
    """One training step of an ensemble of ``n_nets`` networks (shared batch, one loss per network)."""
    configs = [nr.RNNConfig(n_inputs=N_INPUTS, n_units=n, n_outputs=N_OUTPUTS, seed=s) for s in range(n_nets)]
    ens = RNNEnsemble(configs)
    opt = torch.optim.Adam(ens.parameters(), lr=1e-4)  # per-network state: Adam is elementwise
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(batch, time_steps, N_INPUTS, generator=gen)
    targets = torch.randn(batch, time_steps, N_OUTPUTS, generator=gen)

    def step():
        opt.zero_grad(set_to_none=True)
        outputs = ens(inputs).outputs  # (networks, batch, time, outputs)
        loss = ((outputs - targets) ** 2).mean(dim=(1, 2, 3)).sum()  # sum of per-network losses
        loss.backward()
        opt.step()
        return loss

    return step


CLOCK = time.perf_counter  # --cpu-time: time.process_time (robust to other load, with --threads 1)


def time_interleaved(steps: dict, repeats: int, warmup: int = 2) -> dict:
    """Median seconds per call of each closure, measured interleaved."""
    for f in steps.values():
        for _ in range(warmup):
            f()
    times = {k: [] for k in steps}
    for _ in range(repeats):
        for k, f in steps.items():
            t = CLOCK()
            f()
            times[k].append(CLOCK() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def _status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def peak_memory_child(variant: str, n: int, batch: int, time_steps: int) -> None:
    """(subprocess) print the extra peak resident memory (MiB) of two training steps.

    The peak RSS (VmHWM) is reset through /proc/self/clear_refs after the model and
    batch are built, so the figure is the peak during the steps minus the RSS
    before them (it includes the optimiser state and any buffers kept for reuse).
    Falls back to the ``ru_maxrss`` delta where clear_refs is not writable.
    """
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    step = make_step(variant, n, batch, time_steps)
    try:
        Path("/proc/self/clear_refs").write_text("5")
        before = _status_kib("VmRSS")
        step()
        step()
        peak = _status_kib("VmHWM")
        how = "VmHWM"
    except OSError:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        step()
        step()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        how = "ru_maxrss"
    print(json.dumps({"peak_extra_mib": (peak - before) / 1024, "how": how}))


def peak_memory(variant: str, n: int, batch: int, time_steps: int, repeats: int = 3) -> float:
    """Median over ``repeats`` subprocesses (glibc's reuse of freed memory varies between runs)."""
    values = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", variant, str(n), str(batch), str(time_steps)],
            capture_output=True, text=True, check=True,
        )
        values.append(json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_mib"])
    return statistics.median(values)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=9, help="timed repeats per variant (median reported)")
    p.add_argument("--quick", action="store_true", help="two small sizes, 5 repeats, no memory")
    p.add_argument("--write", action="store_true", help="append the results to benchmarks/RESULTS.md")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--ensemble", type=int, default=32, help="ensemble size (0: skip)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process CPU clock instead of the wall clock (use with --threads 1 "
                        "on a machine busy with other work)")
    p.add_argument("--sizes", metavar="N,B,T;...", help="sizes to run, e.g. '512,128,300' (default: all four)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-reference", action="store_true", help="skip the package's reference loop (O(T^2) before 2026-11-25 11:20 UTC)")
    p.add_argument("--memory-child", nargs=4, metavar=("VARIANT", "N", "B", "T"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["BENCH_THREADS"] = str(args.threads)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.process_time
    if args.memory_child:
        v, n, b, t = args.memory_child
        peak_memory_child(v, int(n), int(b), int(t))
        return 0
    sizes = SIZES[:2] if args.quick else SIZES
    if args.sizes:
        sizes = [tuple(int(v) for v in part.split(",")) for part in args.sizes.split(";")]
    repeats = 5 if args.quick else args.repeats
    info = machine_info()
    gflops = gemm_gflops()
    lines = [
        f"### Run of {info['date']}",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), torch {info['torch']} with {info['threads']} threads, "
        f"Python {info['python']}, 1-min load average at start {info['load_1min']}. "
        f"Large float32 GEMM (2048^3), measured in this run: **{gflops:.0f} GFLOP/s**. "
        f"{'Process CPU time' if args.cpu_time else 'Wall time'}, medians of {repeats} interleaved repeats (command: `python benchmarks/bench_train_step.py"
        f"{' '.join([''] + (argv if argv is not None else sys.argv[1:]))}`).",
        "",
        "Columns: `reference` = `reference_loop` as in the package (O(T^2) backward in runs before 11:20 UTC, unbinds since), "
        "`eager` = the same step under autograd looping over `drive.unbind(time)`, `fused` = the fused loop.",
        "",
        "The FLOP floor of each row uses the rate of the same 2048^3 GEMM timed interleaved with "
        "that row's steps (median; column `GEMM GFLOP/s`), so the floor sees the same machine load.",
        "",
        "| N | batch | T | reference ms | eager ms | fused ms | fused vs reference | fused vs eager "
        "| GEMM GFLOP/s | FLOP floor ms | fused / floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    rows = []
    gemm_rates: list[float] = []
    for n, b, t in sizes:
        reps = repeats if n < 256 else max(3, repeats // 3)
        variants = {"eager": make_step("unbind", n, b, t), "fused": make_step("fused", n, b, t)}
        if not args.no_reference:
            variants["reference"] = make_step("reference", n, b, t)
        variants["gemm"] = make_gemm()  # the floor's GEMM rate, measured interleaved with the steps
        med = time_interleaved(variants, reps, warmup=1)
        rate = GEMM_FLOPS / med.pop("gemm")
        gemm_rates.append(rate / 1e9)
        floor = step_flops(n, b, t) / rate
        ref = med.get("reference")
        ref_text = f"{ref * 1e3:.1f}" if ref else "-"
        ref_ratio = f"{ref / med['fused']:.2f}x" if ref else "-"
        row = (f"| {n} | {b} | {t} | {ref_text} | {med['eager'] * 1e3:.1f} | {med['fused'] * 1e3:.1f} | "
               f"{ref_ratio} | {med['eager'] / med['fused']:.2f}x | {rate / 1e9:.0f} | {floor * 1e3:.1f} | "
               f"{med['fused'] / floor:.2f} |")
        rows.append(row)
        print(row, flush=True)
    lines += rows
    if args.ensemble:
        e, (n, b, t) = args.ensemble, (64, 16, 100)
        med = time_interleaved({"single_fused": make_step("fused", n, b, t),
                                "single_eager": make_step("unbind", n, b, t),
                                "ensemble": make_ensemble_step(e, n, b, t)}, repeats)
        per_net = med["ensemble"] / e
        ens_lines = [
            "",
            f"Ensemble of {e} networks (N={n}, batch {b}, T={t}), one training step of all networks: "
            f"{med['ensemble'] * 1e3:.1f} ms, i.e. **{per_net * 1e3:.2f} ms per network** = "
            f"**{per_net / med['single_fused']:.3f}x** a single fused network ({med['single_fused'] * 1e3:.2f} ms) "
            f"and {per_net / med['single_eager']:.3f}x a single eager one ({med['single_eager'] * 1e3:.2f} ms).",
        ]
        print("\n".join(ens_lines), flush=True)
        lines += ens_lines
    if not args.quick and not args.no_memory:
        mem_lines = ["", "Extra peak resident memory of two training steps (peak RSS during the steps minus the "
                     "RSS before them, VmHWM reset through /proc/self/clear_refs; median of 3 subprocesses per variant, "
                     "1 for the reference loop):", "", "| N | batch | T | reference MiB | eager MiB | fused MiB |", "|---|---|---|---|---|---|"]
        print("\n".join(mem_lines), flush=True)
        for n, b, t in sizes:
            ref = peak_memory("reference", n, b, t, repeats=1) if not args.no_reference else float("nan")
            eager, fused = peak_memory("unbind", n, b, t), peak_memory("fused", n, b, t)
            mem_lines.append(f"| {n} | {b} | {t} | {ref:.1f} | {eager:.1f} | {fused:.1f} |")
            print(mem_lines[-1], flush=True)
        lines += mem_lines
    try:
        load_end = round(os.getloadavg()[0], 2)
    except OSError:
        load_end = float("nan")
    lines += ["", f"1-min load average at the end of the run: {load_end} (2 means both cores busy: "
              "other processes shared the machine during the run)."]
    print(lines[-1], flush=True)
    if args.write:
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        marker = "## Training step (speed engineer)"
        section = "\n".join(lines) + "\n"
        if marker in text:
            head, tail = text.split(marker, 1)
            text = head + marker + "\n\n" + section + tail  # newest first, old figures kept below
        else:
            text = text.rstrip("\n") + "\n\n" + marker + "\n\n" + section
        RESULTS.write_text(text)
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
