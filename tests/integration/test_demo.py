"""``make demo``'s city: built only from installed data, written as bundle, summary and picture."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from twin.city import City
from twin.demo import OFFICE_PLACE, run_demo


def test_demo_runs_the_headline_and_writes_city_bundle_and_picture(tmp_path, monkeypatch):
    # (a relative output folder, as `make demo` gives: the scenario's generated inputs must resolve inside it once)
    monkeypatch.chdir(tmp_path.parent)
    result = run_demo(Path(tmp_path.name), progress=False)
    s = json.loads((tmp_path / "summary.json").read_text())
    crowd = s["crowd"]
    assert crowd["agents"] == 210
    assert crowd["evacuated"] == 210  # the office empties all three storeys while its top storey burns
    # the coupled headline: fire and smoke, units through traffic, a burst flooding streets that close
    assert s["fire"]["fires"][0]["space"] == "Room 3.05"
    assert s["fire"]["untenable_spaces"] >= 3
    assert s["response"]["dispatches"] >= 3
    assert s["response"]["arrived"] >= 3
    assert s["flood"]["volume_in_m3"] == pytest.approx(s["water"]["water"]["leak_volume_m3"], rel=1e-9)
    assert s["flood"]["roads_closed_vehicles"]
    assert set(s["timing"]["model_wall_s"]) == {"crowd", "traffic", "response", "smoke", "flood"}
    report = (tmp_path / "report.html").read_text()
    for fig in ("evacuation", "smoke", "flood", "water", "response", "coverage", "timeline", "delay_map"):
        assert f"figures/{fig}.png" in report
        assert (tmp_path / "figures" / f"{fig}.png").stat().st_size > 10_000
    summary = json.loads((tmp_path / "city-summary.json").read_text())
    kinds = sorted(layer["kind"] for layer in summary["layers"])
    assert kinds == ["building", "citymodel", "pipes", "roads"]
    assert summary["crs"] == "EPSG:3067"
    still = result["outputs"][
        "still"
    ]  # the viewer's off-screen 3-D still (this machine kind renders with EGL)
    assert still.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert still.stat().st_size > 50_000
    picture = result["outputs"]["picture"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 50_000  # a real drawing, not an empty canvas

    city = City.load(result["outputs"]["bundle"])
    office = city.buildings["office"]
    assert len(office.storeys) >= 3
    assert len(office.exits()) >= 2
    # the office sits where it was placed, inside the street network's extent
    centre = city.frame.to_world(office.bounds().mean(axis=0, keepdims=True))[0]
    assert abs(centre[0] - OFFICE_PLACE.x) < 60
    assert abs(centre[1] - OFFICE_PLACE.y) < 60
    roads = city.roads.bounds()
    local = office.bounds().mean(axis=0)
    assert np.all(local[:2] > roads[0, :2])
    assert np.all(local[:2] < roads[1, :2])
    # the water network lies under the district
    nodes = city.pipes["water"].nodes[["x_m", "y_m"]].to_numpy()
    assert np.all(nodes > roads[0, :2] - 200)
    assert np.all(nodes < roads[1, :2] + 200)
