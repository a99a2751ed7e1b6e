"""build_city and check_against_city on real files: every city source of a scenario in one City."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from twin.city.city import City
from twin.errors import InputError
from twin.scenario.schema import Scenario, build_city, check_against_city, load_scenario

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("TWIN_DATA", ROOT / ".." / "shared" / "data")).resolve()
OFFICE = ROOT / "models" / "office.ifc"

OFFICE_PLACE = {"x": 562000.0, "y": 4185000.0, "z": 5.0, "rotation_deg": 10.0}
NET1_PLACE = {"x": 561000.0, "y": 4184000.0, "scale": 0.3048}
SEWER_PLACE = {"x": 561500.0, "y": 4184500.0, "scale": 0.3048}
DEM_PLACE = {"x": 555000.0, "y": 4180000.0}


def oakland(tmp_path: Path, **extra) -> Path:
    """A scenario with a building, terrain, water and sewer networks, OSM roads and OSM footprints."""
    data = {
        "name": "oakland",
        "duration_s": 600,
        "city": {
            "crs": "EPSG:32610",
            "buildings": [{"id": "office", "ifc": str(OFFICE), "place": OFFICE_PLACE}],
            "terrain": {"dem": str(DATA / "terrain" / "whitebox_DEM.tif"), "place": DEM_PLACE},
            "pipes": [
                {"id": "water", "epanet": str(DATA / "water" / "Net1.inp"), "place": NET1_PLACE},
                {"id": "sewer", "swmm": str(DATA / "sewer" / "EPA_Example1.inp"), "place": SEWER_PLACE},
            ],
            "roads": {"osm": str(DATA / "roads" / "West-Oakland.osm.bz2"), "id": "streets"},
            "citymodel": {"osm": str(DATA / "roads" / "West-Oakland.osm.bz2"), "id": "footprints"},
        },
        **extra,
    }
    path = tmp_path / "oakland.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def oakland_city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scenario, City]:
    s = load_scenario(oakland(tmp_path_factory.mktemp("oak")))
    return s, build_city(s)


def test_build_city_loads_every_source_like_add_file(oakland_city: tuple[Scenario, City]) -> None:
    s, city = oakland_city
    assert [layer.kind for layer in city.layers] == [
        "building",
        "terrain",
        "pipes",
        "pipes",
        "roads",
        "citymodel",
    ]
    assert [layer.id for layer in city.layers if layer.kind != "terrain"] == [
        "office",
        "water",
        "sewer",
        "streets",
        "footprints",
    ]
    # the same sources added by hand, with the same CRS, placements and formats, give the same city
    ref = City("EPSG:32610")
    ref.add_file(OFFICE, format="ifc", id="office", placement=OFFICE_PLACE)
    ref.add_file(DATA / "terrain" / "whitebox_DEM.tif", format="dem", placement=DEM_PLACE)
    ref.add_file(DATA / "water" / "Net1.inp", format="epanet", id="water", placement=NET1_PLACE)
    ref.add_file(DATA / "sewer" / "EPA_Example1.inp", format="swmm", id="sewer", placement=SEWER_PLACE)
    ref.add_file(DATA / "roads" / "West-Oakland.osm.bz2", format="osm", id="streets")
    ref.add_file(DATA / "roads" / "West-Oakland.osm.bz2", format="osm_buildings", id="footprints")
    assert city.summary() == ref.summary()
    assert city.frame.to_dict() == {"crs": "EPSG:32610", "origin": [562000.0, 4185000.0, 0.0]}
    # the placement moved the office: its ground storey at z = 5 and its footprint rotated by 10°
    office = city.buildings["office"]
    assert office.storeys["elevation_m"].tolist() == [5.0, 8.5, 12.0]
    raw = City().add_file(OFFICE, format="ifc")[0]
    a = np.radians(10.0)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    door = raw.doors.iloc[0]
    moved = rot @ np.array([door.x_m, door.y_m])
    placed = office.doors.iloc[0]
    assert placed.x_m == pytest.approx(moved[0])
    assert placed.y_m == pytest.approx(moved[1])
    # the OSM file gave roads (roads section) and footprints (citymodel section) separately
    assert len(city.roads.edges) > 0
    assert city.citymodel.id == "footprints"


def test_check_against_city_accepts_real_names(oakland_city: tuple[Scenario, City]) -> None:
    s, city = oakland_city
    data = s.model_dump_resolved()
    edge = city.roads.edges["id"].iloc[0]
    data["crowd"] = {
        "groups": [
            {
                "id": "staff",
                "count": 10,
                "in": {"building": "office", "storeys": ["Storey 2"]},
                "exits": ["Exit A"],
            }
        ]
    }
    data["events"] = [
        {"at_s": 10, "type": "fire", "building": "office", "space": "Room 2.04"},
        {"at_s": 20, "type": "close_door", "building": "office", "door": "Exit B"},
        {"at_s": 30, "type": "pipe_burst", "network": "water", "link": "10", "area_m2": 0.01},
        {"at_s": 40, "type": "close_road", "edge": edge},
    ]
    good = Scenario.from_dict(data, source=s.source)
    check_against_city(good, city, exit_ids={"Main entrance", "Exit A", "Exit B"})

    data["crowd"]["groups"][0]["in"]["storeys"] = ["Storey 2", "Storey 9"]
    data["crowd"]["groups"][0]["exits"] = ["Exit C"]
    data["events"][0]["space"] = "Room 9.99"
    data["events"][1]["door"] = "Trapdoor"
    data["events"][2]["link"] = "P-404"
    data["events"][3]["edge"] = "no-such-edge"
    bad = Scenario.from_dict(data, source=s.source)
    with pytest.raises(InputError) as info:
        check_against_city(bad, city, exit_ids={"Main entrance", "Exit A", "Exit B"})
    msg = info.value.message
    assert info.value.source == s.source
    for part in (
        "crowd.groups[0].in.storeys[1]: building 'office' has no storey 'Storey 9' (have: Storey 1, Storey 2, "
        "Storey 3)",
        "crowd.groups[0].exits[0]: no exit 'Exit C' (have: Exit A, Exit B, Main entrance)",
        "events[0].space: building 'office' has no space 'Room 9.99'",
        "events[1].door: building 'office' has no door 'Trapdoor'",
        "events[2].link: pipe network 'water' has no link 'P-404'",
        "events[3].edge: road network 'streets' has no edge 'no-such-edge'",
    ):
        assert part in msg, msg


def test_crs_adopted_from_the_sources_and_default_ids(tmp_path: Path) -> None:
    s = Scenario.from_dict(
        {
            "duration_s": 60,
            "city": {
                "citymodel": {"cityjson": str(DATA / "citymodel" / "zurich_subset_lod2.city.json")},
                "roads": {"sumo_net": str(DATA / "traffic" / "grid10.net.xml")},
            },
        },
        base_dir=tmp_path,
    )
    city = build_city(s)
    ref = City()
    ref.add_file(DATA / "traffic" / "grid10.net.xml", format="sumo_net")
    ref.add_file(DATA / "citymodel" / "zurich_subset_lod2.city.json", format="cityjson")
    assert city.summary() == ref.summary()
    assert {layer.kind for layer in city.layers} == {"roads", "citymodel"}


def test_loader_errors_name_the_scenario_field_and_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ifc"
    broken.write_text("ISO-10303-21;\nthis is not a model\n", encoding="utf-8")
    s = Scenario.from_dict(
        {"duration_s": 60, "city": {"buildings": [{"id": "b", "ifc": "broken.ifc"}]}},
        source=tmp_path / "s.yaml",
        base_dir=tmp_path,
    )
    with pytest.raises(InputError) as info:
        build_city(s)
    assert info.value.source == str(tmp_path / "s.yaml")
    assert info.value.message.startswith(f"city.buildings[0].ifc: {broken}")


def test_committed_office_scenario_builds_and_checks() -> None:
    s = load_scenario(ROOT / "scenarios" / "office_evacuation.yaml")
    city = build_city(s)
    assert list(city.buildings) == ["office"]
    assert city.frame.to_dict()["crs"] == "EPSG:3067"
    check_against_city(s, city)


def test_empty_city_without_a_city_section() -> None:
    s = Scenario.from_dict({"duration_s": 5})
    assert build_city(s).layers == []
