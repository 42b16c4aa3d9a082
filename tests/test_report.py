"""report.html: self-contained, picks up any analysis JSON and figure."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from neurornn.analysis import render_report, write_report  # noqa: E402


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.stack, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        elif tag not in ("meta", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (self.stack[-5:], tag)
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _png(path):
    fig = Figure(figsize=(2, 2))
    fig.add_subplot().plot([0, 1], [1, 0])
    fig.savefig(path)


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"task": "flip_flop", "final_accuracy": 0.98, "steps": 300}))
    (tmp_path / "config.yaml").write_text("task:\n  name: flip_flop\nmodel:\n  n_units: 8\ntrain: {}\n")
    (tmp_path / "metrics.csv").write_text("step,loss,accuracy\n0,1.0,0.1\n100,0.5,0.6\n200,0.1,0.97\n")
    (tmp_path / "analysis").mkdir()
    (tmp_path / "figures").mkdir()
    # Written by some other analysis this module knows nothing about:
    (tmp_path / "analysis" / "graph_metrics.json").write_text(json.dumps(
        {"message": "Modularity Q = 0.41 <b>", "modularity": 0.41, "n_modules": 3, "degrees": list(range(20))}))
    _png(tmp_path / "figures" / "graph_modules.png")
    _png(tmp_path / "figures" / "fixed_points.png")
    return tmp_path


def test_report_is_self_contained_and_picks_up_everything(run_dir):
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    page = path.read_text()
    parser = _Collect()
    parser.feed(page)
    assert parser.stack == ["html"] or parser.stack == []  # every tag closed
    srcs = [img["src"] for img in parser.images]
    # Two figures + training curves drawn from metrics.csv, all embedded.
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[1].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    alts = [img["alt"] for img in parser.images]
    assert alts[0] == "training curves"
    assert alts.index("figures/fixed_points.png") < alts.index("figures/graph_modules.png")
    text = " ".join(parser.text)
    assert "Modularity Q = 0.41 <b>" in text  # the message, escaped
    assert "<b>" not in page.replace("&lt;b&gt;", "")
    assert "n_modules" in text and "graph metrics" in text
    assert "flip_flop" in text and "0.98" in text and "n_units: 8" in text


def test_report_uses_the_training_figure_when_there_is_one(run_dir):
    _png(run_dir / "figures" / "training_curves.png")
    page = render_report(run_dir)
    assert "figures/training_curves.png" in page and "training curves (metrics.csv)" not in page


def test_report_is_rebuilt_and_survives_bad_json(run_dir):
    (run_dir / "analysis" / "broken.json").write_text("{not json")
    write_report(run_dir)
    first = (run_dir / "report.html").read_text()
    assert "could not read broken.json" in first
    (run_dir / "analysis" / "broken.json").unlink()
    write_report(run_dir)
    assert "broken" not in (run_dir / "report.html").read_text()


def test_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_report(tmp_path / "nope")
    with pytest.raises(TypeError, match="path must be a path"):
        write_report(3)


def test_report_without_figures_draws_the_curves_as_svg(run_dir):
    page = write_report(run_dir, figures=False).read_text()
    parser = _Collect()
    parser.feed(page)
    assert parser.stack == ["html"] or parser.stack == []  # the SVG's tags are closed too
    # The PNGs already in the folder are still embedded; the training curves are inline SVG, not drawn.
    assert [img["alt"] for img in parser.images] == ["figures/fixed_points.png", "figures/graph_modules.png"]
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "training curves" in svg and "training step" in svg and "loss (log scale)" in svg
    assert svg.count("<polyline") == 2  # loss and accuracy, one series each in this metrics.csv
    assert ">loss<" in svg and ">accuracy<" in svg  # the legend names each line
    assert "training curves (metrics.csv)" in page


def test_svg_curves_skip_what_cannot_be_drawn():
    from neurornn.runs._svg import training_curves_svg

    assert training_curves_svg({}) is None
    assert training_curves_svg({"step": [0.0, 1.0], "grad_norm": [1.0, 2.0]}) is None
    svg = training_curves_svg({"step": [0.0, 1.0, 2.0], "loss": [float("nan"), -1.0, 0.0]})
    assert "no finite values" in svg  # nothing positive to put on a log axis
    one = training_curves_svg({"step": [5.0], "loss": [0.3], "accuracy": [0.5]})
    assert one.count("<circle") == 2


def test_report_shows_the_task_ceiling_and_the_held_out_accuracy(run_dir):
    (run_dir / "summary.json").write_text(json.dumps({"task": "perceptual_decision_making", "final_accuracy": 0.9,
                                                      "heldout_accuracy": 0.873, "accuracy_ceiling": 0.912}))
    text = write_report(run_dir).read_text()
    assert "accuracy_ceiling" in text and "0.912" in text and "heldout_accuracy" in text and "0.873" in text
