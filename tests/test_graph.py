"""Graph metrics against networkx, and small-worldness on known graphs."""

import networkx as nx
import numpy as np
import pytest
import torch

from neurornn.analysis.graph import (
    adjacency,
    characteristic_path_length,
    clustering_coefficients,
    communities,
    global_efficiency,
    graph_metrics,
    graph_metrics_history,
    modularity,
    plot_connectivity,
    plot_graph_history,
    random_graphs,
    shortest_path_lengths,
    small_worldness,
    weight_distance,
)


def _er(n, p, seed):
    return nx.to_numpy_array(nx.gnp_random_graph(n, p, seed=seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_networkx(seed):
    a = _er(40, 0.15, seed)
    g = nx.from_numpy_array(a)
    np.testing.assert_allclose(clustering_coefficients(a), [nx.clustering(g)[i] for i in range(40)])
    assert global_efficiency(a) == pytest.approx(nx.global_efficiency(g))
    d = shortest_path_lengths(a)
    ref = dict(nx.all_pairs_shortest_path_length(g))
    for i in range(40):
        for j in range(40):
            assert d[i, j] == (ref[i][j] if j in ref[i] else np.inf)
    if nx.is_connected(g):
        assert characteristic_path_length(a) == pytest.approx(nx.average_shortest_path_length(g))


def test_metrics_are_vectorised_over_a_stack():
    stack = np.stack([_er(30, 0.2, s) for s in range(5)])
    c = clustering_coefficients(stack)
    e = global_efficiency(stack)
    assert c.shape == (5, 30) and e.shape == (5,)
    for k in range(5):
        np.testing.assert_allclose(c[k], clustering_coefficients(stack[k]))
        assert e[k] == pytest.approx(global_efficiency(stack[k]))


def test_disconnected_graph():
    a = np.zeros((6, 6))
    a[0, 1] = a[1, 0] = a[1, 2] = a[2, 1] = 1  # path 0-1-2; 3, 4, 5 isolated
    g = nx.from_numpy_array(a)
    assert global_efficiency(a) == pytest.approx(nx.global_efficiency(g))
    assert characteristic_path_length(a) == pytest.approx((1 + 1 + 2) * 2 / 6)
    assert np.all(clustering_coefficients(a) == 0)
    assert characteristic_path_length(np.zeros((4, 4))) == np.inf


def test_modularity_matches_networkx_and_louvain_is_seeded():
    a = nx.to_numpy_array(nx.planted_partition_graph(4, 10, 0.8, 0.05, seed=3))
    labels = communities(a, seed=0)
    g = nx.from_numpy_array(a)
    parts = [set(np.flatnonzero(labels == k)) for k in range(labels.max() + 1)]
    assert modularity(a, labels) == pytest.approx(nx.community.modularity(g, parts))
    assert labels.max() + 1 == 4  # the planted partition is found
    np.testing.assert_array_equal(labels, communities(a, seed=0))
    w = np.random.default_rng(0).uniform(size=(40, 40))
    w = (w + w.T) * a
    assert modularity(w, labels) == pytest.approx(nx.community.modularity(nx.from_numpy_array(w), parts))
    assert modularity(np.zeros((3, 3)), [0, 1, 2]) == 0.0


def test_random_graphs_have_the_requested_edges():
    g = random_graphs(20, 37, 8, seed=4)
    assert g.shape == (8, 20, 20)
    assert np.all(g == g.transpose(0, 2, 1)) and np.all(g[:, range(20), range(20)] == 0)
    assert np.all(g.sum((1, 2)) == 2 * 37)
    np.testing.assert_array_equal(g, random_graphs(20, 37, 8, seed=4))
    assert not np.array_equal(g[0], g[1])


def test_small_world_lattice_is_high_random_is_near_one():
    ws = nx.to_numpy_array(nx.connected_watts_strogatz_graph(100, 10, 0.05, seed=1))
    out = small_worldness(ws, n_nulls=200, seed=0)
    assert out["sigma"] > 3.0
    assert out["gamma"] > 4.0 and 0.9 < out["lambda"] < 1.6
    er = _er(100, 0.1, 5)
    out_er = small_worldness(er, n_nulls=200, seed=0)
    assert 0.85 < out_er["sigma"] < 1.15
    assert 0.85 < out_er["sigma_efficiency"] < 1.15
    # networkx's sigma (its own null model and averaging) agrees on the lattice's regime
    assert out["sigma"] == pytest.approx(out["gamma"] / out["lambda"])


def test_adjacency_keeps_the_top_fraction_and_symmetrises():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(50, 50))
    a = np.abs(w)
    off = ~np.eye(50, dtype=bool)
    kept = (a > np.quantile(a[off], 0.9)) & off
    assert kept.sum() == pytest.approx(0.1 * 50 * 49, abs=1)
    np.testing.assert_array_equal(adjacency(w, 0.1, symmetrize="max"), (kept | kept.T).astype(float))
    np.testing.assert_array_equal(adjacency(w, 0.1, symmetrize="min"), (kept & kept.T).astype(float))
    np.testing.assert_array_equal(adjacency(w, 0.1, symmetrize="mean"), (kept | kept.T).astype(float))
    weighted = adjacency(torch.tensor(w), 0.1, binarize=False, symmetrize="mean")
    np.testing.assert_allclose(weighted, (a * kept + (a * kept).T) / 2)
    np.testing.assert_array_equal(adjacency(w, threshold=1.0), ((a > 1) & off | ((a > 1) & off).T).astype(float))


def test_weight_distance_correlation():
    d = np.abs(np.subtract.outer(np.arange(20.0), np.arange(20.0)))
    w = np.exp(-d)
    out = weight_distance(w, d)
    assert out["spearman_rho"] == pytest.approx(-1.0)
    assert out["pearson_r"] < -0.5
    off = ~np.eye(20, dtype=bool)
    assert out["mean_connection_distance"] == pytest.approx((w * d)[off].sum() / w[off].sum())


def test_graph_metrics_and_history_and_figures():
    rng = np.random.default_rng(0)
    ws = nx.to_numpy_array(nx.connected_watts_strogatz_graph(60, 6, 0.05, seed=2))
    w = ws * rng.uniform(0.5, 1.0, size=ws.shape)
    d = np.abs(np.subtract.outer(np.arange(60.0), np.arange(60.0)))
    m = graph_metrics(w, d, keep_fraction=0.15, n_nulls=50)
    assert m["n_edges"] == 180 and m["sigma"] > 2 and m["modularity"] > 0.5
    assert len(m["communities"]) == 60 and m["communicability_mean"] > 0
    assert m["total_weight"] == pytest.approx(np.abs(w).sum())
    recs = graph_metrics_history([w, 2 * w], [0, 10], d, keep_fraction=0.15, n_nulls=20)
    assert [r["step"] for r in recs] == [0, 10]
    assert recs[1]["total_weight"] == pytest.approx(2 * recs[0]["total_weight"])
    assert recs[1]["modularity"] == pytest.approx(recs[0]["modularity"])
    fig = plot_graph_history(recs)
    assert len(fig.axes) == 6
    fig2 = plot_connectivity(w, np.array(m["communities"]), d)
    assert len(fig2.axes) >= 2


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: adjacency(np.zeros((3, 4))), ValueError, "square"),
        (lambda: adjacency(np.full((3, 3), np.nan)), ValueError, "NaN"),
        (lambda: adjacency(np.ones((3, 3)), keep_fraction=1.5), ValueError, "keep_fraction"),
        (lambda: adjacency(np.ones((3, 3)), keep_fraction=0.0), ValueError, "keep_fraction"),
        (lambda: adjacency(np.ones((3, 3)), symmetrize="avg"), ValueError, "symmetrize"),
        (lambda: adjacency(np.ones((3, 3)), threshold=-1.0), ValueError, "threshold"),
        (lambda: small_worldness(np.triu(np.ones((4, 4)), 1)), ValueError, "symmetric"),
        (lambda: small_worldness(np.ones((4, 4)) - np.eye(4), n_nulls=0), ValueError, "n_nulls"),
        (lambda: random_graphs(4, 7, 1), ValueError, "n_edges"),
        (lambda: modularity(np.ones((3, 3)), [0, 1]), ValueError, "labels"),
        (lambda: weight_distance(np.ones((3, 3)), np.ones((4, 4))), ValueError, "distances"),
        (lambda: graph_metrics_history([np.ones((3, 3))], [0, 1]), ValueError, "same length"),
        (lambda: clustering_coefficients(np.ones(3)), ValueError, "adjacency"),
    ],
)
def test_bad_inputs(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_modularity_is_the_best_of_several_louvain_runs_with_their_spread():
    w = np.random.default_rng(3).normal(size=(60, 60))
    a = adjacency(w, keep_fraction=0.1)  # the graph graph_metrics builds by default
    one = graph_metrics(w, n_nulls=10, louvain_restarts=1)
    five = graph_metrics(w, n_nulls=10, louvain_restarts=5)
    qs = [modularity(a, communities(a, seed=s)) for s in range(5)]
    assert one["modularity"] == pytest.approx(qs[0]) and five["modularity"] == pytest.approx(max(qs))
    runs = five["modularity_runs"]
    assert runs["n"] == 5 and runs["min"] == pytest.approx(min(qs)) and runs["sd"] == pytest.approx(np.std(qs))
    assert modularity(a, five["communities"]) == pytest.approx(max(qs))
    with pytest.raises(ValueError, match="louvain_restarts must be"):
        graph_metrics(w, louvain_restarts=0)
