"""NeighborGrid against brute-force numpy distances and scipy's cKDTree, plus edge cases and errors."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial import cKDTree

from twin import spatial
from twin.spatial import NeighborGrid


def _dist(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(k, n) distances, summed in the same order as the core (x, then y, then z) so that values match exactly."""
    diff = q[:, None, :] - p[None, :, :]
    d2 = diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]
    if p.shape[1] == 3:
        d2 = d2 + diff[..., 2] * diff[..., 2]
    return np.sqrt(d2)


def _ref_radius(p, q, r, *, exclude_self=False):
    d = _dist(q, p) if len(p) else np.zeros((len(q), 0))
    rows = []
    for i in range(len(q)):
        js = np.flatnonzero(d[i] <= r)
        if exclude_self:
            js = js[js != i]
        o = np.lexsort((js, d[i, js]))
        rows.append((js[o], d[i, js[o]]))
    return rows


def _ref_knn(p, q, kn, *, exclude_self=False):
    idx = np.full((len(q), kn), -1, dtype=np.int64)
    dist = np.full((len(q), kn), np.inf)
    d = _dist(q, p) if len(p) else np.zeros((len(q), 0))
    for i in range(len(q)):
        js = np.arange(len(p))
        if exclude_self:
            js = js[js != i]
        o = js[np.lexsort((js, d[i, js]))][:kn]
        idx[i, : len(o)] = o
        dist[i, : len(o)] = d[i, o]
    return idx, dist


def _assert_csr(res, rows):
    assert res.offsets.dtype == np.int64
    assert res.indices.dtype == np.int64
    assert res.distances.dtype == np.float64
    assert res.offsets.shape == (len(rows) + 1,)
    assert res.offsets[0] == 0
    np.testing.assert_array_equal(np.diff(res.offsets), [len(r[0]) for r in rows])
    for i, (js, ds) in enumerate(rows):
        got_i, got_d = res.row(i)
        np.testing.assert_array_equal(got_i, js)
        np.testing.assert_array_equal(got_d, ds)


@pytest.fixture
def restore_threads():
    n = spatial.get_num_threads()
    yield
    spatial.set_num_threads(n)


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize(("cell", "radius"), [(1.0, 1.3), (0.5, 1.7), (3.0, 0.4)])
def test_radius_matches_brute_force(dim, cell, radius):
    rng = np.random.default_rng(dim * 10 + int(cell * 10))
    p = rng.uniform(0, 8, (1500, dim))
    q = np.vstack([rng.uniform(-2, 10, (300, dim)), p[:50]])  # some outside the grid, some on points
    g = NeighborGrid(cell, dim=dim)
    g.rebuild(p)
    assert len(g) == 1500
    assert g.dim == dim
    assert not g.hashed
    _assert_csr(g.query_radius(q, radius), _ref_radius(p, q, radius))


@pytest.mark.parametrize("dim", [2, 3])
def test_radius_unsorted_has_the_same_sets(dim):
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 5, (800, dim))
    g = NeighborGrid(0.7, dim=dim)
    g.rebuild(p)
    s = g.query_radius(p, 0.9)
    u = g.query_radius(p, 0.9, sort=False)
    np.testing.assert_array_equal(s.offsets, u.offsets)
    for i in range(len(p)):
        ui, ud = u.row(i)
        o = np.lexsort((ui, ud))
        np.testing.assert_array_equal(ui[o], s.row(i)[0])
        np.testing.assert_array_equal(ud[o], s.row(i)[1])


@pytest.mark.parametrize("dim", [2, 3])
def test_exclude_self(dim):
    rng = np.random.default_rng(4)
    p = rng.uniform(0, 4, (600, dim))
    p[10] = p[11]  # a duplicate: only the query's own index is excluded, not its twin
    g = NeighborGrid(1.0, dim=dim)
    g.rebuild(p)
    res = g.query_radius(p, 0.8, exclude_self=True)
    _assert_csr(res, _ref_radius(p, p, 0.8, exclude_self=True))
    assert 11 in res.row(10)[0]
    assert 10 not in res.row(10)[0]
    idx, dist = g.query_knn(p, 5, exclude_self=True)
    ridx, rdist = _ref_knn(p, p, 5, exclude_self=True)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(dist, rdist)
    assert idx[10, 0] == 11
    assert dist[10, 0] == 0.0


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kn", [1, 8, 40])
def test_knn_matches_brute_force(dim, kn):
    rng = np.random.default_rng(kn + dim)
    p = rng.uniform(0, 10, (1200, dim))
    q = np.vstack([rng.uniform(-3, 13, (300, dim)), rng.uniform(-500, 500, (20, dim))])  # some far outside
    g = NeighborGrid(1.0, dim=dim)
    g.rebuild(p)
    idx, dist = g.query_knn(q, kn)
    assert idx.shape == (len(q), kn)
    assert idx.dtype == np.int64
    assert dist.dtype == np.float64
    ridx, rdist = _ref_knn(p, q, kn)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(dist, rdist)


