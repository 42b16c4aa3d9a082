"""The README's and the docs' Python examples run as written (each file in a fresh folder)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from neurornn.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks(text: str) -> list[str]:
    return BLOCK.findall(text)


def test_every_doc_has_examples_and_no_doc_is_missed():
    assert "docs/training.md" in DOCS and len(DOCS) >= 6
    for doc in DOCS:
        assert python_blocks((ROOT / doc).read_text()), f"{doc} has no Python example"


@pytest.fixture(scope="module")
def flip_flop_run(tmp_path_factory):
    """`neurornn train --task flip_flop --out runs/ff`, which the README and docs/analysis.md load."""
    out = tmp_path_factory.mktemp("ff") / "runs" / "ff"
    assert main(["train", "--task", "flip_flop", "--out", str(out), "--set", "train.progress=false"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS)
def test_doc_examples_run(doc, tmp_path, monkeypatch, request):
    text = (ROOT / doc).read_text()
    monkeypatch.chdir(tmp_path)
    if 'load_run("runs/ff")' in text and 'out="runs/ff"' not in text:
        shutil.copytree(request.getfixturevalue("flip_flop_run"), tmp_path / "runs" / "ff")
    namespace: dict = {}
    for i, block in enumerate(python_blocks(text)):
        code = compile(block, f"{doc} example {i + 1}", "exec")
        exec(code, namespace)  # noqa: S102 (our own documentation)
