"""Coordinates and distance matrices of spatially embedded networks."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from neurornn import RNNConfig
from neurornn.models.space import (
    config_distances,
    default_grid_shape,
    distance_matrix,
    grid_coordinates,
    unit_coordinates,
)


def test_default_grid_is_the_sernn_grid():
    assert default_grid_shape(100) == (5, 5, 4)
    assert default_grid_shape(64) == (4, 4, 4)
    assert default_grid_shape(7) == (7, 1, 1)
    for n in (1, 12, 30, 50, 128, 1000):
        nx, ny, nz = default_grid_shape(n)
        assert nx * ny * nz == n and nx >= ny >= nz


def test_grid_order_matches_sernn_meshgrid():
    coords = grid_coordinates((5, 5, 4))
    x, y, z = np.meshgrid(np.arange(5), np.arange(5), np.arange(4))
    np.testing.assert_array_equal(coords, np.stack([x.ravel(), y.ravel(), z.ravel()], 1))
    assert coords.shape == (100, 3)
    assert len({tuple(c) for c in coords}) == 100


@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "chebyshev", "sqeuclidean"])
@pytest.mark.parametrize("power", [1.0, 2.0, 0.5])
def test_distance_matrix_matches_scipy(metric, power):
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(30, 3))
    d = distance_matrix(coords, metric, power)
    np.testing.assert_allclose(d, squareform(pdist(coords, metric=metric) ** power))
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)


def test_config_distances_from_grid_coordinates_and_default():
    cfg = RNNConfig(n_inputs=2, n_units=100, n_outputs=2)
    d = config_distances(cfg)
    ref = squareform(pdist(grid_coordinates((5, 5, 4))))
    np.testing.assert_allclose(d, ref)
    cfg2 = RNNConfig(n_inputs=2, n_units=12, n_outputs=2, grid_shape=(3, 2, 2),
                     distance_metric="cityblock", distance_power=2.0)
    np.testing.assert_allclose(config_distances(cfg2),
                               squareform(pdist(grid_coordinates((3, 2, 2)), "cityblock") ** 2))
    coords = [(0.0, 0.0), (3.0, 4.0), (6.0, 8.0)]
    cfg3 = RNNConfig(n_inputs=1, n_units=3, n_outputs=1, coordinates=coords)
    np.testing.assert_allclose(unit_coordinates(cfg3), np.array(coords))
    np.testing.assert_allclose(config_distances(cfg3)[0], [0.0, 5.0, 10.0])


def test_space_fields_roundtrip_through_config_dict():
    cfg = RNNConfig(n_inputs=1, n_units=12, n_outputs=1, grid_shape=(3, 2, 2), distance_power=2.0)
    again = RNNConfig.from_dict(cfg.to_dict())
    np.testing.assert_allclose(config_distances(again), config_distances(cfg))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(grid_shape=(5, 5, 5)), "grid_shape"),
        (dict(coordinates=[(0.0, 0.0)] * 3), "coordinates"),
        (dict(distance_metric="euclidian"), "distance_metric.*euclidean"),
        (dict(distance_power=0.0), "distance_power"),
        (dict(grid_shape=(2, 2, 1), coordinates=[(0.0,)] * 4), "not both"),
        (dict(coordinates=[(0.0, 1.0)] * 3 + [(float("nan"), 0.0)]), "finite"),
        (dict(coordinates=[(0.0, 1.0)] * 3 + [(0.0,)]), "same length"),
    ],
)
def test_bad_space_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RNNConfig(n_inputs=1, n_units=4, n_outputs=1, **kwargs)


def test_bad_distance_inputs():
    with pytest.raises(ValueError, match="coordinates must have shape"):
        distance_matrix(np.zeros(5))
    with pytest.raises(ValueError, match="metric"):
        distance_matrix(np.zeros((3, 2)), metric="cosine-ish")
    with pytest.raises(ValueError, match="power"):
        distance_matrix(np.zeros((3, 2)), power=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        distance_matrix(np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(TypeError, match="RNNConfig"):
        unit_coordinates({"n_units": 3})