@pytest.mark.parametrize("dim", [2, 3])
def test_against_ckdtree_on_a_larger_set(dim):
    rng = np.random.default_rng(11)
    n = 30000
    side = n ** (1 / dim)  # density 1 per unit area / volume
    p = rng.uniform(0, side, (n, dim))
    g = NeighborGrid(1.5, dim=dim)
    g.rebuild(p)
    tree = cKDTree(p)
    res = g.query_radius(p, 1.5)
    ref = tree.query_ball_point(p, 1.5, return_sorted=True)
    np.testing.assert_array_equal(np.diff(res.offsets), [len(r) for r in ref])
    for i in range(0, n, 97):
        np.testing.assert_array_equal(np.sort(res.row(i)[0]), ref[i])
    idx, dist = g.query_knn(p, 9)
    rd, ri = tree.query(p, k=9)
    np.testing.assert_allclose(dist, rd, rtol=1e-14, atol=0)
    assert (idx == ri).mean() > 0.9999  # equal-distance ties may be ordered differently by cKDTree
    assert (idx[:, 0] == np.arange(n)).all()


def test_empty_grid():
    g = NeighborGrid(1.0)
    g.rebuild(np.zeros((0, 2)))
    assert len(g) == 0
    q = np.array([[0.0, 0.0], [5.0, 5.0]])
    res = g.query_radius(q, 10.0)
    np.testing.assert_array_equal(res.offsets, [0, 0, 0])
    assert res.indices.shape == (0,)
    assert res.distances.shape == (0,)
    idx, dist = g.query_knn(q, 3)
    assert (idx == -1).all()
    assert np.isinf(dist).all()
    assert g.pairs_within(1.0).shape == (0, 2)
    empty = g.query_radius(np.zeros((0, 2)), 1.0)
    np.testing.assert_array_equal(empty.offsets, [0])
    assert g.query_knn(np.zeros((0, 2)), 2).indices.shape == (0, 2)


def test_single_point_and_k_larger_than_n():
    g = NeighborGrid(1.0)
    g.rebuild(np.array([[2.0, 3.0]]))
    idx, dist = g.query_knn(np.array([[2.0, 3.0], [5.0, 7.0]]), 3)
    np.testing.assert_array_equal(idx, [[0, -1, -1], [0, -1, -1]])
    np.testing.assert_array_equal(dist, [[0.0, np.inf, np.inf], [5.0, np.inf, np.inf]])
    idx, dist = g.query_knn(np.array([[2.0, 3.0]]), 2, exclude_self=True)
    np.testing.assert_array_equal(idx, [[-1, -1]])
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 3, (7, 3))
    g3 = NeighborGrid(0.5, dim=3)
    g3.rebuild(p)
    idx, dist = g3.query_knn(p, 10)
    ridx, rdist = _ref_knn(p, p, 10)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(dist, rdist)
    assert (idx[:, 7:] == -1).all()


def test_all_points_identical_and_radius_zero():
    p = np.full((50, 2), 4.25)
    g = NeighborGrid(1.0)
    g.rebuild(p)
    res = g.query_radius(p[:3], 0.0)
    for i in range(3):
        np.testing.assert_array_equal(res.row(i)[0], np.arange(50))  # ties sorted by index
        assert (res.row(i)[1] == 0).all()
    idx, dist = g.query_knn(np.array([[4.25, 5.25]]), 4)
    np.testing.assert_array_equal(idx, [[0, 1, 2, 3]])
    np.testing.assert_array_equal(dist, [[1.0] * 4])
    assert len(g.pairs_within(0.0)) == 50 * 49 // 2


@pytest.mark.parametrize("dim", [2, 3])
def test_points_on_cell_borders_and_exact_radius(dim):
    # An integer lattice with cell size 1: every point lies on cell borders and many distances equal the radius.
    axes = [np.arange(6.0)] * dim
    p = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, dim)
    g = NeighborGrid(1.0, dim=dim)
    g.rebuild(p)
    q = np.vstack([p, p + 0.5])
    for r in (0.0, 1.0, 2.0, np.sqrt(2.0)):
        _assert_csr(g.query_radius(q, r), _ref_radius(p, q, r))
    idx, dist = g.query_knn(q, 7)
    ridx, rdist = _ref_knn(p, q, 7)
    np.testing.assert_array_equal(idx, ridx)  # many equal distances: ties by index
    np.testing.assert_array_equal(dist, rdist)
    assert g.query_radius(p[:1], 1.0).counts()[0] == 1 + dim  # itself and its dim lattice neighbours


