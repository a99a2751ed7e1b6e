"""RiMEA 3.0 verification tests 9, 11, 12, 13, 14 and 15 (VALIDATION.md, "Crowd — RiMEA 3.0 test cases").

Each test writes its RiMEA set-up as a scenario (``Scenario.from_dict``: the validation a scenario file gets), runs it
with :func:`twin.scenario.runner.run_scenario` (the model's default time step, no report) and asserts exactly the
criterion of the RiMEA table, plus that everyone gets out, on ``summary.crowd`` or on the written
``crowd_trajectories.parquet``. Every test runs with both operational models, ``social_force`` and
``collision_free_speed``. Seeds are fixed (margins were checked on other seeds too; test 12, whose margins are small,
runs eight); the core runs on one thread (its results do not depend on the thread count, and other jobs on the machine
would only slow OpenMP down).

A *jam* in front of a place (tests 12 and 13) is a queue: persons within 2 m of it on their way in, moving slower
than 0.5 m/s, averaged over 10 s — at least :data:`JAM_QUEUE` of them at some time is a jam, fewer is none. (The
first door of test 12 holds 17–33 such persons, the entry of its second room at most 3.3.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario

MODELS = ("social_force", "collision_free_speed")
JAM_QUEUE = 5.0
"""Persons (10-s mean) queued slower than :data:`QUEUE_SPEED_MPS` within :data:`QUEUE_REACH_M` of a place: a jam."""
QUEUE_SPEED_MPS = 0.5
QUEUE_REACH_M = 2.0
QUEUE_WINDOW_S = 10.0


# -- helpers ----------------------------------------------------------------------------------------------------------
def box(x0: float, y0: float, x1: float, y1: float) -> str:
    """WKT of the axis-aligned rectangle [x0, x1] × [y0, y1] (metres)."""
    return f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"


def adults(count: int, where: dict[str, str], group: str = "adults", **extra: Any) -> dict[str, Any]:
    """A group of ``count`` RiMEA adults (speeds from RiMEA's table) placed ``where`` (``{"area": id}`` or
    ``{"polygon": wkt}``), moving at once; ``extra`` adds group fields (e.g. ``stair_up_mps``)."""
    return {
        "id": group,
        "count": count,
        "in": where,
        "speed_mps": "rimea:adults",
        "premovement_s": 0,
        **extra,
    }


def run(
    out: Path,
    areas: list[dict[str, Any]],
    groups: list[dict[str, Any]],
    *,
    model: str,
    seed: int,
    duration_s: float,
    every_s: float,
    stairs: list[dict[str, Any]] | None = None,
    routing: dict[str, float] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Run a crowd-only scenario on ``city.areas`` into ``out``; returns ``summary["crowd"]`` and the trajectories
    (columns of ``crowd_trajectories.parquet``: t_s, agent_id, x_m, y_m, z_m, storey, speed_mps, state; one frame
    every ``every_s`` seconds, evacuated agents left out)."""
    crowd: dict[str, Any] = {"model": model, "groups": groups}
    if routing:
        crowd["routing"] = routing
    scn = Scenario.from_dict(
        {
            "name": "rimea",
            "seed": seed,
            "duration_s": duration_s,
            "city": {"areas": areas, "stairs": stairs or []},
            "crowd": crowd,
            "outputs": {"trajectories_every_s": every_s, "report": False},
        }
    )
    summary = run_scenario(scn, out, progress=False)
    return summary["crowd"], pd.read_parquet(out / "crowd_trajectories.parquet")


def assert_everyone_out(crowd: dict[str, Any], what: str) -> None:
    assert crowd["evacuated"] == crowd["agents"], (
        f"{what}: {crowd['agents'] - crowd['evacuated']} of {crowd['agents']} still inside after the run"
    )


def queue(tr: pd.DataFrame, near: np.ndarray) -> float:
    """The largest 10-s mean of the number of persons in ``near`` ((rows,) bool over ``tr``) walking slower than
    :data:`QUEUE_SPEED_MPS`; frames with nobody there count as 0."""
    times = np.unique(tr["t_s"].to_numpy())
    slow = near & (tr["state"].to_numpy() == "walking") & (tr["speed_mps"].to_numpy() < QUEUE_SPEED_MPS)
    per_frame = pd.Series(slow).groupby(tr["t_s"].to_numpy()).sum().reindex(times, fill_value=0)
    frames = max(1, round(QUEUE_WINDOW_S / float(np.median(np.diff(times)))))
    return float(per_frame.rolling(frames, min_periods=1).mean().max())


