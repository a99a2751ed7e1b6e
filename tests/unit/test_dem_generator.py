"""The generated DEM: a GeoTIFF the terrain loader reads, with the requested extent, CRS, hollows where asked and
the same heights for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

from twin.city import City
from twin.city.dem_generator import generate_dem


def test_generated_dem_loads_with_its_extent_and_hollow(tmp_path):
    bounds = (385_000.0, 6_672_000.0, 386_000.0, 6_673_000.0)
    hollow = (385_500.0, 6_672_500.0, 8.0, 40.0)
    p = generate_dem(
        tmp_path / "dem.tif", bounds=bounds, crs="EPSG:3067", cell_m=5.0, hollows=[hollow], seed=3
    )
    city = City("EPSG:3067")
    city.add_file(p, id="ground")
    t = city.terrain
    assert t.shape == (200, 200)
    assert t.cell_size == pytest.approx((5.0, 5.0))
    b = t.bounds()
    assert b[1, 0] - b[0, 0] == pytest.approx(1000.0, abs=5.0)
    # the hollow's centre is lower than points 150 m around it
    import rasterio

    with rasterio.open(p) as ds:
        z = ds.read(1)
        r, c = ds.index(hollow[0], hollow[1])
        ring = [
            ds.index(hollow[0] + dx, hollow[1] + dy) for dx, dy in ((150, 0), (-150, 0), (0, 150), (0, -150))
        ]
        assert all(z[r, c] < z[i, j] - 2.0 for i, j in ring)
        assert str(ds.crs) == "EPSG:3067"
    again = generate_dem(
        tmp_path / "dem2.tif", bounds=bounds, crs="EPSG:3067", cell_m=5.0, hollows=[hollow], seed=3
    )
    with rasterio.open(p) as a, rasterio.open(again) as b2:
        assert np.array_equal(a.read(1), b2.read(1))


def test_bad_bounds_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="bounds"):
        generate_dem(tmp_path / "x.tif", bounds=(1, 1, 0, 2), crs="EPSG:3067")
    assert not list(tmp_path.iterdir())


def test_a_dem_first_in_a_city_with_a_given_crs_fixes_the_origin(tmp_path):
    # the scenario names the CRS (city.crs) but no origin: the first georeferenced source still fixes it, and the
    # terrain is in local metres (it was left in world coordinates when the CRS was given)
    p = generate_dem(tmp_path / "d.tif", bounds=(392_000, 3_797_000, 394_000, 3_799_000), crs="EPSG:32611")
    city = City("EPSG:32611")
    city.add_file(p, id="ground")
    assert city.frame.origin.tolist() == [393_000.0, 3_798_000.0, 0.0]
    b = city.terrain.bounds()
    assert b[0, :2].tolist() == pytest.approx([-1000.0, -1000.0])
    assert b[1, :2].tolist() == pytest.approx([1000.0, 1000.0])
