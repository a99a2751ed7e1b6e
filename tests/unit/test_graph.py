"""Graph against scipy.sparse.csgraph.dijkstra on random and edge-case graphs (distances to 1e-12 relative)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse import csgraph

from twin.spatial import Graph, get_num_threads, set_num_threads


def reference(n, src, dst, w, *, directed=True, limit=np.inf, indices=None):
    """scipy distances: duplicate edges reduced to their minimum (csr_array would sum them), self-loops and
    closed (inf) edges dropped, an undirected graph given as both directions."""
    src, dst, w = np.asarray(src), np.asarray(dst), np.asarray(w, float)
    if not directed:
        src, dst, w = np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([w, w])
    keep = (src != dst) & np.isfinite(w)
    src, dst, w = src[keep], dst[keep], w[keep]
    best: dict[tuple[int, int], float] = {}
    for a, b, x in zip(src.tolist(), dst.tolist(), w.tolist(), strict=True):
        best[(a, b)] = min(x, best.get((a, b), np.inf))
    if best:
        (r, c), v = zip(*best.keys(), strict=True), list(best.values())
    else:
        r, c, v = [], [], []
    g = sparse.csr_array((np.asarray(v, float), (np.asarray(r, int), np.asarray(c, int))), shape=(n, n))
    idx = np.arange(n) if indices is None else np.asarray(indices)
    return csgraph.dijkstra(g, directed=True, indices=idx, limit=limit)


def random_graph(rng, n, m, *, integer=False):
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    src[:20], dst[:20] = src[20:40], dst[20:40]  # multi-edges
    dst[40:45] = src[40:45]  # self-loops
    w = rng.integers(1, 10, m).astype(float) if integer else rng.uniform(0.1, 10.0, m)
    return src, dst, w


def geometric_graph(rng, n, k=4):
    """Points in a square linked to their k nearest neighbours; weight = length * U(1, 1.5)."""
    xy = rng.uniform(0, 1000, (n, 2))
    d2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    nb = np.argsort(d2, axis=1)[:, :k]
    src = np.repeat(np.arange(n), k)
    dst = nb.ravel()
    length = np.hypot(*(xy[src] - xy[dst]).T)
    return xy, src, dst, length * rng.uniform(1.0, 1.5, len(src))


@pytest.fixture
def threads():
    before = get_num_threads()
    yield
    set_num_threads(before)


@pytest.mark.parametrize("directed", [True, False])
def test_dijkstra_matches_scipy_on_random_graphs(directed):
    rng = np.random.default_rng(1 + directed)
    n, m = 400, 1200  # sparse enough to leave some nodes unreachable in the directed case
    src, dst, w = random_graph(rng, n, m)
    g = Graph(n, src, dst, w, directed=directed)
    sources = rng.choice(n, 12, replace=False)
    dist, pred = g.dijkstra(sources)
    ref = reference(n, src, dst, w, directed=directed, indices=sources)
    assert dist.shape == (12, n)
    assert pred.shape == (12, n)
    assert pred.dtype == np.int64
    assert np.array_equal(np.isinf(dist), np.isinf(ref))
    np.testing.assert_allclose(dist[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-12)
    # Predecessors form shortest paths: d[pred] + w(pred, v) == d[v] on some edge; -1 only at sources/unreachable.
    both_src = np.concatenate([src, dst]) if not directed else src
    both_dst = np.concatenate([dst, src]) if not directed else dst
    both_w = np.concatenate([w, w]) if not directed else w
    for row, s in enumerate(sources):
        p = pred[row]
        assert p[s] == -1
        has = np.isfinite(dist[row]) & (np.arange(n) != s)
        assert np.all(p[has] >= 0)
        assert np.all(p[~has] == -1)
        for v in np.flatnonzero(has):
            on_edge = (both_src == p[v]) & (both_dst == v)
            assert np.isclose(dist[row, p[v]] + both_w[on_edge].min(), dist[row, v], rtol=1e-12)


def test_predecessor_ties_go_to_the_lowest_node_id():
    """Integer weights make many ties; exact float sums let us check the rule: pred[v] is the lowest u with
    d[u] + w(u, v) == d[v]."""
    rng = np.random.default_rng(5)
    n, m = 300, 2500
    src, dst, w = random_graph(rng, n, m, integer=True)
    g = Graph(n, src, dst, w)
    dist, pred = g.dijkstra(np.arange(0, n, 37))
    ties = 0
    for row in range(dist.shape[0]):
        d = dist[row]
        offer = np.isfinite(d[src]) & (d[src] + w == d[dst]) & (src != dst)
        for v in np.unique(dst[offer]):
            if d[v] == 0:
                continue
            cands = src[offer & (dst == v)]
            ties += len(np.unique(cands)) > 1
            assert pred[row, v] == cands.min()
    assert ties > 100  # the rule was exercised


def test_limit_matches_scipy():
    rng = np.random.default_rng(3)
    src, dst, w = random_graph(rng, 200, 800)
    g = Graph(200, src, dst, w)
    dist, pred = g.dijkstra([0, 7], limit=6.0)
    ref = reference(200, src, dst, w, limit=6.0, indices=[0, 7])
    assert np.array_equal(np.isinf(dist), np.isinf(ref))
    np.testing.assert_allclose(dist[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-12)
    assert np.all(pred[np.isinf(dist)] == -1)
    assert np.isinf(dist).sum() > 50


@pytest.mark.parametrize("directed", [True, False])
def test_astar_equals_dijkstra_and_scipy(directed):
    rng = np.random.default_rng(8)
    n = 600
    xy, src, dst, w = geometric_graph(rng, n)
    g = Graph(n, src, dst, w, coords=xy, directed=directed)
    assert g.max_heuristic_scale >= 1.0
    pairs = rng.integers(0, n, (40, 2))
    ref = reference(n, src, dst, w, directed=directed, indices=np.unique(pairs[:, 0]))
    row_of = {s: i for i, s in enumerate(np.unique(pairs[:, 0]))}
    unreachable = 0
    for s, t in pairs:
        nodes_a, len_a = g.shortest_path(s, t)
        nodes_d, len_d = g.shortest_path(s, t, astar=False)
        expect = ref[row_of[s], t]
        if np.isinf(expect):
            unreachable += 1
            assert len_a == np.inf
            assert len_d == np.inf
            assert len(nodes_a) == 0
            assert len(nodes_d) == 0
            continue
        assert len_a == pytest.approx(expect, rel=1e-12)
        assert len_d == pytest.approx(expect, rel=1e-12)
        for nodes, length in ((nodes_a, len_a), (nodes_d, len_d)):
            assert nodes.dtype == np.int64
            assert nodes[0] == s
            assert nodes[-1] == t
            total = 0.0
            for a, b in zip(nodes[:-1], nodes[1:], strict=True):
                fwd = (src == a) & (dst == b)
                if not directed:
                    fwd |= (src == b) & (dst == a)
                assert fwd.any()
                total += w[fwd].min()
            assert total == pytest.approx(length, rel=1e-12)
    if directed:
        assert unreachable < len(pairs)


def test_travel_time_weights_need_heuristic_scale():
    """Weights in seconds at speeds up to 20 m/s: scale 1/20 is admissible, the default 1.0 is refused."""
    rng = np.random.default_rng(9)
    xy, src, dst, _ = geometric_graph(rng, 300)
    length = np.hypot(*(xy[src] - xy[dst]).T)
    speed = rng.uniform(5.0, 20.0, len(src))
    g = Graph(300, src, dst, length / speed, coords=xy)
    assert g.max_heuristic_scale == pytest.approx(1 / speed.max(), rel=1e-9)
    with pytest.raises(
        ValueError, match=r"heuristic_scale 1 is not admissible: edge \d+ .* use heuristic_scale <="
    ):
        g.shortest_path(0, 5)
    ref = reference(300, src, dst, length / speed, indices=[0])[0]
    for t in range(1, 300, 23):
        assert g.shortest_path(0, t, heuristic_scale=1 / 20).length == pytest.approx(ref[t], rel=1e-12)


def test_many_to_many_matches_scipy_and_dijkstra(threads):
    rng = np.random.default_rng(12)
    n = 500
    xy, src, dst, w = geometric_graph(rng, n, k=3)
    g = Graph(n, src, dst, w, coords=xy)
    sources = rng.integers(0, n, 15)
    targets = rng.integers(0, n, 25)
    targets[3] = targets[4]  # repeated target
    m2m = g.many_to_many(sources, targets)
    ref = reference(n, src, dst, w, indices=sources)[:, targets]
    assert m2m.shape == (15, 25)
    assert np.array_equal(np.isinf(m2m), np.isinf(ref))
    np.testing.assert_allclose(m2m[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-12)
    out = []
    for k in (1, 2):
        set_num_threads(k)
        d, p = g.dijkstra(sources)
        out.append((d.tobytes(), p.tobytes(), g.many_to_many(sources, targets).tobytes()))
    assert out[0] == out[1]
    np.testing.assert_array_equal(g.dijkstra(sources).distances[:, targets], m2m)


def test_thread_count_does_not_change_predecessors_with_ties(threads):
    rng = np.random.default_rng(13)
    src, dst, w = random_graph(rng, 2000, 12000, integer=True)
    g = Graph(2000, src, dst, w, directed=False)
    res = []
    for k in (1, 2, 1):
        set_num_threads(k)
        d, p = g.dijkstra(np.arange(0, 2000, 50))
        res.append(d.tobytes() + p.tobytes())
    assert res[0] == res[1] == res[2]


def test_directed_versus_undirected():
    g_dir = Graph(3, [0, 1], [1, 2], [2.0, 3.0])
    g_und = Graph(3, [0, 1], [1, 2], [2.0, 3.0], directed=False)
    assert g_dir.shortest_path(2, 0).length == np.inf
    assert len(g_dir.shortest_path(2, 0).nodes) == 0
    nodes, length = g_und.shortest_path(2, 0)
    assert length == 5.0
    np.testing.assert_array_equal(nodes, [2, 1, 0])
    np.testing.assert_array_equal(g_dir.dijkstra(2).distances, [[np.inf, np.inf, 0.0]])
    np.testing.assert_array_equal(g_und.dijkstra(2).predecessors, [[1, 2, -1]])


def test_disconnected_single_node_and_empty_edge_set():
    g = Graph(6, [0, 1, 3], [1, 2, 4], [1.0, 1.0, 1.0], directed=False)
    d, p = g.dijkstra([0, 5])
    np.testing.assert_array_equal(d, [[0, 1, 2, np.inf, np.inf, np.inf], [np.inf] * 5 + [0]])
    np.testing.assert_array_equal(p, [[-1, 0, 1, -1, -1, -1], [-1] * 6])
    np.testing.assert_array_equal(g.many_to_many([0, 3], [2, 4]), [[2, np.inf], [np.inf, 1]])
    single = Graph(1, [], [], [])
    np.testing.assert_array_equal(single.dijkstra([0]).distances, [[0.0]])
    nodes, length = single.shortest_path(0, 0)
    np.testing.assert_array_equal(nodes, [0])
    assert length == 0.0
    empty = Graph(4, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    assert empty.n_edges == 0
    np.testing.assert_array_equal(
        empty.many_to_many([1, 2], [1, 2, 3]), [[0, np.inf, np.inf], [np.inf, 0, np.inf]]
    )
    assert empty.shortest_path(0, 3).length == np.inf
    zero = Graph(0, [], [], [])
    assert zero.dijkstra(np.zeros(0, np.int64)).distances.shape == (0, 0)


def test_zero_weights_self_loops_and_multi_edges():
    g = Graph(4, [0, 0, 0, 1, 1, 2, 2], [1, 1, 0, 1, 2, 3, 3], [5.0, 2.0, 0.0, 0.0, 0.0, 4.0, 1.0])
    d, p = g.dijkstra(0)
    np.testing.assert_array_equal(d, [[0.0, 2.0, 2.0, 3.0]])
    np.testing.assert_array_equal(p, [[-1, 0, 1, 2]])
    nodes, length = g.shortest_path(0, 3)
    np.testing.assert_array_equal(nodes, [0, 1, 2, 3])
    assert length == 3.0


def test_with_weights_closes_roads_and_leaves_the_original():
    rng = np.random.default_rng(21)
    n = 300
    xy, src, dst, w = geometric_graph(rng, n)
    g = Graph(n, src, dst, w, coords=xy, directed=False)
    nodes, length = g.shortest_path(0, 150)
    on_path = np.flatnonzero(
        np.isin(src, nodes[:-1]) & np.isin(dst, nodes[1:])
        | np.isin(dst, nodes[:-1]) & np.isin(src, nodes[1:])
    )
    w2 = w.copy()
    w2[on_path] = np.inf
    closed = g.with_weights(w2)
    assert isinstance(closed, Graph)
    np.testing.assert_array_equal(g.weight, w)  # original unchanged
    np.testing.assert_array_equal(closed.weight, w2)
    np.testing.assert_array_equal(closed.src, src)
    _, length2 = closed.shortest_path(0, 150)
    keep = np.isfinite(w2)
    expect = reference(n, src[keep], dst[keep], w2[keep], directed=False, indices=[0])[0, 150]
    assert length2 == pytest.approx(expect, rel=1e-12)
    assert length2 > length
    assert g.shortest_path(0, 150).length == length
    with pytest.raises(ValueError, match=rf"weight must be \({len(w)},\) float64, got \(3,\)"):
        g.with_weights([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"weight\[4\] must be >= 0"):
        g.with_weights(np.where(np.arange(len(w)) == 4, -1.0, w))


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            (3, [0, 1], [1, 2], [1.0, -2.0]),
            {},
            r"weight\[1\] must be >= 0 \(inf closes the edge\), got -2 on edge 1",
        ),
        ((3, [0, 1], [1, 2], [np.nan, 1.0]), {}, r"weight\[0\] must be >= 0 .* got nan"),
        ((3, [0, 1], [1, 3], [1.0, 1.0]), {}, r"dst\[1\] = 3 is not a node in \[0, 3\)"),
        ((3, [0, -1], [1, 2], [1.0, 1.0]), {}, r"src\[1\] = -1 is not a node in \[0, 3\)"),
        ((3, [0, 1], [1, 2, 0], [1.0, 1.0]), {}, r"dst must be \(2,\) int64, got \(3,\)"),
        ((3, [0, 1], [1, 2], [1.0]), {}, r"weight must be \(2,\) float64, got \(1,\)"),
        ((3, [0.0, 1.5], [1, 2], [1.0, 1.0]), {}, "src must be an integer array, got float64"),
        (
            (3, [0, 1], [1, 2], [1.0, 1.0]),
            {"coords": np.zeros((2, 2))},
            r"coords must be \(3, 2\) or \(3, 3\)",
        ),
        ((3, [0, 1], [1, 2], [1.0, 1.0]), {"coords": np.full((3, 2), np.nan)}, "coords must be finite"),
        ((-1, [], [], []), {}, r"n_nodes must be in \[0, 2\*\*31 - 1\]"),
    ],
)
def test_construction_errors_name_the_edge_or_argument(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Graph(*args, **kwargs)


def test_query_errors():
    g = Graph(3, [0, 1], [1, 2], [1.0, 1.0], coords=np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"sources\[1\] = 3 is not a node in \[0, 3\)"):
        g.dijkstra([0, 3])
    with pytest.raises(ValueError, match=r"targets\[0\] = 7 is not a node"):
        g.many_to_many([0], [7])
    with pytest.raises(ValueError, match=r"target\[0\] = 9 is not a node"):
        g.shortest_path(0, 9)
    with pytest.raises(ValueError, match="limit must be >= 0"):
        g.dijkstra([0], limit=-1.0)
    with pytest.raises(ValueError, match="heuristic_scale must be finite and >= 0"):
        g.shortest_path(0, 2, heuristic_scale=np.nan)
    # Coincident coords: any scale is admissible, and A* still finds the path.
    assert g.max_heuristic_scale == np.inf
    assert g.shortest_path(0, 2, heuristic_scale=10.0).length == 2.0


def test_three_dimensional_coords_for_astar():
    """A pipe network with depth: 3-D straight-line lengths make the heuristic tighter yet admissible."""
    rng = np.random.default_rng(4)
    xyz = np.column_stack([rng.uniform(0, 500, 200), rng.uniform(0, 500, 200), rng.uniform(-5, 0, 200)])
    xy_g = geometric_graph(rng, 200)[1:]
    src, dst = xy_g[0], xy_g[1]
    w = np.linalg.norm(xyz[src] - xyz[dst], axis=1) * 1.01
    g = Graph(200, src, dst, w, coords=xyz, directed=False)
    assert g.coords.shape == (200, 3)
    assert not g.coords.flags.writeable
    ref = reference(200, src, dst, w, directed=False, indices=[3])[0]
    got = np.array([g.shortest_path(3, t).length for t in range(200)])
    np.testing.assert_allclose(got, ref, rtol=1e-12)
