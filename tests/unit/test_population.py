"""Population: distributions (against scipy), the RiMEA table, stair speeds, placement and groups → arrays."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import shapely
from scipy import stats
from scipy.spatial.distance import pdist, squareform
from shapely.geometry import MultiPolygon, Polygon, box

from twin.errors import InputError
from twin.scenario.schema import Scenario
from twin.sim.population import (
    RIMEA_PROFILES,
    build_population,
    capacity,
    place_agents,
    sample,
    stair_speeds,
)

# RiMEA 3.0 table 1 as printed in VALIDATION.md (walking speed on the flat, m/s), typed in independently.
RIMEA_TABLE = {
    "rimea:under30": (0.58, 1.61),
    "rimea:30-50": (1.41, 1.54),
    "rimea:over50": (0.68, 1.41),
    "rimea:impaired": (0.46, 0.76),
}

N = 200_000


def rng(seed: int = 7) -> np.random.Generator:
    return np.random.default_rng(seed)


def assert_moments(x: np.ndarray, mean: float, sd: float) -> None:
    """Sample mean and sd within 5 standard errors of the reference."""
    n = len(x)
    assert abs(x.mean() - mean) < 5 * sd / math.sqrt(n), (x.mean(), mean)
    assert abs(x.std() - sd) < 5 * sd / math.sqrt(2 * n) + 1e-12, (x.std(), sd)


# --- distributions ---------------------------------------------------------------------------------------------


def test_number_and_constant() -> None:
    assert np.array_equal(sample(1.25, 4, rng()), np.full(4, 1.25))
    assert np.array_equal(sample({"dist": "constant", "value": 3}, 3, rng()), [3.0, 3.0, 3.0])
    assert np.array_equal(sample({"dist": "constant", "mean": 2}, 2, rng()), [2.0, 2.0])
    assert sample(1.0, 0, rng()).shape == (0,)


def test_normal_untruncated_matches_mean_and_sd() -> None:
    x = sample({"dist": "normal", "mean": 1.34, "sd": 0.26}, N, rng())
    assert_moments(x, 1.34, 0.26)
    assert stats.kstest(x, stats.norm(1.34, 0.26).cdf).pvalue > 1e-3


def test_normal_truncated_by_resampling_not_clipping() -> None:
    spec = {"dist": "normal", "mean": 1.34, "sd": 0.26, "min": 0.9, "max": 1.61}
    x = sample(spec, N, rng())
    assert x.min() >= 0.9
    assert x.max() <= 1.61
    # clipping would pile mass onto the bounds
    assert np.count_nonzero(x == 0.9) == 0
    assert np.count_nonzero(x == 1.61) == 0
    ref = stats.truncnorm((0.9 - 1.34) / 0.26, (1.61 - 1.34) / 0.26, loc=1.34, scale=0.26)
    assert_moments(x, ref.mean(), ref.std())
    assert stats.kstest(x, ref.cdf).pvalue > 1e-3


def test_normal_with_little_mass_inside_uses_inverse_cdf() -> None:
    spec = {"dist": "normal", "mean": 0.0, "sd": 1.0, "min": 3.5, "max": 5.0}  # 2.3e-4 of the mass
    x = sample(spec, 50_000, rng())
    assert x.min() >= 3.5
    assert x.max() <= 5.0
    ref = stats.truncnorm(3.5, 5.0)
    assert stats.kstest(x, ref.cdf).pvalue > 1e-3


def test_field_lower_bound_truncates_normal() -> None:
    x = sample({"dist": "normal", "mean": 0.2, "sd": 0.5}, N, rng(), lower=0.0)
    assert x.min() >= 0.0
    ref = stats.truncnorm((0 - 0.2) / 0.5, np.inf, loc=0.2, scale=0.5)
    assert_moments(x, ref.mean(), ref.std())


def test_uniform_matches_scipy() -> None:
    x = sample({"dist": "uniform", "min": 0, "max": 60}, N, rng())
    assert x.min() >= 0
    assert x.max() <= 60
    assert_moments(x, 30.0, 60 / math.sqrt(12))
    assert stats.kstest(x, stats.uniform(0, 60).cdf).pvalue > 1e-3


def test_lognormal_mean_and_sd_are_of_the_quantity() -> None:
    x = sample({"dist": "lognormal", "mean": 30.0, "sd": 15.0}, N, rng())
    assert x.min() > 0
    # the sample sd of a lognormal converges slowly: compare with the exact distribution instead
    s2 = math.log1p((15.0 / 30.0) ** 2)
    ref = stats.lognorm(math.sqrt(s2), scale=math.exp(math.log(30.0) - s2 / 2))
    assert ref.mean() == pytest.approx(30.0)
    assert ref.std() == pytest.approx(15.0)
    assert abs(x.mean() - 30.0) < 5 * 15.0 / math.sqrt(N)
    assert stats.kstest(x, ref.cdf).pvalue > 1e-3


def test_lognormal_truncated() -> None:
    x = sample({"dist": "lognormal", "mean": 30.0, "sd": 15.0, "min": 10, "max": 40}, N, rng())
    assert x.min() >= 10
    assert x.max() <= 40
    s2 = math.log1p(0.25)
    base = stats.lognorm(math.sqrt(s2), scale=math.exp(math.log(30.0) - s2 / 2))
    lo, hi = base.cdf(10), base.cdf(40)
    assert stats.kstest(x, lambda t: (base.cdf(np.clip(t, 10, 40)) - lo) / (hi - lo)).pvalue > 1e-3


def test_same_seed_same_draws() -> None:
    spec = {"dist": "normal", "mean": 1.34, "sd": 0.26, "min": 0.46, "max": 1.61}
    assert np.array_equal(sample(spec, 1000, rng(3)), sample(spec, 1000, rng(3)))
    assert not np.array_equal(sample(spec, 1000, rng(3)), sample(spec, 1000, rng(4)))


def test_bad_specs_raise() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        sample("rimea:giants", 3, rng())
    with pytest.raises(ValueError, match="min 2 is greater than max 1"):
        sample({"dist": "uniform", "min": 2, "max": 1}, 3, rng())
    with pytest.raises(ValueError, match="needs mean, sd"):
        sample({"dist": "normal"}, 3, rng())
    with pytest.raises(ValueError, match="no probability"):
        sample({"dist": "normal", "mean": -50, "sd": 1}, 3, rng(), lower=0)


# --- RiMEA -----------------------------------------------------------------------------------------------------


def test_rimea_profiles_are_the_table() -> None:
    for name, (lo, hi) in RIMEA_TABLE.items():
        assert RIMEA_PROFILES[name] == {"dist": "uniform", "min": lo, "max": hi}
        x = sample(name, 20_000, rng())
        assert x.min() >= lo
        assert x.max() <= hi
        assert stats.kstest(x, stats.uniform(lo, hi - lo).cdf).pvalue > 1e-3


def test_rimea_adults_is_an_equal_mixture_of_the_age_groups() -> None:
    x = sample("rimea:adults", N, rng())
    assert x.min() >= 0.58
    assert x.max() <= 1.61
    ages = [RIMEA_TABLE[k] for k in ("rimea:under30", "rimea:30-50", "rimea:over50")]
    mean = sum((a + b) / 2 for a, b in ages) / 3
    second = sum((a * a + a * b + b * b) / 3 for a, b in ages) / 3
    assert_moments(x, mean, math.sqrt(second - mean**2))


def test_rimea_test_7_demographic_groups() -> None:
    """RiMEA test 7: an open area, 4 groups of 50; every drawn speed within its group's range."""
    groups = [
        {"id": name, "count": 50, "in": {"area": "open"}, "speed_mps": name, "radius_m": 0.2}
        for name in RIMEA_TABLE
    ]
    pop = build_population(groups, {"open": (box(0, 0, 40, 40), 0)}, rng(7))
    assert len(pop["speed"]) == 200
    for gi, (lo, hi) in enumerate(RIMEA_TABLE.values()):
        v = pop["speed"][pop["group"] == gi]
        assert len(v) == 50
        assert v.min() >= lo
        assert v.max() <= hi


