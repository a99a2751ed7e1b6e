"""The local frame: CRS parsing, adoption, transforms and placement, against pyproj and hand computations."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest

from twin.city.frame import Frame, Placement, crs_name, parse_crs, utm_crs_for
from twin.errors import InputError


def test_parse_crs_accepts_codes_and_names():
    assert parse_crs("EPSG:3067").to_epsg() == 3067
    assert parse_crs(32611).to_epsg() == 32611
    assert crs_name(parse_crs("epsg:2056")) == "EPSG:2056"


@pytest.mark.parametrize("bad", ["EPSG:99999999", "not a crs", "", 3.5, None, True])
def test_parse_crs_rejects_unknown_with_source_and_field(bad):
    with pytest.raises(InputError, match=r"scenario\.yaml: city\.crs"):
        parse_crs(bad, source="scenario.yaml", field="city.crs")


def test_frame_requires_projected_crs():
    with pytest.raises(InputError, match="projected"):
        Frame("EPSG:4326")


def test_to_local_matches_pyproj_and_subtracts_origin():
    frame = Frame("EPSG:3067", origin=(385_000.0, 6_672_000.0, 10.0))
    lonlat = np.array([[24.94, 60.17, 15.0], [24.95, 60.175, 20.0]])
    local = frame.to_local(lonlat, pyproj.CRS("EPSG:4326"))
    ex, ny = pyproj.Transformer.from_crs(4326, 3067, always_xy=True).transform(lonlat[:, 0], lonlat[:, 1])
    np.testing.assert_allclose(local[:, 0], np.asarray(ex) - 385_000.0, atol=1e-6)
    np.testing.assert_allclose(local[:, 1], np.asarray(ny) - 6_672_000.0, atol=1e-6)
    np.testing.assert_allclose(local[:, 2], lonlat[:, 2] - 10.0)
    back = frame.to_lonlat(local)
    np.testing.assert_allclose(back, lonlat[:, :2], atol=1e-9)


def test_frame_adopts_utm_zone_for_lonlat_data():
    frame = Frame()
    pts = np.array([[9.7, 50.87], [9.72, 50.88]])  # Bad Hersfeld
    local = frame.to_local(pts, pyproj.CRS("EPSG:4326"))
    assert frame.crs.to_epsg() == 32632  # UTM 32N
    assert frame.origin[0] % 1000 == 0
    assert frame.origin[1] % 1000 == 0
    assert np.all(np.abs(local[:, :2]) < 5_000)  # origin near the data
    assert utm_crs_for(-118.2, 34.3).to_epsg() == 32611


def test_frame_adopts_projected_source_crs_as_is():
    frame = Frame()
    frame.to_local(np.array([[500_123.0, 5_400_456.0]]), pyproj.CRS("EPSG:32611"))
    assert frame.crs.to_epsg() == 32611
    np.testing.assert_array_equal(frame.origin, [500_000.0, 5_400_000.0, 0.0])


def test_placement_rotates_scales_and_translates():
    p = Placement(x=100.0, y=200.0, z=5.0, rotation_deg=90.0, scale=2.0)
    out = p.apply(np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(out, [[100.0, 202.0, 6.0], [98.0, 200.0, 5.0]], atol=1e-12)


def test_placement_keeps_distances_and_angles():
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(50, 3))
    p = Placement(x=3.0, y=-4.0, z=1.0, rotation_deg=37.0)
    out = p.apply(pts)
    d0 = np.linalg.norm(pts[:, None, :2] - pts[None, :, :2], axis=-1)
    d1 = np.linalg.norm(out[:, None, :2] - out[None, :, :2], axis=-1)
    np.testing.assert_allclose(d0, d1, atol=1e-12)
    v = out[1, :2] - out[0, :2]
    u = pts[1, :2] - pts[0, :2]
    angle = math.degrees(math.atan2(v[1], v[0]) - math.atan2(u[1], u[0])) % 360
    assert angle == pytest.approx(37.0)


def test_frame_place_is_relative_to_origin():
    frame = Frame("EPSG:3067", origin=(385_000.0, 6_672_000.0, 0.0))
    local = frame.place(np.zeros((1, 3)), Placement(x=385_010.0, y=6_672_020.0, z=3.0))
    np.testing.assert_allclose(local, [[10.0, 20.0, 3.0]])
    # no placement: source coordinates are local coordinates
    np.testing.assert_allclose(frame.place(np.ones((2, 3)), None), np.ones((2, 3)))


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"x": "ten"}, "placement.x must be a finite number"),
        ({"y": float("nan")}, "placement.y must be a finite number"),
        ({"rotation_deg": True}, "placement.rotation_deg must be a finite number"),
        ({"scale": 0}, "placement.scale must be > 0"),
        ({"x": 1, "height": 3}, "unknown keys"),
        ([1, 2, 3], "must be a mapping"),
    ],
)
def test_placement_rejects_bad_values_naming_the_field(mapping, message):
    with pytest.raises(InputError, match=message) as info:
        Placement.from_mapping(mapping, source="city.yaml")
    assert str(info.value).startswith("city.yaml")


def test_frame_roundtrips_through_dict():
    frame = Frame("EPSG:2056", origin=(2_683_000.0, 1_247_000.0, 400.0))
    again = Frame.from_dict(frame.to_dict())
    assert again.crs.equals(frame.crs)
    np.testing.assert_array_equal(again.origin, frame.origin)


def test_first_georeferenced_source_fixes_the_origin_of_a_given_crs():
    frame = Frame("EPSG:3067")
    assert not frame.origin_fixed
    local = frame.to_local(np.array([[24.94, 60.17]]), pyproj.CRS("EPSG:4326"))
    assert frame.origin_fixed
    assert frame.origin[0] % 1000 == 0
    assert np.all(np.abs(local[:, :2]) < 1000)
    before = frame.origin.copy()
    frame.to_local(np.array([[25.5, 61.0]]), pyproj.CRS("EPSG:4326"))  # later sources do not move it
    np.testing.assert_array_equal(frame.origin, before)


def test_placement_fixes_the_origin_when_the_frame_has_a_crs():
    frame = Frame("EPSG:3067")
    local = frame.place(np.array([[1.0, 2.0, 0.0]]), Placement(x=385_640.0, y=6_672_480.0))
    np.testing.assert_array_equal(frame.origin, [386_000.0, 6_672_000.0, 0.0])
    np.testing.assert_allclose(local, [[-359.0, 482.0, 0.0]])


def test_frame_without_crs_keeps_source_coordinates():
    frame = Frame()
    local = frame.place(np.array([[1.0, 2.0, 3.0]]), Placement(x=10.0))
    np.testing.assert_allclose(local, [[11.0, 2.0, 3.0]])
    assert not frame.origin_fixed