def flow_pps(times: np.ndarray) -> float:
    """Persons per second of passage times (s) between their 10th and 90th percentile (as ``summary.crowd.exits``'
    ``flow_pps``)."""
    t = np.sort(np.asarray(times, dtype=np.float64))
    lo, hi = np.quantile(t, [0.1, 0.9])
    k = int(np.count_nonzero((t >= lo) & (t <= hi)))
    return (k - 1) / (hi - lo)


# -- RiMEA 9: large room, closing exits ------------------------------------------------------------------------------
RATIO_BAND = (1.6, 2.4)  # "roughly doubles" (the band JuPedSim's RiMEA 9 test uses)
ROOM_9 = box(0, 0, 30, 20)
EXITS_9 = {
    "south-west": box(1, -1, 2, 0),
    "south-east": box(28, -1, 29, 0),
    "north-west": box(1, 20, 2, 21),
    "north-east": box(28, 20, 29, 21),
}


@pytest.mark.parametrize("model", MODELS)
def test_rimea_9_closing_two_of_four_exits_roughly_doubles_the_evacuation_time(
    tmp_path: Path, model: str
) -> None:
    """RiMEA 9: 1000 adults (RiMEA speed mix, no reaction time) in a 30 m × 20 m room with four 1 m exits, two in
    each long wall 1 m from the ends (``scenarios/large_room_four_exits.yaml``). Closing 2 of the 4 exits roughly
    doubles the evacuation time: the ratio lies in 1.6–2.4.

    The exits closed are the two of one long wall (north), as RiMEA's figure numbers them and JuPedSim's RiMEA 9 test
    reads it; the open two then sit at the two ends of the same wall, each serving half of the room."""
    times = {}
    for closed in ((), ("north-west", "north-east")):
        exits = [{"id": k, "polygon": p} for k, p in EXITS_9.items() if k not in closed]
        crowd, _ = run(
            tmp_path / f"closed{len(closed)}",
            [{"id": "hall", "walkable": ROOM_9, "exits": exits}],
            [adults(1000, {"area": "hall"})],
            model=model,
            seed=9,
            duration_s=900,
            every_s=2.0,
        )
        assert_everyone_out(crowd, f"{len(exits)} exits open")
        assert {k for k, v in crowd["exits"].items() if v["count"] > 0} == {e["id"] for e in exits}
        times[len(exits)] = crowd["evacuation_time_s"]
    ratio = times[2] / times[4]
    assert RATIO_BAND[0] <= ratio <= RATIO_BAND[1], (
        f"{model}: evacuation {times[4]:.1f} s with 4 exits, {times[2]:.1f} s with 2: ratio {ratio:.2f}"
    )


# -- RiMEA 11: choice of escape route ---------------------------------------------------------------------------------
NEAR_11 = (21.5, 20.0)  # exit centres on the north wall
FAR_11 = (27.5, 20.0)


@pytest.mark.parametrize("model", MODELS)
def test_rimea_11_most_take_the_nearer_exit_some_the_other(tmp_path: Path, model: str) -> None:
    """RiMEA 11: 300 adults in a room with 2 exits: most take the nearer exit, some the other
    (count(nearer) > count(other) > 0).

    RiMEA's layout: a 30 m × 20 m room, both 1 m exits in the north wall at x = 21–22 m and 27–28 m; the people
    start in the left third (x < 10 m, 1.5 P/m²), so the exit at 21–22 m is the nearer one for every person."""
    crowd, tr = run(
        tmp_path,
        [
            {
                "id": "hall",
                "walkable": box(0, 0, 30, 20),
                "exits": [
                    {"id": "nearer", "polygon": box(21, 20, 22, 21)},
                    {"id": "other", "polygon": box(27, 20, 28, 21)},
                ],
            }
        ],
        [adults(300, {"polygon": box(0, 0, 10, 20)})],
        model=model,
        seed=11,
        duration_s=600,
        every_s=2.0,
    )
    start = tr[tr["t_s"] == 0.0]
    assert len(start) == 300
    x, y = start["x_m"].to_numpy(), start["y_m"].to_numpy()
    assert np.all(np.hypot(x - NEAR_11[0], y - NEAR_11[1]) < np.hypot(x - FAR_11[0], y - FAR_11[1]))
    assert_everyone_out(crowd, model)
    nearer, other = crowd["exits"]["nearer"]["count"], crowd["exits"]["other"]["count"]
    assert nearer > other > 0, f"{model}: {nearer} left through the nearer exit, {other} through the other"


