"""Neurons placed in space: coordinates and distance matrices.

A network's units get positions from its :class:`~neurornn.RNNConfig`:

- ``coordinates`` given: one row ``(x, y, z)`` (any dimension) per unit;
- ``grid_shape=(nx, ny, nz)`` given: a regular grid with unit spacing;
- neither: a default 3D grid as close to a cube as the number of units allows
  (``(5, 5, 4)`` for 100 units, the spatially embedded RNN of Achterberg,
  Akarca et al. 2023).

Grid units are ordered as ``numpy.meshgrid(arange(nx), arange(ny), arange(nz))``
raveled (the seRNN code's order: ``"xy"`` indexing, so y varies slowest).
Distances are ``pdist(coords, metric) ** distance_power`` (zero diagonal).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform

from .._validation import check_choice, check_int, check_positive
from ..config.model import DISTANCE_METRICS, RNNConfig

__all__ = [
    "default_grid_shape",
    "grid_coordinates",
    "unit_coordinates",
    "distance_matrix",
    "config_distances",
    "DISTANCE_METRICS",
]


def default_grid_shape(n_units: int) -> tuple[int, int, int]:
    """The most cube-like 3D grid ``(nx, ny, nz)``, ``nx >= ny >= nz``, holding ``n_units``.

    Among all factorisations ``nx * ny * nz == n_units`` the one with the smallest
    ``nx - nz`` is chosen (100 -> (5, 5, 4); 64 -> (4, 4, 4); a prime p -> (p, 1, 1)).
    """
    check_int("n_units", n_units, minimum=1)
    best = (n_units, 1, 1)
    for nz in range(1, int(round(n_units ** (1 / 3))) + 2):
        if n_units % nz:
            continue
        rest = n_units // nz
        for ny in range(nz, int(rest**0.5) + 1):
            if rest % ny:
                continue
            nx = rest // ny
            if nx < ny:
                continue
            if nx - nz < best[0] - best[2]:
                best = (nx, ny, nz)
    return best


def grid_coordinates(grid_shape) -> np.ndarray:
    """Coordinates of a regular grid with unit spacing.

    Parameters
    ----------
    grid_shape : sequence of int, e.g. (nx, ny, nz)

    Returns
    -------
    ndarray of shape (n_units, len(grid_shape)), ordered as
    ``numpy.meshgrid(*[arange(s) for s in grid_shape])`` raveled (seRNN order).
    """
    shape = tuple(grid_shape)
    if len(shape) == 0:
        raise ValueError("grid_shape must have at least one dimension, got ()")
    for s in shape:
        check_int("grid_shape entries", s, minimum=1)
    axes = np.meshgrid(*[np.arange(s, dtype=float) for s in shape])
    return np.stack([a.ravel() for a in axes], axis=1)


def unit_coordinates(config: RNNConfig) -> np.ndarray:
    """Positions of a network's units, shape (n_units, dims).

    ``config.coordinates`` if given, else the grid ``config.grid_shape``, else
    :func:`default_grid_shape` of ``n_units``.
    """
    if not isinstance(config, RNNConfig):
        raise TypeError(f"config must be an RNNConfig, got {type(config).__name__}")
    if config.coordinates is not None:
        return np.asarray(config.coordinates, dtype=float)
    shape = config.grid_shape if config.grid_shape is not None else default_grid_shape(config.n_units)
    return grid_coordinates(shape)


def distance_matrix(coordinates, metric: str = "euclidean", power: float = 1.0) -> np.ndarray:
    """Pairwise distances between units raised to a power.

    Parameters
    ----------
    coordinates : array-like of shape (n_units, dims)
    metric : {"euclidean", "cityblock", "chebyshev", "sqeuclidean"}
    power : float > 0

    Returns
    -------
    ndarray of shape (n_units, n_units), symmetric, zero diagonal:
    ``squareform(pdist(coordinates, metric) ** power)``.
    """
    coords = np.asarray(coordinates, dtype=float)
    if coords.ndim != 2 or coords.shape[0] < 1:
        raise ValueError(f"coordinates must have shape (n_units, dims), got {coords.shape}")
    if not np.isfinite(coords).all():
        raise ValueError("coordinates contain NaN or inf")
    check_choice("metric", metric, DISTANCE_METRICS)
    check_positive("power", power)
    if coords.shape[0] == 1:
        return np.zeros((1, 1))
    return squareform(pdist(coords, metric=metric) ** power)


def config_distances(config: RNNConfig) -> np.ndarray:
    """Distance matrix (n_units, n_units) of a network, from its config's space fields."""
    return distance_matrix(unit_coordinates(config), config.distance_metric, config.distance_power)
