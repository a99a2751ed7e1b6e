"""SegmentIndex2D against a brute-force numpy point-to-segment reference, plus edge cases and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from twin import spatial
from twin.spatial import SegmentIndex2D


def _closest(points: np.ndarray, segs: np.ndarray):
    """(k, n) distances and closest points (k, n, 2), with the same arithmetic as the core."""
    qx, qy = points[:, 0:1], points[:, 1:2]
    ax, ay, bx, by = (segs[:, i][None, :] for i in range(4))
    dx, dy = bx - ax, by - ay
    l2 = dx * dx + dy * dy
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(l2 > 0, ((qx - ax) * dx + (qy - ay) * dy) / np.where(l2 > 0, l2, 1.0), 0.0)
    cx = np.where(t <= 0, ax, np.where(t >= 1, bx, ax + t * dx))
    cy = np.where(t <= 0, ay, np.where(t >= 1, by, ay + t * dy))
    ex, ey = qx - cx, qy - cy
    return np.sqrt(ex * ex + ey * ey), np.stack([cx, cy], axis=-1)


def _ref_nearest(points, segs, seg_levels=None, point_levels=None, max_distance=np.inf):
    k = len(points)
    dist = np.full(k, np.inf)
    seg = np.full(k, -1, dtype=np.int64)
    pt = np.full((k, 2), np.nan)
    if len(segs) == 0:
        return dist, seg, pt
    d, c = _closest(points, segs)
    if point_levels is not None:
        sl = np.zeros(len(segs), dtype=np.int32) if seg_levels is None else seg_levels
        d = np.where(sl[None, :] == point_levels[:, None], d, np.inf)
    d = np.where(d <= max_distance, d, np.inf)
    j = np.argmin(d, axis=1)  # first minimum: the lowest segment id wins ties
    hit = np.isfinite(d[np.arange(k), j])
    dist[hit] = d[hit, j[hit]]
    seg[hit] = j[hit]
    pt[hit] = c[hit, j[hit]]
    return dist, seg, pt


def _check_nearest(res, points, segs, **kw):
    dist, seg, pt = _ref_nearest(points, segs, **kw)
    np.testing.assert_array_equal(res.segment, seg)
    np.testing.assert_array_equal(res.distance, dist)
    np.testing.assert_array_equal(res.point, pt)
    assert res.distance.shape == (len(points),)
    assert res.normal.shape == (len(points), 2)
    assert res.segment.dtype == np.int64
    hit = seg >= 0
    # normals of points a hair's breadth off a wall are rounding-limited: compare those only to 1e-12
    away = hit & (dist > 1e-9)
    expect = (points[away] - pt[away]) / dist[away, None]
    np.testing.assert_allclose(res.normal[away], expect, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(res.normal[away], axis=1), 1.0, rtol=1e-12)
    assert (res.normal[~hit] == 0).all()


def _random_walls(rng, n, extent=50.0, length=5.0):
    a = rng.uniform(0, extent, (n, 2))
    b = a + rng.uniform(-length, length, (n, 2))
    return np.hstack([a, b])


def test_nearest_matches_brute_force():
    rng = np.random.default_rng(1)
    segs = _random_walls(rng, 2000)
    pts = rng.uniform(-10, 60, (1500, 2))
    idx = SegmentIndex2D(segs)
    assert len(idx) == 2000
    _check_nearest(idx.nearest(pts), pts, segs)


def test_nearest_far_outside_and_max_distance():
    rng = np.random.default_rng(2)
    segs = _random_walls(rng, 300, extent=20.0)
    pts = np.vstack([rng.uniform(-5, 25, (400, 2)), rng.uniform(-1e4, 1e4, (20, 2))])
    idx = SegmentIndex2D(segs)
    _check_nearest(idx.nearest(pts), pts, segs)
    res = idx.nearest(pts, max_distance=0.7)
    _check_nearest(res, pts, segs, max_distance=0.7)
    assert (res.segment == -1).any()
    assert np.isnan(res.point[res.segment == -1]).all()
    assert np.isinf(res.distance[res.segment == -1]).all()
    # a wall exactly at max_distance counts
    one = SegmentIndex2D(np.array([[0.0, 0.0, 4.0, 0.0]]))
    r = one.nearest(np.array([[2.0, 3.0], [2.0, 3.5]]), max_distance=3.0)
    np.testing.assert_array_equal(r.segment, [0, -1])
    np.testing.assert_array_equal(r.distance, [3.0, np.inf])
    np.testing.assert_array_equal(r.normal, [[0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(r.point[0], [2.0, 0.0])


def test_levels_select_walls_of_the_storey():
    rng = np.random.default_rng(3)
    segs = _random_walls(rng, 900)
    lv = rng.integers(0, 3, 900).astype(np.int32)
    pts = rng.uniform(0, 50, (600, 2))
    plv = rng.integers(0, 4, 600).astype(np.int32)  # level 3 has no walls
    idx = SegmentIndex2D(segs, levels=lv)
    np.testing.assert_array_equal(idx.levels, [0, 1, 2])
    res = idx.nearest(pts, levels=plv)
    _check_nearest(res, pts, segs, seg_levels=lv, point_levels=plv)
    assert (res.segment[plv == 3] == -1).all()
    hit = res.segment >= 0
    np.testing.assert_array_equal(lv[res.segment[hit]], plv[hit])
    # without query levels every storey counts
    _check_nearest(idx.nearest(pts), pts, segs)
    # levels that don't exist at all, negative and large
    miss = idx.nearest(pts[:3], levels=np.array([-7, 99, 2**31 - 1]))
    np.testing.assert_array_equal(miss.segment, [-1, -1, -1])
    # an index without levels puts every wall on level 0
    flat = SegmentIndex2D(segs)
    np.testing.assert_array_equal(flat.nearest(pts[:5], levels=np.ones(5, np.int32)).segment, -1)
    _check_nearest(flat.nearest(pts, levels=np.zeros(600, np.int32)), pts, segs)


def test_point_on_wall_gets_left_hand_normal():
    segs = np.array([[0.0, 0.0, 2.0, 0.0], [5.0, 5.0, 5.0, 1.0], [9.0, 9.0, 9.0, 9.0]])
    idx = SegmentIndex2D(segs)
    res = idx.nearest(np.array([[1.0, 0.0], [5.0, 3.0], [0.0, 0.0], [9.0, 9.0]]))
    np.testing.assert_array_equal(res.segment, [0, 1, 0, 2])
    np.testing.assert_array_equal(res.distance, [0.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(res.normal, [[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(res.point, [[1.0, 0.0], [5.0, 3.0], [0.0, 0.0], [9.0, 9.0]])
    # reversing the wall flips its left-hand side
    rev = SegmentIndex2D(segs[:, [2, 3, 0, 1]])
    np.testing.assert_array_equal(rev.nearest(np.array([[1.0, 0.0]])).normal, [[0.0, -1.0]])


def test_zero_length_segments_are_points():
    segs = np.array([[3.0, 4.0, 3.0, 4.0], [10.0, 0.0, 10.0, 0.0]])
    idx = SegmentIndex2D(segs)
    res = idx.nearest(np.array([[0.0, 0.0], [13.0, 4.0]]))
    np.testing.assert_array_equal(res.segment, [0, 1])
    np.testing.assert_array_equal(res.distance, [5.0, 5.0])
    np.testing.assert_array_equal(res.normal, [[-0.6, -0.8], [0.6, 0.8]])
    within = idx.within(np.array([[3.0, 0.0]]), 4.0)
    np.testing.assert_array_equal(within.indices, [0])


def test_ties_go_to_the_lowest_segment_id():
    # duplicates and a corner: equal distances to several walls
    segs = np.array([[0.0, 0.0, 4.0, 0.0], [0.0, 0.0, 0.0, 4.0], [4.0, 0.0, 0.0, 0.0], [0.0, 0.0, 4.0, 0.0]])
    idx = SegmentIndex2D(segs[[3, 2, 1, 0]])  # reversed order: duplicates now at ids 0 and 3
    res = idx.nearest(np.array([[-1.0, -1.0], [2.0, -1.0], [-1.0, 2.0]]))
    np.testing.assert_array_equal(res.segment, [0, 0, 2])
    many = SegmentIndex2D(np.tile([[1.0, 1.0, 2.0, 2.0]], (50, 1)))
    assert many.nearest(np.array([[0.0, 5.0]])).segment[0] == 0


def test_within_matches_brute_force():
    rng = np.random.default_rng(4)
    segs = _random_walls(rng, 1500)
    lv = rng.integers(0, 2, 1500).astype(np.int32)
    pts = rng.uniform(-5, 55, (700, 2))
    plv = rng.integers(0, 3, 700).astype(np.int32)
    idx = SegmentIndex2D(segs, levels=lv)
    d, _ = _closest(pts, segs)
    for radius, levels in ((1.5, None), (4.0, plv), (0.0, None)):
        res = idx.within(pts, radius, levels=levels)
        ok = d <= radius
        if levels is not None:
            ok &= lv[None, :] == levels[:, None]
        np.testing.assert_array_equal(np.diff(res.offsets), ok.sum(axis=1))
        for i in range(len(pts)):
            js = np.flatnonzero(ok[i])  # ascending segment id
            got_i, got_d = res.row(i)
            np.testing.assert_array_equal(got_i, js)
            np.testing.assert_array_equal(got_d, d[i, js])
    on = idx.within(segs[:5, :2], 0.0)  # wall end points are at distance 0
    for i in range(5):
        assert i in on.row(i)[0]


def test_empty_index_and_empty_queries():
    idx = SegmentIndex2D(np.zeros((0, 4)))
    assert len(idx) == 0
    res = idx.nearest(np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(res.segment, [-1])
    assert np.isinf(res.distance[0])
    w = idx.within(np.array([[1.0, 2.0]]), 5.0)
    np.testing.assert_array_equal(w.offsets, [0, 0])
    full = SegmentIndex2D(np.array([[0.0, 0.0, 1.0, 0.0]]))
    assert full.nearest(np.zeros((0, 2))).distance.shape == (0,)
    np.testing.assert_array_equal(full.within(np.zeros((0, 2)), 1.0).offsets, [0])


coord = st.floats(-20, 20, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    segs=arrays(np.float64, st.tuples(st.integers(0, 40), st.just(4)), elements=coord),
    pts=arrays(np.float64, st.tuples(st.integers(1, 20), st.just(2)), elements=coord),
    snap=st.booleans(),
    radius=st.sampled_from([0.0, 1.0, 6.0]),
)
def test_property_random_segments(segs, pts, snap, radius):
    if snap:  # integer coordinates: zero-length walls, duplicates, points on walls and exact ties
        segs, pts = np.round(segs / 5.0), np.round(pts / 5.0)
    idx = SegmentIndex2D(segs)
    _check_nearest(idx.nearest(pts), pts, segs)
    res = idx.within(pts, radius)
    if len(segs):
        d, _ = _closest(pts, segs)
        np.testing.assert_array_equal(np.diff(res.offsets), (d <= radius).sum(axis=1))
        np.testing.assert_array_equal(res.indices, np.nonzero(d <= radius)[1])


def test_results_do_not_depend_on_thread_count():
    rng = np.random.default_rng(5)
    segs = _random_walls(rng, 5000, extent=200.0)
    lv = rng.integers(0, 4, 5000).astype(np.int32)
    pts = rng.uniform(0, 200, (20000, 2))
    plv = rng.integers(0, 4, 20000).astype(np.int32)
    before = spatial.get_num_threads()
    out = []
    try:
        for threads in (1, 2):
            spatial.set_num_threads(threads)
            idx = SegmentIndex2D(segs, levels=lv)
            out.append((*idx.nearest(pts, levels=plv), *idx.within(pts, 3.0)))
    finally:
        spatial.set_num_threads(before)
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"segments must be \(n, 4\) float64, got \(3, 2\)"):
        SegmentIndex2D(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="segments must be finite"):
        SegmentIndex2D(np.array([[0.0, 0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="segments must be a float64 array"):
        SegmentIndex2D([["a", "b", "c", "d"]])
    with pytest.raises(ValueError, match="levels"):
        SegmentIndex2D(np.zeros((3, 4)), levels=np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="levels must be an integer array"):
        SegmentIndex2D(np.zeros((3, 4)), levels=np.zeros(3))
    with pytest.raises(ValueError, match="levels must fit in int32"):
        SegmentIndex2D(np.zeros((1, 4)), levels=np.array([2**40]))
    idx = SegmentIndex2D(np.zeros((3, 4)), levels=np.array([0, 1, 1]))  # int64 levels are accepted
    with pytest.raises(ValueError, match=r"points must be \(n, 2\)"):
        idx.nearest(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="points must be finite"):
        idx.nearest(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="levels"):
        idx.nearest(np.zeros((4, 2)), levels=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="max_distance"):
        idx.nearest(np.zeros((1, 2)), max_distance=-1.0)
    with pytest.raises(ValueError, match="max_distance"):
        idx.nearest(np.zeros((1, 2)), max_distance=float("nan"))
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="radius"):
            idx.within(np.zeros((1, 2)), bad)
    with pytest.raises(ValueError, match="points must be"):
        idx.within(np.zeros(2), 1.0)