# -- RiMEA 12: bottleneck ---------------------------------------------------------------------------------------------
# room 1 (0–10 × 0–10) → 1 m × 5 m corridor (x 10–15, y 4.5–5.5) → room 2 (15–25 × 0–10) → 1 m exit at x = 25
ROOMS_12 = "POLYGON ((0 0, 10 0, 10 4.5, 15 4.5, 15 0, 25 0, 25 10, 15 10, 15 5.5, 10 5.5, 10 10, 0 10, 0 0))"
SEEDS_12 = (12, 1, 2, 3, 4, 5, 6, 7)
"""Test 12 is judged on every one of these runs: one seed would be a draw, not a verdict. Before room 2's exit the
social force model queued 0.9-4.2 persons on these seeds (0.9-5.3 on seeds 1-48, 5 or more once), the
collision-free speed model 1.4-2.1."""


@pytest.mark.parametrize("model", MODELS)
def test_rimea_12_the_jam_forms_only_in_the_first_room(tmp_path: Path, model: str) -> None:
    """RiMEA 12: 150 adults in a 10 m × 10 m room leave through a 1 m door into a 1 m × 5 m corridor, a second
    10 m × 10 m room and its 1 m exit. The jam forms only in the first room; none at the entry to the second.

    From the trajectories (every 0.5 s): queues (see the module docstring) in front of the corridor in room 1 (half
    disc of 2 m before its door), at the entry to room 2 (disc of 2 m around the corridor's end) and in front of
    room 2's exit (half disc of 2 m): a jam in the first place, none in the other two — in every run of
    :data:`SEEDS_12` (a planner runs one)."""
    found = []
    for seed in SEEDS_12:
        crowd, tr = run(
            tmp_path / str(seed),
            [
                {
                    "id": "rooms",
                    "walkable": ROOMS_12,
                    "exits": [{"id": "exit", "polygon": box(25, 4.5, 26, 5.5)}],
                }
            ],
            [adults(150, {"polygon": box(0, 0, 10, 10)})],
            model=model,
            seed=seed,
            duration_s=600,
            every_s=0.5,
        )
        assert_everyone_out(crowd, f"{model}, seed {seed}")
        x, y = tr["x_m"].to_numpy(), tr["y_m"].to_numpy()
        r = QUEUE_REACH_M
        q_door = queue(tr, (np.hypot(x - 10, y - 5) <= r) & (x <= 10))
        q_entry = queue(tr, np.hypot(x - 15, y - 5) <= r)
        q_exit = queue(tr, (np.hypot(x - 25, y - 5) <= r) & (x <= 25))
        found.append(f"seed {seed}: {q_door:.1f} / {q_entry:.1f} / {q_exit:.1f}")
        what = f"{model}: queues before the door / at room 2's entry / before its exit: {'; '.join(found)}"
        assert q_door >= JAM_QUEUE, what
        assert q_entry < JAM_QUEUE, what
        assert q_exit < JAM_QUEUE, what


# -- RiMEA 13: jam before a stair -------------------------------------------------------------------------------------
# room (0–10 × 0–10) → 2 m opening = corridor (x 10–22, y 4–6) → up-stair (10 m, 2 m wide) → landing with the exit
FOOT_13 = (21.8, 5.0)
CORRIDOR_LINE_13 = 12.0  # the cross-section where the corridor flow is measured, 2 m after the bottleneck


