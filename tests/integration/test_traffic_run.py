"""``twin run`` with a traffic section: outputs of the contract, road closures during the run (rerouting, nobody
enters a closed road), determinism and clear errors for events on roads that do not exist."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from twin.errors import InputError
from twin.scenario.runner import run_scenario
from twin.scenario.schema import Scenario


def scenario(data_dir, **extra) -> Scenario:
    d = {
        "name": "grid-closure",
        "seed": 5,
        "duration_s": 1500,
        "city": {"roads": {"sumo_net": str(data_dir / "traffic" / "grid10.net.xml")}},
        "traffic": {"demand": {"random_trips": {"count": 400, "depart_s": [0, 300], "min_distance_m": 600}}},
        "outputs": {"report": True, "trajectories_every_s": 2.0},
    }
    d.update(extra)
    return Scenario.from_dict(d)


# a central east-west edge of the grid (netgenerate names edges <from junction><to junction>)
CLOSED = "E5F5"


def test_traffic_outputs_and_a_closed_road(data_dir, tmp_path) -> None:
    events = [
        {"at_s": 0, "type": "close_road", "edge": CLOSED},
        {"at_s": 900, "type": "open_road", "edge": CLOSED},
    ]
    summary = run_scenario(scenario(data_dir, events=events), tmp_path, progress=False)
    t = summary["traffic"]
    assert t["arrived"] == t["vehicles"] == 400
    assert t["collisions"] == 0
    assert t["mean_travel_time_s"] > 0
    assert 0 <= t["mean_delay_s"] < t["mean_travel_time_s"]
    assert json.loads((tmp_path / "summary.json").read_text())["traffic"]["arrived"] == 400
    fcd = pd.read_parquet(tmp_path / "traffic_fcd.parquet")
    assert list(fcd.columns) == ["t_s", "vehicle_id", "x_m", "y_m", "edge", "lane", "speed_mps"]
    # nobody drives on the closed edge while it is closed; it carries traffic again once reopened or not, but
    # before 900 s it is empty
    on_closed = fcd[(fcd["edge"].astype(str) == CLOSED) & (fcd["t_s"] < 900)]
    assert on_closed.empty
    ev = pd.read_parquet(tmp_path / "events.parquet")
    # vehicles queued behind those waiting at the closure may be teleported after 300 s (SUMO's jam teleport)
    # trips to the closed road go to the nearest open edge instead (one event each)
    others = ev["type"][~ev["type"].isin(["teleport", "destination_closed"])].tolist()
    assert others == ["close_road", "open_road"]
    assert (ev["type"] == "destination_closed").sum() == t["destination_closed"] > 0
    assert (ev["type"] == "teleport").sum() == t["teleports"] <= 5
    trips = pd.read_parquet(tmp_path / "traffic_trips.parquet")
    assert len(trips) == 400
    assert trips["arrived"].all()
    edges = pd.read_parquet(tmp_path / "traffic_edges.parquet")
    assert {"t_s", "edge", "flow_vph", "mean_speed_mps"} <= set(edges.columns)
    report = (tmp_path / "report.html").read_text()
    for fig in ("delay_map.png", "travel_times.png", "traffic_state.png"):
        assert f"figures/{fig}" in report
        assert (tmp_path / "figures" / fig).stat().st_size > 10_000


def test_the_closure_reroutes_vehicles_that_planned_to_use_it(data_dir, tmp_path) -> None:
    base = run_scenario(scenario(data_dir), tmp_path / "base", progress=False)
    fcd = pd.read_parquet(tmp_path / "base" / "traffic_fcd.parquet")
    fcd["edge"] = fcd["edge"].astype(str)
    fcd["vehicle_id"] = fcd["vehicle_id"].astype(str)
    ends = fcd.sort_values("t_s").groupby("vehicle_id")["edge"].agg(["first", "last"])
    through = set(fcd.loc[fcd["edge"] == CLOSED, "vehicle_id"]) - set(
        ends.index[(ends["first"] == CLOSED) | (ends["last"] == CLOSED)]
    )
    users = len(through)  # vehicles that drove through the edge (it was neither their origin nor destination)
    assert users > 0, "the test edge must carry through traffic in the base run"
    closed = run_scenario(
        scenario(data_dir, events=[{"at_s": 0, "type": "close_road", "edge": CLOSED}]),
        tmp_path / "closed",
        progress=False,
    )
    assert closed["traffic"]["reroutes"] >= users
    # those starting on the closed road cannot depart: they wait for it to reopen (it does not here); those ending
    # on it arrive at the open edge nearest to it instead
    stuck = int((ends["first"] == CLOSED).sum())
    assert closed["traffic"]["arrived"] == 400 - stuck
    assert closed["traffic"]["destination_closed"] == int(
        ((ends["last"] == CLOSED) & (ends["first"] != CLOSED)).sum()
    )
    assert base["traffic"]["reroutes"] == 0


def test_same_seed_same_trips(data_dir, tmp_path) -> None:
    run_scenario(scenario(data_dir), tmp_path / "a", progress=False)
    run_scenario(scenario(data_dir), tmp_path / "b", progress=False)
    a = pd.read_parquet(tmp_path / "a" / "traffic_trips.parquet")
    b = pd.read_parquet(tmp_path / "b" / "traffic_trips.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_closing_an_edge_that_does_not_exist(data_dir, tmp_path) -> None:
    bad = scenario(data_dir, events=[{"at_s": 10, "type": "close_road", "edge": "nowhere"}])
    with pytest.raises(InputError, match=r"events\[0\]\.edge: no edge 'nowhere' in the road network"):
        run_scenario(bad, tmp_path, progress=False)


def test_od_table_demand(data_dir, tmp_path) -> None:
    od = tmp_path / "od.csv"
    od.write_text("origin,destination,count,begin_s,end_s\nA0,J9,30,0,300\nJ0,A9,20,0,300\n")
    s = scenario(data_dir, traffic={"demand": {"od": str(od)}})
    summary = run_scenario(s, tmp_path / "out", progress=False)
    assert summary["traffic"]["vehicles"] == summary["traffic"]["arrived"] == 50
    trips = pd.read_parquet(tmp_path / "out" / "traffic_trips.parquet")
    assert trips["vehicle_id"].str.startswith("A0_J9.").sum() == 30
    assert trips["depart_s"].between(0, 300).all()
    # corner to corner of the 1.8 km grid: at least the Manhattan distance
    assert (trips["route_length_m"] >= 2 * 1800 - 2 * 200).all()


def test_signal_control_modes(data_dir, tmp_path) -> None:
    """grid10's fixed-time lights run as actuated (netconvert's 5-50 s green range): with this light demand
    greens end early at empty approaches, so trips are quicker than under fixed-time control."""
    res = {}
    for mode in ("from_network", "fixed", "actuated"):
        s = scenario(
            data_dir, traffic={**scenario(data_dir).traffic.model_dump(exclude_none=True), "signals": mode}
        )
        res[mode] = run_scenario(s, tmp_path / mode, progress=False)["traffic"]
        assert res[mode]["arrived"] == 400
    assert res["fixed"]["mean_travel_time_s"] == res["from_network"]["mean_travel_time_s"]
    assert res["actuated"]["mean_delay_s"] < 0.8 * res["fixed"]["mean_delay_s"]
