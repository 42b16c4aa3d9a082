"""``report.html``: one self-contained page about a run.

The page shows the key numbers (``summary.json``), the training curves
(``metrics.csv``), every figure in ``figures/`` and ``analysis/`` (embedded as
base64 PNG, so the file can be mailed or moved alone), every JSON summary in
``analysis/`` (so analyses written by other tools appear without changing this
code: one section per file, its ``message`` entries as text, its numbers as a
table) and the run's ``config.yaml``.

With ``figures=False`` nothing is drawn and matplotlib is never imported: the
training curves become a small inline SVG written from ``metrics.csv`` (PNG files
already in the folder are still embedded). That is what training without figures
uses, and it is safe to call from several threads at once.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._files import write_text
from ..plotting import drawing_lock, new_figure, tight_layout
from ._svg import training_curves_svg

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure

__all__ = ["write_report", "render_report"]

# Figures shown first, in this order (by file stem prefix); the rest follow alphabetically.
_FIGURE_ORDER = ("training_curves", "example_trials", "trials", "psychometric", "activity",
                 "pca", "fixed_points")
# Sections of the figures (by file stem prefix); other figures go under "Other figures".
_FIGURE_SECTIONS = (("Training", ("training_curves", "example_trials")),
                    ("Performance", ("trials", "psychometric")),
                    ("Activity and PCA", ("activity", "pca")),
                    ("Fixed points", ("fixed_points",)))
_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1100px;
margin:1.5em auto;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
h3{margin-bottom:.3em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}
th,td{border:1px solid #d0d0d0;padding:3px 9px;text-align:left;vertical-align:top}
th{background:#f3f3f3;font-weight:600}
.keys{display:flex;flex-wrap:wrap;gap:.6em;margin:.8em 0}
.key{background:#f5f8fc;border:1px solid #d8e2ef;border-radius:6px;padding:.45em .8em;min-width:8em}
.key .v{font-size:1.3em;font-weight:600}.key .k{font-size:.8em;color:#555}
.msg{background:#fff8e6;border-left:4px solid #e0b040;padding:.5em .8em;margin:.5em 0}
figure{margin:1em 0;display:inline-block;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #eee}figcaption{font-size:.85em;color:#555}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.85em}
.muted{color:#777}
"""


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "nan"
        return f"{value:.4g}"
    return str(value)


def _png_data(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with drawing_lock():
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _read_metrics(path: Path) -> dict[str, list[float]]:
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    cols: dict[str, list[float]] = {}
    for row in rows:
        for k, v in row.items():
            try:
                cols.setdefault(k, []).append(float(v))
            except (TypeError, ValueError):
                cols.setdefault(k, []).append(float("nan"))
    return cols


def _training_figure(metrics: dict[str, list[float]]) -> Figure | None:
    if "step" not in metrics:
        return None
    loss_cols = [c for c in ("loss", "eval_loss") if c in metrics]
    acc_cols = [c for c in ("accuracy", "trial_accuracy") if c in metrics]
    if not loss_cols and not acc_cols:
        return None
    fig = new_figure(9, 3.2)
    axes = fig.subplots(1, 2)
    for c in loss_cols:
        axes[0].plot(metrics["step"], metrics[c], label=c)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_title("loss")
    for c in acc_cols:
        axes[1].plot(metrics["step"], metrics[c], label=c)
    axes[1].set_xlabel("step")
    axes[1].set_title("accuracy")
    for ax in axes:
        ax.legend(fontsize=8)
    tight_layout(fig)
    return fig


def _flatten(data: Any, prefix: str = "", out: list | None = None, depth: int = 0) -> list[tuple[str, Any]]:
    """Scalars of a JSON document as (dotted.key, value); long lists are summarised."""
    out = [] if out is None else out
    if isinstance(data, dict):
        for k, v in data.items():
            if k == "message":
                continue
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out, depth + 1)
    elif isinstance(data, list):
        if all(not isinstance(v, (dict, list)) for v in data):
            shown = ", ".join(_fmt(v) for v in data[:8])
            out.append((prefix, f"[{shown}{', ...' if len(data) > 8 else ''}] ({len(data)})"))
        else:
            for i, v in enumerate(data[:6]):
                _flatten(v, f"{prefix}[{i}]", out, depth + 1)
            if len(data) > 6:
                out.append((prefix, f"... {len(data)} entries"))
    else:
        out.append((prefix, data))
    return out


def _messages(data: Any) -> list[str]:
    found: list[str] = []
    if isinstance(data, dict):
        if isinstance(data.get("message"), str):
            found.append(data["message"])
            return found  # the top-level message already sums up the nested ones
        for v in data.values():
            found += _messages(v)
    elif isinstance(data, list):
        for v in data:
            found += _messages(v)
    return found


def _figure_section(path: Path) -> str:
    for title, prefixes in _FIGURE_SECTIONS:
        if path.stem.startswith(prefixes):
            return title
    return "Other figures"


def _figure_key(path: Path) -> tuple:
    stem = path.stem
    for i, prefix in enumerate(_FIGURE_ORDER):
        if stem.startswith(prefix):
            return (i, stem)
    return (len(_FIGURE_ORDER), stem)


def _check_figures(figures: Any) -> bool:
    if not isinstance(figures, bool):
        raise TypeError(f"figures must be True or False, got {figures!r}")
    return figures


