"""Crowd core (twin.sim.crowd_core.CrowdSim) against JuPedSim 1.4 on the same geometry and agents; and scale.

Run from the repository root: ``python -m bench.bench_crowd`` (``--quick`` for shorter windows).

1. Bottleneck: a 20 m x 20 m room, a 1 m wide door into a 2.5 m corridor whose last 0.5 m is the exit, 1000 agents
   (0.5 m grid, random order, speeds N(1.34, 0.1) clipped to [1.0, 1.6] m/s, radius 0.2 m).
2. Open room at 2 P/m^2: 8,000 agents on a 0.707 m grid filling 81 m x 50 m of a 100 m x 50 m hall, walking
   towards an exit across the whole far wall (speeds N(1.34, 0.26) clipped to [0.5, 2.0] m/s).
   Rates: agent-steps per second (the sum over steps of the agents still in the simulation, divided by the wall
   time) over the same window of simulated time in twin (1 and 2 threads; best of 3 runs, as the machine may be
   shared) and JuPedSim (single-threaded, one run), with
   the same positions, speeds, radius and dt: dt = 0.05 s for the collision-free speed models, dt = 0.01 s for the
   social force models (JuPedSim's default step; its social force model pushes agents out of the geometry at
   dt = 0.05 s, and twin's social force model integrates in 0.01 s substeps anyway; with multiple time stepping it
   evaluates the social repulsion every 0.05 s and the contact forces every 0.01 s at any dt, JuPedSim every
   force at every step). JuPedSim's model parameters
   are its defaults except time_gap = twin's 0.5 s. Required: twin >= 10x JuPedSim at 2 threads and >= 5x at 1
   thread, for both models in both scenes.
   Bottleneck evacuation: twin runs until everyone has left (2 threads); required for both models: all 1000
   leave and the 10-90 % door flow lies in 1.3-2.2 P/s (laboratory 1.5-2.0 P/s, Seyfried et al. 2009).
3. Scale: 100,000 agents in a generated 4-storey building (160 m x 160 m floors with 2 m pillars every 12 m, four
   10 m x 2 m stairs between consecutive floors, four 2 m exits on the ground floor; 25,000 agents per floor, about
   1 P/m^2, speeds N(1.34, 0.26)). Its evacuation takes hours of simulated time (12 stairs and 8 m of exit width for
   100,000 people): within two minutes nearly everyone stands in dense queues (4-6 P/m^2), where each agent has
   several times the neighbours it has at the start, and stays there. So the run is timed from the start over a
   long stretch (150 s for both models; --quick: a third) in 10 s windows on 2 threads with dt = 0.05 s;
   printed: simulated / wall time over the whole stretch and in its slowest window (the steady, queued state).
   Required: faster than real time in the slowest window, for both models. The social force model integrates in
   five 0.01 s substeps per step (its body force needs them for stability), with multiple time stepping: the
   social repulsion every 0.05 s (once per step), contact forces in every substep against each agent's contact
   list. Prints the state bytes per agent (required <= 200).
   Then the same building and people through ``twin run``'s path (run_scenario: rasterising the areas, fields,
   population, quickest-path re-routing at its default interval, exit choice, trajectories), collision-free speed,
   60 s (--quick: 20 s): set-up and simulation speed, informative.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # idle BLAS worker threads would compete with the core's

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import shapely  # noqa: E402

from twin.sim.crowd_core import EVACUATED, WALKING, CrowdSim  # noqa: E402
from twin.sim.rasterize import centre_rule_space  # noqa: E402
from twin.spatial import DistanceField, get_num_threads, set_num_threads  # noqa: E402

H = 0.2  # raster cell, metres
REQUIRED_2T, REQUIRED_1T = 10.0, 5.0
FLOW_RANGE = (1.3, 2.2)
SCALE_WINDOW_S = 10.0
SCALE_STRETCH_S = 150.0  # both models: long enough to reach the steady, queued state
DT = {"collision_free_speed": 0.05, "social_force": 0.01}


# ----------------------------------------------------------------------------------------------------------------
# Geometry: walkable polygons per level -> rasters, walls (polygon rings, open at exits), exit cells.


def make_space(
    levels: list[shapely.Polygon], exits: list[tuple[int, shapely.Polygon]], pad: float = 0.4
) -> dict:
    return centre_rule_space(levels, exits, cell_size=H, pad=pad, storey_height=3.5)


def exit_field(space: dict, stairs: np.ndarray | None = None, stair_speed: float = 0.8) -> np.ndarray:
    """Walking distance (metres) to the nearest exit cell; stairs are connectors costing length * 1.34 / speed."""
    conn = None
    if stairs is not None and len(stairs):
        df0 = DistanceField(space["walkable"], cell_size=H, origins=space["origins"], stencil=16)
        a = df0.locate(stairs[:, 1:3], stairs[:, 0].astype(np.int64))
        b = df0.locate(stairs[:, 4:6], stairs[:, 3].astype(np.int64))
        conn = np.column_stack([a, b, stairs[:, 6] * 1.34 / stair_speed]).astype(float)
    df = DistanceField(space["walkable"], cell_size=H, origins=space["origins"], connectors=conn, stencil=16)
    return df.compute(np.argwhere(space["exit_cells"] >= 0))


def new_sim(
    model: str, space: dict, field: np.ndarray, dt: float, stairs: np.ndarray | None = None
) -> CrowdSim:
    sim = CrowdSim(model=model, dt=dt, seed=1, stairs=stairs, **space)
    sim.set_fields([field])
    return sim


# ----------------------------------------------------------------------------------------------------------------
# Scenes.


def bottleneck_scene(n: int = 1000) -> dict:
    room, corridor = shapely.box(0, 0, 20, 20), shapely.box(20, 9.5, 22.5, 10.5)
    exit_poly = shapely.box(22, 9.5, 22.5, 10.5)
    poly = shapely.union(room, corridor)
    rng = np.random.default_rng(0)
    xs = np.arange(0.4, 19.7, 0.5)
    grid = np.array([(x, y) for x in xs for y in xs])
    pos = grid[rng.permutation(len(grid))[:n]] + rng.uniform(-0.05, 0.05, (n, 2))
    speed = rng.normal(1.34, 0.1, n).clip(1.0, 1.6)
    space = make_space([poly], [(0, exit_poly)])
    return {
        "poly": poly,
        "exit": exit_poly,
        "space": space,
        "field": exit_field(space),
        "pos": pos,
        "speed": speed,
    }


def open_room_scene(n: int = 8000) -> dict:
    hall, exit_poly = shapely.box(0, 0, 100, 50), shapely.box(99.5, 0, 100, 50)
    s = 1.0 / np.sqrt(2.0)  # 2 P/m^2
    ys = np.arange(s / 2, 50 - 0.3, s)  # 70 rows, at least 0.35 m from the side walls
    xs = np.arange(s / 2, 90, s)[: int(np.ceil(n / len(ys)))]  # 115 columns: x < 81 m
    pos = np.array([(x, y) for x in xs for y in ys])[:n]
    speed = np.random.default_rng(1).normal(1.34, 0.26, len(pos)).clip(0.5, 2.0)
    space = make_space([hall], [(0, exit_poly)])
    return {
        "poly": hall,
        "exit": exit_poly,
        "space": space,
        "field": exit_field(space),
        "pos": pos,
        "speed": speed,
    }


def building_plan(
    side: float = 160.0,
) -> tuple[shapely.Polygon, list[shapely.Polygon], list[tuple[float, float]]]:
    """The scale building's floor (side x side metres, 2 m x 2 m pillars every 12 m), its four ground-floor doors
    (2 m wide, 1.5 m deep, outside the walls, one in the middle of each side) and the feet of its four stairs
    (each 8 m run along +x)."""
    pillars = [
        shapely.box(x, y, x + 2, y + 2)
        for x in np.arange(11, side - 6, 12)
        for y in np.arange(11, side - 6, 12)
    ]
    floor = shapely.box(0, 0, side, side).difference(shapely.union_all(pillars))
    c = side / 2
    doors = [shapely.box(-1.5, c - 1, 0, c + 1), shapely.box(side, c - 1, side + 1.5, c + 1),
             shapely.box(c - 1, -1.5, c + 1, 0), shapely.box(c - 1, side, c + 1, side + 1.5)]  # fmt: skip
    feet = [(6.0, 6.0), (6.0, side - 6.0), (side - 16.0, 6.0), (side - 16.0, side - 6.0)]
    return floor, doors, feet


def building_scene(per_floor: int = 25_000, floors: int = 4) -> dict:
    """Floors 160 m x 160 m with 2 m x 2 m pillars every 12 m; 4 stairs (10 m along the slope, 2 m wide, 8 m run)
    between consecutive floors; 4 exits (2 m doors with a 1.5 m vestibule) on the ground floor."""
    side = 160.0
    floor, doors, feet = building_plan(side)
    inner = shapely.box(-1.0, -1.0, side + 1.0, side + 1.0)
    exits = [d.difference(inner) for d in doors]  # the outer 0.5 m of each door
    ground = shapely.union_all([floor, *doors])
    levels = [ground] + [floor] * (floors - 1)
    space = make_space(levels, [(0, e) for e in exits])
    stairs = np.array(
        [[lv, x, y, lv + 1, x + 8.0, y, 10.0, 2.0] for lv in range(floors - 1) for x, y in feet], dtype=float
    )
    rng = np.random.default_rng(2)
    pos, lev = [], []
    spacing = np.sqrt(floor.area * 0.97 / per_floor)
    g = np.arange(0.3, side - 0.3, spacing)
    grid = np.array([(x, y) for x in g for y in g])
    inside = shapely.contains_xy(floor.buffer(-0.25), grid[:, 0], grid[:, 1])
    grid = grid[inside]
    for lv in range(floors):
        pick = grid[rng.permutation(len(grid))[:per_floor]]
        pos.append(pick)
        lev.append(np.full(len(pick), lv))
    pos, lev = np.concatenate(pos), np.concatenate(lev)
    speed = rng.normal(1.34, 0.26, len(pos)).clip(0.5, 2.0)
    field = exit_field(space, stairs)
    return {"space": space, "stairs": stairs, "field": field, "pos": pos, "levels": lev, "speed": speed}


# ----------------------------------------------------------------------------------------------------------------
# Measurements.


def twin_rate(model: str, scene: dict, window_s: float, threads: int, repeats: int = 3) -> float:
    """Agent-steps per second of twin over the first window_s of simulated time: the best of `repeats` runs (the
    machine may be shared; a descheduled thread stalls the other at every barrier)."""
    return max(_twin_rate_once(model, scene, window_s, threads) for _ in range(repeats))


def _twin_rate_once(model: str, scene: dict, window_s: float, threads: int, chunk: int = 50) -> float:
    dt = DT[model]
    set_num_threads(threads)
    sim = new_sim(model, scene["space"], scene["field"], dt)
    sim.add_agents(scene["pos"], 0, scene["speed"], 0.2)
    steps = round(window_s / dt)
    agent_steps, wall = 0, 0.0
    while steps > 0:
        k = min(chunk, steps)
        active = sim.n_agents - sim.counts()["evacuated"]  # the count changes little within a chunk
        t0 = time.perf_counter()
        sim.step(k)
        wall += time.perf_counter() - t0
        after = sim.n_agents - sim.counts()["evacuated"]
        agent_steps += k * (active + after) / 2
        steps -= k
    return agent_steps / wall


def scale_run(model: str, bld: dict, windows: int) -> bool:
    """Times the 100,000-agent building from the start in windows of SCALE_WINDOW_S (2 threads); prints each
    window, the whole stretch and the slowest window; returns whether the slowest is faster than real time."""
    dt = 0.05
    sim = new_sim(model, bld["space"], bld["field"], dt, stairs=bld["stairs"])
    sim.add_agents(bld["pos"], bld["levels"], bld["speed"], 0.2)
    steps = round(SCALE_WINDOW_S / dt)
    walls = []
    for w in range(windows):
        t0 = time.perf_counter()
        sim.step(steps)
        walls.append(time.perf_counter() - t0)
        c = sim.counts()
        dense = local_density(sim) >= 4.0
        print(
            f"  {model} {(w + 1) * SCALE_WINDOW_S:4.0f} s: {SCALE_WINDOW_S / walls[-1]:.2f}x real time "
            f"({c['walking']:,} walking, {c['on_stair']:,} on stairs, {c['evacuated']:,} out; "
            f"{dense.mean():.0%} of the walking at >= 4 P/m^2)",
            flush=True,
        )
    overall, slowest = windows * SCALE_WINDOW_S / sum(walls), SCALE_WINDOW_S / max(walls)
    good = slowest > 1.0
    print(
        f"required: {model}: faster than real time on 2 threads in the slowest window: {slowest:.2f}x "
        f"({overall:.2f}x over the first {windows * SCALE_WINDOW_S:.0f} s; {sim.substeps} substeps per step; "
        f"contact lists' pool {sim.list_pool_bytes / sim.n_agents:.1f} bytes per agent) "
        f"{'ok' if good else 'FAIL'}",
        flush=True,
    )
    return good


def scenario_run(model: str, duration_s: float) -> None:
    """The same building and 100,000 people through ``twin run``'s path (run_scenario: areas rasterised, fields,
    population, quickest-path re-routing at its default interval, exit choice, trajectories every second), run
    for 1 s and for ``duration_s``: the first is the set-up, the difference the simulation, whose speed against
    real time is printed (2 threads). Informative (not a requirement)."""
    import tempfile
    from pathlib import Path

    from twin.scenario.runner import run_scenario
    from twin.scenario.schema import Scenario

    floor, doors, feet = building_plan()
    areas = [
        {"id": f"L{lv}", "walkable": floor.wkt, "z": 3.5 * lv,
         "exits": [{"id": f"e{k}", "polygon": d.wkt} for k, d in enumerate(doors)] if lv == 0 else []}
        for lv in range(4)
    ]  # fmt: skip
    stairs = [
        {"id": f"s{lv}{k}", "from_area": f"L{lv}", "to_area": f"L{lv + 1}", "foot": [x, y], "head": [x + 8.0, y],
         "length_m": 10.0, "width_m": 2.0}
        for lv in range(3) for k, (x, y) in enumerate(feet)
    ]  # fmt: skip
    groups = [
        {"id": f"g{lv}", "count": 25_000, "in": {"area": f"L{lv}"}, "premovement_s": 0} for lv in range(4)
    ]
    walls, evacuated = [], 0
    for duration in (1.0, duration_s):
        scn = Scenario.from_dict(
            {"name": "scale", "seed": 1, "duration_s": duration, "city": {"areas": areas, "stairs": stairs},
             "crowd": {"model": model, "groups": groups},
             "outputs": {"trajectories_every_s": 1.0, "report": False}}
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            evacuated = run_scenario(scn, Path(out), progress=False)["crowd"]["evacuated"]
            walls.append(time.perf_counter() - t0)
    run_wall = walls[1] - walls[0]
    print(
        f"\ntwin run path, {model}, 100,000 people: set-up and the first second {walls[0]:.1f} s; then "
        f"{duration_s - 1.0:.0f} s simulated in {run_wall:.1f} s = {(duration_s - 1.0) / run_wall:.2f}x real time "
        f"({evacuated:,} out at {duration_s:.0f} s)",
        flush=True,
    )


def local_density(sim: CrowdSim, radius: float = 1.0) -> np.ndarray:
    """Persons per m^2 within ``radius`` of each walking agent (itself included), per level (scipy KD-tree)."""
    from scipy.spatial import cKDTree

    walking = sim.state == WALKING
    pos, lev = sim.positions[walking], sim.levels[walking]
    counts = np.zeros(len(pos))
    for level in np.unique(lev):
        on = lev == level
        tree = cKDTree(pos[on])
        counts[on] = tree.query_ball_point(pos[on], radius, return_length=True)
    return counts / (np.pi * radius**2)


def jupedsim_rate(model: str, scene: dict, window_s: float) -> tuple[float, str]:
    """Agent-steps per second of JuPedSim over the same window (or until it fails), and a note."""
    import jupedsim as jps

    dt = DT[model]
    if model == "collision_free_speed":
        sim = jps.Simulation(model=jps.CollisionFreeSpeedModel(), geometry=scene["poly"], dt=dt)
    else:
        sim = jps.Simulation(model=jps.SocialForceModel(), geometry=scene["poly"], dt=dt)
    stage = sim.add_exit_stage(scene["exit"])
    journey = sim.add_journey(jps.JourneyDescription([stage]))
    for p, v in zip(scene["pos"], scene["speed"], strict=True):
        if model == "collision_free_speed":
            params = jps.CollisionFreeSpeedModelAgentParameters(
                position=tuple(p), desired_speed=float(v), radius=0.2, time_gap=0.5, journey_id=journey,
                stage_id=stage,
            )  # fmt: skip
        else:
            params = jps.SocialForceModelAgentParameters(
                position=tuple(p), desired_speed=float(v), radius=0.2, journey_id=journey, stage_id=stage
            )
        sim.add_agent(params)
    steps = round(window_s / dt)
    agent_steps, note = 0, ""
    t0 = time.perf_counter()
    for _ in range(steps):
        n = sim.agent_count()
        try:
            sim.iterate()
        except RuntimeError as exc:  # e.g. "Point ... is outside of accessible area"
            note = f"JuPedSim stopped at t = {sim.elapsed_time():.2f} s: {exc}"
            break
        agent_steps += n
    return agent_steps / (time.perf_counter() - t0), note


def evacuate(model: str, scene: dict, threads: int = 2, limit_s: float = 2000.0) -> tuple[int, float, float]:
    """Run twin until everyone left: (agents left, 10-90 % flow P/s, simulated time)."""
    set_num_threads(threads)
    sim = new_sim(model, scene["space"], scene["field"], 0.05)
    n = len(scene["pos"])
    sim.add_agents(scene["pos"], 0, scene["speed"], 0.2)
    while sim.counts()["evacuated"] < n and sim.time < limit_s:
        sim.step(200)
    et = np.sort(sim.exit_time[sim.state == EVACUATED])
    flow = float("nan")
    if len(et) == n:
        k10, k90 = int(0.1 * n), int(0.9 * n) - 1
        flow = (k90 - k10) / (et[k90] - et[k10])
    return len(et), flow, sim.time


def compare(name: str, scene: dict, windows: dict, results: list) -> None:
    n = len(scene["pos"])
    print(f"\n{name}: {n:,} agents")
    print(
        f"{'model':<22}{'dt':>6}{'window':>8}{'twin 1T':>12}{'twin 2T':>12}{'JuPedSim':>12}{'x 1T':>8}{'x 2T':>8}"
    )
    for model in ("collision_free_speed", "social_force"):
        w = windows[model]
        r1 = twin_rate(model, scene, w, 1)
        r2 = twin_rate(model, scene, w, 2)
        rj, note = jupedsim_rate(model, scene, w)
        results.append((f"{name} {model}", r1 / rj, r2 / rj))
        print(
            f"{model:<22}{DT[model]:>6}{w:>7.1f}s{r1:>12.3e}{r2:>12.3e}{rj:>12.3e}{r1 / rj:>8.1f}{r2 / rj:>8.1f}",
            flush=True,
        )
        if note:
            print(f"  ({note.splitlines()[0][:150]})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter measurement windows")
    args = parser.parse_args(argv)
    threads_before = get_num_threads()
    ok = True
    t_start = time.perf_counter()
    try:
        try:
            import jupedsim

            print(f"JuPedSim {jupedsim.__version__}; agent-steps per second (higher is better)")
        except ImportError:
            print("jupedsim is not installed: no peer, no ratios (pip install jupedsim)")
            return 1
        results: list[tuple[str, float, float]] = []
        scale = 0.5 if args.quick else 1.0
        bottle = bottleneck_scene()
        compare(
            "bottleneck", bottle, {"collision_free_speed": 30 * scale, "social_force": 10 * scale}, results
        )
        room = open_room_scene()
        compare(
            "open room 2 P/m^2", room, {"collision_free_speed": 5 * scale, "social_force": 1 * scale}, results
        )
        for label, r1, r2 in results:
            good = r1 >= REQUIRED_1T and r2 >= REQUIRED_2T
            ok &= good
            print(
                f"required: {label}: >= {REQUIRED_1T:g}x at 1 thread, >= {REQUIRED_2T:g}x at 2 threads: "
                f"{r1:.1f}x, {r2:.1f}x {'ok' if good else 'FAIL'}"
            )

        print("\nbottleneck evacuation (twin, 2 threads, dt 0.05 s)")
        for model in ("collision_free_speed", "social_force"):
            t0 = time.perf_counter()
            left, flow, t_sim = evacuate(model, bottle)
            good = left == len(bottle["pos"]) and FLOW_RANGE[0] <= flow <= FLOW_RANGE[1]
            ok &= good
            print(
                f"required: {model}: all {len(bottle['pos'])} leave ({left} did, last at {t_sim:.0f} s), 10-90 % "
                f"flow in {FLOW_RANGE[0]}-{FLOW_RANGE[1]} P/s ({flow:.2f}): {'ok' if good else 'FAIL'} "
                f"[{time.perf_counter() - t0:.1f} s wall]",
                flush=True,
            )

        per_floor = 25_000
        t0 = time.perf_counter()
        bld = building_scene(per_floor)
        n = len(bld["pos"])
        print(f"\nscale: {n:,} agents on 4 floors, {bld['space']['walkable'].size:,} raster cells, "
              f"{len(bld['stairs'])} stairs (set-up {time.perf_counter() - t0:.1f} s)")  # fmt: skip
        bytes_per_agent = CrowdSim.state_bytes_per_agent()
        ok &= bytes_per_agent <= 200
        print(
            f"required: state <= 200 bytes per agent: {bytes_per_agent:.0f} {'ok' if bytes_per_agent <= 200 else 'FAIL'}"
        )
        set_num_threads(2)
        for model in ("collision_free_speed", "social_force"):
            windows = max(2, round(SCALE_STRETCH_S / SCALE_WINDOW_S / (3 if args.quick else 1)))
            good = scale_run(model, bld, windows)
            ok &= good
        scenario_run("collision_free_speed", 20.0 if args.quick else 60.0)
    finally:
        set_num_threads(threads_before)
    print(
        f"\n{'all requirements met' if ok else 'some requirements FAILED'} ({time.perf_counter() - t_start:.0f} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