@pytest.mark.parametrize("model", MODELS)
def test_rimea_13_jam_at_the_stair_foot_and_stair_flow_below_corridor_flow(
    tmp_path: Path, model: str
) -> None:
    """RiMEA 13: 150 adults leave a 10 m × 10 m room through a 2 m opening (the bottleneck) into a 2 m × 12 m
    corridor ending in an up-stair (10 m along the slope, 2 m wide, stair-up speed N(0.675, 0.04) m/s) to a landing
    with the exit. A jam forms at the stair foot, and the flow onto the stair is below the flow in the corridor.

    From the trajectories (every 0.5 s): corridor flow = persons crossing x = 12 m (2 m after the bottleneck), stair
    flow = persons entering the stair (first frame on it), both between their 10th and 90th percentile passage; the
    jam is a queue (see the module docstring) in the last 3 m of the corridor before the stair foot."""
    crowd, tr = run(
        tmp_path,
        [
            {"id": "ground", "walkable": "POLYGON ((0 0, 10 0, 10 4, 22 4, 22 6, 10 6, 10 10, 0 10, 0 0))"},
            {
                "id": "landing",
                "walkable": box(22, 4, 30, 6),
                "z": 3.0,
                "exits": [{"id": "exit", "polygon": box(30, 4, 31, 6)}],
            },
        ],
        [
            adults(
                150,
                {"polygon": box(0, 0, 10, 10)},
                stair_up_mps={"dist": "normal", "mean": 0.675, "sd": 0.04},
            )
        ],
        model=model,
        seed=13,
        duration_s=600,
        every_s=0.5,
        stairs=[
            {
                "id": "stair",
                "from_area": "ground",
                "to_area": "landing",
                "foot": list(FOOT_13),
                "head": [22.2, 5.0],
                "length_m": 10.0,
                "width_m": 2.0,
            }
        ],
    )
    assert_everyone_out(crowd, model)
    assert crowd["stairs"] == {"stair": {"up": 150, "down": 0}}
    ground = (tr["state"] == "walking") & (tr["storey"] == "ground")
    crossed = tr[ground & (tr["x_m"] > CORRIDOR_LINE_13)].groupby("agent_id")["t_s"].min()
    entered = tr[tr["state"] == "on_stair"].groupby("agent_id")["t_s"].min()
    assert len(crossed) == len(entered) == 150
    corridor, stair = flow_pps(crossed.to_numpy()), flow_pps(entered.to_numpy())
    x = tr["x_m"].to_numpy()
    q_foot = queue(tr, ground.to_numpy() & (x >= FOOT_13[0] - 3.0))
    what = f"{model}: corridor {corridor:.2f} P/s, onto the stair {stair:.2f} P/s, queue at the foot {q_foot:.1f}"
    assert stair < corridor, what
    assert q_foot >= JAM_QUEUE, what


# -- RiMEA 14: route choice -------------------------------------------------------------------------------------------
# ground: 30 m × 30 m with a block (x 10–20, y 3–30) between the start room (west) and the target room (east), so the
# ground route runs around its two corners at (10, 3) and (20, 3); a bridge level (z 3 m) over the block joins the
# two rooms with a stair up (west) and a stair down (east), 5 m each along the slope.
GROUND_14 = "POLYGON ((0 0, 30 0, 30 30, 20 30, 20 3, 10 3, 10 30, 0 30, 0 0))"


@pytest.mark.parametrize("model", MODELS)
def test_rimea_14_route_choice_over_stairs_is_configurable_and_reported(tmp_path: Path, model: str) -> None:
    """RiMEA 14: from a start room to a target room, a short route over 2 stairs (up onto a bridge, down again) or
    a long route on the ground around 2 corners. The choice is configurable and reported.

    ``crowd.routing.stair_cost_factor`` 1 (stairs costed by their walking time): the stair route (about 42
    flat-walking metres from the middle of the start area, each stair 5 m at 0.68 m/s up and 0.79 m/s down costing
    9.9 and 8.5 m) is quicker than the ground route (about 54 m), and all 50 take it; factor 10 (the stairs cost
    99 and 85 m) sends all 50 around. ``summary.crowd.stairs`` reports the stair use both ways, and the stair route
    is indeed the quicker evacuation."""
    evacuation = {}
    for factor in (1.0, 10.0):
        crowd, _ = run(
            tmp_path / f"factor{factor:g}",
            [
                {
                    "id": "ground",
                    "walkable": GROUND_14,
                    "exits": [{"id": "target", "polygon": box(30, 24, 31, 26)}],
                },
                {"id": "bridge", "walkable": box(10, 24, 20, 26), "z": 3.0},
            ],
            [adults(50, {"polygon": box(0, 20, 10, 30)}, group="walkers")],
            model=model,
            seed=14,
            duration_s=600,
            every_s=1.0,
            stairs=[
                {
                    "id": "west",
                    "from_area": "ground",
                    "to_area": "bridge",
                    "foot": [9.5, 25.0],
                    "head": [10.5, 25.0],
                    "length_m": 5.0,
                    "width_m": 2.0,
                },
                {
                    "id": "east",
                    "from_area": "ground",
                    "to_area": "bridge",
                    "foot": [20.5, 25.0],
                    "head": [19.5, 25.0],
                    "length_m": 5.0,
                    "width_m": 2.0,
                },
            ],
            routing={"stair_cost_factor": factor},
        )
        assert_everyone_out(crowd, f"{model}, stair_cost_factor {factor:g}")
        evacuation[factor] = crowd["evacuation_time_s"]
        if factor == 1.0:
            assert crowd["stairs"] == {"west": {"up": 50, "down": 0}, "east": {"up": 0, "down": 50}}
        else:
            assert crowd["stairs"] == {"west": {"up": 0, "down": 0}, "east": {"up": 0, "down": 0}}
    assert evacuation[1.0] < evacuation[10.0], f"{model}: {evacuation}"


