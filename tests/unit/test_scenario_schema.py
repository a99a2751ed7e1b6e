"""The scenario contract (SCENARIO.md): loading, defaults, path resolution and every kind of error message."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from twin.errors import InputError
from twin.scenario.schema import (
    AlarmEvent,
    Distribution,
    FireEvent,
    Scenario,
    load_scenario,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TWIN_DATA", ROOT / ".." / "shared" / "data")).resolve()

# The example of SCENARIO.md, verbatim except for the file names (which must exist).
EXAMPLE = """\
name: office-fire-drill
seed: 42                    # all randomness derives from it; same seed, same results
duration_s: 900             # simulated time limit
city:
  crs: EPSG:3067            # optional: the projected CRS of the local frame
  buildings:
    - id: office
      ifc: ../models/office.ifc
      place: {x: 385000.0, y: 6672000.0, z: 10.0, rotation_deg: 30}   # optional, for sources without georeference
  terrain: {dem: ../data/terrain.tif}
  pipes:
    - {id: water, epanet: ../data/Net3.inp, crs: EPSG:2227}
    - {id: sewer, swmm: ../data/Example1.inp}
  roads: {osm: ../data/district.osm.bz2}          # or {sumo_net: ../data/city.net.xml}
  citymodel: {cityjson: ../data/district.city.json}
  areas:                    # plain 2-D walkable geometry (metres, local frame), for studies and tests
    - id: hall
      walkable: "POLYGON ((0 0, 20 0, 20 20, 0 20, 0 0))"   # WKT; holes are obstacles
      z: 0.0
      exits:
        - {id: door, polygon: "POLYGON ((20 9.5, 21 9.5, 21 10.5, 20 10.5, 20 9.5))"}
crowd:
  model: social_force       # or collision_free_speed
  dt_s: 0.05                # optional: the model's own default otherwise
  groups:
    - id: occupants
      count: 1000
      in: {area: hall}      # or {building: office} / {building: office, storeys: ["Level 2"]} / {polygon: WKT}
      speed_mps: {dist: normal, mean: 1.34, sd: 0.26, min: 0.46, max: 1.61}   # or a number
      premovement_s: {dist: uniform, min: 0, max: 60}                          # or a number
      radius_m: 0.2
      exits: [door]         # optional: assigned exits; default is the quickest exit
traffic:
  dt_s: 1.0                 # optional
  demand:
    routes: ../data/city.rou.xml                     # SUMO route file, or
    # random_trips: {count: 5000, depart_s: [0, 3600]}
  signals: from_network     # or fixed / actuated
events:
  - {at_s: 60, type: fire, building: office, space: "Room 2.04"}
  - {at_s: 120, type: close_road, edge: "-12345#2"}
  - {at_s: 0, type: pipe_burst, network: water, link: "P-101", area_m2: 0.05}
  - {at_s: 30, type: alarm}
outputs:
  trajectories_every_s: 0.5
  report: true
  movie: false
"""

# name used in the example → real file (linked, never copied)
EXAMPLE_FILES = {
    "models/office.ifc": ROOT / "models" / "office.ifc",
    "data/terrain.tif": DATA / "terrain" / "bigtujunga.tif",
    "data/Net3.inp": DATA / "water" / "Net3.inp",
    "data/Example1.inp": DATA / "sewer" / "EPA_Example1.inp",
    "data/district.osm.bz2": DATA / "roads" / "West-Oakland.osm.bz2",
    "data/district.city.json": DATA / "citymodel" / "delft.city.json",
    "data/city.rou.xml": DATA / "traffic" / "grid10.rou.xml",
}


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The SCENARIO.md example in tmp/scenarios/, its files linked into tmp/models and tmp/data."""
    for name, target in EXAMPLE_FILES.items():
        link = tmp_path / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
    path = tmp_path / "scenarios" / "office.yaml"
    path.parent.mkdir()
    path.write_text(EXAMPLE, encoding="utf-8")
    return path


def example_data(example: Path) -> dict[str, Any]:
    return yaml.safe_load(example.read_text())


