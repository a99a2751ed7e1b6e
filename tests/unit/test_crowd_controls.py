"""Run-time controls of the crowd core that hazards and alarms use: desired speed (smoke slows people down)
and start time (an alarm starts pre-movement clocks). Checked against the motion they must produce."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from twin.sim.crowd_core import WAITING, WALKING, CrowdSim
from twin.sim.rasterize import centre_rule_space
from twin.spatial import DistanceField

H = 0.2


def corridor_sim(n=2, *, start=0.0):
    """A 40 m x 4 m corridor with an exit at its far end and n agents at x = 2 spread across it."""
    hall = shapely.box(0, 0, 40, 4)
    space = centre_rule_space(
        [hall], [(0, shapely.box(39.6, 0, 40, 4))], cell_size=H, pad=0.4, storey_height=3.0
    )
    sim = CrowdSim(model="collision_free_speed", dt=0.05, seed=1, **space)
    df = DistanceField(space["walkable"], cell_size=H, origins=space["origins"])
    sim.set_fields([df.compute(np.argwhere(space["exit_cells"] >= 0))])
    y = np.linspace(1, 3, n)
    ids = sim.add_agents(
        positions=np.column_stack([np.full(n, 2.0), y]),
        levels=np.zeros(n, np.int32),
        desired_speed=np.full(n, 1.2),
        radius=np.full(n, 0.2),
        start_time=np.full(n, start),
        field=np.zeros(n, np.int32),
        stair_up_speed=0.5,
        stair_down_speed=0.6,
    )
    return sim, ids


def test_desired_speed_change_takes_effect():
    sim, ids = corridor_sim(2)
    sim.step(40)  # 2 s: both up to speed
    sim.set_desired_speed(ids[:1], 0.4)
    sim.step(100)  # 5 s more
    speed = np.hypot(*sim.velocities.T)
    assert speed[0] == pytest.approx(0.4, abs=0.05)
    assert speed[1] == pytest.approx(1.2, abs=0.05)


def test_start_time_moves_waiting_agents():
    sim, ids = corridor_sim(2, start=1e6)  # nobody would start during the run
    sim.step(20)
    assert (sim.state == WAITING).all()
    sim.set_start_time(ids[1:], sim.time + 0.5)
    sim.step(20)  # 1 s
    assert sim.state[0] == WAITING
    assert sim.state[1] == WALKING
    assert sim.positions[1, 0] > 2.1


def test_bad_values_name_the_entry_and_change_nothing():
    sim, ids = corridor_sim(2)
    with pytest.raises(ValueError, match=r"speed\[1\] = -1"):
        sim.set_desired_speed(ids, np.array([0.5, -1.0]))
    with pytest.raises(ValueError, match=r"ids\[0\] = 7"):
        sim.set_start_time(np.array([7]), 1.0)
    with pytest.raises(ValueError, match="start_time"):
        sim.set_start_time(ids[:1], np.nan)
    sim.step(60)
    assert np.hypot(*sim.velocities.T) == pytest.approx([1.2, 1.2], abs=0.05)
