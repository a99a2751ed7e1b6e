"""DEM loading on real rasters: heights against the raw band, scipy interpolation, reprojection, placement, errors."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
from scipy.interpolate import RegularGridInterpolator

from twin.city import City
from twin.city.dem import load_dem
from twin.city.frame import Frame, Placement
from twin.city.terrain import Terrain
from twin.errors import InputError

DATA = Path(os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
BIG = DATA / "terrain" / "bigtujunga.tif"
WHITEBOX = DATA / "terrain" / "whitebox_DEM.tif"


def _world(g: rasterio.Affine, col, row) -> tuple[np.ndarray, np.ndarray]:
    """File coordinates of pixel position (col, row) through the affine ``g``."""
    col = np.asarray(col, dtype=np.float64)
    row = np.asarray(row, dtype=np.float64)
    return g.a * col + g.b * row + g.c, g.d * col + g.e * row + g.f


def _raw(path: Path) -> tuple[np.ndarray, rasterio.Affine, float | None]:
    with rasterio.open(path) as src:
        return src.read(1), src.transform, src.nodata


def test_bigtujunga_cell_centres_equal_raw_band():
    raw, g, nodata = _raw(BIG)
    frame = Frame()
    t = load_dem(BIG, frame=frame)
    assert frame.crs == pyproj.CRS.from_epsg(32611)
    assert t.crs == "EPSG:32611"
    assert t.source_crs == "EPSG:32611"
    assert not t.resampled
    assert t.heights.shape == raw.shape == (643, 1197)
    assert nodata == 32767
    np.testing.assert_array_equal(t.heights, raw.astype(np.float64))
    # every cell centre, located through the file's own affine transform, returns the raw value exactly
    ii, jj = np.meshgrid(np.arange(raw.shape[0]), np.arange(raw.shape[1]), indexing="ij")
    wx, wy = _world(g, jj.ravel() + 0.5, ii.ravel() + 0.5)
    got = t.height_at(np.asarray(wx) - frame.origin[0], np.asarray(wy) - frame.origin[1])
    np.testing.assert_array_equal(got, raw.ravel().astype(np.float64))
    s = t.summary()
    assert s["cell_size_m"] == [30.0, 30.0]
    assert (s["min_height_m"], s["max_height_m"]) == (float(raw.min()), float(raw.max()))
    assert s["nodata_share"] == 0.0
    b = t.bounds()
    np.testing.assert_allclose(b[0, :2], [g.c - frame.origin[0], g.f + g.e * 643 - frame.origin[1]])
    np.testing.assert_allclose(b[1, :2], [g.c + g.a * 1197 - frame.origin[0], g.f - frame.origin[1]])


def test_bigtujunga_random_points_match_scipy():
    raw, g, _ = _raw(BIG)
    frame = Frame("EPSG:32611", origin=(390000.0, 3800000.0, 100.0))
    t = load_dem(BIG, frame=frame)
    ny, nx = raw.shape
    # cell-centre coordinates in the local frame; y must ascend for scipy, so flip the rows
    xs = g.c + g.a * (np.arange(nx) + 0.5) - 390000.0
    ys = g.f + g.e * (np.arange(ny) + 0.5) - 3800000.0
    ref = RegularGridInterpolator((ys[::-1], xs), raw[::-1].astype(np.float64) - 100.0, method="linear")
    rng = np.random.default_rng(7)
    x = rng.uniform(xs[0], xs[-1], 20000)
    y = rng.uniform(ys[-1], ys[0], 20000)
    np.testing.assert_allclose(t.height_at(x, y), ref(np.column_stack([y, x])), rtol=0, atol=1e-9)


def test_nodata_becomes_nan(tmp_path):
    raw, _, _ = _raw(BIG)
    with rasterio.open(BIG) as src:
        profile = src.profile
    data = raw.copy()
    data[100:110, 200:230] = 32767
    path = tmp_path / "holes.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    frame = Frame()
    t = load_dem(path, frame=frame)
    assert np.isnan(t.heights[100:110, 200:230]).all()
    assert np.isfinite(t.heights).sum() == data.size - 300
    assert t.summary()["nodata_share"] == pytest.approx(300 / data.size)
    assert t.summary()["max_height_m"] == float(raw.max())
    inside = t.cell_centres(np.array([105, 99, 110]), np.array([215, 215, 215]))
    inside[1:, 1] += np.array([-5.0, 5.0])  # off the last valid row of centres towards the hole
    got = t.height_at(inside[:, 0], inside[:, 1])
    assert np.isnan(got).all()
    # the last valid row next to the hole is still exact at its centres
    edge = t.cell_centres(np.array([99]), np.array([215]))
    assert t.height_at(edge[:, 0], edge[:, 1])[0] == raw[99, 215]


def test_reprojection_into_another_city_crs():
    native_frame = Frame("EPSG:32611")
    native = load_dem(BIG, frame=native_frame)
    frame = Frame("EPSG:3310")  # California Albers
    t = load_dem(BIG, frame=frame)
    assert t.resampled
    assert t.crs == "EPSG:3310"
    assert t.source_crs == "EPSG:32611"
    assert t.transform[1] == 0.0
    assert t.transform[3] == 0.0
    assert t.transform[4] < 0
    assert t.cell_size[0] == pytest.approx(30.0, rel=0.01)
    b = native.bounds()
    rng = np.random.default_rng(3)
    x = rng.uniform(b[0, 0] + 300, b[1, 0] - 300, 5000)
    y = rng.uniform(b[0, 1] + 300, b[1, 1] - 300, 5000)
    ox, oy, _ = native_frame.origin  # the raster fixed both frames' origins (their CRS was given)
    ax, ay = pyproj.Transformer.from_crs(32611, 3310, always_xy=True).transform(x + ox, y + oy)
    diff = t.height_at(ax - frame.origin[0], ay - frame.origin[1]) - native.height_at(x, y)
    assert np.isfinite(diff).all()
    # bilinear resampling of steep 30 m terrain: small differences, no bias
    assert np.median(np.abs(diff)) < 1.0
    assert np.percentile(np.abs(diff), 95) < 3.0
    assert abs(diff.mean()) < 0.2


def test_whitebox_has_no_crs_so_placement_applies(caplog):
    raw, g, _ = _raw(WHITEBOX)
    caplog.set_level(logging.INFO, logger="twin.city.dem")
    plain = load_dem(WHITEBOX, frame=Frame())
    assert plain.crs is None
    assert plain.source_crs is None
    assert "local one without georeference" in caplog.text
    np.testing.assert_allclose(plain.transform, [g.a, g.b, g.c, g.d, g.e, g.f])
    np.testing.assert_array_equal(plain.heights, raw.astype(np.float64))

    frame = Frame("EPSG:32617", origin=(500000.0, 4000000.0, 0.0))
    pl = Placement(x=-600000.0, y=-850000.0, z=10.0, rotation_deg=90.0)
    t = load_dem(WHITEBOX, frame=frame, placement=pl)
    # a cell centre in file coordinates, rotated and moved by the placement, then into the local frame
    rows = np.array([0, 50, 187, 120])
    cols = np.array([0, 100, 236, 7])
    wx, wy = _world(g, cols + 0.5, rows + 0.5)
    local = frame.place(np.column_stack([wx, wy, np.zeros(4)]), pl)
    got = t.height_at(local[:, 0], local[:, 1])
    np.testing.assert_allclose(got, raw[rows, cols] + 10.0, rtol=0, atol=1e-9)
    np.testing.assert_allclose(t.cell_centres(rows, cols), local[:, :2], atol=1e-6)
    # a point just beyond the rotated raster is outside
    far = frame.place(np.array([[g.c - 10.0, g.f + 10.0, 0.0]]), pl)
    assert np.isnan(t.height_at(far[:, 0], far[:, 1])).all()


def test_declared_crs_for_a_file_without_one():
    frame = Frame()
    t = load_dem(WHITEBOX, frame=frame, crs=pyproj.CRS.from_epsg(32617))
    assert frame.crs == pyproj.CRS.from_epsg(32617)
    assert t.source_crs == "EPSG:32617"
    assert not t.resampled
    raw, g, _ = _raw(WHITEBOX)
    c = t.cell_centres(np.array([10]), np.array([20]))
    np.testing.assert_allclose(c[0] + frame.origin[:2], _world(g, 20.5, 10.5))
    assert t.height_at(c[:, 0], c[:, 1])[0] == np.float32(raw[10, 20])


def test_mesh_of_real_dem():
    t = load_dem(BIG, frame=Frame())
    v, f = t.mesh(max_triangles=50_000)
    assert 40_000 < len(f) <= 50_000
    p = v[f]
    assert (np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])[:, 2] > 0).all()
    np.testing.assert_array_equal(t.height_at(v[:, 0], v[:, 1]), v[:, 2])


def test_city_bundle_round_trip(tmp_path):
    city = City()
    (layer,) = city.add_file(BIG)
    assert isinstance(layer, Terrain)
    assert city.terrain is layer
    city.save(tmp_path / "bundle")
    back = City.load(tmp_path / "bundle")
    t = back.terrain
    np.testing.assert_array_equal(t.heights, layer.heights)
    np.testing.assert_array_equal(t.transform, layer.transform)
    assert t.summary() == layer.summary()
    assert t.id == "bigtujunga"


# -- malformed input ----------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist") as err:
        load_dem(tmp_path / "nope.tif", frame=Frame())
    assert err.value.source == str(tmp_path / "nope.tif")


def test_not_a_raster(tmp_path):
    path = tmp_path / "text.tif"
    path.write_text("this is not a GeoTIFF\n")
    with pytest.raises(InputError, match="not a readable raster") as err:
        load_dem(path, frame=Frame())
    assert err.value.source == str(path)


@pytest.mark.parametrize(("src", "keep"), [(BIG, 1_000_000), (WHITEBOX, 90_000)])
def test_truncated_raster(tmp_path, src, keep):
    path = tmp_path / "cut.tif"
    path.write_bytes(src.read_bytes()[:keep])
    with pytest.raises(InputError, match="not a readable raster") as err:
        load_dem(path, frame=Frame())
    assert err.value.source == str(path)


def test_all_nodata(tmp_path):
    path = tmp_path / "empty.tif"
    profile = {"driver": "GTiff", "dtype": "int16", "width": 20, "height": 10, "count": 1, "nodata": 32767}
    profile["transform"] = rasterio.Affine(30, 0, 0, 0, -30, 300)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((10, 20), 32767, dtype=np.int16), 1)
    with pytest.raises(InputError, match="every cell is nodata") as err:
        load_dem(path, frame=Frame())
    assert err.value.source == str(path)


def test_multi_band_uses_band_one(tmp_path, caplog):
    path = tmp_path / "two.tif"
    shutil.copy(WHITEBOX, tmp_path / "one.tif")
    raw, g, _ = _raw(WHITEBOX)
    profile = {"driver": "GTiff", "dtype": "float32", "width": raw.shape[1], "height": raw.shape[0]}
    with rasterio.open(path, "w", count=2, transform=g, **profile) as dst:
        dst.write(raw, 1)
        dst.write(raw * 0 - 5, 2)
    caplog.set_level(logging.INFO, logger="twin.city.dem")
    t = load_dem(path, frame=Frame())
    np.testing.assert_array_equal(t.heights, raw.astype(np.float64))
    assert "has 2 bands; using band 1" in caplog.text
