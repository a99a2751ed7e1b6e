"""Pipe bursts and gas leaks through ``twin run``: a burst floods the terrain (water conserved: what WNTR says
leaked is what the surface holds), flooded roads close to traffic through the event bus; a gas plume alarms the
buildings inside its hazard zone and only those; bad hazard input names the event field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from twin.city.dem_generator import generate_dem
from twin.errors import InputError
from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario

ROOT = Path(__file__).resolve().parents[2]


def burst_scenario(data_dir, dem, **event):
    e = {"at_s": 60, "type": "pipe_burst", "network": "water", "link": "10", "area_m2": 0.05}
    e.update(event)
    return Scenario.from_dict(
        {
            "name": "burst",
            "seed": 1,
            "duration_s": 1800,
            "city": {
                "crs": "EPSG:3067",
                "origin": [0, 0, 0],
                "terrain": {"dem": str(dem)},
                "roads": {"sumo_net": str(data_dir / "traffic" / "grid10.net.xml")},
                # Net1's pipe 10 runs from (20, 70) to (30, 70): placed so its middle lies by junction E4 (800, 800)
                "pipes": [
                    {
                        "id": "water",
                        "epanet": str(data_dir / "water" / "Net1.inp"),
                        "place": {"x": 725, "y": 600, "scale": 3},
                    }
                ],
            },
            "traffic": {
                "demand": {"random_trips": {"count": 300, "depart_s": [0, 1500], "min_distance_m": 600}}
            },
            "events": [e],
            "outputs": {"report": False, "trajectories_every_s": 1.0},
        }
    )


@pytest.fixture(scope="module")
def dem(tmp_path_factory):
    d = tmp_path_factory.mktemp("dem")
    # a hollow at junction E4 of the grid: the water collects on the streets around it
    return generate_dem(
        d / "dem.tif",
        bounds=(-100, -100, 1900, 1900),
        crs="EPSG:3067",
        cell_m=10,
        hills=0,
        hollows=[(800, 805, 2, 40)],
    )


@pytest.fixture(scope="module")
def burst_run(data_dir, dem, tmp_path_factory):
    out = tmp_path_factory.mktemp("burst")
    return run_scenario(burst_scenario(data_dir, dem), out, progress=False), out


def test_what_leaks_is_what_the_surface_holds(burst_run):
    s, out = burst_run
    leaked = s["water"]["water"]["leak_volume_m3"]
    assert leaked > 100
    assert s["flood"]["volume_in_m3"] == pytest.approx(leaked, rel=1e-9)
    assert s["flood"]["volume_stored_m3"] + s["flood"]["volume_out_m3"] == pytest.approx(leaked, rel=0.01)
    assert s["flood"]["max_depth_m"] > 0.3
    flood = np.load(out / "flood_max_depth.npz")
    assert flood["depth_m"].max() == pytest.approx(s["flood"]["max_depth_m"])
    # south-up: the deepest cell lies at the hollow (800, 805) within two cells
    iy, ix = np.unravel_index(np.argmax(flood["depth_m"]), flood["depth_m"].shape)
    x = float(flood["x0"]) + (ix + 0.5) * float(flood["cell_m"])
    y = float(flood["y0"]) + (iy + 0.5) * float(flood["cell_m"])
    assert np.hypot(x - 800, y - 805) < 25
    leaks = pd.read_parquet(out / "water_leaks_water.parquet")
    assert leaks["leak_outflow_m3s"].max() == pytest.approx(s["water"]["water"]["peak_leak_outflow_m3s"])


def test_flooded_roads_close_to_traffic(burst_run):
    s, out = burst_run
    closed = s["flood"]["roads_closed_vehicles"]
    assert "E5E4" in closed
    ev = pd.read_parquet(out / "events.parquet")
    flooded = ev[ev["type"] == "road_flooded"]
    first = {}
    for t, d in zip(flooded["t_s"], flooded["details"], strict=True):
        d = json.loads(d)
        if d["for"] == "vehicles":
            for e in d["edges"]:
                first.setdefault(e, t)
    fcd = pd.read_parquet(out / "traffic_fcd.parquet")
    fcd["edge"] = fcd["edge"].astype(str)
    for edge, t in first.items():
        on = fcd[fcd["edge"] == edge]
        before = set(on.loc[on["t_s"] <= t + 1, "vehicle_id"].astype(str))
        entered_after = set(on.loc[on["t_s"] > t + 1, "vehicle_id"].astype(str)) - before
        assert not entered_after, f"{edge} closed at {t} s but {sorted(entered_after)[:5]} drove onto it"
    assert s["traffic"]["collisions"] == 0


def test_a_burst_on_a_pipe_that_does_not_exist_names_the_event(data_dir, dem, tmp_path):
    with pytest.raises(InputError, match=r"events\[0\]\.link: no pipe 'P-404' in network 'water'"):
        run_scenario(burst_scenario(data_dir, dem, link="P-404"), tmp_path, progress=False)


def gas_scenario(wind_from_deg):
    data = yaml.safe_load((ROOT / "scenarios" / "office_evacuation.yaml").read_text())
    for g in data["crowd"]["groups"]:
        g["count"] = 8
    data["duration_s"] = 300
    data["outputs"]["report"] = False
    # the office lies around local (-200, 720) of its frame; a leak 150 m to its west
    data["city"]["origin"] = [386000, 6672000, 0]
    data["events"] = [
        {
            "at_s": 20,
            "type": "gas_leak",
            "position": [-350, 720],
            "rate_kg_s": 10.0,
            "wind_from_deg": wind_from_deg,
            "wind_speed_mps": 2.0,
            "stability": "E",
        }
    ]
    return Scenario.from_dict(
        data, source=ROOT / "scenarios" / "office_evacuation.yaml", base_dir=ROOT / "scenarios"
    )


@pytest.mark.parametrize(("wind_from_deg", "alarmed"), [(270, True), (90, False)])
def test_a_gas_plume_alarms_the_buildings_downwind_only(tmp_path, wind_from_deg, alarmed):
    s = run_scenario(gas_scenario(wind_from_deg), tmp_path, progress=False)
    zone = s["gas"]["zones"][0]
    assert zone["area_m2"] > 0
    assert ("office" in zone["buildings"]) is alarmed
    crowd = s["crowd"]
    if alarmed:
        assert crowd["evacuated"] == crowd["agents"] == 16
        assert crowd["not_alarmed"] == 0
        ev = pd.read_parquet(tmp_path / "events.parquet")
        alarm = ev[(ev["type"] == "alarm") & (ev["source"] == "gas")]
        assert alarm["t_s"].tolist() == [20.0]
    else:
        assert crowd["evacuated"] == 0
        assert crowd["not_alarmed"] == 16
