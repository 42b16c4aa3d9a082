"""Memory the analyses of the pipeline need, against what the machine has (``/proc/meminfo``).

A network of ``n_units`` holds its weights a few times over (``n_units**2`` x 4 bytes
x :data:`WEIGHT_COPIES`); the analysis batch's activity is kept as float32
trajectories, float64 states and rates and the PCA's float64 copies
(``n_trials x n_steps x n_units`` x 4 bytes x :data:`ACTIVITY_COPIES`). The pipeline
refuses, naming the figure and what to lower, before it allocates either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..runs import read_config_file
from ._options import AnalysisOptions
from ._registry import ANALYSES, Analysis

__all__ = ["ACTIVITY_COPIES", "WEIGHT_COPIES", "available_memory_bytes", "check_memory", "estimate_memory"]

_BYTES = 4  # float32
ACTIVITY_COPIES = 10  # float32 trajectories + float64 states and rates + the PCA's float64 copies
WEIGHT_COPIES = 4  # the parameters, the effective weights and the float64 copy of the fixed-point search


def available_memory_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes, or None where it is unknown."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            parts = line.split()
            try:
                return int(parts[1]) * (1024 if len(parts) < 3 or parts[2].lower() == "kb" else 1)
            except (IndexError, ValueError):
                return None
    return None


def activity_memory(options: AnalysisOptions, n_units: int, n_steps: int) -> tuple[float, str | None]:
    """The analysis batch's activity: ``n_trials x n_steps x n_units`` x 4 bytes x ACTIVITY_COPIES."""
    return options.n_trials * n_steps * n_units * _BYTES * ACTIVITY_COPIES, "n_trials"


def analysis_memory(analysis: Analysis) -> Callable[[AnalysisOptions, int, int], tuple[float, str | None]] | None:
    """The memory function of ``analysis``: its own, else the analysis batch's when it needs one."""
    if analysis.memory is not None:
        return analysis.memory
    return activity_memory if analysis.needs else None


def estimate_memory(analyses: Iterable[str], options: AnalysisOptions | Mapping | None, n_units: int,
                    n_steps: int) -> dict[str, Any]:
    """Bytes the analyses need for a network of ``n_units`` on trials of ``n_steps`` steps.

    ``weights``: ``n_units**2`` x 4 bytes x 4 copies; ``batch``: the largest batch of any
    analysis (the analysis batch: ``n_trials x n_steps x n_units`` x 4 bytes x 10 copies),
    with the analysis and the option that sets it; ``total``: their sum.
    """
    options = AnalysisOptions.of(options)
    weights = float(n_units) ** 2 * _BYTES * WEIGHT_COPIES
    batch, largest, option = 0.0, None, None
    for name in analyses:
        memory = analysis_memory(ANALYSES[name])
        if memory is not None:
            need, lower = memory(options, n_units, n_steps)
            if need > batch:
                batch, largest, option = float(need), name, lower
    return {"weights": weights, "batch": batch, "analysis": largest, "option": option, "total": weights + batch}


def check_memory(estimate: Mapping[str, Any], n_units: int, n_steps: int | None, options: AnalysisOptions) -> None:
    """Raise ``ValueError`` (the figure in GB, what to lower) when ``estimate`` exceeds the available memory.

    ``n_steps`` None: only the weights were estimated. No check where the available memory is unknown.
    """
    available = available_memory_bytes()
    if available is None or estimate["total"] <= available:
        return

    def gb(n: float) -> str:
        return f"{n / 1e9:.3g} GB"

    if estimate["weights"] > available or n_steps is None:
        raise ValueError(
            f"analysing a network of n_units={n_units} needs about {gb(estimate['weights'])} for its weights "
            f"alone ({n_units}^2 x 4 bytes x {WEIGHT_COPIES} copies) but {gb(available)} of memory is "
            "available; analyse it on a machine with more memory")
    lower = estimate["option"]
    what = (f"lower {options.label(lower)} or " if lower else "") + f"leave out the {estimate['analysis']} analysis"
    raise ValueError(
        f"the analyses need about {gb(estimate['total'])} ({estimate['analysis']}: {gb(estimate['batch'])} "
        f"for trials of {n_steps} steps x {n_units} units; the weights {gb(estimate['weights'])}) but "
        f"{gb(available)} of memory is available; {what}")


def config_units(path: Path) -> int | None:
    """``model.n_units`` of a run folder's config.yaml as it is now, or None (then load_run says what is wrong)."""
    try:
        n = read_config_file(path / "config.yaml")["model"]["n_units"]
    except Exception:  # noqa: BLE001 (any problem is load_run's to report)
        return None
    return n if isinstance(n, int) and not isinstance(n, bool) else None
