"""Congestion for quickest-path routing (twin.sim.congestion) and its use by CrowdModel.

References: Weidmann's (1993) fundamental diagram as VALIDATION.md states it (maximum specific flow about
1.22 P/(m·s) at about 1.75 P/m²); a slow, obvious Gaussian smoothing (explicit kernel sums in numpy) for the density
raster; a CrowdModel with congestion routing off for the static fields.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from scipy import ndimage

from twin.sim.congestion import (
    FREE_DENSITY_PPM2,
    MAX_FACTOR,
    congestion_factor,
    crowd_cost_factor,
    density_raster,
    weidmann_speed,
)
from twin.sim.crowd import (
    CONGESTION_EVERY_S,
    WALL_COST_EXTRA,
    WALL_COST_RANGE_M,
    CrowdModel,
    default_congestion_every_s,
)
from twin.sim.crowd_space import CrowdSpace
from twin.spatial import get_num_threads, set_num_threads

H = 0.2


def room(exits: list[dict] | None = None, size: tuple[float, float] = (10.0, 6.0)) -> CrowdSpace:
    w, h = size
    exits = exits or [{"id": "east", "polygon": f"POLYGON (({w} 2, {w + 1} 2, {w + 1} 4, {w} 4, {w} 2))"}]
    return CrowdSpace.from_areas(
        [{"id": "room", "walkable": f"POLYGON ((0 0, {w} 0, {w} {h}, 0 {h}, 0 0))", "exits": exits}],
        cell_size=H,
    )


# -- Weidmann and the factor ------------------------------------------------------------------------------------------
def test_weidmann_speed_matches_the_published_diagram():
    rho = np.linspace(0.05, 5.4, 10_000)
    v = weidmann_speed(rho)
    np.testing.assert_allclose(v, 1.34 * (1 - np.exp(-1.913 * (1 / rho - 1 / 5.4))), rtol=1e-12, atol=1e-15)
    flow = rho * v
    assert flow.max() == pytest.approx(1.22, abs=0.01)
    assert rho[np.argmax(flow)] == pytest.approx(1.75, abs=0.05)
    assert weidmann_speed(np.array([0.0]))[0] == pytest.approx(1.34)
    assert np.all(weidmann_speed(np.array([5.4, 6.0, 9.0])) == 0.0)
    assert np.all(np.diff(v) <= 0)
    assert np.all(np.diff(v[rho > 1.0]) < 0)


def test_factor_is_one_when_free_continuous_monotone_and_capped():
    rho = np.linspace(0.0, 7.0, 7001)
    f = congestion_factor(rho)
    v0 = weidmann_speed(np.array(FREE_DENSITY_PPM2))
    free = rho <= FREE_DENSITY_PPM2
    assert np.all(f[free] == 1.0)
    mid = ~free & (weidmann_speed(rho) > v0 / MAX_FACTOR)
    np.testing.assert_allclose(f[mid], v0 / weidmann_speed(rho[mid]), rtol=1e-12)
    assert np.all(np.diff(f) >= 0)
    assert np.max(np.abs(np.diff(f))) < 0.05  # continuous at 0.5 P/m² and everywhere on this grid
    assert f.max() == MAX_FACTOR
    assert np.all(f[rho >= 5.4] == MAX_FACTOR)
    assert congestion_factor(np.array([3.0]))[0] == pytest.approx(v0 / weidmann_speed(np.array([3.0]))[0])


def test_factor_is_bounded_by_the_observed_speed_ratio():
    rho = np.array([0.2, 2.0, 2.0, 2.0, 4.0])
    ratio = np.array([0.1, 1.0, 0.5, 0.2, 0.5])
    f = congestion_factor(rho, speed_ratio=ratio)
    w = congestion_factor(rho)
    np.testing.assert_allclose(f, [1.0, 1.0, min(w[2], 2.0), min(w[3], 5.0), 2.0])
    with pytest.raises(ValueError, match=r"speed_ratio must be \(5,\)"):
        congestion_factor(rho, speed_ratio=ratio[:2])
    with pytest.raises(ValueError, match="free_density must be"):
        congestion_factor(rho, free_density=0.0)
    with pytest.raises(ValueError, match="max_factor must be"):
        congestion_factor(rho, max_factor=0.5)


# -- density raster ---------------------------------------------------------------------------------------------------
def gaussian_reference(
    space: CrowdSpace, positions: np.ndarray, weights: np.ndarray, sigma_m: float
) -> np.ndarray:
    """Slow and obvious: per cell, sum over people of w * K(cell - person's cell) / (h² * sum over walkable cells of
    K(cell - c')), K the product of scipy's truncated 1-D Gaussian (radius int(4σ + 0.5) cells, normalised)."""
    h = space.cell_size
    s = sigma_m / h
    r = int(4.0 * s + 0.5)
    k1 = np.exp(-0.5 * (np.arange(-r, r + 1) / s) ** 2)
    k1 /= k1.sum()
    _, ny, nx = space.shape
    walk = space.walkable[0] > 0
    cells = space.locate(positions, np.zeros(len(positions), dtype=np.int64))
    out = np.zeros((ny, nx))
    for iy in range(ny):
        for ix in range(nx):
            if not walk[iy, ix]:
                continue
            num = 0.0
            for (_, py, px), w in zip(cells, weights, strict=True):
                dy, dx = py - iy, px - ix
                if abs(dy) <= r and abs(dx) <= r:
                    num += w * k1[dy + r] * k1[dx + r] / (h * h)
            y0, y1, x0, x1 = max(0, iy - r), min(ny, iy + r + 1), max(0, ix - r), min(nx, ix + r + 1)
            den = np.sum(
                walk[y0:y1, x0:x1] * np.outer(k1[y0 - iy + r : y1 - iy + r], k1[x0 - ix + r : x1 - ix + r])
            )
            out[iy, ix] = num / den
    return out


def test_density_raster_against_explicit_gaussian_sums():
    space = room(size=(4.0, 3.0))
    rng = np.random.default_rng(1)
    pos = rng.uniform([0.1, 0.1], [3.9, 2.9], (25, 2))
    w = rng.uniform(0.5, 1.5, 25)
    got = density_raster(space, pos, np.zeros(25, dtype=np.int32), weights=w, smoothing_m=0.4)
    np.testing.assert_allclose(got[0], gaussian_reference(space, pos, w, 0.4), rtol=1e-10, atol=1e-12)
    raw = density_raster(space, pos, np.zeros(25, dtype=np.int32), smoothing_m=0.0)
    assert raw.sum() * H * H == pytest.approx(25.0)  # unsmoothed: one person per cell area
    assert np.all(raw[space.walkable == 0] == 0.0)


def test_uniform_crowd_reads_its_density_up_to_the_walls():
    """People on a 1 m lattice (1 P/m²) fill a 10 m x 6 m room: the smoothed density is 1 within 4 % (the lattice's ripple) at least 1 m
    from the walls, and within 20 % along them (the walkable-mask normalisation: a plain Gaussian would read about
    half there; what is left is the lattice's own ripple against the wall); exit and walls stay empty."""
    space = room()
    xs, ys = np.meshgrid(np.arange(0.5, 10.0), np.arange(0.5, 6.0))
    pos = np.column_stack([xs.ravel(), ys.ravel()])
    rho = density_raster(space, pos, np.zeros(len(pos), dtype=np.int32))[0]
    _, ny, nx = space.shape
    iy, ix = np.mgrid[0:ny, 0:nx]
    c = space.cell_centres(0, iy.ravel(), ix.ravel()).reshape(ny, nx, 2)
    walk = space.walkable[0] > 0
    interior = walk & (c[..., 0] > 1.0) & (c[..., 0] < 8.5) & (c[..., 1] > 1.0) & (c[..., 1] < 5.0)
    along = walk & (c[..., 0] < 8.5) & ~interior
    np.testing.assert_allclose(rho[interior], 1.0, atol=0.04)
    np.testing.assert_allclose(rho[along], 1.0, atol=0.2)
    plain = density_raster(space, pos, np.zeros(len(pos), dtype=np.int32), smoothing_m=0.0)
    unnormalised = ndimage.gaussian_filter(plain[0], 0.5 / H, mode="constant")
    corner = space.locate(np.array([[0.1, 0.1]]), np.zeros(1, dtype=np.int32))[0]
    assert unnormalised[corner[1], corner[2]] < 0.4  # what the normalisation corrects
    assert rho[corner[1], corner[2]] > 0.9
    assert np.all(rho[~walk] == 0.0)
    with pytest.raises(ValueError, match=r"weights must be \(60,\)"):
        density_raster(space, pos, np.zeros(60, dtype=np.int32), weights=np.ones(3))
    with pytest.raises(ValueError, match="smoothing_m must be"):
        density_raster(space, pos, np.zeros(60, dtype=np.int32), smoothing_m=-1.0)


def test_a_held_up_crowd_costs_and_a_freely_walking_one_does_not():
    """The same dense group (2.8 P/m² on a 0.6 m lattice of cell centres) walking at its desired speed costs
    nothing; moving at a fifth of it costs min(Weidmann, 5) in its middle; elsewhere the factor is 1."""
    space = room(size=(12.0, 6.0))
    xs, ys = np.meshgrid(np.arange(2.1, 7.5, 0.6), np.arange(0.3, 5.8, 0.6))
    pos = np.column_stack([xs.ravel(), ys.ravel()])
    n = len(pos)
    lev = np.zeros(n, dtype=np.int32)
    desired = np.full(n, 1.3)
    free = crowd_cost_factor(space, pos, lev, velocities=np.tile([1.3, 0.0], (n, 1)), desired_speeds=desired)
    assert np.all(free == 1.0)
    slow = crowd_cost_factor(space, pos, lev, velocities=np.tile([0.26, 0.0], (n, 1)), desired_speeds=desired)
    centre = space.locate(np.array([[4.8, 2.7]]), np.zeros(1, dtype=np.int32))[0]
    rho = density_raster(space, pos, lev)[tuple(centre)]
    assert rho == pytest.approx(1 / 0.36, rel=0.03)
    assert slow[tuple(centre)] == pytest.approx(min(congestion_factor(np.array(rho)), 5.0), rel=1e-9)
    far = space.locate(np.array([[10.5, 3.0]]), np.zeros(1, dtype=np.int32))[0]
    assert slow[tuple(far)] == 1.0


# -- CrowdModel -------------------------------------------------------------------------------------------------------
def two_door_population(space: CrowdSpace, n: int = 120, seed: int = 3) -> dict:
    rng = np.random.default_rng(seed)
    pos = rng.uniform([0.5, 0.5], [7.5, 5.5], (n, 2))
    return {
        "positions": pos,
        "levels": np.zeros(n, dtype=np.int32),
        "speed": rng.uniform(1.1, 1.5, n),
        "radius": np.full(n, 0.2),
        "premovement": np.zeros(n),
        "stair_up": np.full(n, 0.68),
        "stair_down": np.full(n, 0.79),
        "group": np.zeros(n, dtype=np.int64),
        "allowed_exits": [None],
    }


@pytest.fixture(scope="module")
def two_doors() -> CrowdSpace:
    return room(
        [
            {"id": "east", "polygon": "POLYGON ((10 2.5, 11 2.5, 11 3.5, 10 3.5, 10 2.5))"},
            {"id": "north", "polygon": "POLYGON ((8 6, 9 6, 9 7, 8 7, 8 6))"},
        ]
    )


def run_model(space: CrowdSpace, every_s: float, steps: int, **kw) -> CrowdModel:
    m = CrowdModel(
        space,
        two_door_population(space),
        model="collision_free_speed",
        seed=5,
        record_every_s=1.0,
        record_trajectories=False,
        congestion_every_s=every_s,
        **kw,
    )
    for _ in range(steps):
        m.step()
    return m


def test_congestion_routing_changes_the_fields_deterministically_and_off_keeps_them(two_doors):
    static = run_model(two_doors, 0.0, 8)
    wall = two_doors.wall_cost(extra=WALL_COST_EXTRA, range_m=WALL_COST_RANGE_M)
    plain = two_doors.distance_fields(clearance_m=0.25, cost=wall)
    for a, b in zip(static.fields, plain, strict=True):
        assert a.tobytes() == b.tobytes()  # 0 s: the static shortest-path fields throughout
    busy = run_model(two_doors, 1.0, 8)
    assert busy._congestion is not None
    assert busy._congestion.max() > 1.5  # a queue at the doors
    changed = [not np.array_equal(a, b) for a, b in zip(busy.fields[:2], plain[:2], strict=True)]
    assert all(changed)
    fin = np.isfinite(plain[0])
    assert np.all(busy.fields[0][fin] >= plain[0][fin] - 1e-9)  # factors >= 1 never shorten a route
    again = run_model(two_doors, 1.0, 8)
    assert again.core.positions.tobytes() == busy.core.positions.tobytes()
    for a, b in zip(again.fields, busy.fields, strict=True):
        assert a.tobytes() == b.tobytes()


def test_congestion_routing_does_not_depend_on_the_thread_count(two_doors):
    before = get_num_threads()
    try:
        runs = []
        for n in (1, 2):
            set_num_threads(n)
            m = run_model(two_doors, 1.0, 6)
            runs.append((m.core.positions.copy(), [f.copy() for f in m.fields]))
    finally:
        set_num_threads(before)
    assert runs[0][0].tobytes() == runs[1][0].tobytes()
    for a, b in zip(runs[0][1], runs[1][1], strict=True):
        assert a.tobytes() == b.tobytes()


def test_congestion_every_s_must_be_finite_and_not_negative(two_doors):
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="congestion_every_s must be a finite number >= 0"):
            CrowdModel(two_doors, two_door_population(two_doors), congestion_every_s=bad)


def test_default_re_routing_interval_grows_with_the_space():
    """2 s up to 1.25 million walkable cells x exits (10,000 m^2 at 0.2 m, 5 exits), proportionally longer beyond
    (each re-routing is a field per exit over the whole raster): the 100,000-person benchmark building, 2.5
    million cells and 4 exits, re-routes every 16 s."""
    assert default_congestion_every_s(40_000, 2) == CONGESTION_EVERY_S
    assert default_congestion_every_s(250_000, 5) == CONGESTION_EVERY_S
    assert default_congestion_every_s(500_000, 5) == pytest.approx(2 * CONGESTION_EVERY_S)
    assert default_congestion_every_s(2_500_000, 4) == pytest.approx(16.0)


def test_a_model_without_an_interval_takes_its_space_s_default(two_doors):
    m = CrowdModel(two_doors, two_door_population(two_doors))
    cells = int(np.count_nonzero(two_doors.walkable))
    assert m.congestion_every_s == default_congestion_every_s(cells, len(m.exit_ids)) == CONGESTION_EVERY_S


def test_routing_runs_at_its_own_interval_whatever_the_recording_interval(two_doors, monkeypatch):
    """Quickest-path re-routing every 1 s and exit choice every 2 s also happen when a Mesa step (the recording
    interval) is 5 s: at the core times 1, 2, ... s and 2, 4, ... s."""
    seen: dict[str, list[float]] = {"congestion": [], "choice": []}
    m = CrowdModel(
        two_doors,
        two_door_population(two_doors),
        model="collision_free_speed",
        seed=5,
        record_every_s=5.0,
        record_trajectories=False,
        congestion_every_s=1.0,
        exit_choice_every_s=2.0,
    )
    congestion, choice = m._update_congestion, m._update_exit_choice
    monkeypatch.setattr(
        m, "_update_congestion", lambda: (seen["congestion"].append(m.core.time), congestion())
    )
    monkeypatch.setattr(m, "_update_exit_choice", lambda: (seen["choice"].append(m.core.time), choice()))
    m.step()
    m.step()
    assert m.core.time == pytest.approx(10.0)
    assert m.time_s == pytest.approx(10.0)
    assert np.allclose(seen["congestion"], np.arange(1.0, 10.5, 1.0))
    assert np.allclose(seen["choice"], np.arange(2.0, 10.5, 2.0))


def test_exit_choice_every_s_must_be_finite_and_positive(two_doors):
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="exit_choice_every_s must be a finite number > 0"):
            CrowdModel(two_doors, two_door_population(two_doors), exit_choice_every_s=bad)


def test_wall_cost_against_the_distance_of_each_cell_centre_to_the_walls():
    """CrowdSpace.wall_cost against shapely: 1 + extra (1 - d / range) for walkable cells (not exits) whose centre is
    d < range from the walkable area's boundary minus the exit opening, 1 elsewhere."""
    space = room()
    cost = space.wall_cost(extra=1.5, range_m=0.8)
    walls = shapely.MultiLineString([list(map(tuple, w.reshape(2, 2))) for w in space.walls])
    opening = shapely.box(10.0 - 1e-9, 2.0, 10.0 + 1e-9, 4.0)
    assert (
        walls.intersection(opening).length < 1e-6
    )  # no wall across the door (only the ends of those beside)
    iy, ix = np.nonzero(np.ones(space.shape[1:], dtype=bool))
    centres = space.cell_centres(0, iy, ix)
    d = shapely.distance(walls, shapely.points(centres))
    walk = (space.walkable[0, iy, ix] > 0) & (space.exit_cells[0, iy, ix] < 0)
    want = np.where(walk & (d < 0.8), 1.0 + 1.5 * (1.0 - d / 0.8), 1.0)
    np.testing.assert_allclose(cost[0, iy, ix], want, rtol=0, atol=1e-9)
    assert cost.max() > 2.0
    assert np.count_nonzero(cost == 1.0) > 0
    assert np.all(space.wall_cost(extra=0.0, range_m=0.8) == 1.0)
    for bad in (
        {"extra": -1.0, "range_m": 0.8},
        {"extra": 1.0, "range_m": 0.0},
        {"extra": math.nan, "range_m": 1},
    ):
        with pytest.raises(ValueError, match="must be a finite"):
            space.wall_cost(**bad)