def test_stair_speeds_scale_with_flat_speed() -> None:
    v = np.linspace(0.3, 2.0, 300)
    up, down = stair_speeds(v)
    assert np.all(np.diff(up) >= 0)
    assert np.all(np.diff(down) >= 0)
    assert np.all(up <= v)
    assert np.all(down <= v)
    able = v >= 0.8  # everyone who walks at least as fast as the stair ranges stays inside them
    assert up[able].min() >= 0.55
    assert up.max() <= 0.80
    assert down[able].min() >= 0.60
    assert down.max() <= 1.01
    up1, down1 = stair_speeds(np.array([1.34]))
    assert up1[0] == pytest.approx(0.675)
    assert down1[0] == pytest.approx(0.805)
    slow_up, slow_down = stair_speeds(np.array([0.46]))
    assert slow_up[0] == pytest.approx(0.46)  # never faster than on the flat
    assert slow_down[0] == pytest.approx(0.46)


# --- placement -------------------------------------------------------------------------------------------------


def assert_valid_placement(pos: np.ndarray, radii: np.ndarray, region, gap: float = 0.01) -> None:
    """Brute force: every pair apart by r_i + r_j + gap, every body inside the region."""
    assert pos.shape == (len(radii), 2)
    assert np.isfinite(pos).all()
    if len(pos) > 1:
        d = squareform(pdist(pos))
        need = radii[:, None] + radii[None, :] + gap
        np.fill_diagonal(d, np.inf)
        assert (d >= need - 1e-9).all(), float((d - need).min())
    pts = shapely.points(pos)
    assert shapely.contains(region, pts).all()
    wall = shapely.distance(region.boundary, pts)
    assert (wall >= radii - 1e-9).all(), float((wall - radii).min())


