"""The crowd on the event bus: alarms start pre-movement clocks (only for the people they concern), untenable
spaces are avoided by routing, smoke slows people down."""

from __future__ import annotations

import numpy as np

from twin.scenario.crowd_part import CrowdPart
from twin.scenario.schema import Scenario, build_city
from twin.sim.bus import EventBus
from twin.sim.crowd_core import EVACUATED
from twin.sim.timeline import CoupledModel

HALL = "POLYGON ((0 0, 30 0, 30 10, 0 10, 0 0))"
WEST = "POLYGON ((0 0, 12 0, 12 10, 0 10, 0 0))"


def scenario(events=(), *, count=40, premovement=0.0, duration=120.0):
    return Scenario.from_dict(
        {
            "name": "events-hall",
            "seed": 3,
            "duration_s": duration,
            "city": {
                "areas": [
                    {
                        "id": "hall",
                        "walkable": HALL,
                        "exits": [
                            {"id": "west_door", "polygon": "POLYGON ((-1 4, 0 4, 0 6, -1 6, -1 4))"},
                            {"id": "east_door", "polygon": "POLYGON ((30 4, 31 4, 31 6, 30 6, 30 4))"},
                        ],
                    },
                    {"id": "west", "walkable": WEST, "exits": []},
                ]
            },
            "crowd": {
                "model": "collision_free_speed",
                "groups": [
                    {
                        "id": "people",
                        "count": count,
                        "in": {"polygon": "POLYGON ((11 2, 14 2, 14 8, 11 8, 11 2))"},
                        "speed_mps": 1.3,
                        "premovement_s": premovement,
                        "radius_m": 0.2,
                    }
                ],
            },
            "events": list(events),
            "outputs": {"trajectories_every_s": 0.5, "report": False},
        },
        source="test.yaml",
    )


def run(s, extra=()):
    bus = EventBus()
    for i, e in enumerate(s.events):
        bus.publish(e.at_s, e.type, "scenario", {"index": i, **e.model_dump(mode="json", exclude_none=True)})
    part = CrowdPart(s, build_city(s), bus)
    for t, typ, details in extra:
        bus.publish(t, typ, "test", details)
    CoupledModel([part], bus, duration_s=s.duration_s, seed=s.seed).run(progress=False)
    return part


def exit_counts(part):
    core = part.model.core
    ids = part.model.exit_ids
    return {ids[k]: int(np.count_nonzero(core.exit_index == k)) for k in range(len(ids))}


def test_without_an_alarm_event_people_start_at_their_premovement_time():
    part = run(scenario(premovement=2.0))
    assert (part.model.core.state == EVACUATED).all()
    assert part.model.core.exit_time.min() > 2.0


def test_people_wait_for_the_alarm():
    part = run(scenario([{"at_s": 30, "type": "alarm"}], premovement=2.0))
    core = part.model.core
    assert (core.state == EVACUATED).all()
    first = core.exit_time.min()
    # the nearest person stands 10.5 m from the west door: 8 s at 1.3 m/s, after 30 + 2 s (the crowd starting at
    # once delays the first a little)
    assert 32.0 + 10.0 / 1.3 * 0.9 < first < 32.0 + 25.0


def test_an_alarm_for_another_area_leaves_people_waiting():
    # "west" covers x < 12; the placement strip spans 11-14: only those west of x = 12 hear it
    part = run(scenario([{"at_s": 1, "type": "alarm", "areas": ["west"]}], premovement=0.0, duration=60))
    left = part.model.core.state == EVACUATED
    assert 0 < left.sum() < len(left)


def test_routes_avoid_an_untenable_space():
    base = exit_counts(run(scenario()))
    assert base["west_door"] > base["east_door"]  # the west door is nearer
    smoke = exit_counts(run(scenario(), [(0.0, "space_untenable", {"space": "west"})]))
    assert smoke["east_door"] > 0.8 * sum(smoke.values())


def test_smoke_slows_people_down():
    # few people: walking, not the queue at the door, sets the time
    fast = run(scenario(count=6))
    slow = run(scenario(count=6), [(0.0, "space_smoke", {"space": "hall", "speed_factor": 0.5})])
    t_fast = fast.model.core.exit_time.max()
    t_slow = slow.model.core.exit_time.max()
    assert t_slow > 1.5 * t_fast
