"""Terrain heightfield: bilinear height_at against analytic surfaces and a slow per-point reference; mesh; I/O."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.city.terrain import Terrain


def _grid(ny: int, nx: int, transform, fn) -> Terrain:
    """A terrain whose cell [i, j] holds fn(x, y) at the cell centre."""
    a, b, c, d, e, f = transform
    jj, ii = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5)
    x = a * jj + b * ii + c
    y = d * jj + e * ii + f
    return Terrain(fn(x, y), transform, id="t", source="test")


def _reference(t: Terrain, x: float, y: float) -> float:
    """Slow, obvious per-point bilinear interpolation with the documented conventions."""
    a, b, c, d, e, f = t.transform
    det = a * e - b * d
    u = (e * (x - c) - b * (y - f)) / det
    v = (a * (y - f) - d * (x - c)) / det
    ny, nx = t.heights.shape
    if not (0 <= u <= nx and 0 <= v <= ny):
        return math.nan
    fc = min(max(u - 0.5, 0.0), nx - 1.0)
    fr = min(max(v - 0.5, 0.0), ny - 1.0)
    total = 0.0
    for i in range(ny):
        for j in range(nx):
            w = max(0.0, 1 - abs(fr - i)) * max(0.0, 1 - abs(fc - j))
            if w > 0:
                if math.isnan(t.heights[i, j]):
                    return math.nan
                total += w * t.heights[i, j]
    return total


NORTH_UP = (2.0, 0.0, 100.0, 0.0, -3.0, 500.0)  # 2 m columns, 3 m rows, top-left corner (100, 500)


def test_bilinear_reproduces_bilinear_surface_exactly():
    # z = 5 + 2x - 3y + 0.01xy lies in the span of bilinear interpolation on an axis-aligned grid
    fn = lambda x, y: 5 + 2 * x - 3 * y + 0.01 * x * y  # noqa: E731
    t = _grid(7, 9, NORTH_UP, fn)
    rng = np.random.default_rng(1)
    # interior: between the outermost cell centres
    x = rng.uniform(100 + 1, 100 + 18 - 1, 500)
    y = rng.uniform(500 - 21 + 1.5, 500 - 1.5, 500)
    np.testing.assert_allclose(t.height_at(x, y), fn(x, y), rtol=0, atol=1e-9)


def test_cell_centres_are_exact_and_edges_clamp():
    rng = np.random.default_rng(2)
    h = rng.uniform(0, 100, (5, 6))
    t = Terrain(h, NORTH_UP, id="t", source="test")
    ii, jj = np.meshgrid(np.arange(5), np.arange(6), indexing="ij")
    xy = t.cell_centres(ii.ravel(), jj.ravel())
    assert np.array_equal(t.height_at(xy[:, 0], xy[:, 1]), h.ravel())
    # within half a cell of the left border: the value of the first column of centres (clamped)
    y_mid = 500 - 3 * 2.5  # halfway between the centres of rows 1 and 2 ... of row 2 exactly
    got = t.height_at(np.array([100.0, 100.5, 101.0]), np.array([y_mid] * 3))
    assert np.array_equal(got, [h[2, 0]] * 3)
    # corners of the raster give the corner cells
    got = t.height_at(np.array([100.0, 112.0]), np.array([500.0, 485.0]))
    assert np.array_equal(got, [h[0, 0], h[4, 5]])


def test_outside_is_nan():
    t = _grid(4, 4, NORTH_UP, lambda x, y: x + y)
    got = t.height_at(
        np.array([99.99, 108.01, 104.0, 104.0, np.nan]), np.array([495, 495, 500.01, 487.99, 495])
    )
    assert np.isnan(got).all()
    assert np.isfinite(t.height_at(np.array([100.0, 108.0]), np.array([500.0, 488.0]))).all()


def test_nodata_needs_only_cells_with_weight():
    h = np.arange(16, dtype=float).reshape(4, 4)
    h[1, 1] = np.nan
    t = Terrain(h, NORTH_UP, id="t", source="test")
    c = t.cell_centres(np.array([1, 1, 2, 0]), np.array([1, 2, 2, 0]))
    got = t.height_at(c[:, 0], c[:, 1])
    assert np.isnan(got[0])
    assert got[1] == h[1, 2]
    assert got[2] == h[2, 2]
    assert got[3] == h[0, 0]
    # any point strictly inside a square of centres touching the nodata cell is NaN
    mid = (c[0] + c[1]) / 2 + np.array([0.0, 0.1])
    assert np.isnan(t.height_at(mid[:1], mid[1:])).all()
    # but on the segment between two valid centres next to it, the value is their mean
    c2 = t.cell_centres(np.array([2, 2]), np.array([1, 2]))
    m = c2.mean(axis=0)
    assert t.height_at(m[:1], m[1:])[0] == pytest.approx((h[2, 1] + h[2, 2]) / 2, abs=1e-12)


def test_rotated_grid_reproduces_linear_surface():
    ang = math.radians(30)
    tr = (2 * math.cos(ang), 3 * math.sin(ang), 10.0, 2 * math.sin(ang), -3 * math.cos(ang), 20.0)
    fn = lambda x, y: 7 - 0.5 * x + 0.25 * y  # noqa: E731
    t = _grid(6, 8, tr, fn)
    rng = np.random.default_rng(3)
    # random points inside the hull of centres, built in pixel space then mapped
    u = rng.uniform(0.5, 7.5, 300)
    v = rng.uniform(0.5, 5.5, 300)
    x = tr[0] * u + tr[1] * v + tr[2]
    y = tr[3] * u + tr[4] * v + tr[5]
    np.testing.assert_allclose(t.height_at(x, y), fn(x, y), atol=1e-9)


def test_single_row_and_column():
    t = Terrain(np.array([[4.0, 8.0]]), NORTH_UP, id="t", source="test")
    got = t.height_at(np.array([101.0, 102.0, 103.0]), np.array([499.0, 498.5, 497.5]))
    np.testing.assert_allclose(got, [4.0, 6.0, 8.0])
    t1 = Terrain(np.array([[4.0]]), NORTH_UP, id="t", source="test")
    assert t1.height_at(np.array([101.9]), np.array([497.1]))[0] == 4.0


@settings(max_examples=60, deadline=None)
@given(
    ny=st.integers(1, 5),
    nx=st.integers(1, 5),
    angle=st.floats(-180, 180),
    seed=st.integers(0, 2**31 - 1),
    nan_share=st.sampled_from([0.0, 0.2]),
)
def test_matches_slow_reference(ny, nx, angle, seed, nan_share):
    rng = np.random.default_rng(seed)
    h = rng.uniform(-50, 50, (ny, nx))
    h[rng.random((ny, nx)) < nan_share] = np.nan
    a = math.radians(angle)
    sx, sy = rng.uniform(0.5, 3, 2)
    flip = -1.0 if rng.random() < 0.8 else 1.0  # mostly north-up, sometimes south-up
    tr = (sx * math.cos(a), -flip * sy * math.sin(a), 3.0, sx * math.sin(a), flip * sy * math.cos(a), -2.0)
    t = Terrain(h, tr, id="t", source="test")
    u = rng.uniform(-0.5, nx + 0.5, 40)
    v = rng.uniform(-0.5, ny + 0.5, 40)
    x = tr[0] * u + tr[1] * v + tr[2]
    y = tr[3] * u + tr[4] * v + tr[5]
    got = t.height_at(x, y)
    want = np.array([_reference(t, xi, yi) for xi, yi in zip(x, y, strict=True)])
    # points within rounding of the raster border may fall either side; skip those
    edge = (np.abs(u) < 1e-9) | (np.abs(u - nx) < 1e-9) | (np.abs(v) < 1e-9) | (np.abs(v - ny) < 1e-9)
    np.testing.assert_allclose(got[~edge], want[~edge], atol=1e-9, equal_nan=True)


def test_mesh_budget_winding_and_nodata():
    rng = np.random.default_rng(4)
    h = rng.uniform(0, 10, (101, 151))
    h[40:45, 60:70] = np.nan
    t = Terrain(h, NORTH_UP, id="t", source="test")
    v, f = t.mesh(max_triangles=5000)
    assert f.shape[1] == 3
    assert v.shape[1] == 3
    assert f.dtype == np.int64
    assert 0 < len(f) <= 5000
    assert f.min() >= 0
    assert f.max() == len(v) - 1
    assert np.isfinite(v).all()
    step = t.stride_for(5000)
    assert 2 * math.ceil(100 / (step - 1)) * math.ceil(150 / (step - 1)) > 5000  # the stride is the smallest
    # normals point up
    p = v[f]
    n = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    assert (n[:, 2] > 0).all()
    # every vertex is a sampled cell centre with its height
    np.testing.assert_array_equal(t.height_at(v[:, 0], v[:, 1]), v[:, 2])
    # full resolution: 2 triangles per square of centres (split along the 00-11 diagonal), minus those
    # touching the nodata block
    v1, f1 = t.mesh(max_triangles=10**7)
    ok = ~np.isnan(h)
    diag = ok[:-1, :-1] & ok[1:, 1:]
    assert len(f1) == (diag & ok[1:, :-1]).sum() + (diag & ok[:-1, 1:]).sum()
    assert len(v1) == np.isfinite(h).sum()


def test_mesh_winding_south_up():
    t = Terrain(np.zeros((3, 4)), (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), id="t", source="test")
    v, f = t.mesh()
    p = v[f]
    assert (np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])[:, 2] > 0).all()


def test_bounds_summary_save_load(tmp_path):
    h = np.arange(12, dtype=float).reshape(3, 4)
    h[0, 0] = np.nan
    t = Terrain(
        h, NORTH_UP, id="dem", source="x.tif", crs="EPSG:3067", source_crs="EPSG:4326", resampled=True
    )
    np.testing.assert_array_equal(t.bounds(), [[100.0, 491.0, 1.0], [108.0, 500.0, 11.0]])
    s = t.summary()
    assert s["rows"] == 3
    assert s["cols"] == 4
    assert s["cell_size_m"] == [2.0, 3.0]
    assert s["nodata_share"] == pytest.approx(1 / 12)
    assert (s["min_height_m"], s["max_height_m"]) == (1.0, 11.0)
    entry = t.save(tmp_path)
    back = Terrain.load(tmp_path, {"id": "dem", "source": "x.tif", **entry})
    np.testing.assert_array_equal(back.heights, h)
    np.testing.assert_array_equal(back.transform, t.transform)
    assert (back.crs, back.source_crs, back.resampled) == ("EPSG:3067", "EPSG:4326", True)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"heights must be \(ny, nx\)"):
        Terrain(np.zeros(5), NORTH_UP, id="t", source="s")
    with pytest.raises(ValueError, match="singular"):
        Terrain(np.zeros((2, 2)), (1.0, 0.0, 0.0, 2.0, 0.0, 0.0), id="t", source="s")
    t = Terrain(np.zeros((2, 2)), NORTH_UP, id="t", source="s")
    with pytest.raises(ValueError, match="same shape"):
        t.height_at(np.zeros(3), np.zeros(2))