@pytest.mark.parametrize(("n", "side"), [(1, 3), (50, 10), (800, 20), (2000, 20), (2400, 20)])
def test_placement_non_overlapping_inside(n: int, side: float) -> None:
    region = box(0, 0, side, side)
    radii = np.full(n, 0.2)
    pos = place_agents(region, radii, rng())
    assert_valid_placement(pos, radii, region)


def test_placement_varied_radii_holes_and_multipolygon() -> None:
    hall = Polygon(
        [(0, 0), (30, 0), (30, 20), (0, 20)],
        holes=[[(5, 5), (10, 5), (10, 10), (5, 10)], [(20, 8), (25, 8), (25, 15), (20, 15)]],
    )
    region = MultiPolygon([hall, box(40, 0, 45, 5)])
    radii = rng(1).uniform(0.15, 0.3, 1500)
    pos = place_agents(region, radii, rng())
    assert_valid_placement(pos, radii, region)
    for hole in hall.interiors:
        assert not shapely.contains_xy(Polygon(hole), pos[:, 0], pos[:, 1]).any()
    in_small = shapely.contains_xy(box(40, 0, 45, 5), pos[:, 0], pos[:, 1]).sum()
    assert 0 < in_small < 100  # spread over both parts, about in proportion to area (25 of 575 m²)


def test_placement_dense_lattice_fallback_with_varied_radii() -> None:
    region = Polygon([(0, 0), (12, 0), (12, 2), (2, 2), (2, 12), (0, 12)])  # RiMEA 6 L-shape, 44 m²
    radii = rng(2).uniform(0.18, 0.22, 150)
    pos = place_agents(region, radii, rng())
    assert_valid_placement(pos, radii, region)


def test_placement_is_deterministic_for_a_seed() -> None:
    region = box(0, 0, 15, 10)
    radii = np.full(300, 0.2)
    a = place_agents(region, radii, rng(11))
    b = place_agents(region, radii, rng(11))
    c = place_agents(region, radii, rng(12))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_placement_respects_walkable_test_and_avoid() -> None:
    region = box(0, 0, 10, 10)
    others = place_agents(region, np.full(100, 0.25), rng(1))

    def left_half(p: np.ndarray) -> np.ndarray:
        return p[:, 0] < 5.0

    radii = np.full(60, 0.2)
    pos = place_agents(region, radii, rng(2), walkable_test=left_half, avoid=(others, np.full(100, 0.25)))
    assert (pos[:, 0] < 5.0).all()
    d = np.hypot(*(pos[:, None, :] - others[None, :, :]).transpose(2, 0, 1))
    assert (d >= 0.2 + 0.25 + 0.01 - 1e-9).all()
    assert_valid_placement(pos, radii, region)


def test_capacity_is_ninety_percent_of_hexagonal_packing() -> None:
    d = 2 * 0.2 + 0.01
    hex_density = 2 / (math.sqrt(3) * d * d)
    big = box(0, 0, 100, 100)
    assert capacity(big, 0.2) == pytest.approx(0.9 * hex_density * 10_000, rel=0.01)
    assert capacity(box(0, 0, 0.3, 5), 0.2) == 0  # a 0.3 m slot takes no 0.4 m body


def test_does_not_fit_error_names_the_group_field() -> None:
    groups = [
        {"id": "a", "count": 100, "in": {"area": "lobby"}},
        {"id": "b", "count": 5000, "in": {"area": "hall"}, "radius_m": 0.2},
    ]
    regions = {"lobby": (box(-10, 0, 0, 10), 0), "hall": (box(0, 0, 20, 20), 0)}
    with pytest.raises(InputError) as info:
        build_population(groups, regions, rng(), source="s.yaml")
    msg = str(info.value)
    assert msg == (
        "s.yaml: crowd.groups[1].count: 5000 agents do not fit in area 'hall' (400 m², at most ~2472 at this "
        "radius (0.2 m))"
    )