def check(example: Path, mutate, *, tmp_name: str = "bad.yaml") -> InputError:
    """Apply ``mutate`` to the example's data, write it beside the example, load it and return the error."""
    data = example_data(example)
    mutate(data)
    path = example.parent / tmp_name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    assert info.value.source == str(path)
    return info.value


# --- the example and the committed scenarios -------------------------------------------------------------------


def test_scenario_md_example_validates_and_resolves(example: Path) -> None:
    s = load_scenario(example)
    tmp = example.parent.parent
    assert s.name == "office-fire-drill"
    assert s.seed == 42
    assert s.duration_s == 900.0
    assert s.source == str(example)
    assert s.city is not None
    assert s.crowd is not None
    assert s.traffic is not None
    # every path absolute, relative to the scenario file, pointing at the file the example names
    assert s.city.buildings[0].ifc == tmp / "models" / "office.ifc"
    assert s.city.terrain.dem == tmp / "data" / "terrain.tif"
    assert s.city.pipes[0].epanet == tmp / "data" / "Net3.inp"
    assert s.city.pipes[0].format == "epanet"
    assert s.city.pipes[1].format == "swmm"
    assert s.city.pipes[1].swmm == tmp / "data" / "Example1.inp"
    assert s.city.roads.osm == tmp / "data" / "district.osm.bz2"
    assert s.city.citymodel.cityjson == tmp / "data" / "district.city.json"
    assert s.traffic.demand.routes == tmp / "data" / "city.rou.xml"
    for p in (s.city.buildings[0].ifc, s.city.terrain.dem, s.traffic.demand.routes):
        assert p.is_absolute()
        assert p.is_file()
    place = s.city.buildings[0].place
    assert (place.x, place.y, place.z, place.rotation_deg, place.scale) == (
        385000.0,
        6672000.0,
        10.0,
        30.0,
        1.0,
    )
    g = s.crowd.groups[0]
    assert g.count == 1000
    assert g.in_.area == "hall"
    assert g.exits == ["door"]
    assert isinstance(g.speed_mps, Distribution)
    assert g.speed_mps.dist == "normal"
    assert g.speed_mps.min == 0.46
    assert g.premovement_s == Distribution(dist="uniform", min=0, max=60)
    assert g.radius_m == 0.2
    assert s.crowd.dt_s == 0.05
    assert s.crowd.cell_size_m == 0.2
    assert s.crowd.model == "social_force"
    assert [e.type for e in s.events] == ["fire", "close_road", "pipe_burst", "alarm"]
    assert isinstance(s.events[0], FireEvent)
    assert s.events[0].space == "Room 2.04"
    assert s.events[1].edge_ids == ["-12345#2"]
    assert s.events[2].area_m2 == 0.05
    assert s.events[2].discharge_coeff == 0.75
    assert isinstance(s.events[3], AlarmEvent)
    assert s.outputs.trajectories_every_s == 0.5
    assert s.outputs.report
    assert not s.outputs.movie
    area = s.area("hall")
    assert area.geometry.area == 400.0
    assert area.exits[0].geometry.area == 1.0


def test_resolved_dump_is_plain_data_and_round_trips(example: Path, tmp_path: Path) -> None:
    s = load_scenario(example)
    dumped = s.model_dump_resolved()
    # plain data only: YAML safe_dump would refuse anything else
    text = yaml.safe_dump(dumped, sort_keys=False)
    assert dumped["city"]["buildings"][0]["ifc"] == str(tmp_path / "models" / "office.ifc")
    assert dumped["crowd"]["groups"][0]["in"] == {"area": "hall"}
    assert dumped["crowd"]["cell_size_m"] == 0.2  # default filled in
    assert dumped["traffic"]["signals"] == "from_network"
    assert dumped["events"][2]["discharge_coeff"] == 0.75
    # the resolved file loads from anywhere (absolute paths) and gives the same scenario
    elsewhere = tmp_path / "results" / "scenario.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(text, encoding="utf-8")
    again = load_scenario(elsewhere)
    assert again.model_dump_resolved() == dumped


def test_committed_scenarios_validate() -> None:
    files = sorted((ROOT / "scenarios").glob("*.yaml"))
    assert files, "no scenarios/*.yaml"
    for f in files:
        s = load_scenario(f)
        assert s.crowd is not None or s.traffic is not None, f"{f.name} simulates nothing"
        for b in s.city.buildings:
            assert b.ifc.is_file()
        if s.traffic is not None:
            assert s.city.roads is not None


