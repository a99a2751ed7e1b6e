"""CrowdSim (C++ crowd core) against numpy references of one model step, RiMEA test cases and laboratory data.

References and tolerances:
* one social-force / collision-free-speed step against the model equations written out in numpy: 1e-9 m;
* RiMEA 3.0 test 1 (40 m corridor at 1.33 m/s: 26-34 s), tests 2/3 (time on a 10 m stair = length / stair speed
  within 5 %), test 5 (each agent starts at its pre-movement time), test 6 (nobody leaves the walkable area or
  crosses a wall, here under adversarial parameters);
* bottleneck flow through a 1 m door (Seyfried et al. 2009; Liao et al. 2014: laboratory 1.5-2.0 P/s): everyone
  leaves and the 10-90 % flow lies in 1.3-2.2 P/s;
* symmetric deadlocks in which JuPedSim 1.4's CollisionFreeSpeedModel freezes (checked by hand with jupedsim
  1.4.2: both agents stay forever) clear within a minute;
* results are bitwise identical for 1 and 2 threads and for the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from twin import _core
from twin.sim.crowd_core import EVACUATED, MODELS, ON_STAIR, WAITING, WALKING, CrowdSim, default_params
from twin.sim.rasterize import centre_rule_space
from twin.spatial import DistanceField, get_num_threads, set_num_threads

H = 0.2  # cell size, metres

# ----------------------------------------------------------------------------------------------------------------
# Small geometry helpers: walkable polygons per level -> rasters, walls (boundary segments, open at exits),
# exit cells, and distance fields to exits.


def make_space(levels, exits, *, pad=0.4, inner_walls=()):
    """levels: one shapely polygon per level; exits: (level, polygon) pairs; inner_walls: extra
    (level, x0, y0, x1, y1) wall segments (thin walls the raster does not know)."""
    return centre_rule_space(levels, exits, cell_size=H, pad=pad, storey_height=3.0, inner_walls=inner_walls)


def exit_field(space, exit_ids=None, stairs=None, stair_cost=None):
    """Distance (L, ny, nx) to the cells of the given exits (default all), stairs as connectors."""
    conn = None
    if stairs is not None and len(stairs):
        df0 = DistanceField(space["walkable"], cell_size=H, origins=space["origins"])
        rows = []
        for s in np.atleast_2d(stairs):
            cells = df0.locate(np.array([s[1:3], s[4:6]]), np.array([int(s[0]), int(s[3])]))
            rows.append([*cells[0], *cells[1], s[6] if stair_cost is None else stair_cost])
        conn = np.array(rows, float)
    df = DistanceField(space["walkable"], cell_size=H, origins=space["origins"], connectors=conn)
    ex = space["exit_cells"]
    sel = ex >= 0 if exit_ids is None else np.isin(ex, exit_ids)
    return df.compute(np.argwhere(sel))


def make_sim(model, space, *, fields=None, dt=0.05, seed=1, stairs=None, params=None):
    sim = CrowdSim(model=model, dt=dt, seed=seed, stairs=stairs, params=params, **space)
    sim.set_fields(fields if fields is not None else [exit_field(space)])
    return sim


def cell_walkable(space, positions, levels):
    """Is each (x, y) on its level inside a walkable cell (numpy reference of the cell convention)?"""
    o = space["origins"][levels]
    ix = np.floor((positions[:, 0] - o[:, 0]) / H).astype(int)
    iy = np.floor((positions[:, 1] - o[:, 1]) / H).astype(int)
    L, ny, nx = space["walkable"].shape
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    ok = np.zeros(len(positions), bool)
    ok[inside] = space["walkable"][levels[inside], iy[inside], ix[inside]] > 0
    return ok


def crossings(p0, p1, levels, space):
    """Number of moves p0 -> p1 that properly cross a wall of their level (numpy reference)."""
    w, wl = space["walls"], space["wall_levels"]
    if len(w) == 0 or len(p0) == 0:
        return 0

    def orient(ax, ay, bx, by, cx, cy):
        return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)

    a, b = w[None, :, 0:2], w[None, :, 2:4]
    p, q = p0[:, None, :], p1[:, None, :]
    o1 = orient(a[..., 0], a[..., 1], b[..., 0], b[..., 1], p[..., 0], p[..., 1])
    o2 = orient(a[..., 0], a[..., 1], b[..., 0], b[..., 1], q[..., 0], q[..., 1])
    o3 = orient(p[..., 0], p[..., 1], q[..., 0], q[..., 1], a[..., 0], a[..., 1])
    o4 = orient(p[..., 0], p[..., 1], q[..., 0], q[..., 1], b[..., 0], b[..., 1])
    cross = (o1 * o2 < 0) & (o3 * o4 < 0) & (levels[:, None] == wl[None, :])
    return int(cross.sum())


def max_overlap(positions, radius):
    """Deepest overlap r_i + r_j - d_ij over all pairs (0 if none)."""
    if len(positions) < 2:
        return 0.0
    d = np.hypot(*(positions[:, None, :] - positions[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    return float(max(0.0, (radius[:, None] + radius[None, :] - d).max()))


def grid_points(box, spacing, n, rng):
    x0, y0, x1, y1 = box
    xs = np.arange(x0 + spacing / 2, x1 - spacing / 4, spacing)
    ys = np.arange(y0 + spacing / 2, y1 - spacing / 4, spacing)
    pts = np.array([(x, y) for x in xs for y in ys])
    return pts[rng.permutation(len(pts))[:n]]


ROOM_DOOR = shapely.union(shapely.box(0, 0, 10, 10), shapely.box(10, 4.5, 12.5, 5.5))
ROOM_DOOR_EXIT = shapely.box(12, 4.5, 12.5, 5.5)


# ----------------------------------------------------------------------------------------------------------------
# One step of each model against its equations in numpy.


def open_room():
    space = make_space([shapely.box(0, 0, 30, 12)], [(0, shapely.box(29.6, 0, 30, 12))])
    return space, exit_field(space)


def test_social_force_step_matches_numpy_reference():
    space, field = open_room()
    rng = np.random.default_rng(7)
    # Pairs in contact (body force, friction after the first substep) and at social distance, far from walls.
    base = np.array([[5.0, 6.0], [5.35, 6.1], [5.2, 5.7], [6.0, 6.3], [6.5, 5.6], [4.6, 6.4]])
    pos = base + rng.uniform(-0.02, 0.02, base.shape)
    v0 = np.array([1.2, 1.4, 1.0, 1.34, 1.5, 1.1])
    rad = np.array([0.2, 0.22, 0.18, 0.2, 0.25, 0.2])
    sim = make_sim("social_force", space, fields=[field])
    sim.add_agents(pos, 0, v0, rad, 0.0, 0, 0.6, 0.7)
    steps = 2  # (the second step's social force sees the speeds gained in the first)
    sim.step(steps)

    v0, rad = sim.desired_speed.astype(float), sim.radius.astype(float)  # stored as float32 in the core
    p = default_params("social_force")
    m, tau, A, B, k, kappa, lam, T = (
        p[n]
        for n in (
            "mass",
            "tau",
            "agent_strength",
            "agent_range",
            "body_force",
            "friction",
            "anisotropy",
            "time_gap",
        )
    )
    h = 0.05 / sim.substeps
    e0 = np.array([1.0, 0.0])  # the field falls uniformly along x here
    x, v = pos.copy(), np.zeros_like(pos)
    capped = grown = 0
    # Multiple time stepping: the social repulsion is evaluated at each step's first substep (held as float32
    # over the step); the driving term and the contact forces in every substep.
    for sub in range(steps * sim.substeps):
        if sub % sim.substeps == 0:
            social = np.zeros_like(x)
            for i in range(len(x)):
                for j in range(len(x)):
                    if i == j:
                        continue
                    d = np.hypot(*(x[i] - x[j]))
                    lij = rad[i] + rad[j]
                    # the space kept ahead grows with the speed along the desired direction (up to v0), towards j
                    # in full if j is straight ahead, falling linearly to 0 at a lateral offset of l_ij (j beside
                    # the lane)
                    fwd = e0 @ (x[j] - x[i])
                    side = abs(e0[0] * (x[j] - x[i])[1] - e0[1] * (x[j] - x[i])[0])
                    lane = max(0.0, 1.0 - side / lij) if fwd > 0 else 0.0
                    lsoc = lij + T * min(max(v[i] @ e0, 0.0), v0[i]) * lane
                    grown += lsoc > lij
                    if d - lsoc > p["range_cutoff"] * B:
                        continue
                    n = (x[i] - x[j]) / d
                    social[i] += A * np.exp((lsoc - d) / B) * (lam + (1 - lam) * 0.5 * (1 + fwd / d)) * n
                back = -(social[i] @ e0)  # the social force never pushes back harder than m v0 / tau
                if back > m * v0[i] / tau:
                    social[i] += (back - m * v0[i] / tau) * e0
                    capped += 1
            social = social.astype(np.float32).astype(float)
        f = m * (v0[:, None] * e0 - v) / tau + social
        for i in range(len(x)):
            for j in range(len(x)):
                d = np.hypot(*(x[i] - x[j]))
                lij = rad[i] + rad[j]
                if i != j and d < lij:
                    g = lij - d
                    n = (x[i] - x[j]) / d
                    t = np.array([-n[1], n[0]])
                    f[i] += min(kappa * g, 0.25 * m / h) * ((v[j] - v[i]) @ t) * t
                    f[i] += k * g * n
        v = v + h * f / m
        sp = np.hypot(v[:, 0], v[:, 1])
        cap = p["speed_cap"] * v0
        v[sp > cap] *= (cap / sp)[sp > cap, None]
        x = x + h * v
    assert capped > 0  # the configuration exercises the cap on the backward social force
    assert grown > 0  # and the speed-dependent space
    np.testing.assert_allclose(sim.positions, x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sim.velocities, v, rtol=0, atol=1e-7)


@pytest.mark.parametrize("dt", [0.01, 0.02, 0.1])
def test_social_force_gives_the_same_motion_with_any_step(dt):
    """Multiple time stepping holds the social repulsion for social_interval (0.05 s) whatever dt is: steps of 0.01 s
    (five per evaluation), 0.02 s (an evaluation in the middle of every other step) or 0.1 s (two per step) evaluate
    the same forces at the same times as steps of 0.05 s in five 0.01 s substeps (in an open room with a uniform
    field, where the desired directions do not depend on when they are sampled). Also with a runner whose contact
    list must last from one evaluation to the next."""
    space, field = open_room()
    rng = np.random.default_rng(11)
    base = np.array([[5.0, 6.0], [5.35, 6.1], [5.2, 5.7], [6.0, 6.3], [6.5, 5.6], [4.6, 6.4], [4.1, 6.0]])
    pos = base + rng.uniform(-0.02, 0.02, base.shape)
    v0 = np.array([1.2, 1.4, 1.0, 1.34, 1.5, 1.1, 3.0])
    runs = {}
    for step in (0.05, dt):
        sim = make_sim("social_force", space, fields=[field], dt=step)
        sim.add_agents(pos, 0, v0, 0.2)
        sim.step(round(1.0 / step))
        runs[step] = (sim.positions.copy(), sim.velocities.copy())
    np.testing.assert_allclose(runs[dt][0], runs[0.05][0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(runs[dt][1], runs[0.05][1], rtol=0, atol=1e-7)
    assert np.ptp(runs[0.05][0][:, 0]) > 0.5  # (the group spread out along x: the runner pulled ahead)


def test_collision_free_speed_step_matches_numpy_reference():
    space, field = open_room()
    pos = np.array([[5.0, 6.0], [5.8, 6.25], [6.6, 5.7], [5.3, 5.2], [7.5, 6.0], [4.2, 6.6]])
    v0 = np.array([1.2, 1.4, 1.0, 1.34, 1.5, 1.1])
    rad = np.full(6, 0.2)
    sim = make_sim("collision_free_speed", space, fields=[field])
    sim.add_agents(pos, 0, v0, rad, 0.0, 0, 0.6, 0.7)
    sim.step(1)

    v0, rad = sim.desired_speed.astype(float), sim.radius.astype(float)  # stored as float32 in the core
    p = default_params("collision_free_speed")
    a, D, T = p["agent_strength"], p["agent_range"], p["time_gap"]
    h = 0.05
    e0 = np.array([1.0, 0.0])
    expect = pos.copy()
    for i in range(len(pos)):
        e = e0.copy()
        for j in range(len(pos)):
            d = np.hypot(*(pos[i] - pos[j]))
            if j != i and d - rad[i] - rad[j] <= p["range_cutoff"] * D:
                e += a * np.exp((rad[i] + rad[j] - d) / D) * (pos[i] - pos[j]) / d
        e /= np.hypot(*e)
        speed = v0[i]
        for j in range(len(pos)):
            rel = pos[j] - pos[i]
            lij = rad[i] + rad[j]
            if j != i and rel @ e > 0 and abs(e[0] * rel[1] - e[1] * rel[0]) < lij:
                speed = min(speed, (np.hypot(*rel) - lij) / T)
        step = h * max(speed, 0.0) * e
        for j in range(len(pos)):  # the reference configuration must not need the half-gap clamp
            rel = pos[j] - pos[i]
            d = np.hypot(*rel)
            if j != i:
                assert step @ rel / d <= 0.5 * (d - rad[i] - rad[j])
        expect[i] = pos[i] + step
    np.testing.assert_allclose(sim.positions, expect, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------------------------------------------
# RiMEA 1: walking speed in a 2 m x 40 m corridor.


@pytest.mark.parametrize("model", MODELS)
def test_rimea1_corridor_speed(model):
    space = make_space([shapely.box(0, 0, 41, 2)], [(0, shapely.box(40.6, 0, 41, 2))])
    sim = make_sim(model, space)
    sim.add_agents(np.array([[0.5, 1.0]]), 0, 1.33, 0.2)
    t40 = None
    while sim.time < 60 and sim.counts()["evacuated"] == 0:
        sim.step(1)
        if t40 is None and sim.positions[0, 0] >= 40.5:
            t40 = sim.time
    assert t40 is not None
    assert 26.0 <= t40 <= 34.0  # RiMEA 1
    assert abs(t40 - 40.0 / 1.33) < 1.0  # and at the configured speed (acceleration costs the SFM ~tau)
    assert sim.state[0] == EVACUATED
    assert sim.exit_index[0] == 0


# ----------------------------------------------------------------------------------------------------------------
# Bottleneck: 150 agents, 1 m door; everyone leaves, flow, overlaps, walkable area, walls at every step.


@pytest.mark.parametrize("model", MODELS)
def test_bottleneck_flow_overlap_and_walls(model):
    space = make_space([ROOM_DOOR], [(0, ROOM_DOOR_EXIT)])
    sim = make_sim(model, space)
    rng = np.random.default_rng(3)
    n = 150
    pos = grid_points((0, 0, 10, 10), 0.5, n, rng) + rng.uniform(-0.05, 0.05, (n, 2))
    sim.add_agents(pos, 0, rng.normal(1.34, 0.1, n).clip(1.0, 1.6), 0.2)
    rad = sim.radius.astype(float)
    prev = sim.positions.copy()
    worst, outside, crossed = 0.0, 0, 0
    gone = np.zeros(n, dtype=bool)
    while sim.counts()["evacuated"] < n and sim.time < 300:
        sim.step(1)
        # exit times lie in the step just made: never after its end (time), even by rounding
        left = np.isfinite(sim.exit_time) & ~gone
        assert (sim.exit_time[left] <= sim.time).all()
        assert (sim.exit_time[left] > sim.time - sim.dt).all()
        gone |= left
        cur = sim.positions.copy()
        act = sim.state == WALKING
        outside += int((~cell_walkable(space, cur[act], sim.levels[act])).sum())
        crossed += crossings(prev[act], cur[act], sim.levels[act], space)
        if sim.step_count % 5 == 0:
            worst = max(worst, max_overlap(cur[act], rad[act]))
        prev = cur
    et = np.sort(sim.exit_time)
    assert np.isfinite(et).all(), "not everyone left"
    k10, k90 = int(0.1 * n), int(0.9 * n) - 1
    flow = (k90 - k10) / (et[k90] - et[k10])
    assert 1.3 <= flow <= 2.2, flow
    assert outside == 0
    assert crossed == 0
    p = sim.params
    if model == "social_force":
        assert worst < 0.05  # the body force keeps compression to a few centimetres
    else:  # overlaps only while squeezing out of a deadlock, bounded by unstick_shrink_max * radius
        assert worst <= p["unstick_shrink_max"] * 0.2 + 1e-9


def test_collision_free_speed_never_overlaps_in_free_flow():
    space = make_space([shapely.box(0, 0, 30, 4)], [(0, shapely.box(29.6, 0, 30, 4))])
    sim = make_sim("collision_free_speed", space)
    rng = np.random.default_rng(5)
    pos = grid_points((0, 0, 10, 4), 0.45, 60, rng)
    sim.add_agents(pos, 0, rng.uniform(0.8, 1.6, 60), 0.2)
    worst = 0.0
    while sim.counts()["evacuated"] < 60 and sim.time < 60:
        sim.step(2)
        act = sim.state == WALKING
        worst = max(worst, max_overlap(sim.positions[act], sim.radius[act].astype(float)))
    assert sim.counts()["evacuated"] == 60
    assert worst == 0.0


# ----------------------------------------------------------------------------------------------------------------
# Hard guarantees under adversarial settings: RiMEA 6 corner, plus a thin wall the raster does not know.


@pytest.mark.parametrize("model", MODELS)
def test_adversarial_nobody_leaves_walkable_or_crosses_walls(model):
    corner = shapely.union(shapely.box(0, 0, 12, 2), shapely.box(10, 0, 12, 12))
    thin = [(0, 5.0, 0.6, 5.0, 2.0), (0, 10.3, 6.0, 12.0, 6.0)]  # walls with walkable cells on both sides
    space = make_space([corner], [(0, shapely.box(10, 11.6, 12, 12))], inner_walls=thin)
    if model == "social_force":
        params = {"wall_strength": 0.0, "wall_body_force": 0.0, "max_substep": 0.05, "speed_cap": 3.0}
    else:
        params = {"wall_strength": 0.0, "agent_strength": 0.0}
    sim = make_sim(model, space, params=params, dt=0.05)
    rng = np.random.default_rng(11)
    pos = grid_points((0.2, 0.2, 4.5, 1.8), 0.42, 20, rng)
    sim.add_agents(pos, 0, rng.uniform(2.0, 4.0, 20), 0.2)
    prev = sim.positions.copy()
    outside = crossed = 0
    for _ in range(600):
        sim.step(1)
        cur = sim.positions.copy()
        act = (sim.state == WALKING) | (sim.state == EVACUATED)
        live = sim.state == WALKING
        outside += int((~cell_walkable(space, cur[live], sim.levels[live])).sum())
        crossed += crossings(prev[act], cur[act], sim.levels[act], space)
        prev = cur
    assert outside == 0
    assert crossed == 0
    # The thin walls leave gaps (0.6 m at the bottom of the first, 0.3 m at the left of the second) and the field
    # ignores them: agents pressed against them and some found the first gap, without anyone crossing a wall.
    assert (sim.positions[:, 0] > 5.0).any()


# ----------------------------------------------------------------------------------------------------------------
# Thread count and seed: bitwise identical results.


def _bottleneck_state(model, seed, threads, steps=300):
    old = get_num_threads()
    set_num_threads(threads)
    try:
        space = make_space([ROOM_DOOR], [(0, ROOM_DOOR_EXIT)])
        sim = make_sim(model, space, seed=seed)
        rng = np.random.default_rng(1)
        pos = grid_points((0, 0, 10, 10), 0.45, 400, rng)
        sim.add_agents(pos, 0, rng.normal(1.34, 0.2, 400).clip(0.6, 2.0), 0.2)
        sim.step(steps)
        return {k: getattr(sim, k).copy() for k in ("positions", "velocities", "state", "exit_time", "z")}
    finally:
        set_num_threads(old)


@pytest.mark.parametrize("model", MODELS)
def test_results_do_not_depend_on_thread_count(model):
    one = _bottleneck_state(model, 4, 1)
    two = _bottleneck_state(model, 4, 2)
    for k in one:
        np.testing.assert_array_equal(one[k], two[k], err_msg=k)
    assert (one["state"] == EVACUATED).sum() > 10  # the run got somewhere


def _dense_state(threads, dt):
    """1,600 people at 4 P/m^2 pressing to a 1 m door (social force), one of them running at 5 m/s: the contact
    lists reach as far as two agents can close within a step at the largest desired speed, so they hold more than
    kListCap = 12 neighbours and go to the shared pool (filled in whatever order the threads reach it)."""
    old = get_num_threads()
    set_num_threads(threads)
    try:
        room = shapely.union(shapely.box(0, 0, 20, 20), shapely.box(20, 9.5, 22.5, 10.5))
        space = make_space([room], [(0, shapely.box(22, 9.5, 22.5, 10.5))])
        sim = make_sim("social_force", space, seed=3, dt=dt)
        rng = np.random.default_rng(2)
        pos = grid_points((0, 0, 20, 20), 0.5, 1600, rng)
        speed = rng.normal(1.34, 0.26, len(pos)).clip(0.5, 2.0)
        speed[0] = 5.0
        sim.add_agents(pos, 0, speed, 0.2)
        sim.step(round(3.0 / dt))
        state = {k: getattr(sim, k).copy() for k in ("positions", "velocities", "state")}
        return state, sim.list_pool_bytes
    finally:
        set_num_threads(old)


@pytest.mark.parametrize("dt", [0.05, 0.01])  # (0.01 s: the lists last over five steps)
def test_long_neighbour_lists_in_the_pool_do_not_change_results_with_threads(dt):
    (one, pool_one), (two, pool_two) = _dense_state(1, dt), _dense_state(2, dt)
    assert pool_one > 0  # the pool was used
    assert pool_two > 0
    for k in one:
        np.testing.assert_array_equal(one[k], two[k], err_msg=k)


def _stair_queue_state(model, threads):
    """2,400 people on an upper floor queueing for a short stair down to the exit floor, run for 1.5 s at each thread
    count of `threads` in turn (set_num_threads between step calls): every step, some of them ask to enter the stair
    or come off it, and some leave through the exit below."""
    old = get_num_threads()
    try:
        floor = shapely.box(0, 0, 40, 16)
        space = make_space([floor, floor], [(0, shapely.box(0, 7, 0.4, 9))])
        stairs = np.array([[1, 20.0, 8.0, 0, 17.5, 8.0, 3.0, 2.0]])  # (crossed in about 5 s)
        sim = make_sim(model, space, fields=[exit_field(space, stairs=stairs)], stairs=stairs)
        rng = np.random.default_rng(5)
        pos = grid_points((0, 0, 40, 16), 0.5, 2400, rng)
        sim.add_agents(pos, 1, rng.normal(1.34, 0.26, len(pos)).clip(0.5, 2.0), 0.2)
        sim.add_agents(np.array([[5.0, 8.0], [6.0, 8.0]]), 0, 1.34, 0.2)  # (someone leaves in every run)
        for t in threads:
            set_num_threads(t)
            sim.step(30)
        return {
            k: getattr(sim, k).copy() for k in ("positions", "velocities", "state", "levels", "exit_time")
        }
    finally:
        set_num_threads(old)


@pytest.mark.parametrize("model", MODELS)
def test_changing_the_thread_count_between_steps_does_not_change_results(model):
    """The per-thread lists of a substep (agents leaving, stair requests) from a run at more threads must not be
    taken up again at fewer: 2 and 1 threads in turn give the results of 1 thread throughout. (Which thread lists
    what varies from run to run: six switches to 1 thread.)"""
    one = _stair_queue_state(model, (1,) * 12)
    assert (one["state"] == ON_STAIR).sum() > 0  # the stair is in use at the switch and after
    assert (one["state"] == EVACUATED).sum() >= 2
    other = _stair_queue_state(model, (2, 1) * 6)
    for k in one:
        np.testing.assert_array_equal(one[k], other[k], err_msg=k)


def test_same_seed_same_result():
    a = _bottleneck_state("collision_free_speed", 9, 2, steps=200)
    b = _bottleneck_state("collision_free_speed", 9, 2, steps=200)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


# ----------------------------------------------------------------------------------------------------------------
# Deadlocks in which JuPedSim's CollisionFreeSpeedModel freezes (head-on at a door, head-on in a 1.2 m corridor,
# opposite flows at an L corner): they must clear.

DEADLOCKS = {
    "door_head_on": (
        shapely.union_all([shapely.box(0, 0, 5, 5), shapely.box(5, 2, 5.3, 3), shapely.box(5.3, 0, 10.3, 5)]),
        [shapely.box(9.8, 0, 10.3, 5), shapely.box(0, 0, 0.5, 5)],
        [(4.0, 2.5), (6.3, 2.5)],
    ),
    "corridor_head_on": (
        shapely.box(0, 0, 10, 1.2),
        [shapely.box(9.5, 0, 10, 1.2), shapely.box(0, 0, 0.5, 1.2)],
        [(2.0, 0.6), (8.0, 0.6)],
    ),
    "corner_opposite": (
        shapely.union(shapely.box(0, 0, 10, 2), shapely.box(8, 0, 10, 10)),
        [shapely.box(8, 9.5, 10, 10), shapely.box(0, 0, 0.5, 2)],
        [(1.0, 1.0), (9.0, 9.0)],
    ),
}


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("case", sorted(DEADLOCKS))
def test_symmetric_deadlocks_clear(model, case):
    poly, exits, starts = DEADLOCKS[case]
    space = make_space([poly], [(0, e) for e in exits])
    sim = make_sim(model, space, fields=[exit_field(space, [0]), exit_field(space, [1])])
    sim.add_agents(np.array(starts), 0, 1.34, 0.2, 0.0, np.array([0, 1]))
    sim.step(int(60 / sim.dt))
    assert sim.counts()["evacuated"] == 2
    assert sim.exit_index.tolist() == [0, 1]  # each through its own exit


# ----------------------------------------------------------------------------------------------------------------
# Stairs (RiMEA 2 and 3): an agent on level 1 reaches an exit on level 0 over a 10 m stair, and the reverse.


def two_levels(exit_level):
    lower, upper = shapely.box(0, 0, 12, 2), shapely.box(8, 0, 12, 2)
    exit_poly = shapely.box(11.6, 0, 12, 2)
    space = make_space([lower, upper], [(exit_level, exit_poly)])
    stairs = np.array([[0, 1.0, 1.0, 1, 9.0, 1.0, 10.0, 2.0]])
    return space, stairs


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("direction", ["down", "up"])
def test_stair_time_is_length_over_stair_speed(model, direction):
    exit_level, start, level0 = (0, (11.0, 1.0), 1) if direction == "down" else (1, (3.0, 1.0), 0)
    space, stairs = two_levels(exit_level)
    field = exit_field(space, stairs=stairs, stair_cost=10.0 * 1.34 / 0.7)
    sim = make_sim(model, space, fields=[field], stairs=stairs)
    sim.add_agents(np.array([start]), level0, 1.34, 0.2, 0.0, 0, 0.6, 0.75)
    t_on = t_off = None
    z = []
    while sim.counts()["evacuated"] == 0 and sim.time < 80:
        sim.step(1)
        on = sim.state[0] == ON_STAIR
        if on and t_on is None:
            t_on = sim.time
            assert sim.stair_index[0] == 0
        if t_on is not None and t_off is None and not on:
            t_off = sim.time
            assert sim.levels[0] == 1 - level0
            assert sim.z[0] == 3.0 * (1 - level0)
        z.append(sim.z[0])
    speed = 0.75 if direction == "down" else 0.6
    assert t_on is not None
    assert t_off is not None
    assert abs((t_off - t_on) - 10.0 / speed) <= 0.05 * 10.0 / speed  # RiMEA 2/3: +-5 %
    assert sim.exit_index[0] == 0
    zs = np.array(z)
    assert zs.min() == 0.0
    assert zs.max() == 3.0
    assert (np.diff(zs) >= 0).all() if direction == "up" else (np.diff(zs) <= 0).all()  # z moves one way


def test_stair_capacity_and_fifo_entry():
    lower, upper = shapely.box(0, 0, 12, 4), shapely.box(6, 0, 12, 4)
    space = make_space([lower, upper], [(0, shapely.box(0, 0, 0.4, 4))])
    stairs = np.array([[0, 3.0, 2.0, 1, 7.0, 2.0, 1.0, 3.0]])  # 1 m x 3 m at 2 P/m^2: capacity 6
    field = exit_field(space, stairs=stairs)
    sim = make_sim(
        "collision_free_speed", space, fields=[field], stairs=stairs, params={"stair_density": 2.0}
    )
    assert sim.stair_capacity.tolist() == [6]
    default = make_sim("collision_free_speed", space, fields=[field], stairs=stairs)
    assert default.stair_capacity.tolist() == [4]  # the default 1.5 P/m^2: floor(4.5)
    # Eight agents inside the entry zone (radius 1.5 m) around the head at (7, 2), all right of it, at t = 0: they
    # all arrive in the same step, so the six lowest ids enter first.
    pos = np.array(
        [[7.5, 1.0], [7.5, 1.5], [7.5, 2.0], [7.5, 2.5], [7.5, 3.0], [8.0, 1.5], [8.0, 2.0], [8.0, 2.5]]
    )
    sim.add_agents(pos, 1, 1.0, 0.2, 0.0, 0, 0.5, 0.5)
    sim.step(1)
    assert np.flatnonzero(sim.state == ON_STAIR).tolist() == [0, 1, 2, 3, 4, 5]
    most = 0
    while sim.counts()["evacuated"] < 8 and sim.time < 60:
        sim.step(1)
        most = max(most, int((sim.state == ON_STAIR).sum()))
    assert sim.counts()["evacuated"] == 8
    assert most <= 6


# ----------------------------------------------------------------------------------------------------------------
# RiMEA 5: pre-movement times.


@pytest.mark.parametrize("model", MODELS)
def test_rimea5_waiting_agents_start_at_their_time(model):
    space = make_space([shapely.box(0, 0, 8, 5)], [(0, shapely.box(7.7, 2.0, 8.0, 3.0))])
    sim = make_sim(model, space)
    pos = np.array([[1.0 + 0.6 * (k % 5), 1.5 + 2.0 * (k // 5)] for k in range(10)])
    start = np.arange(1, 11) * 10.0
    sim.add_agents(pos, 0, 1.2, 0.2, start)
    first_move = np.full(10, np.nan)
    while sim.time < 110:
        before = sim.positions.copy()
        sim.step(1)
        moved = np.hypot(*(sim.positions - before).T) > 0
        first_move[np.isnan(first_move) & moved] = sim.time
        waiting = sim.time < start - 1e-9
        assert (sim.state[waiting] == WAITING).all()
    # Each starts moving in the first step after its time (an agent starting when others stand in its way may
    # need a little longer, never less).
    assert (first_move >= start).all()
    assert (first_move <= start + 0.5).all(), first_move - start


@pytest.mark.parametrize("model", MODELS)
def test_waiting_agents_occupy_space(model):
    space = make_space([shapely.box(0, 0, 12, 2)], [(0, shapely.box(11.6, 0, 12, 2))])
    sim = make_sim(model, space)
    sim.add_agents(np.array([[6.0, 1.0], [1.0, 1.0]]), 0, 1.3, 0.2, np.array([1000.0, 0.0]))
    closest = np.inf
    while sim.counts()["evacuated"] == 0 and sim.time < 30:
        sim.step(1)
        closest = min(closest, np.hypot(*(sim.positions[1] - sim.positions[0])))
    assert sim.state.tolist() == [WAITING, EVACUATED]  # the walker went round the waiting agent
    assert sim.positions[0].tolist() == [6.0, 1.0]  # which never moved
    # (CFS: the walker, stuck behind the waiting agent, squeezes by at most unstick_shrink x radius.)
    assert closest >= (0.4 - 0.1 * 0.2 - 1e-9 if model == "collision_free_speed" else 0.38)


def test_set_field_of_reroutes():
    space = make_space(
        [shapely.box(0, 0, 10, 2)], [(0, shapely.box(0, 0, 0.4, 2)), (0, shapely.box(9.6, 0, 10, 2))]
    )
    sim = make_sim("social_force", space, fields=[exit_field(space, [0]), exit_field(space, [1])])
    sim.add_agents(np.array([[5.0, 1.0], [5.0, 0.5]]), 0, 1.3, 0.2, 0.0, 0)
    sim.step(20)
    assert (sim.positions[:, 0] < 5.0).all()  # both head for exit 0
    sim.set_field_of(np.array([1]), 1)
    sim.step(300)
    assert sim.exit_index.tolist() == [0, 1]
    assert sim.field.tolist() == [0, 1]


# ----------------------------------------------------------------------------------------------------------------
# Errors at the boundary name the argument; memory per agent.


def test_errors_name_the_argument():
    space = make_space([shapely.box(0, 0, 5, 5)], [(0, shapely.box(4.6, 0, 5, 5))])
    with pytest.raises(ValueError, match="model must be 'social_force' or 'collision_free_speed'"):
        CrowdSim(model="helbing", dt=0.05, seed=0, **space)
    with pytest.raises(ValueError, match="unknown parameter 'tua'"):
        CrowdSim(model="social_force", dt=0.05, seed=0, params={"tua": 0.5}, **space)
    with pytest.raises(ValueError, match="unknown parameter 'mass'"):  # a social-force name for the CFS model
        CrowdSim(model="collision_free_speed", dt=0.05, seed=0, params={"mass": 80}, **space)
    with pytest.raises(ValueError, match="parameter 'tau' must be a finite number > 0"):
        CrowdSim(model="social_force", dt=0.05, seed=0, params={"tau": -1}, **space)
    # time_gap divides in the collision-free speed model; 0 switches the social force's speed term off
    with pytest.raises(ValueError, match="parameter 'time_gap' must be a finite number > 0"):
        CrowdSim(model="collision_free_speed", dt=0.05, seed=0, params={"time_gap": 0.0}, **space)
    assert (
        CrowdSim(model="social_force", dt=0.05, seed=0, params={"time_gap": 0.0}, **space).params["time_gap"]
        == 0
    )
    with pytest.raises(ValueError, match="parameter 'time_gap' must be a finite number >= 0"):
        CrowdSim(model="social_force", dt=0.05, seed=0, params={"time_gap": -0.1}, **space)
    with pytest.raises(ValueError, match="dt must be"):
        CrowdSim(model="social_force", dt=0.0, seed=0, **space)
    bad = dict(space, origins=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"origins must be \(1, 2\)"):
        CrowdSim(model="social_force", dt=0.05, seed=0, **bad)
    bad = dict(space, exit_cells=space["exit_cells"][:, :3])
    with pytest.raises(ValueError, match="exit_cells must be"):
        CrowdSim(model="social_force", dt=0.05, seed=0, **bad)
    with pytest.raises(ValueError, match="walls must be"):
        CrowdSim(model="social_force", dt=0.05, seed=0, **dict(space, walls=np.zeros((3, 3))))
    with pytest.raises(ValueError, match=r"stairs\[0\].*not in a walkable cell"):
        CrowdSim(model="social_force", dt=0.05, seed=0, stairs=np.array([[0, 1, 1, 0, 50, 1, 3, 1]]), **space)

    sim = CrowdSim(model="social_force", dt=0.05, seed=0, **space)
    with pytest.raises(ValueError, match="no navigation fields are set"):
        sim.add_agents(np.array([[1.0, 1.0]]))
    with pytest.raises(ValueError, match=r"fields\[0\] must be \(1, "):
        sim.set_fields([np.zeros((5, 5))])
    sim.set_fields([exit_field(space)])
    with pytest.raises(ValueError, match=r"positions must be \(n, 2\)"):
        sim.add_agents(np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"radius must be \(2,\)"):
        sim.add_agents(np.array([[1.0, 1.0], [2.0, 2.0]]), radius=np.array([0.2, 0.2, 0.2]))
    with pytest.raises(
        ValueError, match=r"positions\[1\] = \(-0\.3, 2\) on level 0 lies in the non-walkable cell"
    ):
        sim.add_agents(np.array([[1.0, 1.0], [-0.3, 2.0]]))
    with pytest.raises(ValueError, match=r"positions\[0\] .* is outside the raster"):
        sim.add_agents(np.array([[100.0, 1.0]]))
    with pytest.raises(ValueError, match=r"field\[0\] = 3 is not a field index"):
        sim.add_agents(np.array([[1.0, 1.0]]), field=3)
    with pytest.raises(ValueError, match=r"levels\[0\] = 1 is not a level"):
        sim.add_agents(np.array([[1.0, 1.0]]), levels=1)
    with pytest.raises(ValueError, match=r"desired_speed\[0\]"):
        sim.add_agents(np.array([[1.0, 1.0]]), desired_speed=np.nan)
    with pytest.raises(ValueError, match="levels must be an integer array"):
        sim.add_agents(np.array([[1.0, 1.0]]), levels=np.array([0.5]))
    assert sim.n_agents == 0  # nothing was added by the failed calls
    ids = sim.add_agents(np.array([[1.0, 1.0], [2.0, 2.0]]))
    assert ids.tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"ids\[0\] = 5 is not an agent id"):
        sim.set_field_of(np.array([5]), 0)
    with pytest.raises(ValueError, match="only 0 fields were given"):
        sim.set_fields([])
    with pytest.raises(ValueError, match="n must be >= 0"):
        sim.step(-1)


def test_arrays_are_read_only_copies_in_id_order():
    space = make_space([shapely.box(0, 0, 5, 5)], [(0, shapely.box(4.6, 0, 5, 5))])
    sim = make_sim("collision_free_speed", space)
    sim.add_agents(np.array([[1.0, 1.0]]))
    before = sim.positions
    with pytest.raises(ValueError, match="read-only"):
        before[0, 0] = 3.0
    # Agents are stored in a spatially sorted order internally; arrays are always by id.
    pos = np.array([[4.0, 4.0], [0.5, 0.5], [2.5, 2.5], [1.0, 4.0]])
    ids = sim.add_agents(pos, 0, np.array([0.5, 0.6, 0.7, 0.8]), np.array([0.15, 0.16, 0.17, 0.18]), 100.0)
    assert ids.tolist() == [1, 2, 3, 4]
    assert sim.counts() == {"waiting": 5, "walking": 0, "on_stair": 0, "evacuated": 0}
    sim.step(30)  # re-sorts the slots; waiting agents do not move
    np.testing.assert_array_equal(sim.positions[1:], pos)
    np.testing.assert_allclose(sim.desired_speed[1:], [0.5, 0.6, 0.7, 0.8], rtol=1e-7)
    np.testing.assert_allclose(sim.radius[1:], [0.15, 0.16, 0.17, 0.18], rtol=1e-7)
    assert before[0, 0] == 1.0  # a copy: unchanged by the steps
    assert sim.positions[0, 0] > 1.0  # agent 0 walked
    assert sim.counts()["walking"] == 1


def test_state_is_at_most_200_bytes_per_agent():
    assert CrowdSim.state_bytes_per_agent() <= 200


# ----------------------------------------------------------------------------------------------------------------
# Exit choice: the sequential pass in C++ against its definition.


def _greedy_reference(t_walk, order, walking, current, capacity, gain, gain_s):
    """One agent after the other: max(walking time, load / capacity), quickest, hysteresis (the definition)."""
    n_exits = t_walk.shape[1]
    chosen = current.copy()
    load = np.zeros(n_exits)
    for k in order:
        c = int(current[k])
        t = np.maximum(t_walk[k], load / capacity)
        b = int(np.argmin(t))
        keep = not walking[k] or not np.isfinite(t[b])
        if not keep and c < n_exits and np.isfinite(t[c]):
            keep = not (t[b] <= (1.0 - gain) * t[c] and t[b] <= t[c] - gain_s)
        if keep:
            b = c
        if b < n_exits:
            chosen[k] = b
            load[b] += 1
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_greedy_exit_choice_follows_its_definition(seed):
    rng = np.random.default_rng(seed)
    m, n_exits = 2000, 4
    t_walk = rng.uniform(5, 60, (m, n_exits))
    t_walk[rng.random((m, n_exits)) < 0.1] = np.inf  # unreachable exits
    t_walk[:20] = np.inf  # nothing reachable
    order = np.argsort(t_walk.min(axis=1), kind="stable").astype(np.int64)
    walking = rng.random(m) < 0.8
    current = rng.integers(0, n_exits + 1, m).astype(np.int32)  # n_exits: the all-exits field
    capacity = rng.uniform(1.0, 3.0, n_exits)
    got = _core.greedy_exit_choice(t_walk, order, walking, current, capacity, 0.1, 2.0)
    want = _greedy_reference(t_walk, order, walking, current, capacity, 0.1, 2.0)
    np.testing.assert_array_equal(got, want)
    assert (got != current).sum() > 100  # queues moved people


def test_greedy_exit_choice_rejects_bad_shapes():
    with pytest.raises(ValueError, match="capacity must be"):
        _core.greedy_exit_choice(
            np.ones((3, 2)), np.arange(3), np.ones(3, bool), np.zeros(3, np.int32), np.ones(3), 0.1, 2.0
        )
    with pytest.raises(ValueError, match="order must hold row indices"):
        _core.greedy_exit_choice(
            np.ones((3, 2)),
            np.array([0, 1, 5]),
            np.ones(3, bool),
            np.zeros(3, np.int32),
            np.ones(2),
            0.1,
            2.0,
        )