# -- RiMEA 15: large crowd around a corner ----------------------------------------------------------------------------
# Three 20 m wide corridors side by side (10 m apart), each with 500 persons in a 20 m × 6 m start area at its closed
# end and its whole open end as the exit: short 50 m, long 90 m, and one with a corner (a 60 m leg turning into a 30 m
# leg, measured along the outer walls) whose inner walls add up to the short corridor's length (40 + 10 m) and outer
# walls to the long one's (60 + 30 m), as RiMEA's figure pairs them.
CORRIDORS_15 = {
    "short": (box(0, 0, 20, 50), box(0, -1, 20, 0), box(0, 44, 20, 50)),
    "long": (box(30, 0, 50, 90), box(30, -1, 50, 0), box(30, 84, 50, 90)),
    "corner": (
        "POLYGON ((60 0, 90 0, 90 20, 80 20, 80 60, 60 60, 60 0))",
        box(90, 0, 91, 20),
        box(60, 54, 80, 60),
    ),
}


@pytest.mark.parametrize("model", MODELS)
def test_rimea_15_corner_evacuation_time_between_short_and_long_corridor(tmp_path: Path, model: str) -> None:
    """RiMEA 15: three corridors, each with 500 persons walking at 1.0 m/s: a long one, a short one and one with a
    corner. The corner case's evacuation time lies between those of the short and the long corridor.

    All three run in one scenario (separate areas, each group assigned its corridor's exit); each corridor's
    evacuation time is its exit's ``last_s``. Walking lengths from the middle of the start areas: short 47 m, long
    87 m, corner 67 m along the centre line (48 m hugging the inner corner).

    This needs quickest-path routing (``crowd.routing.congestion_every_s``, default 2 s): on the static shortest
    paths everyone squeezes round the inner ~6 m of the corner and the corner takes longer than the long corridor
    (social_force 176 s vs 110 s, collision_free_speed 137 s vs 101 s). With it (and routes kept off walls, so
    nobody is pressed against the inner wall), measured: social_force short 67 s, corner 106 s, long 108 s (corner
    102-106 s, long 109-110 s on seeds 1-14); collision_free_speed 64 s, 91 s, 104 s."""
    crowd, _ = run(
        tmp_path,
        [
            {"id": k, "walkable": walk, "exits": [{"id": k, "polygon": ex}]}
            for k, (walk, ex, _) in CORRIDORS_15.items()
        ],
        [
            {
                "id": k,
                "count": 500,
                "in": {"polygon": start},
                "speed_mps": 1.0,
                "premovement_s": 0,
                "exits": [k],
            }
            for k, (_, _, start) in CORRIDORS_15.items()
        ],
        model=model,
        seed=15,
        duration_s=600,
        every_s=5.0,
    )
    assert_everyone_out(crowd, model)
    t = {k: crowd["exits"][k]["last_s"] for k in CORRIDORS_15}
    assert all(crowd["exits"][k]["count"] == 500 for k in CORRIDORS_15)
    assert all(math.isfinite(v) for v in t.values())
    assert t["short"] < t["corner"] < t["long"], f"{model}: evacuation times {t}"
