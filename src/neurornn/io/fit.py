"""Fit a network to the recording in an NWB file (:func:`neurornn.analysis.curbd.fit_recording`)."""

from __future__ import annotations

import os

from ..analysis.curbd import DataFit, fit_recording
from .recording import load_nwb_recording

__all__ = ["fit_nwb"]


def fit_nwb(path: str | os.PathLike, method: str = "force", *, rates: str = "rates", bin_ms: float | None = None,
            regions=None, **fit) -> tuple[DataFit, object]:
    """Load a recording with :func:`load_nwb_recording` and fit it; returns (fit, recording)."""
    recording = load_nwb_recording(path, rates=rates, bin_ms=bin_ms, regions=regions)
    return fit_recording(recording, method, **fit), recording
