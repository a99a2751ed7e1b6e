"""RiMEA 3.0 verification tests 1, 2, 3, 5, 6, 7, 8 and 10 (VALIDATION.md, "Crowd — RiMEA 3.0 test cases").

Each test builds its RiMEA set-up as a scenario (``Scenario.from_dict``: the same validation a scenario file gets),
builds the crowd space, population and :class:`twin.sim.crowd.CrowdModel` the way ``twin.scenario.runner`` does,
runs it with the model's default time step and asserts exactly the criterion of the RiMEA table (plus the sanity
check that everyone gets out) on the recorded trajectories (``model.trajectories.to_frame()``: the table written to
``crowd_trajectories.parquet``) or the core's per-agent arrays. Every test that involves an operational model runs
with both models, ``social_force`` and ``collision_free_speed``. Seeds are fixed; the core runs on one thread (its
results do not depend on the thread count, and the machine's other jobs would only slow OpenMP down).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shapely
from scipy.spatial import cKDTree

from twin.scenario.schema import Scenario, build_city
from twin.sim.crowd import CrowdModel
from twin.sim.crowd_space import EXIT_SETBACK_M, CrowdSpace
from twin.sim.population import RIMEA_SPEED_RANGES, build_population

ROOT = Path(__file__).resolve().parents[2]
OFFICE_IFC = ROOT / "models" / "office.ifc"
MODELS = ("social_force", "collision_free_speed")


# -- helpers ----------------------------------------------------------------------------------------------------------
def box(x0: float, y0: float, x1: float, y1: float) -> str:
    """WKT of the axis-aligned rectangle [x0, x1] × [y0, y1] (metres)."""
    return f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"


def scenario(
    areas: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    *,
    model: str,
    seed: int,
    duration_s: float,
    every_s: float,
    stairs: list[dict[str, Any]] | None = None,
) -> Scenario:
    """A validated crowd-only scenario on ``city.areas`` (no report)."""
    return Scenario.from_dict(
        {
            "name": "rimea",
            "seed": seed,
            "duration_s": duration_s,
            "city": {"areas": areas, "stairs": stairs or []},
            "crowd": {"model": model, "groups": groups},
            "outputs": {"trajectories_every_s": every_s, "report": False},
        }
    )


def area_space(scn: Scenario) -> tuple[CrowdSpace, dict[str, tuple[Any, int]]]:
    """The crowd space of a scenario's ``city.areas`` and ``city.stairs`` and its placement regions (as the
    runner builds them)."""
    space = CrowdSpace.from_areas(
        [
            {"id": a.id, "walkable": a.walkable, "z": a.z, "exits": [e.model_dump() for e in a.exits]}
            for a in scn.city.areas
        ],
        cell_size=scn.crowd.cell_size_m,
        source=scn.source,
        stairs=[s.model_dump() for s in scn.city.stairs],
        stairs_path="city.stairs",
    )
    named = space.areas[space.areas["kind"] == "area"]
    return space, {row.id: (row.polygon, int(row.level)) for row in named.itertuples()}


def simulate(
    scn: Scenario, space: CrowdSpace | None = None, regions: Mapping[str, tuple[Any, int]] | None = None
) -> CrowdModel:
    """Draw the population, run the crowd model for ``scn.duration_s`` (or until everyone is out) and return it.

    The population dict is kept as ``model.population`` (``speed (n,)`` m/s, ``premovement (n,)`` s, ``group (n,)``
    …, in agent id order: ids are consecutive from 0 in group order)."""
    if space is None:
        space, regions = area_space(scn)
    space.validate()
    crowd = scn.crowd
    pop = build_population(
        crowd.groups,
        regions,
        np.random.default_rng(scn.seed),
        walkable_test=space.walkable_at,
        source=scn.source,
    )
    model = CrowdModel(
        space,
        pop,
        model=crowd.model,
        dt_s=crowd.dt_s,
        seed=scn.seed,
        record_every_s=scn.outputs.trajectories_every_s,
        params=crowd.params,
        exit_choice_every_s=crowd.routing.exit_choice_every_s,
        stair_cost_factor=crowd.routing.stair_cost_factor,
    )
    assert np.array_equal(model.ids, np.arange(model.n_agents))
    model.run(scn.duration_s, progress=False)
    model.population = pop
    return model


def trajectories(model: CrowdModel) -> pd.DataFrame:
    """The recorded rows (columns of ``crowd_trajectories.parquet``) sorted by agent, then time."""
    return (
        model.trajectories.to_frame().sort_values(["agent_id", "t_s"], kind="stable").reset_index(drop=True)
    )


def assert_everyone_out(model: CrowdModel) -> None:
    left = np.flatnonzero(model.core.state != 3)
    assert left.size == 0, (
        f"{left.size} of {model.n_agents} agents still inside after {model.time_s:g} s: ids {left[:10].tolist()} "
        f"at {np.round(model.core.positions[left[:5]], 2).tolist()}"
    )


# -- RiMEA 1: walking speed in a corridor -----------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_rimea_1_corridor_40_m_at_1_33_mps_takes_26_to_34_s(model: str) -> None:
    """RiMEA 1: one person walking at 1.33 m/s along a 2 m × 40 m corridor covers the 40 m in 26–34 s.

    The person starts at the near end (its centre a body radius from the wall) and the exit is the whole far end.
    From the trajectory: the time at which the centre crosses the far end (extrapolated from the last record with
    its recorded velocity) minus the start time; the distance covered is 40 m minus the start offset, so the time
    for the full 40 m is also taken at the measured mean speed. Both must lie in 26–34 s (40 / 1.33 = 30.1 s)."""
    every = 0.1
    scn = scenario(
        [
            {
                "id": "corridor",
                "walkable": box(0, 0, 40, 2),
                "exits": [{"id": "end", "polygon": box(40, 0, 41, 2)}],
            }
        ],
        [
            {
                "id": "walker",
                "count": 1,
                "in": {"polygon": box(0, 0.7, 0.6, 1.3)},
                "speed_mps": 1.33,
                "premovement_s": 0,
            }
        ],
        model=model,
        seed=1,
        duration_s=60,
        every_s=every,
    )
    m = simulate(scn)
    assert_everyone_out(m)
    tr = trajectories(m)
    x, t, v = tr["x_m"].to_numpy(), tr["t_s"].to_numpy(), tr["speed_mps"].to_numpy()
    x0 = x[0]
    assert t[0] == 0.0
    assert x0 < 0.7
    assert np.all(np.abs(tr["y_m"] - tr["y_m"].iloc[0]) < 0.05)  # straight along the corridor
    start = 0.0  # its pre-movement time: it has moved by the first record after it
    assert t[1] == pytest.approx(start + every)
    assert abs(x[1] - x0) > 1e-3
    t_end = t[-1] + (40.0 - x[-1]) / v[-1]
    # the core removes it on entering the exit cells, which start EXIT_SETBACK_M (within a cell) beyond the end
    x_exit = m.space.origins[0, 0] + np.argwhere(m.space.exit_cells[0] >= 0)[:, 1].min() * m.space.cell_size
    assert 40.0 + EXIT_SETBACK_M - m.space.cell_size <= x_exit <= 40.0 + EXIT_SETBACK_M
    assert t[-1] + (x_exit - x[-1]) / v[-1] == pytest.approx(float(m.core.exit_time[0]), abs=every)
    travel = t_end - start
    t40 = travel * 40.0 / (40.0 - x0)
    assert 26.0 <= travel <= 34.0, f"{model}: walked {40 - x0:.2f} m in {travel:.2f} s"
    assert 26.0 <= t40 <= 34.0, f"{model}: 40 m in {t40:.2f} s"


# -- RiMEA 2 and 3: walking speed up and down stairs ------------------------------------------------------------------
STAIR_LENGTH_M = 10.0
STAIR_RISE_M = 3.0
STAIR_UP_MPS = 0.675
STAIR_DOWN_MPS = 0.8


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("direction", ["up", "down"])
def test_rimea_2_3_time_on_stair_is_length_over_stair_speed(model: str, direction: str) -> None:
    """RiMEA 2 (up) and 3 (down): one person on a stair 2 m wide and 10 m along the slope takes
    length / configured stair speed (±5 %).

    Two 6 m × 2 m floors 3 m apart are linked by the stair; the person starts on one floor and leaves by an exit on
    the other, with stair speeds 0.675 m/s up (14.81 s) and 0.8 m/s down (12.5 s). Measured two ways from the
    trajectory: (a) entry to exit of the stair, the number of ``on_stair`` records × the record interval (±1
    interval), and (b) z from level to level: the height difference over the slope of z(t) fitted to the records on
    the stair."""
    every = 0.1
    up = direction == "up"
    lower_exit = [] if up else [{"id": "out", "polygon": box(-1, 0, 0, 2)}]
    upper_exit = [{"id": "out", "polygon": box(21.4, 0, 22.4, 2)}] if up else []
    scn = scenario(
        [
            {"id": "lower", "walkable": box(0, 0, 6, 2), "z": 0.0, "exits": lower_exit},
            {"id": "upper", "walkable": box(15.4, 0, 21.4, 2), "z": STAIR_RISE_M, "exits": upper_exit},
        ],
        [
            {
                "id": "walker",
                "count": 1,
                "in": {"area": "lower" if up else "upper"},
                "speed_mps": 1.34,
                "premovement_s": 0,
                "stair_up_mps": STAIR_UP_MPS,
                "stair_down_mps": STAIR_DOWN_MPS,
            }
        ],
        stairs=[
            {
                "id": "stair",
                "from_area": "lower",
                "to_area": "upper",
                "foot": [5.9, 1.0],
                "head": [15.5, 1.0],  # 9.54 m run for a 3 m rise: 10 m along the slope
                "length_m": STAIR_LENGTH_M,
                "width_m": 2.0,
            }
        ],
        model=model,
        seed=2,
        duration_s=80,
        every_s=every,
    )
    m = simulate(scn)
    assert_everyone_out(m)
    expected = STAIR_LENGTH_M / (STAIR_UP_MPS if up else STAIR_DOWN_MPS)
    tr = trajectories(m)
    z0, z1 = (0.0, STAIR_RISE_M) if up else (STAIR_RISE_M, 0.0)
    assert tr["z_m"].iloc[0] == z0  # from level to level
    assert tr["z_m"].iloc[-1] == z1
    on = tr[tr["state"] == "on_stair"]
    assert len(on) > 0
    assert np.all(np.diff(on["t_s"].to_numpy()) == pytest.approx(every))  # one stay
    by_records = len(on) * every
    slope = np.polyfit(on["t_s"].to_numpy(), on["z_m"].to_numpy(), 1)[0]
    by_height = STAIR_RISE_M / abs(slope)
    assert np.sign(slope) == (1 if up else -1)
    assert by_records == pytest.approx(expected, rel=0.05), (
        f"{model} {direction}: {by_records:.2f} s on the stair"
    )
    assert by_height == pytest.approx(expected, rel=0.05), f"{model} {direction}: z says {by_height:.2f} s"


# -- RiMEA 5: pre-movement times ----------------------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS)
def test_rimea_5_each_person_starts_moving_at_its_premovement_time(model: str) -> None:
    """RiMEA 5: in an 8 m × 5 m room with its exit in the middle of a short wall, 10 persons with pre-movement times
    10, 20, …, 100 s each start moving at their time.

    From the trajectories (records every 0.1 s): before its time (up to one record interval) a person stands still
    (displacement < 1 cm) and is ``waiting``; it has moved by the first record after its time (within one record
    interval), and 1 s after its time it is well on its way (> 0.2 m) or already out."""
    every = 0.1
    times = [10.0 * k for k in range(1, 11)]
    scn = scenario(
        [{"id": "room", "walkable": box(0, 0, 8, 5), "exits": [{"id": "door", "polygon": box(8, 2, 9, 3)}]}],
        [
            {"id": f"p{k}", "count": 1, "in": {"area": "room"}, "premovement_s": t}
            for k, t in enumerate(times)
        ],
        model=model,
        seed=5,
        duration_s=140,
        every_s=every,
    )
    m = simulate(scn)
    assert_everyone_out(m)
    assert np.array_equal(m.population["premovement"], times)
    tr = trajectories(m)
    for aid, g in tr.groupby("agent_id"):
        start = times[int(aid)]
        t = g["t_s"].to_numpy()
        xy = g[["x_m", "y_m"]].to_numpy()
        disp = np.hypot(*(xy - xy[0]).T)
        before = t <= start - every + 1e-9
        assert disp[before].max() < 0.01, (
            f"{model}: agent {aid} moved {disp[before].max():.3f} m before {start} s"
        )
        assert (g["state"][before] == "waiting").all()
        first_move = t[np.argmax(disp >= 0.01)]
        assert start - every < first_move <= start + every + 1e-9, (
            f"{model}: agent {aid} starts at {first_move}"
        )
        left = float(m.core.exit_time[int(aid)])
        assert left > start
        if left > start + 1.0:  # (someone placed by the door is out within a second)
            k = np.searchsorted(t, start + 1.0 - 1e-9)
            assert disp[k] > 0.2, f"{model}: agent {aid} is {disp[k]:.2f} m from its place 1 s after its time"


# -- RiMEA 6: movement around a corner ----------------------------------------------------------------------------
L_CORRIDOR = (
    "POLYGON ((0 0, 12 0, 12 12, 10 12, 10 2, 0 2, 0 0))"  # 12 m arm east, then 10 m arm turning left
)


@pytest.mark.parametrize("model", MODELS)
def test_rimea_6_nobody_leaves_the_l_corridor_or_crosses_a_wall(model: str) -> None:
    """RiMEA 6: 20 persons walk round the corner of an L-shaped corridor 2 m wide (12 m arm, then a 10 m arm
    turning left, exit at its end); nobody leaves the walkable area or crosses a wall.

    From the trajectories (records every 0.1 s): every centre lies inside the L polygon (or its exit region, which
    people walk into until they reach its exit cells), and no segment between two consecutive records of a person
    touches a wall (the L's boundary except the exit opening; among them the two walls of the inner corner)."""
    scn = scenario(
        [
            {
                "id": "corridor",
                "walkable": L_CORRIDOR,
                "exits": [{"id": "end", "polygon": box(10, 12, 12, 13)}],
            }
        ],
        [{"id": "walkers", "count": 20, "in": {"polygon": box(0, 0, 6, 2)}, "premovement_s": 0}],
        model=model,
        seed=6,
        duration_s=120,
        every_s=0.1,
    )
    m = simulate(scn)
    assert_everyone_out(m)
    tr = trajectories(m)
    poly = shapely.from_wkt(L_CORRIDOR)
    x, y = tr["x_m"].to_numpy(), tr["y_m"].to_numpy()
    # (people walk on into the exit region until they reach its exit cells, EXIT_SETBACK_M beyond the opening)
    inside = shapely.contains_xy(shapely.union(poly, shapely.box(10, 12, 12, 13)), x, y)
    assert inside.all(), f"{model}: {np.count_nonzero(~inside)} centres outside, e.g. {x[~inside][:3]}"
    walls = poly.boundary.difference(shapely.box(10.0 + 1e-6, 12.0 - 1e-6, 12.0 - 1e-6, 13.0))
    inner_corner = shapely.LineString([(0, 2), (10, 2), (10, 12)])
    assert walls.covers(inner_corner)
    ids = tr["agent_id"].to_numpy()
    same = ids[1:] == ids[:-1]
    pts = np.column_stack([x, y])
    segments = shapely.linestrings(np.stack([pts[:-1][same], pts[1:][same]], axis=1))
    assert len(segments) > 20 * 100
    hits = shapely.intersects(segments, walls)
    assert not hits.any(), f"{model}: {np.count_nonzero(hits)} moves cross a wall, e.g. {segments[hits][:2]}"
    # all 20 went round the corner: their last records are in the second arm
    last = tr.groupby("agent_id").last()
    assert len(last) == 20
    assert (last["y_m"] > 2.0).all()


# -- RiMEA 7: demographic parameters ------------------------------------------------------------------------------
RIMEA_GROUPS = ("under30", "30-50", "over50", "impaired")
OPEN_M = 50.0


def open_area_scenario(model: str) -> Scenario:
    """A 50 m × 50 m open area with exits along all four sides and four RiMEA groups of 50."""
    s = OPEN_M
    exits = [
        {"id": "east", "polygon": box(s, 0, s + 1, s)},
        {"id": "west", "polygon": box(-1, 0, 0, s)},
        {"id": "north", "polygon": box(0, s, s, s + 1)},
        {"id": "south", "polygon": box(0, -1, s, 0)},
    ]
    groups = [
        {"id": g, "count": 50, "in": {"area": "open"}, "speed_mps": f"rimea:{g}", "premovement_s": 0}
        for g in RIMEA_GROUPS
    ]
    return scenario(
        [{"id": "open", "walkable": box(0, 0, s, s), "exits": exits}],
        groups,
        model=model,
        seed=7,
        duration_s=120,
        every_s=0.25,
    )


def test_rimea_7_every_drawn_speed_lies_in_its_groups_range() -> None:
    """RiMEA 7: four groups of 50 (under 30, 30–50, over 50, mobility impaired) in an open area: every drawn
    desired speed lies within its group's range of RiMEA table 1 (0.58–1.61, 1.41–1.54, 0.68–1.41, 0.46–0.76 m/s).

    The speeds are those :func:`build_population` draws for the scenario (as the runner calls it)."""
    scn = open_area_scenario("social_force")
    space, regions = area_space(scn)
    pop = build_population(
        scn.crowd.groups, regions, np.random.default_rng(scn.seed), walkable_test=space.walkable_at
    )
    assert pop["group_ids"] == list(RIMEA_GROUPS)
    table = {"under30": (0.58, 1.61), "30-50": (1.41, 1.54), "over50": (0.68, 1.41), "impaired": (0.46, 0.76)}
    assert RIMEA_SPEED_RANGES == table
    for gi, name in enumerate(RIMEA_GROUPS):
        v = pop["speed"][pop["group"] == gi]
        lo, hi = table[name]
        assert len(v) == 50
        assert np.all((v >= lo) & (v <= hi)), f"{name}: drawn {v.min():.3f}..{v.max():.3f}, range {lo}..{hi}"
        assert len(np.unique(v)) == 50  # drawn, not one value for all


@pytest.mark.parametrize("model", MODELS)
def test_rimea_7_free_walking_speed_does_not_exceed_the_desired(model: str) -> None:
    """RiMEA 7, in the model: the walking speed observed in free flow never exceeds the agent's desired speed, and
    the desired speeds the model walks with are the drawn ones (each within its group's range).

    Free flow: an agent's records (every 0.25 s) up to the first record at which another agent is within 2 m. Between
    records two agents close at most 2 × 1.61 m/s × 0.125 s = 0.4 m, so they stay more than 1.6 m apart, beyond the
    reach of either model's neighbour term (contact + 8 ranges: 1.04 m social force, 1.2 m collision-free speed);
    the area is open (exits along all sides), so nothing acts but the agent's own drive. Tolerance: float32 rounding
    of the stored desired speed (1e-6 relative)."""
    scn = open_area_scenario(model)
    m = simulate(scn)
    assert_everyone_out(m)
    group = m.population["group"]
    for gi, name in enumerate(RIMEA_GROUPS):
        lo, hi = RIMEA_SPEED_RANGES[name]
        v = m.speed[group == gi]
        assert np.all((v >= lo) & (v <= hi))
    tr = m.trajectories.to_frame()
    times = np.unique(tr["t_s"].to_numpy())
    frame = np.searchsorted(times, tr["t_s"].to_numpy())
    ids = tr["agent_id"].to_numpy()
    nearest = np.full((len(times), m.n_agents), np.inf)
    speed = np.full((len(times), m.n_agents), np.nan)
    speed[frame, ids] = tr["speed_mps"].to_numpy()
    xy = tr[["x_m", "y_m"]].to_numpy()
    bounds = np.searchsorted(frame, np.arange(len(times) + 1))
    for k in range(len(times)):
        a, b = bounds[k], bounds[k + 1]
        if b - a > 1:
            d, _ = cKDTree(xy[a:b]).query(xy[a:b], k=2)
            nearest[k, ids[a:b]] = d[:, 1]
    free = (np.minimum.accumulate(nearest, axis=0) > 2.0) & np.isfinite(speed)
    ratio = speed[free] / np.broadcast_to(m.speed, speed.shape)[free]
    assert free.sum() >= 500
    assert all(free[:, group == gi].any(axis=0).sum() >= 5 for gi in range(4))  # every group walks freely
    assert ratio.max() <= 1.0 + 1e-6, f"{model}: free walking at {ratio.max():.6f} × the desired speed"


# -- RiMEA 8: parameter study on a multi-storey building ----------------------------------------------------------
SPEED_LEVELS = (
    "rimea:impaired",
    "rimea:over50",
    "rimea:30-50",
)  # slow, middle, fast (means 0.61, 1.045, 1.475)


def office_scenario(model: str, speed: str) -> Scenario:
    return Scenario.from_dict(
        {
            "name": "rimea-8",
            "seed": 8,
            "duration_s": 400,
            "city": {"buildings": [{"id": "office", "ifc": str(OFFICE_IFC)}]},
            "crowd": {
                "model": model,
                "groups": [
                    {
                        "id": "staff",
                        "count": 30,
                        "in": {"building": "office"},
                        "speed_mps": speed,
                        "premovement_s": 0,
                    }
                ],
            },
            "outputs": {"trajectories_every_s": 1.0, "report": False},
        }
    )


@pytest.fixture(scope="module")
def office() -> tuple[CrowdSpace, dict[str, tuple[Any, int]]]:
    """The crowd space of the generated three-storey office (models/office.ifc) and its storeys as regions."""
    scn = office_scenario("social_force", SPEED_LEVELS[0])
    building = build_city(scn).buildings["office"]
    space = CrowdSpace.from_building(building, cell_size=scn.crowd.cell_size_m)
    storeys = space.areas[space.areas["kind"] == "storey"]
    regions = {f"office/{row.id}": (row.polygon, int(row.level)) for row in storeys.itertuples()}
    return space, regions


@pytest.mark.parametrize("model", MODELS)
def test_rimea_8_slower_people_take_strictly_longer_to_leave_the_office(office, model: str) -> None:
    """RiMEA 8 (parameter study, multi-storey building): the evacuation time responds sensibly to the walking speed.

    30 people spread over the three storeys of the generated office (stairs between them) leave with the speed
    distribution of the RiMEA impaired, over-50 and 30–50 groups (stair speeds follow the flat speed); the
    positions are the same in all three runs (placement has its own random stream). Everyone gets out, and the
    evacuation time (last exit time) strictly decreases from the slowest to the fastest distribution."""
    space, regions = office
    evac = []
    for speed in SPEED_LEVELS:
        m = simulate(office_scenario(model, speed), space, regions)
        assert_everyone_out(m)
        evac.append(float(np.max(m.core.exit_time)))
    assert evac[0] > evac[1] > evac[2], f"{model}: evacuation times {evac} for {SPEED_LEVELS}"


def three_storeys(model: str, speed: str) -> Scenario:
    """Three 20 m × 6 m floors 3.5 m apart (z 0, 3.5, 7), stairs 6.4 m × 1.2 m at alternating ends, the exit at
    the west end of the ground floor; 10 people per floor."""
    floor = box(0, 0, 20, 6)
    areas = [
        {"id": "ground", "walkable": floor, "z": 0.0, "exits": [{"id": "out", "polygon": box(-1, 2, 0, 4)}]},
        {"id": "first", "walkable": floor, "z": 3.5},
        {"id": "second", "walkable": floor, "z": 7.0},
    ]
    stair = {"length_m": 6.4, "width_m": 1.2}
    stairs = [
        {"id": "s01", "from_area": "ground", "to_area": "first", "foot": [6, 1], "head": [12, 1]} | stair,
        {"id": "s12", "from_area": "first", "to_area": "second", "foot": [14, 5], "head": [8, 5]} | stair,
    ]
    groups = [
        {"id": a["id"], "count": 10, "in": {"area": a["id"]}, "speed_mps": speed, "premovement_s": 0}
        for a in areas
    ]
    return scenario(areas, groups, model=model, seed=8, duration_s=400, every_s=1.0, stairs=stairs)


@pytest.mark.parametrize("model", MODELS)
def test_rimea_8_slower_people_take_strictly_longer_to_leave_three_storeys(model: str) -> None:
    """RiMEA 8 (parameter study, multi-storey building) on a three-storey building of ``city.areas`` linked by
    ``city.stairs``: with the impaired, over-50 and 30–50 speed distributions (same positions), everyone gets out
    (the upper floors over the stairs) and the evacuation time strictly decreases from the slowest to the fastest."""
    evac = []
    for speed in SPEED_LEVELS:
        m = simulate(three_storeys(model, speed))
        assert_everyone_out(m)
        assert m.stair_usage() == {"s01": {"up": 0, "down": 20}, "s12": {"up": 0, "down": 10}}
        evac.append(float(np.max(m.core.exit_time)))
    assert evac[0] > evac[1] > evac[2], f"{model}: evacuation times {evac} for {SPEED_LEVELS}"


# -- RiMEA 10: assigned escape routes -------------------------------------------------------------------------------
ROOM_W = 5.0


def corridor_with_rooms() -> tuple[str, list[tuple[float, float, float, float]]]:
    """A 30 m × 2 m corridor with 6 rooms (4.8 m × 4.8 m, 1 m doors, 0.2 m walls) on each side.

    Returns the walkable area (WKT) and the rooms' boxes, ordered west to east, south before north."""
    parts = [shapely.box(0, 0, 6 * ROOM_W, 2)]
    rooms = []
    for k in range(6):
        x0 = k * ROOM_W
        for room, door in (
            ((x0 + 0.1, -5.0, x0 + ROOM_W - 0.1, -0.2), (x0 + 2.0, -0.2, x0 + 3.0, 0.0)),
            ((x0 + 0.1, 2.2, x0 + ROOM_W - 0.1, 7.0), (x0 + 2.0, 2.0, x0 + 3.0, 2.2)),
        ):
            rooms.append(room)
            parts += [shapely.box(*room), shapely.box(*door)]
    return shapely.union_all(parts).wkt, rooms


@pytest.mark.parametrize("model", MODELS)
def test_rimea_10_everyone_uses_the_assigned_exit(model: str) -> None:
    """RiMEA 10: in a corridor with 12 rooms (6 each side) and an exit at each end, 23 persons with assigned exits
    each leave through their assigned exit.

    Two persons per room (one in the last room). The rooms of the 1st, 3rd and 5th pair (south and north) from the
    west are assigned the
    west exit, the others the east exit, so that people of the 2nd and 5th pairs are sent to the farther exit and
    the corridor carries counter-flow. The exit each person used is the core's ``exit_index``."""
    floor, rooms = corridor_with_rooms()
    counts = [2] * 11 + [1]
    assigned = ["west" if (i // 2) % 2 == 0 else "east" for i in range(12)]
    groups = [
        {
            "id": f"room{i + 1}",
            "count": n,
            "in": {"polygon": box(*room)},
            "premovement_s": 0,
            "exits": [assigned[i]],
        }
        for i, (room, n) in enumerate(zip(rooms, counts, strict=True))
    ]
    exits = [
        {"id": "west", "polygon": box(-1, 0, 0, 2)},
        {"id": "east", "polygon": box(6 * ROOM_W, 0, 6 * ROOM_W + 1, 2)},
    ]
    scn = scenario(
        [{"id": "floor", "walkable": floor, "exits": exits}],
        groups,
        model=model,
        seed=10,
        duration_s=300,
        every_s=0.5,
    )
    m = simulate(scn)
    assert_everyone_out(m)
    assert m.n_agents == 23
    want = np.array([m.exit_ids.index(assigned[g]) for g in m.population["group"]])
    # the assignment matters: for a number of people the assigned exit is not the nearer one
    space = m.space
    start = m.population["positions"], m.population["levels"]
    dist = np.column_stack([space.sample_distance(m.fields[e], *start) for e in range(2)])
    assert np.count_nonzero(np.argmin(dist, axis=1) != want) >= 6
    used = m.core.exit_index
    wrong = np.flatnonzero(used != want)
    assert wrong.size == 0, (
        f"{model}: agents {wrong.tolist()} used {used[wrong].tolist()}, assigned {want[wrong].tolist()}"
    )
    assert {e: int(np.count_nonzero(used == i)) for i, e in enumerate(m.exit_ids)} == {
        "west": sum(n for n, a in zip(counts, assigned, strict=True) if a == "west"),
        "east": sum(n for n, a in zip(counts, assigned, strict=True) if a == "east"),
    }
    assert math.isfinite(float(np.max(m.core.exit_time)))