def test_groups_sharing_an_area_do_not_overlap_and_fill_it() -> None:
    hall = box(0, 0, 20, 20)
    groups = [
        {"id": "a", "count": 1200, "in": {"area": "hall"}},
        {"id": "b", "count": 1200, "in": {"area": "hall"}, "radius_m": 0.2},
    ]
    pop = build_population(groups, {"hall": (hall, 0)}, rng())
    assert_valid_placement(pop["positions"], pop["radius"], hall)
    # the groups are mixed over the whole hall, not one beside the other
    for gi in (0, 1):
        x = pop["positions"][pop["group"] == gi, 0]
        assert x.min() < 2
        assert x.max() > 18
    too_many = [*groups, {"id": "c", "count": 200, "in": {"area": "hall"}, "radius_m": 0.2}]
    with pytest.raises(InputError) as info:
        build_population(too_many, {"hall": (hall, 0)}, rng())
    assert info.value.message.startswith(
        "crowd.groups[2].count: 2600 agents of groups 'a' (1200), 'b' (1200) and 'c' (200) do not fit in "
        "area 'hall' (400 m², at most ~2472"
    )


def test_overlapping_regions_keep_clear_of_agents_already_there() -> None:
    hall = box(0, 0, 20, 20)
    groups = [
        {"id": "a", "count": 1000, "in": {"area": "hall"}},
        {"id": "b", "count": 300, "in": {"polygon": "POLYGON ((10 0, 30 0, 30 20, 10 20, 10 0))"}},
    ]
    regions = {"hall": (hall, 0), "annex": (box(20, 0, 30, 20), 0), "upstairs": (box(0, 0, 20, 20), 1)}
    pop = build_population(groups, regions, rng())
    on_ground = pop["levels"] == 0
    assert on_ground.all()
    assert_valid_placement(pop["positions"], pop["radius"], box(0, 0, 30, 20))
    b = pop["group"] == 1
    assert (pop["positions"][b, 0] > 10).all()
    full = [groups[0] | {"count": 2400}, groups[1] | {"count": 1400}]
    with pytest.raises(
        InputError, match=r"crowd\.groups\[1\]\.count: 1400 agents do not fit .* already taken"
    ):
        build_population(full, regions, rng())


def test_100k_agents_placement_time() -> None:
    """Bench-like: 100,000 agents at 2.5 P/m² in a hall with pillars; prints the time, checks the result."""
    hall = box(0, 0, 200, 200).difference(
        shapely.union_all([box(x, y, x + 2, y + 2) for x in range(20, 200, 40) for y in range(20, 200, 40)])
    )
    radii = rng(5).uniform(0.18, 0.22, 100_000)
    t0 = time.perf_counter()
    pos = place_agents(hall, radii, rng())
    dt = time.perf_counter() - t0
    print(f"\nplace_agents: 100,000 agents in {hall.area:.0f} m2 in {dt:.2f} s")  # noqa: T201
    from scipy.spatial import cKDTree

    pairs = np.array(sorted(cKDTree(pos).query_pairs(2 * 0.22 + 0.01)))
    gap = np.hypot(*(pos[pairs[:, 0]] - pos[pairs[:, 1]]).T) - radii[pairs[:, 0]] - radii[pairs[:, 1]]
    assert gap.min() >= 0.01 - 1e-9
    assert shapely.contains_xy(hall, pos[:, 0], pos[:, 1]).all()


# --- groups → arrays -------------------------------------------------------------------------------------------


def scenario_groups() -> Scenario:
    return Scenario.from_dict(
        {
            "duration_s": 100,
            "city": {
                "areas": [
                    {
                        "id": "hall",
                        "walkable": "POLYGON ((0 0, 20 0, 20 10, 0 10, 0 0))",
                        "exits": [{"id": "east", "polygon": "POLYGON ((20 4, 21 4, 21 6, 20 6, 20 4))"}],
                    },
                    {"id": "gallery", "walkable": "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))", "z": 4.0},
                ]
            },
            "crowd": {
                "groups": [
                    {
                        "id": "staff",
                        "count": 120,
                        "in": {"area": "hall"},
                        "speed_mps": "rimea:30-50",
                        "premovement_s": {"dist": "uniform", "min": 0, "max": 60},
                        "radius_m": {"dist": "uniform", "min": 0.18, "max": 0.24},
                        "exits": ["east"],
                    },
                    {
                        "id": "visitors",
                        "count": 40,
                        "in": {"polygon": "POLYGON ((5 5, 15 5, 15 15, 5 15, 5 5))", "level": 1},
                        "stair_up_mps": {"dist": "normal", "mean": 0.675, "sd": 0.04},
                    },
                ]
            },
        }
    )