def _training_curves(metrics: dict[str, list[float]], figures: bool) -> str | None:
    """The report's training-curve block: a PNG drawn by matplotlib, or hand-written SVG."""
    caption = "<figcaption>training curves (metrics.csv)</figcaption></figure>"
    if not figures:
        svg = training_curves_svg(metrics)
        return None if svg is None else f"<figure>{svg}{caption}"
    fig = _training_figure(metrics)
    if fig is None:
        return None
    return f"<figure><img src='{_png_data(_figure_png(fig))}' alt='training curves'>{caption}"


def render_report(path: str | os.PathLike, *, figures: bool = True) -> str:
    """The HTML text of a run folder's report (see :func:`write_report`)."""
    _check_figures(figures)
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"run folder {str(path)!r} does not exist")
    summary: dict = {}
    if (path / "summary.json").is_file():
        summary = json.loads((path / "summary.json").read_text())
    config_text = (path / "config.yaml").read_text() if (path / "config.yaml").is_file() else ""
    parts: list[str] = []
    title = f"neurornn run: {summary.get('task', path.name)}"
    parts.append(f"<h1>{_esc(title)}</h1><p class='muted'>{_esc(path.resolve())}</p>")

    # Key numbers.
    keys = [(k, summary[k]) for k in ("final_accuracy", "heldout_accuracy", "accuracy_ceiling", "final_loss",
                                      "steps", "wall_seconds", "stopped_because", "seed") if k in summary]
    analysis_dir = path / "analysis"
    analysis_docs: list[tuple[Path, Any]] = []
    if analysis_dir.is_dir():
        for f in sorted(analysis_dir.glob("*.json")):
            try:
                analysis_docs.append((f, json.loads(f.read_text())))
            except (OSError, ValueError) as err:
                analysis_docs.append((f, {"message": f"could not read {f.name}: {err}"}))
    for f, doc in analysis_docs:
        if isinstance(doc, dict):
            for k in ("score", "accuracy", "n_points", "n_stable"):
                if isinstance(doc.get(k), (int, float)):
                    keys.append((f"{f.stem}: {k}", doc[k]))
    if keys:
        cards = "".join(f"<div class='key'><div class='v'>{_esc(_fmt(v))}</div><div class='k'>{_esc(k)}</div></div>"
                        for k, v in keys)
        parts.append(f"<h2>Key numbers</h2><div class='keys'>{cards}</div>")
    messages = [m for _, doc in analysis_docs for m in _messages(doc)]
    for m in messages:
        parts.append(f"<div class='msg'>{_esc(m)}</div>")

    # Summary table.
    if summary:
        rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(_fmt(v))}</td></tr>" for k, v in _flatten(summary))
        parts.append(f"<h2>Summary</h2><table>{rows}</table>")

    # Figures: training curves from metrics.csv when figures/ has none, then every PNG.
    pngs: list[Path] = []
    for folder in ("figures", "analysis"):
        if (path / folder).is_dir():
            pngs += sorted((path / folder).glob("*.png"))
    pngs.sort(key=_figure_key)
    sections: dict[str, list[str]] = {}
    if not any(f.stem.startswith("training_curves") for f in pngs):
        block = _training_curves(_read_metrics(path / "metrics.csv"), figures)
        if block is not None:
            sections.setdefault("Training", []).append(block)
    for f in pngs:
        rel = f.relative_to(path).as_posix()
        sections.setdefault(_figure_section(f), []).append(
            f"<figure><img src='{_png_data(f.read_bytes())}' alt='{_esc(rel)}'>"
            f"<figcaption>{_esc(rel)}</figcaption></figure>")
    order = [t for t, _ in _FIGURE_SECTIONS] + ["Other figures"]
    blocks = [f"<h3>{_esc(t)}</h3>" + "".join(sections[t]) for t in order if t in sections]
    parts.append("<h2>Figures</h2>" + ("".join(blocks) or "<p class='muted'>none</p>"))

    # Every analysis JSON, as a table of its numbers.
    if analysis_docs:
        parts.append("<h2>Analyses</h2>")
        for f, doc in analysis_docs:
            rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(_fmt(v))}</td></tr>" for k, v in _flatten(doc)[:200])
            parts.append(f"<h3>{_esc(f.stem.replace('_', ' '))} <span class='muted'>"
                         f"(analysis/{_esc(f.name)})</span></h3><table>{rows}</table>")

    parts.append(f"<h2>Configuration (config.yaml)</h2><pre>{_esc(config_text)}</pre>")
    body = "\n".join(parts)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


def write_report(path: str | os.PathLike, *, figures: bool = True) -> Path:
    """Write ``RUN/report.html`` from what the run folder holds.

    The report is a view of the folder (it holds no result of its own), so it
    is rebuilt every time, replacing an older ``report.html``.

    Parameters
    ----------
    path : path of the run folder
    figures : bool
        Draw the training curves with matplotlib (PNG) when ``figures/`` has none.
        False: never import matplotlib; the curves are a hand-written inline SVG
        (about 0.01 s instead of the seconds matplotlib takes to start).

    Returns
    -------
    Path of ``report.html``.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a path, got {type(path).__name__}")
    return write_text(Path(path) / "report.html", render_report(path, figures=figures))
