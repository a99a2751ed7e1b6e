"""Drill actions by picking, through the event bus, saved as a scenario that replays the drill; the clear error
when there is no OpenGL backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.viewer.conftest import shortened

pytest.importorskip("pyvista")


@pytest.fixture(scope="module")
def drill():
    from twin.viewer.drill import Drill

    d = Drill(
        shortened("office_fire", duration_s=30, count=10, events=[{"at_s": 0, "type": "alarm"}]),
        window_size=(320, 240),
    )
    yield d
    d.scene.close()


def _display_xy(scene, point) -> tuple[float, float]:
    ren = scene.plotter.renderer
    ren.SetWorldPoint(*point, 1.0)
    ren.WorldToDisplay()
    x, y, _ = ren.GetDisplayPoint()
    return x, y


def test_screen_pick_starts_a_fire_in_the_room_under_the_pointer(drill, tmp_path: Path) -> None:
    d = drill
    d.advance(4.0)
    b = d.run.city.buildings["office"]
    # look straight down at the top storey so the pick hits its floor: cut the storeys above away
    top = len(b.storeys) - 1
    room = b.spaces[
        (b.spaces["storey"] == b.storeys["guid"].iloc[top]) & b.spaces["name"].str.startswith("Room")
    ]
    row = room.iloc[0]
    c = row["footprint"].representative_point()
    scene = d.scene
    scene.set_visible("smoke", False)
    scene.set_xray(False)
    cam = scene.plotter.camera
    cam.focal_point = (c.x, c.y, row["z_m"])
    cam.position = (c.x, c.y - 0.01, row["z_m"] + 40.0)
    cam.up = (0.0, 1.0, 0.0)
    scene.cut_away(top)
    scene.set_visible("agents", False)
    scene.render()
    x, y = _display_xy(scene, (c.x, c.y, row["z_m"]))
    d.mode = "fire"
    event = d.pick_screen(x, y)
    assert event is not None, d.messages
    assert (event.type, event.building, event.space) == ("fire", "office", row["name"])
    d.advance(2.0)
    log = d.run.bus.log.to_frame()
    fires = log[log["type"] == "fire"]
    assert len(fires) == 1
    assert row["name"] in fires["details"].iloc[0]
    assert d.actions[-1]["event"]["space"] == row["name"]


def test_pick_handler_closes_the_nearest_door_and_the_drill_replays(drill, tmp_path: Path) -> None:
    from twin.scenario.runner import run_scenario

    d = drill
    b = d.run.city.buildings["office"]
    door = b.doors.iloc[5]
    d.mode = "close_door"
    event = d.on_pick(np.array([door.x_m + 0.4, door.y_m - 0.3, door.z_m + 1.0]))
    assert (event.type, event.door) == ("close_door", door["guid"])
    d.mode = "close_road"
    assert d.on_pick(np.array([door.x_m, door.y_m, door.z_m])) is None  # no roads here: a message, no crash
    assert "no roads" in d.messages[-1]
    summary = d.finish(tmp_path / "drill")
    assert summary["drill"]["actions"] == [f"events[{a['events_index']}]" for a in d.actions]
    replay = tmp_path / "drill" / "drill_scenario.yaml"
    assert replay.exists()
    assert (tmp_path / "drill" / "drill_scenario.actions.json").exists()
    run_scenario(replay, tmp_path / "replay", progress=False)
    a = pd.read_parquet(tmp_path / "drill" / "crowd_trajectories.parquet")
    b2 = pd.read_parquet(tmp_path / "replay" / "crowd_trajectories.parquet")
    pd.testing.assert_frame_equal(a, b2)
    for name in ("kpis.parquet", "smoke_state.parquet"):
        # smoke_state exists only when a fire was started (by the picking test, if it ran on this worker first)
        assert (tmp_path / "drill" / name).exists() == (tmp_path / "replay" / name).exists()
        if (tmp_path / "drill" / name).exists():
            pd.testing.assert_frame_equal(
                pd.read_parquet(tmp_path / "drill" / name), pd.read_parquet(tmp_path / "replay" / name)
            )
    # The same events at the same times; within one time step a drill's injected event is logged after model
    # events published earlier for that time, a replayed scenario event before them (CoupledRun's queue order).
    keys = ["t_s", "type", "source", "details"]
    ea = pd.read_parquet(tmp_path / "drill" / "events.parquet").sort_values(keys, ignore_index=True)
    eb = pd.read_parquet(tmp_path / "replay" / "events.parquet").sort_values(keys, ignore_index=True)
    pd.testing.assert_frame_equal(ea, eb)


def test_targets_on_a_road_network(grid_results: Path) -> None:
    """Road picks choose the nearest edge (reference: brute force over every segment with shapely)."""
    import shapely

    from twin.scenario.schema import build_city, load_scenario
    from twin.viewer.drill import Targets

    scenario = load_scenario(grid_results / "scenario.yaml")
    city = build_city(scenario)
    targets = Targets(city, scenario)
    edges = city.roads.edges
    rng = np.random.default_rng(3)
    lo, hi = city.roads.bounds()[:, :2]
    lines = [shapely.LineString(np.asarray(s).reshape(-1, 2)) for s in edges["shape"]]
    shapes = [np.asarray(s).reshape(-1, 2) for s in edges["shape"]]
    for _ in range(20):
        s = shapes[rng.integers(len(shapes))]
        p = s[0] + rng.uniform(0, 1) * (s[-1] - s[0]) + rng.uniform(-8, 8, 2)
        got = targets.road_at(np.append(p, 0.0))
        dist = np.array(
            [
                ln.distance(shapely.Point(p)) if not str(i).startswith(":") else np.inf
                for ln, i in zip(lines, edges["id"], strict=True)
            ]
        )
        assert dist[list(edges["id"]).index(got)] == pytest.approx(dist.min(), abs=1e-6)


def test_missing_gl_backend_is_a_clear_error_not_a_crash(office_results: Path, tmp_path: Path) -> None:
    """No display and an EGL vendor list that does not exist: VTK alone would segfault; twin exits 2 with a
    message naming the problem and writes nothing."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "VTK_DEFAULT_OPENGL_WINDOW")
    }
    env["__EGL_VENDOR_LIBRARY_FILENAMES"] = str(tmp_path / "no-such-vendor.json")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    png = tmp_path / "x.png"
    proc = subprocess.run(
        [sys.executable, "-m", "twin.cli", "view", str(office_results), "--screenshot", str(png)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "no working OpenGL backend" in proc.stderr
    assert "EGL" in proc.stderr
    assert "OSMesa" in proc.stderr
    assert not png.exists()
