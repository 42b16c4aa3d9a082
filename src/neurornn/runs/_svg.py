"""The training curves of ``report.html`` as inline SVG, written by hand (no matplotlib).

Used when the report is written without figures (``write_report(..., figures=False)``):
two panels drawn from ``metrics.csv``, loss on a log scale and accuracy on [0, 1],
with labelled axes and a legend, in a few kilobytes of text and no import of a
plotting library.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

__all__ = ["training_curves_svg"]

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")  # matplotlib's C0-C3, as the PNG figures
_PANEL_W, _PANEL_H = 360.0, 210.0
_LEFT, _TOP, _GAP = 62.0, 30.0, 95.0


def _esc(x: object) -> str:
    return html.escape(str(x), quote=True)


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not hi > lo:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / n
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks, t = [], math.ceil(lo / step) * step
    while t <= hi + 1e-9 * step:
        ticks.append(0.0 if abs(t) < 1e-12 * step else t)
        t += step
    return ticks


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of a log axis spanning 10**lo to 10**hi: decades, else 1-2-5 or 1-9 steps, else the ends."""
    for multiples in ((1,), (1, 2, 5), range(1, 10)):
        ticks = [m * 10.0 ** d for d in range(math.floor(lo), math.ceil(hi) + 1) for m in multiples]
        ticks = [s for s in ticks if lo <= math.log10(s) <= hi]
        if len(ticks) >= 2:
            return ticks
    return [10.0 ** lo, 10.0 ** hi]


def _label(v: float) -> str:
    return f"{v:.4g}"


def _panel(x0: float, steps: Sequence[float], series: dict[str, Sequence[float]], *, log: bool, title: str,
           ylabel: str, ylim: tuple[float, float] | None = None) -> list[str]:
    """One panel at horizontal offset ``x0``: a polyline per series, axes, ticks, a legend."""
    pts = {name: [(s, v) for s, v in zip(steps, ys) if math.isfinite(s) and math.isfinite(v) and (v > 0 or not log)]
           for name, ys in series.items()}
    pts = {k: v for k, v in pts.items() if v}
    out = [f"<text x='{x0 + _PANEL_W / 2:.1f}' y='{_TOP - 10:.1f}' text-anchor='middle' "
           f"font-weight='600'>{_esc(title)}</text>",
           f"<rect x='{x0:.1f}' y='{_TOP:.1f}' width='{_PANEL_W:.1f}' height='{_PANEL_H:.1f}' fill='none' "
           "stroke='#888'/>"]
    if not pts:
        out.append(f"<text x='{x0 + _PANEL_W / 2:.1f}' y='{_TOP + _PANEL_H / 2:.1f}' text-anchor='middle' "
                   "fill='#777'>no finite values</text>")
        return out
    xs = [s for p in pts.values() for s, _ in p]
    ys = [math.log10(v) if log else v for p in pts.values() for _, v in p]
    xlo, xhi = min(xs), max(xs)
    if xhi <= xlo:
        xlo, xhi = xlo - 1, xhi + 1
    ylo, yhi = ylim if ylim is not None else (min(ys), max(ys))
    if yhi <= ylo:
        ylo, yhi = ylo - (0.5 if log else 0.05), yhi + (0.5 if log else 0.05)
    pad = 0.04 * (yhi - ylo) if ylim is None else 0.0
    ylo, yhi = ylo - pad, yhi + pad

    def px(s: float) -> float:
        return x0 + (s - xlo) / (xhi - xlo) * _PANEL_W

    def py(v: float) -> float:
        y = math.log10(v) if log else v
        return _TOP + _PANEL_H - (y - ylo) / (yhi - ylo) * _PANEL_H

    bottom = _TOP + _PANEL_H
    for t in _nice_ticks(xlo, xhi):
        out.append(f"<line x1='{px(t):.1f}' y1='{bottom:.1f}' x2='{px(t):.1f}' y2='{bottom + 4:.1f}' stroke='#888'/>"
                   f"<text x='{px(t):.1f}' y='{bottom + 16:.1f}' text-anchor='middle'>{_esc(_label(t))}</text>")
    if log:
        yticks = _log_ticks(ylo, yhi)
    else:
        yticks = _nice_ticks(ylo, yhi)
    for t in yticks:
        out.append(f"<line x1='{x0 - 4:.1f}' y1='{py(t):.1f}' x2='{x0:.1f}' y2='{py(t):.1f}' stroke='#888'/>"
                   f"<text x='{x0 - 7:.1f}' y='{py(t) + 4:.1f}' text-anchor='end'>{_esc(_label(t))}</text>")
    out.append(f"<text x='{x0 + _PANEL_W / 2:.1f}' y='{bottom + 34:.1f}' text-anchor='middle'>training step</text>")
    out.append(f"<text transform='translate({x0 - 48:.1f},{_TOP + _PANEL_H / 2:.1f}) rotate(-90)' "
               f"text-anchor='middle'>{_esc(ylabel)}</text>")
    for i, (name, p) in enumerate(pts.items()):
        color = _COLORS[i % len(_COLORS)]
        coords = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in p)
        out.append(f"<polyline points='{coords}' fill='none' stroke='{color}' stroke-width='1.6'/>")
        if len(p) <= 30:
            out += [f"<circle cx='{px(s):.1f}' cy='{py(v):.1f}' r='2.2' fill='{color}'/>" for s, v in p]
        ly = _TOP + 14 + 16 * i  # legend, top right inside the panel
        lx = x0 + _PANEL_W - 118
        out.append(f"<line x1='{lx:.1f}' y1='{ly - 4:.1f}' x2='{lx + 18:.1f}' y2='{ly - 4:.1f}' stroke='{color}' "
                   f"stroke-width='2'/><text x='{lx + 23:.1f}' y='{ly:.1f}'>{_esc(name)}</text>")
    return out


def training_curves_svg(metrics: dict[str, list[float]]) -> str | None:
    """Loss (log scale) and accuracy against training step, as an ``<svg>`` element.

    Parameters
    ----------
    metrics : dict of column name -> list of float
        The columns of ``metrics.csv`` (``step`` and any of ``loss``, ``eval_loss``,
        ``accuracy``, ``trial_accuracy``).

    Returns
    -------
    str, or None when ``metrics`` has no step column or none of those columns.
    """
    if "step" not in metrics:
        return None
    loss = {c: metrics[c] for c in ("loss", "eval_loss") if c in metrics}
    acc = {c: metrics[c] for c in ("accuracy", "trial_accuracy") if c in metrics}
    if not loss and not acc:
        return None
    steps = metrics["step"]
    parts = []
    x0 = _LEFT
    if loss:
        parts += _panel(x0, steps, loss, log=True, title="loss", ylabel="loss (log scale)")
        x0 += _PANEL_W + _GAP
    if acc:
        parts += _panel(x0, steps, acc, log=False, title="accuracy", ylabel="accuracy", ylim=(-0.02, 1.02))
        x0 += _PANEL_W + _GAP
    width, height = x0 - _GAP + 20, _TOP + _PANEL_H + 46
    return (f"<svg xmlns='http://www.w3.org/2000/svg' role='img' aria-label='training curves' "
            f"width='{width:.0f}' height='{height:.0f}' viewBox='0 0 {width:.0f} {height:.0f}' "
            "font-family='sans-serif' font-size='11'><title>training curves</title>"
            + "".join(parts) + "</svg>")