def test_radius_larger_than_extent_returns_everything():
    rng = np.random.default_rng(6)
    p = rng.uniform(0, 5, (300, 2))
    g = NeighborGrid(0.25)
    g.rebuild(p)
    q = rng.uniform(-1, 6, (20, 2))
    res = g.query_radius(q, 100.0)
    assert (res.counts() == 300).all()
    _assert_csr(res, _ref_radius(p, q, 100.0))


@pytest.mark.parametrize("dim", [2, 3])
def test_huge_spread_uses_hashing(dim):
    rng = np.random.default_rng(7)
    a = rng.uniform(0, 3, (400, dim))
    b = rng.uniform(0, 3, (400, dim)) + 1e9  # two clusters a billion metres apart
    p = np.vstack([a, b])
    g = NeighborGrid(0.5, dim=dim)
    g.rebuild(p)
    assert g.hashed
    q = np.vstack([a[:60] + 0.1, b[:60] - 0.1, np.full((1, dim), 5e8)])
    _assert_csr(g.query_radius(q, 0.6), _ref_radius(p, q, 0.6))
    for kn in (3, 450):  # 450 > cluster size: the search must reach the other cluster
        idx, dist = g.query_knn(q, kn)
        ridx, rdist = _ref_knn(p, q, kn)
        np.testing.assert_array_equal(idx, ridx)
        np.testing.assert_array_equal(dist, rdist)


@pytest.mark.parametrize("dim", [2, 3])
def test_extreme_coordinates(dim):
    # a spread beyond the float range (distances overflow to inf) and values near the top of the range
    rng = np.random.default_rng(12)
    near = rng.uniform(-5, 5, (200, dim))
    p = np.vstack([near, np.full((3, dim), 1e308), np.full((3, dim), -1e308), np.full((2, dim), 3e307)])
    g = NeighborGrid(1.0, dim=dim)
    g.rebuild(p)
    q = np.vstack([near[:20] + 0.25, p[-8:]])
    with np.errstate(over="ignore", invalid="ignore"):
        rows = _ref_radius(p, q, 2.0)
        ridx, rdist = _ref_knn(p, q, 6)
    _assert_csr(g.query_radius(q, 2.0), rows)
    idx, dist = g.query_knn(q, 6)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(dist, rdist)
    vast = np.vstack([near, np.full((1, dim), 1e300)])  # finite but vast extent: hashed, with a coarser cell
    huge = NeighborGrid(1.0, dim=dim)
    huge.rebuild(vast)
    assert huge.hashed
    with np.errstate(over="ignore", invalid="ignore"):
        rows = _ref_radius(vast, near, 1.0)
        ridx, _ = _ref_knn(vast, near, 4)
    np.testing.assert_array_equal(huge.query_knn(near, 4).indices, ridx)
    _assert_csr(huge.query_radius(near, 1.0), rows)


def test_sparse_line_knn_stays_cheap():
    # One cell wide, 5e8 m tall, hashed: a ring search must cost only the cells it visits, then fall back to a
    # scan of all points (a search that walks every row of every ring would take minutes here).
    p = np.stack([np.zeros(5000), np.arange(5000) * 1e5], axis=1)
    g = NeighborGrid(1.0)
    g.rebuild(p)
    assert g.hashed
    q = np.vstack([p[::50] + [0.0, 0.3], p[::500] + [2e5, 0.0]])
    t0 = time.perf_counter()
    idx, dist = g.query_knn(q, 3)
    assert time.perf_counter() - t0 < 5.0
    ridx, rdist = _ref_knn(p, q, 3)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(dist, rdist)


def test_tiny_cell_uses_hashing_and_stays_exact():
    rng = np.random.default_rng(8)
    p = rng.uniform(0, 100, (2000, 2))
    g = NeighborGrid(1e-4)
    g.rebuild(p)
    assert g.hashed
    q = p[:100] + 1e-5
    _assert_csr(g.query_radius(q, 2e-4), _ref_radius(p, q, 2e-4))
    _assert_csr(g.query_radius(q[:20], 3.0), _ref_radius(p, q[:20], 3.0))
    idx, dist = g.query_knn(q[:50], 4)
    ridx, rdist = _ref_knn(p, q[:50], 4)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(dist, rdist)


