"""Gaussian plume (twin.sim.gas) against the analytic plume formula with Briggs (1973) dispersion coefficients.

Reference: the ground-level centreline concentration of a continuous point source with ground reflection,
C(x, 0, 0) = Q / (π u σy σz) exp(−H² / 2σz²), with σy, σz from Briggs' formulas as tabulated by Griffiths (1994),
Atmos. Environ. 28, 2861, table 1, typed in here independently of the module. Tolerance 1e-12 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from twin.errors import InputError
from twin.sim.gas import GaussianPlume, briggs_sigmas, buildings_inside, ppm_to_kg_m3

# Griffiths (1994) table 1: sigma = a x (1 + b x)^c  (sigma_y, then sigma_z)
BRIGGS_RURAL = {
    "A": (lambda x: 0.22 * x / np.sqrt(1 + 1e-4 * x), lambda x: 0.20 * x),
    "B": (lambda x: 0.16 * x / np.sqrt(1 + 1e-4 * x), lambda x: 0.12 * x),
    "C": (lambda x: 0.11 * x / np.sqrt(1 + 1e-4 * x), lambda x: 0.08 * x / np.sqrt(1 + 2e-4 * x)),
    "D": (lambda x: 0.08 * x / np.sqrt(1 + 1e-4 * x), lambda x: 0.06 * x / np.sqrt(1 + 1.5e-3 * x)),
    "E": (lambda x: 0.06 * x / np.sqrt(1 + 1e-4 * x), lambda x: 0.03 * x / (1 + 3e-4 * x)),
    "F": (lambda x: 0.04 * x / np.sqrt(1 + 1e-4 * x), lambda x: 0.016 * x / (1 + 3e-4 * x)),
}
BRIGGS_URBAN = {
    "A": (lambda x: 0.32 * x / np.sqrt(1 + 4e-4 * x), lambda x: 0.24 * x * np.sqrt(1 + 1e-3 * x)),
    "B": (lambda x: 0.32 * x / np.sqrt(1 + 4e-4 * x), lambda x: 0.24 * x * np.sqrt(1 + 1e-3 * x)),
    "C": (lambda x: 0.22 * x / np.sqrt(1 + 4e-4 * x), lambda x: 0.20 * x),
    "D": (lambda x: 0.16 * x / np.sqrt(1 + 4e-4 * x), lambda x: 0.14 * x / np.sqrt(1 + 3e-4 * x)),
    "E": (lambda x: 0.11 * x / np.sqrt(1 + 4e-4 * x), lambda x: 0.08 * x / np.sqrt(1 + 1.5e-3 * x)),
    "F": (lambda x: 0.11 * x / np.sqrt(1 + 4e-4 * x), lambda x: 0.08 * x / np.sqrt(1 + 1.5e-3 * x)),
}
# wind profile exponents (Irwin 1979 / US EPA) for classes A-F
POWER_LAW = {"rural": (0.07, 0.07, 0.10, 0.15, 0.35, 0.55), "urban": (0.15, 0.15, 0.20, 0.25, 0.30, 0.30)}
X = np.array([50.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0])


@pytest.mark.parametrize("terrain", ["rural", "urban"])
@pytest.mark.parametrize("height", [0.0, 25.0])
@pytest.mark.parametrize("cls", list("ABCDEF"))
def test_centreline_ground_concentration_matches_analytic(cls: str, height: float, terrain: str) -> None:
    q, u10 = 2.5, 4.0
    plume = GaussianPlume(
        100.0, -50.0, rate_kg_s=q, wind_speed_mps=u10, wind_from_deg=270.0, stability=cls, height_m=height,
        terrain=terrain,
    )  # fmt: skip
    table = BRIGGS_RURAL if terrain == "rural" else BRIGGS_URBAN
    sy, sz = table[cls][0](X), table[cls][1](X)
    p = POWER_LAW[terrain]["ABCDEF".index(cls)]
    u = u10 * (max(height, 10.0) / 10.0) ** p
    expected = q / (math.pi * u * sy * sz) * np.exp(-(height**2) / (2 * sz**2))
    # wind from the west: the axis runs east from the source
    got = plume.concentration(100.0 + X, np.full_like(X, -50.0), 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(plume.centreline(X), expected, rtol=1e-12)


def test_briggs_values_by_hand() -> None:
    # rural D at 1 km: sigma_y = 80 / sqrt(1.1) = 76.277 m, sigma_z = 60 / sqrt(2.5) = 37.947 m
    sy, sz = briggs_sigmas(np.array([1000.0]), "D")
    assert sy[0] == pytest.approx(76.2770, abs=1e-3)
    assert sz[0] == pytest.approx(37.9473, abs=1e-3)


def test_off_axis_and_elevated_formula() -> None:
    plume = GaussianPlume(
        0, 0, rate_kg_s=1.0, wind_speed_mps=5.0, wind_from_deg=270.0, stability="C", height_m=30.0
    )
    x, y, z = 800.0, 40.0, 12.0
    sy, sz = BRIGGS_RURAL["C"][0](x), BRIGGS_RURAL["C"][1](x)
    u = plume.wind_at_release_mps
    assert u == pytest.approx(5.0 * 3.0**0.10)
    c = (
        1.0 / (2 * math.pi * u * sy * sz) * math.exp(-(y**2) / (2 * sy**2))
        * (math.exp(-((z - 30) ** 2) / (2 * sz**2)) + math.exp(-((z + 30) ** 2) / (2 * sz**2)))
    )  # fmt: skip
    assert plume.concentration(np.array([x]), np.array([y]), z)[0] == pytest.approx(c, rel=1e-12)


def test_symmetry_about_the_axis() -> None:
    plume = GaussianPlume(10, 20, rate_kg_s=1.0, wind_speed_mps=3.0, wind_from_deg=37.0, stability="D")
    rng = np.random.default_rng(1)
    xd = rng.uniform(1, 3000, 200)
    yc = rng.uniform(0, 300, 200)
    xl, yl = plume.to_local(xd, yc)
    xr, yr = plume.to_local(xd, -yc)
    np.testing.assert_allclose(plume.concentration(xl, yl), plume.concentration(xr, yr), rtol=1e-12)
    assert (plume.concentration(xl, yl) > 0).any()


@pytest.mark.parametrize(
    ("wind_from", "downwind"),
    [
        (0.0, (0.0, -1.0)),
        (90.0, (-1.0, 0.0)),
        (180.0, (0.0, 1.0)),
        (270.0, (1.0, 0.0)),
        (225.0, (0.7071, 0.7071)),
    ],
)
def test_direction_convention_is_meteorological(wind_from: float, downwind: tuple[float, float]) -> None:
    plume = GaussianPlume(0, 0, rate_kg_s=1.0, wind_speed_mps=3.0, wind_from_deg=wind_from, stability="D")
    d = np.array(downwind)
    c_down = plume.concentration(np.array([500 * d[0]]), np.array([500 * d[1]]))[0]
    c_up = plume.concentration(np.array([-500 * d[0]]), np.array([-500 * d[1]]))[0]
    assert c_down > 0
    assert c_up == 0.0
    zone = plume.hazard_zone(1e-5)
    c = np.array(zone.centroid.coords[0])
    assert np.dot(c, d) / np.linalg.norm(c) > 0.999  # the zone lies downwind


def test_zone_boundary_is_the_threshold_contour() -> None:
    plume = GaussianPlume(
        500, 200, rate_kg_s=3.0, wind_speed_mps=2.5, wind_from_deg=200.0, stability="E", height_m=5
    )
    thr = 2e-4
    zone = plume.hazard_zone(thr, grid_m=5.0)
    assert zone.geom_type == "Polygon"
    assert zone.is_valid
    ring = np.array(zone.exterior.coords)
    c = plume.concentration(ring[:, 0], ring[:, 1])
    xd, _ = plume.to_plume(ring[:, 0], ring[:, 1])
    interior = (xd > xd.min() + 20) & (xd < xd.max() - 20)
    np.testing.assert_allclose(c[interior], thr, rtol=1e-9)
    # brute force on a fine grid: points well inside are above, points well outside below
    xs, ys = np.meshgrid(np.linspace(*zone.bounds[0::2], 300), np.linspace(*zone.bounds[1::2], 300))
    pts = shapely.points(xs.ravel(), ys.ravel())
    conc = plume.concentration(xs.ravel(), ys.ravel())
    inner = shapely.contains(zone.buffer(-3.0), pts)
    outer = ~shapely.intersects(zone.buffer(3.0), pts)
    assert inner.sum() > 1000
    assert (conc[inner] >= thr).all()
    assert (conc[outer] < thr).all()


def test_zone_shrinks_as_threshold_rises() -> None:
    plume = GaussianPlume(
        0, 0, rate_kg_s=1.0, wind_speed_mps=3.0, wind_from_deg=300.0, stability="D", height_m=10
    )
    zones = [plume.hazard_zone(t, grid_m=5.0) for t in (1e-5, 1e-4, 4e-4)]
    areas = [z.area for z in zones]
    assert areas[0] > areas[1] > areas[2] > 0
    assert zones[1].difference(zones[0]).area < 1e-6 * areas[1]
    assert zones[2].difference(zones[1]).area < 1e-6 * areas[2]
    assert plume.hazard_zone(1.0).is_empty  # far above anything on the ground


def test_elevated_source_zone_starts_downwind() -> None:
    plume = GaussianPlume(
        0, 0, rate_kg_s=1.0, wind_speed_mps=3.0, wind_from_deg=270.0, stability="D", height_m=40
    )
    zone = plume.hazard_zone(1e-5)
    assert zone.bounds[0] > 100.0  # the plume has to come down before the ground sees it
    assert not zone.contains(Point(0, 0))


def test_ppm_conversion() -> None:
    molar_volume_l = 8.314462618 * 298.15 / 101325.0 * 1000.0  # 24.465 L/mol at 25 °C, 1 atm
    assert ppm_to_kg_m3(1.0, molar_volume_l) == pytest.approx(1e-6, rel=1e-12)
    plume = GaussianPlume(0, 0, rate_kg_s=1.0, wind_speed_mps=3.0, wind_from_deg=270.0, stability="D")
    a = plume.hazard_zone(ppm=300.0, molar_mass_g_mol=17.031)
    b = plume.hazard_zone(ppm_to_kg_m3(300.0, 17.031))
    assert a.equals(b)


def test_buildings_inside_matches_brute_force() -> None:
    plume = GaussianPlume(0, 0, rate_kg_s=2.0, wind_speed_mps=3.0, wind_from_deg=270.0, stability="D")
    zone = plume.hazard_zone(1e-4)
    rng = np.random.default_rng(5)
    corners = rng.uniform([-200, -300], [1500, 300], (400, 2))
    boxes = [box(x, y, x + 15, y + 10) for x, y in corners]
    footprints = [*boxes, None]
    got = buildings_inside(zone, footprints)
    expected = [i for i, b in enumerate(boxes) if b.intersects(zone)]
    assert got.tolist() == expected
    assert 0 < len(expected) < len(boxes)
    whole = buildings_inside(zone, footprints, predicate="contains")
    assert set(whole.tolist()) == {i for i, b in enumerate(boxes) if zone.contains(b)}
    assert set(whole.tolist()) < set(got.tolist())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"stability": "G"}, "stability"),
        ({"stability": "AB"}, "stability"),
        ({"wind_speed_mps": 0.3}, "wind_speed_mps"),
        ({"wind_speed_mps": float("nan")}, "wind_speed_mps"),
        ({"rate_kg_s": -1.0}, "rate_kg_s"),
        ({"height_m": -2.0}, "height_m"),
        ({"terrain": "suburban"}, "terrain"),
        ({"wind_from_deg": float("inf")}, "wind_from_deg"),
    ],
)
def test_bad_release_raises_input_error(kwargs: dict, field: str) -> None:
    args = {"rate_kg_s": 1.0, "wind_speed_mps": 3.0, "wind_from_deg": 0.0, "stability": "D"} | kwargs
    with pytest.raises(InputError, match=field) as info:
        GaussianPlume(0, 0, source="scenario.yaml:hazards[0]", **args)
    assert info.value.source == "scenario.yaml:hazards[0]"


def test_bad_threshold_raises_input_error() -> None:
    plume = GaussianPlume(0, 0, rate_kg_s=1.0, wind_speed_mps=3.0, wind_from_deg=0.0, stability="D")
    with pytest.raises(InputError, match="exactly one"):
        plume.hazard_zone()
    with pytest.raises(InputError, match="exactly one"):
        plume.hazard_zone(1e-4, ppm=10.0, molar_mass_g_mol=17.0)
    with pytest.raises(InputError, match="molar_mass"):
        plume.hazard_zone(ppm=10.0)
    with pytest.raises(InputError, match="threshold"):
        plume.hazard_zone(-1.0)
    with pytest.raises(InputError, match="grid_m"):
        plume.hazard_zone(1e-4, grid_m=0.0)