def test_sections_not_named_are_none_and_defaults_filled(tmp_path: Path) -> None:
    s = Scenario.from_dict({"duration_s": 10}, base_dir=tmp_path)
    assert s.city is None
    assert s.crowd is None
    assert s.traffic is None
    assert s.events == []
    assert s.seed == 0
    assert s.name == "scenario"
    assert s.outputs.trajectories_every_s == 0.5
    assert s.outputs.report is True
    assert s.outputs.movie is False
    p = tmp_path / "my-study.yaml"
    p.write_text("duration_s: 10\n")
    assert load_scenario(p).name == "my-study"


def test_group_defaults() -> None:
    s = Scenario.from_dict(
        {
            "duration_s": 60,
            "city": {"areas": [{"id": "a", "walkable": "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))"}]},
            "crowd": {"groups": [{"id": "g", "count": 3, "in": {"area": "a"}}]},
        }
    )
    g = s.crowd.groups[0]
    assert g.speed_mps == Distribution(dist="normal", mean=1.34, sd=0.26, min=0.46, max=1.61)
    assert g.premovement_s == 0.0
    assert g.radius_m == 0.2
    assert g.exits is None
    assert s.crowd.model == "social_force"
    assert s.crowd.dt_s is None
    assert s.crowd.params == {}


def test_from_dict_resolves_against_base_dir(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "o.ifc").symlink_to(ROOT / "models" / "office.ifc")
    data = {"duration_s": 5, "city": {"buildings": [{"id": "o", "ifc": "m/o.ifc"}]}}
    s = Scenario.from_dict(data, base_dir=tmp_path)
    assert s.city.buildings[0].ifc == tmp_path / "m" / "o.ifc"
    with pytest.raises(InputError, match=r"^<dict>: city\.buildings\[0\]\.ifc: file not found: "):
        Scenario.from_dict(data, base_dir=tmp_path / "elsewhere")


def test_python_api_accepts_models() -> None:
    dist = Distribution(dist="uniform", min=0.5, max=1.0)
    s = Scenario.from_dict(
        {
            "duration_s": 60,
            "city": {"areas": [{"id": "a", "walkable": "POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))"}]},
            "crowd": {"groups": [{"id": "g", "count": 3, "in": {"area": "a"}, "speed_mps": dist}]},
            "events": [AlarmEvent(at_s=3, type="alarm")],
        }
    )
    assert s.crowd.groups[0].speed_mps == dist
    assert s.events[0].at_s == 3


# --- error messages --------------------------------------------------------------------------------------------