def test_rebuild_replaces_the_points():
    g = NeighborGrid(1.0)
    g.rebuild(np.array([[0.0, 0.0], [1.0, 0.0]]))
    g.rebuild(np.array([[10.0, 10.0]]))
    assert len(g) == 1
    idx, dist = g.query_knn(np.array([[0.0, 0.0]]), 2)
    np.testing.assert_array_equal(idx, [[0, -1]])


@pytest.mark.parametrize("dim", [2, 3])
def test_pairs_within(dim):
    rng = np.random.default_rng(9)
    p = rng.uniform(0, 6, (700, dim))
    p[5] = p[6]
    g = NeighborGrid(1.0, dim=dim)
    g.rebuild(p)
    pairs = g.pairs_within(0.8)
    d = _dist(p, p)
    i, j = np.nonzero(np.triu(d <= 0.8, k=1))
    np.testing.assert_array_equal(pairs, np.stack([i, j], axis=1))  # np.nonzero is sorted by (i, j)
    assert pairs.dtype == np.int64
    assert [5, 6] in pairs.tolist()


finite = st.floats(-50, 50, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    p=arrays(np.float64, st.tuples(st.integers(0, 60), st.sampled_from([2, 3])), elements=finite),
    cell=st.sampled_from([0.3, 1.0, 7.0]),
    radius=st.sampled_from([0.0, 0.5, 3.0, 40.0]),
    kn=st.integers(1, 8),
)
def test_property_random_inputs(p, cell, radius, kn):
    dim = p.shape[1]
    # small integer grids make duplicates and exact ties likely
    p = np.round(p / 4.0)
    g = NeighborGrid(cell, dim=dim)
    g.rebuild(p)
    q = np.vstack([p[:10], np.round(p[:5]) + 0.5]) if len(p) else np.zeros((3, dim))
    _assert_csr(g.query_radius(q, radius), _ref_radius(p, q, radius))
    idx, dist = g.query_knn(q, kn)
    ridx, rdist = _ref_knn(p, q, kn)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(dist, rdist)


@pytest.mark.parametrize("dim", [2, 3])
def test_results_do_not_depend_on_thread_count(dim, restore_threads):
    rng = np.random.default_rng(10)
    p = rng.uniform(0, 60, (60000, dim))  # large enough for the parallel rebuild and query ordering
    out = []
    for threads in (1, 2):
        spatial.set_num_threads(threads)
        g = NeighborGrid(1.0, dim=dim)
        g.rebuild(p)
        r = g.query_radius(p, 1.0)
        u = g.query_radius(p[::-1], 1.2, sort=False)
        k = g.query_knn(p, 6, exclude_self=True)
        out.append((r, u, k, g.pairs_within(0.7)))
    for a, b in zip(out[0], out[1], strict=True):
        for x, y in zip(a, b, strict=True) if isinstance(a, tuple) else [(a, b)]:
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="cell_size"):
        NeighborGrid(0.0)
    with pytest.raises(ValueError, match="cell_size"):
        NeighborGrid(float("nan"))
    with pytest.raises(ValueError, match="dim"):
        NeighborGrid(1.0, dim=4)
    g = NeighborGrid(1.0)
    with pytest.raises(ValueError, match=r"points must be \(n, 2\) float64, got \(5, 3\)"):
        g.rebuild(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="points must be"):
        g.rebuild(np.zeros(4))
    with pytest.raises(ValueError, match="points must be finite"):
        g.rebuild(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="points must be finite"):
        g.rebuild(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match="points must be a float64 array"):
        g.rebuild([["a", "b"]])
    g.rebuild(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="queries must be"):
        g.query_radius(np.zeros((3, 3)), 1.0)
    with pytest.raises(ValueError, match="queries must be finite"):
        g.query_knn(np.array([[np.nan, 0.0]]), 1)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="radius"):
            g.query_radius(np.zeros((1, 2)), bad)
        with pytest.raises(ValueError, match="radius"):
            g.pairs_within(bad)
    with pytest.raises(ValueError, match="k_neighbors"):
        g.query_knn(np.zeros((1, 2)), 0)
    with pytest.raises(ValueError, match="exclude_self"):
        g.query_radius(np.zeros((3, 2)), 1.0, exclude_self=True)
    with pytest.raises(ValueError, match="exclude_self"):
        g.query_knn(np.zeros((3, 2)), 1, exclude_self=True)
    # integer input is converted, not rejected
    g.rebuild(np.array([[0, 0], [1, 1]]))
    assert g.query_knn(np.array([[0, 0]]), 1).indices[0, 0] == 0