def test_build_population_arrays() -> None:
    s = scenario_groups()
    hall = s.area("hall").geometry
    gallery = s.area("gallery").geometry
    regions = {"hall": (hall, 0), "gallery": (gallery, 1)}
    pop = build_population(s.crowd.groups, regions, rng(s.seed))
    n = 160
    for key, dtype in (
        ("speed", np.float64),
        ("radius", np.float64),
        ("premovement", np.float64),
        ("stair_up", np.float64),
        ("stair_down", np.float64),
        ("levels", np.int32),
        ("group", np.int32),
    ):
        assert pop[key].shape == (n,), key
        assert pop[key].dtype == dtype, key
    assert pop["positions"].shape == (n, 2)
    assert pop["group_ids"] == ["staff", "visitors"]
    assert pop["allowed_exits"] == [["east"], None]
    staff = pop["group"] == 0
    assert staff.sum() == 120
    assert (pop["levels"][staff] == 0).all()
    assert (pop["levels"][~staff] == 1).all()
    assert pop["speed"][staff].min() >= 1.41
    assert pop["speed"][staff].max() <= 1.54
    assert pop["radius"][staff].min() >= 0.18
    assert pop["radius"][staff].max() <= 0.24
    assert pop["premovement"][staff].max() <= 60
    assert (pop["premovement"][~staff] == 0).all()
    assert (pop["radius"][~staff] == 0.2).all()
    # default speeds (normal 1.34, 0.26 in [0.46, 1.61]) and default stair-down speeds
    assert pop["speed"][~staff].min() >= 0.46
    assert pop["speed"][~staff].max() <= 1.61
    _, down = stair_speeds(pop["speed"][~staff])
    assert np.array_equal(pop["stair_down"][~staff], down)
    assert abs(pop["stair_up"][~staff].mean() - 0.675) < 0.03
    assert_valid_placement(pop["positions"][staff], pop["radius"][staff], hall)
    # the polygon group lies in the polygon ∩ gallery (level 1)
    cut = gallery.intersection(box(5, 5, 15, 15))
    assert_valid_placement(pop["positions"][~staff], pop["radius"][~staff], cut)


def test_groups_draw_independently() -> None:
    """Changing one group's count leaves the other group's draws unchanged (each group has its own stream)."""
    s = scenario_groups()
    regions = {"hall": (s.area("hall").geometry, 0), "gallery": (s.area("gallery").geometry, 1)}
    a = build_population(s.crowd.groups, regions, rng(1))
    s.crowd.groups[0].count = 100
    b = build_population(s.crowd.groups, regions, rng(1))
    assert np.array_equal(a["speed"][a["group"] == 1], b["speed"][b["group"] == 1])
    assert np.array_equal(a["speed"][a["group"] == 0][:100], b["speed"][b["group"] == 0])
    again = build_population(s.crowd.groups, regions, rng(1))
    for key in ("positions", "speed", "radius", "premovement", "stair_up", "stair_down"):
        assert np.array_equal(b[key], again[key])


def test_building_storeys_split_by_area() -> None:
    regions = {
        "office/Storey 1": (box(0, 0, 40, 16), 0),
        "office/Storey 2": (box(0, 0, 20, 16), 1),
        "office/Storey 3": (box(0, 0, 20, 16), 2),
        "yard": (box(50, 0, 60, 10), 0),
    }
    groups = [
        {"id": "all", "count": 200, "in": {"building": "office"}},
        {"id": "upper", "count": 101, "in": {"building": "office", "storeys": ["Storey 2", "Storey 3"]}},
    ]
    pop = build_population(groups, regions, rng())
    all_levels = np.bincount(pop["levels"][pop["group"] == 0], minlength=3)
    assert all_levels.tolist() == [100, 50, 50]  # in proportion to floor area
    upper = np.bincount(pop["levels"][pop["group"] == 1], minlength=3)
    assert upper.tolist() == [0, 51, 50]
    # the two groups share storeys 2 and 3 without overlapping
    for level in (1, 2):
        m = pop["levels"] == level
        assert_valid_placement(pop["positions"][m], pop["radius"][m], box(0, 0, 20, 16))
    bad = [{"id": "x", "count": 3, "in": {"building": "office", "storeys": ["Roof"]}}]
    with pytest.raises(
        InputError, match=r"crowd\.groups\[0\]\.in\.storeys\[0\]: building 'office' has no storey"
    ):
        build_population(bad, regions, rng())