def group(d: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return d["crowd"]["groups"][i]


ERRORS = [
    # (what to change, the exact problem expected in the message)
    (lambda d: group(d).update(count=-5), "crowd.groups[0].count: must be > 0, got -5"),
    (lambda d: group(d).update(count=0), "crowd.groups[0].count: must be > 0, got 0"),
    (lambda d: group(d).update(count=2.5), "crowd.groups[0].count: must be a whole number, got 2.5"),
    (lambda d: group(d).update(count="many"), "crowd.groups[0].count: must be a whole number, got 'many'"),
    (
        lambda d: group(d).update(cuont=3),
        "crowd.groups[0]: unknown key 'cuont'; expected count, exits, id, in, premovement_s, radius_m, "
        "speed_mps, stair_down_mps, stair_up_mps",
    ),
    (lambda d: d.update(colour="red"), "(top level): unknown key 'colour'; expected "),
    (lambda d: d["city"].update(area=[]), "city: unknown key 'area'; expected "),
    (lambda d: group(d).update(speed_mps=-1.2), "crowd.groups[0].speed_mps: must be > 0, got -1.2"),
    (lambda d: group(d).update(speed_mps=0), "crowd.groups[0].speed_mps: must be > 0, got 0"),
    (
        lambda d: group(d).update(speed_mps={"dist": "uniform", "min": -0.5, "max": 1}),
        "crowd.groups[0].speed_mps.min: must be > 0, got -0.5",
    ),
    (
        lambda d: group(d).update(
            speed_mps={"dist": "normal", "mean": 1.3, "sd": 0.2, "min": 1.6, "max": 1.2}
        ),
        "crowd.groups[0].speed_mps: min 1.6 is greater than max 1.2",
    ),
    (
        lambda d: group(d).update(premovement_s={"dist": "uniform", "min": 60, "max": 0}),
        "crowd.groups[0].premovement_s: min 60 is greater than max 0",
    ),
    (
        lambda d: group(d).update(speed_mps={"dist": "normal", "mean": 1.3, "sd": -0.1}),
        "crowd.groups[0].speed_mps.sd: must be >= 0, got -0.1",
    ),
    (
        lambda d: group(d).update(speed_mps={"dist": "uniform", "mean": 1.3}),
        "crowd.groups[0].speed_mps: dist uniform needs max, min",
    ),
    (
        lambda d: group(d).update(speed_mps={"dist": "uniform", "min": 1, "max": 2, "sd": 1}),
        "crowd.groups[0].speed_mps: sd not used by dist uniform (it takes max, min)",
    ),
    (
        lambda d: group(d).update(speed_mps={"dist": "weibull", "mean": 1}),
        "crowd.groups[0].speed_mps.dist: must be one of 'normal', 'uniform', 'constant' or 'lognormal', "
        "got 'weibull'",
    ),
    (
        lambda d: group(d).update(speed_mps={"dist": "normal", "mean": -3.0, "sd": 0.1}),
        "crowd.groups[0].speed_mps: the distribution has no probability between 0 and inf",
    ),
    (
        lambda d: group(d).update(speed_mps="rimea:toddlers"),
        "crowd.groups[0].speed_mps: unknown profile 'rimea:toddlers'; expected one of rimea:30-50, "
        "rimea:adults, rimea:impaired, rimea:over50, rimea:under30",
    ),
    (
        lambda d: group(d).update(speed_mps=[1, 2]),
        "crowd.groups[0].speed_mps: must be a number, a distribution",
    ),
    (
        lambda d: group(d).update(speed_mps=True),
        "crowd.groups[0].speed_mps: must be a number, a distribution",
    ),
    (
        lambda d: group(d).update(radius_m="rimea:adults"),
        "crowd.groups[0].radius_m: profile names are only for speed_mps",
    ),
    (lambda d: group(d).update(radius_m=-0.2), "crowd.groups[0].radius_m: must be > 0, got -0.2"),
    (lambda d: group(d).update(radius_m=3), "crowd.groups[0].radius_m: must be <= 1.5, got 3"),
    (lambda d: group(d).update(premovement_s=-1), "crowd.groups[0].premovement_s: must be >= 0, got -1"),
    (
        lambda d: d["crowd"].update(model="cellular_automaton"),
        "crowd.model: must be one of 'social_force' or 'collision_free_speed', got 'cellular_automaton'",
    ),
    (lambda d: d["crowd"].update(dt_s=0), "crowd.dt_s: must be > 0, got 0"),
    (lambda d: d["crowd"].update(cell_size_m=-1), "crowd.cell_size_m: must be > 0, got -1"),
    (lambda d: d["crowd"].update(groups=[]), "crowd.groups: must have at least 1 item(s), got 0"),
    (
        lambda d: group(d).update({"in": {"area": "hal"}}),
        "crowd.groups[0].in.area: no area 'hal' in city.areas (have: hall)",
    ),
    (
        lambda d: group(d).update({"in": {"building": "offices"}}),
        "crowd.groups[0].in.building: no building 'offices' in city.buildings (have: office)",
    ),
    (
        lambda d: group(d).update({"in": {"area": "hall", "building": "office"}}),
        "crowd.groups[0].in: needs exactly one of area, building or polygon, got area, building",
    ),
    (
        lambda d: group(d).update({"in": {"area": "hall", "storeys": ["Storey 1"]}}),
        "crowd.groups[0].in: storeys only go with building",
    ),
    (lambda d: group(d).pop("in"), "crowd.groups[0].in: is required"),
    (lambda d: d.pop("duration_s"), "duration_s: is required"),
    (lambda d: d.update(duration_s=-900), "duration_s: must be > 0, got -900"),
    (lambda d: d.update(duration_s=".inf"), "duration_s: must be a number, got '.inf'"),
    (lambda d: d.update(seed=-1), "seed: must be >= 0, got -1"),
    (lambda d: d.update(seed=1.5), "seed: must be a whole number, got 1.5"),
    (lambda d: d.update(city=[1]), "city: must be a mapping of keys, got [1]"),
    (
        lambda d: d["city"]["buildings"][0].update(ifc="../models/missing.ifc"),
        "city.buildings[0].ifc: file not found: {tmp}/models/missing.ifc",
    ),
    (
        lambda d: d["city"]["pipes"][1].update(swmm="nowhere/x.inp"),
        "city.pipes[1].swmm: file not found: {tmp}/scenarios/nowhere/x.inp",
    ),
    (lambda d: d["city"]["buildings"][0].update(ifc=5), "city.buildings[0].ifc: must be a file path (text)"),
    (
        lambda d: d["city"]["buildings"][0].update(ifc="../models"),
        "city.buildings[0].ifc: is a folder, not a file: {tmp}/models",
    ),
    (
        lambda d: d["city"]["pipes"][0].update(swmm="../data/Example1.inp"),
        "city.pipes[0]: needs exactly one of epanet or swmm",
    ),
    (
        lambda d: d["city"]["buildings"][0]["place"].update(scale=0),
        "city.buildings[0].place.scale: must be > 0",
    ),
    (
        lambda d: d["city"].update(crs="EPSG:4326"),
        "city.crs: must be a projected CRS (metres), got 'EPSG:4326'",
    ),
    (lambda d: d["city"].update(crs="EPSG:99999999"), "city.crs: crs 'EPSG:99999999' is not a known"),
    (
        lambda d: d["city"]["pipes"][0].update(crs="nonsense"),
        "city.pipes[0].crs: crs 'nonsense' is not a known",
    ),
    (
        lambda d: d["city"].update(
            roads={"osm": "../data/district.osm.bz2", "sumo_net": "../data/city.rou.xml"}
        ),
        "city.roads: needs exactly one of osm or sumo_net",
    ),
    (
        lambda d: d["city"]["areas"][0].update(walkable="POLYGON ((0 0, 20 0, 20"),
        "city.areas[0].walkable: is not valid WKT",
    ),
    (
        lambda d: d["city"]["areas"][0].update(walkable="LINESTRING (0 0, 20 0)"),
        "city.areas[0].walkable: must be a POLYGON or MULTIPOLYGON, got LINESTRING",
    ),
    (
        lambda d: d["city"]["areas"][0].update(walkable="POLYGON ((0 0, 2 2, 2 0, 0 2, 0 0))"),
        "city.areas[0].walkable: is not a valid polygon (Self-intersection",
    ),
    (
        lambda d: d["city"]["areas"][0]["exits"][0].update(
            polygon="POLYGON ((30 9.5, 31 9.5, 31 10.5, 30 10.5, 30 9.5))"
        ),
        "city.areas[0].exits[0].polygon: exit 'door' does not touch the walkable area of 'hall' (10 m away)",
    ),
    (
        lambda d: d["city"]["areas"].append(copy.deepcopy(d["city"]["areas"][0])),
        "city.areas[1].id: 'hall' is used twice",
    ),
    (
        lambda d: d["city"]["pipes"][1].update(id="water"),
        "city.pipes[1].id: 'water' is used twice",
    ),
    (
        lambda d: d["city"]["areas"][0]["exits"].append(
            {"id": "door", "polygon": "POLYGON ((-1 0, 0 0, 0 1, -1 1, -1 0))"}
        ),
        "city.areas[0].exits[1].id: exit 'door' is already an exit of area 'hall'",
    ),
    (
        lambda d: d["crowd"]["groups"].append(copy.deepcopy(group(d)) | {"count": 5}),
        "crowd.groups: group id 'occupants' is used twice",
    ),
    (
        lambda d: d["events"].append({"at_s": 1200, "type": "alarm"}),
        "events[4].at_s: 1200 is after the end of the run (duration_s 900)",
    ),
    (lambda d: d["events"][0].update(at_s=-1), "events[0].at_s: must be >= 0, got -1"),
    (
        lambda d: d["events"][0].update(type="earthquake"),
        "events[0].type: unknown event type 'earthquake'; expected one of fire, pipe_burst, gas_leak, "
        "close_road, open_road, close_door, alarm, dispatch",
    ),
    (lambda d: d["events"][3].pop("type"), "events[3].type: is required (one of fire, "),
    (lambda d: d["events"].append(7), "events[4]: must be a mapping with at_s and type, got 7"),
    (lambda d: d["events"][0].update(radius=3), "events[0]: unknown key 'radius'; expected "),
    (
        lambda d: d["events"][0].update(building="shed"),
        "events[0].building: no building 'shed' in city.buildings (have: office)",
    ),
    (lambda d: d["events"][2].update(area_m2=0), "events[2].area_m2: must be > 0, got 0"),
    (
        lambda d: d["events"][2].update(network="gas"),
        "events[2].network: no pipe network 'gas' in city.pipes (have: sewer, water)",
    ),
    (
        lambda d: d["events"][2].update(node="J1"),
        "events[2]: needs exactly one of link or node",
    ),
    (lambda d: d["events"][1].pop("edge"), "events[1]: needs exactly one of edge or edges"),
    (
        lambda d: d["events"].append({"at_s": 5, "type": "close_door", "exit": "gate"}),
        "events[4].exit: no exit 'gate' in city.areas (have: door)",
    ),
    (
        lambda d: d["events"].append({"at_s": 5, "type": "dispatch", "incident": "fire-1"}),
        "events[4].incident: no event with id 'fire-1' (have: none)",
    ),
    (
        lambda d: d["events"].append({"at_s": 5, "type": "fire"}),
        "events[4]: a fire needs building (with space or storey) or position",
    ),
    (lambda d: d["city"].pop("roads"), "traffic: needs city.roads (a road network to drive on)"),
    (
        lambda d: d["traffic"]["demand"].update(random_trips={"count": 10}),
        "traffic.demand: needs exactly one of routes, trips, od or random_trips, got routes, random_trips",
    ),
    (
        lambda d: d["traffic"]["demand"].update(routes=None, random_trips={"count": 10, "depart_s": [60, 0]}),
        "traffic.demand.random_trips.depart_s: must be [start, end] with 0 <= start <= end, got [60, 0]",
    ),
    (
        lambda d: d["traffic"].update(signals="smart"),
        "traffic.signals: must be one of 'from_network', 'fixed' or 'actuated', got 'smart'",
    ),
    (
        lambda d: d["outputs"].update(trajectories_every_s=0),
        "outputs.trajectories_every_s: must be > 0, got 0",
    ),
    (
        lambda d: d["outputs"].update(report="yes please"),
        "outputs.report: must be true or false, got 'yes please'",
    ),
    (
        lambda d: group(d).update(count=5000),
        "crowd.groups[0].count: 5000 agents do not fit in area 'hall' (400 m², at most ~2472 at this radius "
        "(0.2 m))",
    ),
    (
        lambda d: d["crowd"]["groups"].append(copy.deepcopy(group(d)) | {"id": "visitors", "count": 1500}),
        "crowd.groups[1].count: 1500 agents together with 1000 of earlier groups do not fit in area 'hall'",
    ),
    (
        lambda d: d["city"].update(stairs=[STAIR | {"to_area": "attic"}]),
        "city.stairs[0].to_area: no area 'attic' in city.areas (have: hall)",
    ),
    (
        lambda d: d["city"].update(stairs=[STAIR | {"foot": [1.0]}]),
        "city.stairs[0].foot: ",
    ),
    (
        lambda d: d["city"].update(stairs=[STAIR | {"length_m": 0}]),
        "city.stairs[0].length_m: must be > 0, got 0",
    ),
    (
        lambda d: d["city"].update(stairs=[STAIR, dict(STAIR)]),
        "city.stairs[1].id: 'st' is used twice",
    ),
    (
        lambda d: d["crowd"].update(routing={"stair_cost_factor": -1}),
        "crowd.routing.stair_cost_factor: must be > 0, got -1",
    ),
    (
        lambda d: d["crowd"].update(routing={"congestion_every_s": -5}),
        "crowd.routing.congestion_every_s: must be >= 0, got -5",
    ),
    (
        lambda d: d["crowd"].update(routing={"stairs": "avoid"}),
        "crowd.routing: unknown key 'stairs'",
    ),
]

STAIR = {
    "id": "st",
    "from_area": "hall",
    "to_area": "hall",
    "foot": [1, 1],
    "head": [5, 1],
    "length_m": 5,
    "width_m": 1,
}


@pytest.mark.parametrize(("mutate", "expected"), ERRORS, ids=[e[1][:60] for e in ERRORS])
def test_error_names_field_path_expectation_and_value(example: Path, mutate, expected: str) -> None:
    err = check(example, mutate)
    expected = expected.replace("{tmp}", str(example.parent.parent))
    assert expected in err.message, err.message
    assert str(err).startswith(str(example.parent / "bad.yaml") + ": ")


def test_unknown_exit_id_for_an_area_group(example: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["city"].pop("buildings")
        d["events"] = [e for e in d["events"] if e.get("building") is None]
        group(d)["exits"] = ["door", "back-door"]

    err = check(example, mutate)
    assert "crowd.groups[0].exits[1]: no exit 'back-door' in city.areas (have: door)" in err.message


def test_building_exit_ids_are_left_to_the_city_check(example: Path) -> None:
    data = example_data(example)
    group(data)["exits"] = ["Exit A"]  # a door of the building: only known once the IFC is read
    s = Scenario.from_dict(data, base_dir=example.parent)
    assert s.crowd.groups[0].exits == ["Exit A"]


def test_several_problems_are_all_reported(example: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        group(d)["count"] = -5
        d["crowd"]["model"] = "magic"
        d["outputs"]["movie"] = 3

    msg = check(example, mutate).message
    for part in (
        "crowd.model: must be one of",
        "crowd.groups[0].count: must be > 0, got -5",
        "outputs.movie",
    ):
        assert part in msg
    assert msg.count("; ") == 2


def test_polygon_group_outside_every_area(example: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["city"].pop("buildings")
        d["events"] = [e for e in d["events"] if e.get("building") is None]
        group(d)["in"] = {"polygon": "POLYGON ((100 100, 110 100, 110 110, 100 110, 100 100))"}

    err = check(example, mutate)
    assert "crowd.groups[0].in.polygon: does not overlap any walkable area in city.areas" in err.message


def test_crowd_needs_somewhere_to_walk(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"crowd: needs city\.areas or city\.buildings"):
        Scenario.from_dict(
            {
                "duration_s": 9,
                "crowd": {
                    "groups": [{"id": "g", "count": 1, "in": {"polygon": "POLYGON ((0 0, 1 0, 1 1, 0 0))"}}]
                },
            },
            base_dir=tmp_path,
        )


# --- YAML problems ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\nduration_s: 5\n  crowd: 3\n",
            "invalid YAML at line 3, column 8: mapping values are not allowed here",
        ),
        ("name: [x\n", "invalid YAML at line 2, column 1: expected ',' or ']'"),
        (
            "duration_s: 5\nseed: 1\nduration_s: 6\n",
            "invalid YAML at line 3, column 1: key 'duration_s' is given twice",
        ),
        ("", "the scenario file is empty"),
        ("- 1\n- 2\n", "a scenario must be a mapping of keys (name, duration_s, …), got [1, 2]"),
        (
            "duration_s: 1e3\n",
            "duration_s: must be a number, got '1e3' (text: YAML reads numbers like 1e3 as text",
        ),
        (
            "duration_s: 5\ncity: {areas: [{id: a, walkable: 'POLYGON ((0 0, 1 0, 1 1, 0 0))', exits: [{id: e}]}]}\n",
            "city.areas[0].exits[0].polygon: is required",
        ),
    ],
)
def test_yaml_errors_name_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_scenario(p)
    assert info.value.source == str(p)
    assert expected in info.value.message


def test_missing_scenario_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="scenario file not found"):
        load_scenario(tmp_path / "none.yaml")
