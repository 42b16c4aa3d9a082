"""From a weight matrix to an undirected graph: :func:`adjacency` (see :mod:`neurornn.analysis.graph`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._validation import check_choice, check_finite, check_fraction, check_nonnegative

__all__ = ["SYMMETRIZE", "adjacency", "as_matrix"]

SYMMETRIZE = ("max", "min", "mean")


def as_matrix(name: str, w: Any) -> np.ndarray:
    """``w`` as a finite float ndarray of shape (n, n); ``name`` goes in the error."""
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().double().numpy()
    w = np.asarray(w, dtype=float)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"{name} must be a square matrix (n_units, n_units), got shape {w.shape}")
    check_finite(name, w)
    return w


def adjacency(
    w,
    keep_fraction: float | None = 0.1,
    threshold: float | None = None,
    binarize: bool = True,
    symmetrize: str = "max",
) -> np.ndarray:
    """Undirected graph of the strongest connections of ``W``.

    Parameters
    ----------
    w : array-like or Tensor of shape (n_units, n_units)
    keep_fraction : float in (0, 1], optional
        Keep the entries of ``|W|`` strictly above the ``1 - keep_fraction``
        quantile of the off-diagonal entries (seRNN: 0.1). Ignored if ``threshold``.
    threshold : float >= 0, optional
        Keep the entries with ``|W| > threshold``.
    binarize : bool
        1 for a kept connection (True) or its ``|W|`` (False).
    symmetrize : {"max", "min", "mean"}
        How the two directions ``i -> j``, ``j -> i`` make one undirected edge (see
        :mod:`neurornn.analysis.graph`).

    Returns
    -------
    ndarray of shape (n_units, n_units), symmetric, zero diagonal.
    """
    a = np.abs(as_matrix("w", w))
    n = a.shape[0]
    check_choice("symmetrize", symmetrize, SYMMETRIZE)
    off = ~np.eye(n, dtype=bool)
    if threshold is not None:
        check_nonnegative("threshold", threshold)
        kept = a > threshold
    else:
        if keep_fraction is None:
            raise ValueError("give keep_fraction or threshold, got neither")
        check_fraction("keep_fraction", keep_fraction)
        if keep_fraction == 0:
            raise ValueError("keep_fraction must be > 0, got 0")
        kept = a > np.quantile(a[off], 1.0 - keep_fraction) if keep_fraction < 1 else a > 0
    kept &= off
    vals = np.where(kept, 1.0 if binarize else a, 0.0)
    if symmetrize == "max":
        out = np.maximum(vals, vals.T)
    elif symmetrize == "min":
        out = np.minimum(vals, vals.T)
    else:
        out = (vals + vals.T) / 2.0
        if binarize:
            out = (out > 0).astype(float)
    return out
