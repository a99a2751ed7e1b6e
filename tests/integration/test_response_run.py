"""Emergency response through ``twin run`` on the shared 10 x 10 grid: the nearest station's unit is sent, it
drives in the traffic run as a priority vehicle, and its response time equals its travel time there; coverage;
bad stations and dispatches are errors naming the field."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from twin.errors import InputError
from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario


def scenario(data_dir, *, stations=None, events=None, count=300):
    d = {
        "name": "grid-response",
        "seed": 7,
        "duration_s": 900,
        "city": {"roads": {"sumo_net": str(data_dir / "traffic" / "grid10.net.xml")}},
        "traffic": {
            "demand": {"random_trips": {"count": count, "depart_s": [0, 300], "min_distance_m": 600}}
        },
        "response": {
            "stations": stations
            or [
                {"id": "north", "position": [900, 1790], "units": {"engine": 2}},
                {"id": "south-west", "position": [10, 10], "units": {"engine": 1, "ambulance": 1}},
            ],
            "target_response_s": 240,
        },
        "events": events
        or [
            {"at_s": 60, "type": "dispatch", "id": "call-1", "position": [200, 300], "unit_type": "engine"},
            {"at_s": 120, "type": "dispatch", "position": [900, 1500], "unit_type": "engine", "units": 2},
        ],
        "outputs": {"report": False, "trajectories_every_s": 5.0},
    }
    return Scenario.from_dict(d)


@pytest.fixture(scope="module")
def response_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("response")
    return run_scenario(scenario(data_dir), out, progress=False), out


def test_the_nearest_units_go_and_their_response_time_is_their_travel_time(response_run):
    summary, out = response_run
    r = summary["response"]
    assert r["dispatches"] == 3
    assert r["arrived"] == 3
    units = pd.read_parquet(out / "response_units.parquet").set_index("unit")
    # the first call is next to the south-west station, the second near the north one
    assert units.loc["south-west/engine-1", "incident"] == "call-1"
    assert units.loc["north/engine-1", "state"] == "on_scene"
    assert units.loc["north/engine-2", "state"] == "on_scene"
    trips = pd.read_parquet(out / "traffic_trips.parquet").set_index("vehicle_id")
    for unit, row in units[units["state"] == "on_scene"].iterrows():
        trip = trips.loc[unit]
        assert trip["arrived"]
        assert row["response_time_s"] == pytest.approx(trip["arrival_s"] - row["dispatched_s"], abs=1e-9)
        # no turnout time: the unit leaves when dispatched (within one traffic step of insertion)
        assert row["response_time_s"] == pytest.approx(trip["duration_s"] + trip["depart_delay_s"], abs=1e-9)
        assert 0 < row["response_time_s"] < 400
    assert r["mean_response_time_s"] == pytest.approx(units["response_time_s"].dropna().mean())
    assert 0 < r["coverage_share"]["all"] <= 1
    assert r["coverage_share"]["all"] >= max(r["coverage_share"]["north"], r["coverage_share"]["south-west"])
    ev = pd.read_parquet(out / "events.parquet")
    arrived = ev[ev["type"] == "unit_arrived"]
    assert len(arrived) == 3
    d = json.loads(arrived["details"].iloc[0])
    assert d["response_time_s"] == pytest.approx(units.loc[d["unit"], "response_time_s"], abs=0.01)
    # summary.traffic counts the units as vehicles (SUMO's tripinfo would list them too)
    assert summary["traffic"]["vehicles"] == 300 + 3
    assert summary["traffic"]["collisions"] == 0


def test_a_unit_that_is_busy_is_not_sent_twice(data_dir, tmp_path):
    events = [
        {"at_s": 10, "type": "dispatch", "position": [200, 300], "unit_type": "ambulance"},
        {"at_s": 20, "type": "dispatch", "position": [900, 900], "unit_type": "ambulance"},
    ]
    summary = run_scenario(scenario(data_dir, events=events, count=20), tmp_path, progress=False)
    r = summary["response"]
    assert r["dispatches"] == 1
    assert r["failed_dispatches"] == 1
    ev = pd.read_parquet(tmp_path / "events.parquet")
    assert "no available ambulance unit" in ev.loc[ev["type"] == "dispatch_failed", "details"].iloc[0]


def test_coverage_shrinks_with_the_target(data_dir, tmp_path):
    from twin.city import load
    from twin.sim.demand import Router
    from twin.sim.response import coverage
    from twin.sim.traffic_net import compile_network

    net = compile_network(load(data_dir / "traffic" / "grid10.net.xml").roads)
    graph = Router(net).graph
    t_edge = net.edge_travel_time()
    src = np.array([net.edge_row["A0B0"]])
    shares = [coverage(graph, src, net.edge_length, t_edge, s)[1] for s in (60, 120, 240, 480, 10_000)]
    assert shares == sorted(shares)
    assert shares[0] < 0.2
    assert shares[-1] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"stations": [{"id": "far", "position": [5000, 5000], "units": {"engine": 1}}]},
            r"response.stations\[0\].position: station 'far' at \(5000.0, 5000.0\) is \d+ m from the nearest road",
        ),
        (
            {"stations": [{"id": "s", "position": [0, 0], "units": {"tank": 1}}]},
            r"response.stations\[0\].units: unknown unit type 'tank'; expected one of engine, ladder",
        ),
        (
            {"events": [{"at_s": 5, "type": "dispatch", "station": "nowhere", "position": [1, 1]}]},
            r"events\[0\].station: no station 'nowhere'",
        ),
    ],
)
def test_bad_response_input_names_the_field(data_dir, tmp_path, change, message):
    with pytest.raises(InputError, match=message):
        run_scenario(scenario(data_dir, **change), tmp_path, progress=False)
