"""``results.png``: final accuracy and every recorded scalar against the first numeric varied setting,
mean and standard deviation over the other points of each value (e.g. over seeds)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import plotting
from .._files import forget
from .spec import SweepSpec

__all__ = ["write_results_figure", "FIGURE"]

FIGURE = "results.png"


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def write_results_figure(root: Path, spec: SweepSpec, rows: Sequence[dict]) -> Path | None:
    """Draw ``ROOT/results.png`` from the rows of ``results.csv``; ``None`` (and no figure) when no
    varied setting is numeric or no point is done."""
    done = [r for r in rows if r["state"] == "done"]
    x_key = next((k for k in spec.varied if done and all(_number(r[k]) is not None for r in done)
                  and len({_number(r[k]) for r in done}) > 1), None)
    panels = [c for c in ("final_accuracy", *spec.record) if done and all(_number(r[c]) is not None for r in done)]
    if x_key is None or not panels:
        if (root / FIGURE).exists():
            forget(root, [root / FIGURE])  # an older figure no longer matches the table
        return None
    xs = sorted({_number(r[x_key]) for r in done})
    fig = plotting.new_figure(3.2 * len(panels), 3.0)
    for i, column in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        groups = [[_number(r[column]) for r in done if _number(r[x_key]) == x] for x in xs]
        mean = np.array([np.mean(g) for g in groups])
        sd = np.array([np.std(g) for g in groups])
        counts = sorted({len(g) for g in groups})
        ax.errorbar(xs, mean, yerr=sd, marker="o", capsize=3, color="C0",
                    label=f"mean ± sd over {counts[0] if len(counts) == 1 else f'{counts[0]}-{counts[-1]}'} points")
        ax.set_xlabel(x_key)
        ax.set_ylabel(column)
        if i == 0:
            ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{len(done)} of {len(rows)} points done: each value of {x_key}, spread over the others",
                 fontsize=9)
    plotting.tight_layout(fig)
    return plotting.save_figure(fig, root / FIGURE, dpi=110, overwrite=True)
