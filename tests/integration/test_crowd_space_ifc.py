"""CrowdSpace from real IFC buildings: Duplex_A (IFC2X3), AC20-FZK-Haus (IFC4) and the project's office.ifc.

Counts are checked against the Building layer read by twin.city.ifc (storeys with walkable area, doors with an
"outside" side, stairs linking two storeys); reachability against the all-exits distance field.

Duplex_A has four storeys: T/FDN (foundation: no spaces, no slabs, no walkable area, so not a crowd level),
Level 1 and Level 2 (two dwellings, each with a stair between them and two outside doors on Level 1), and Roof,
whose only space R301 ("Roof", 136 m²) is reached by no stair or door in the model: it is a level, but nobody
can leave it, and validate() says so when people are to be placed there.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point

import twin.city
from twin.city.ifc import load_ifc
from twin.errors import InputError
from twin.sim.crowd_space import EXIT_SETBACK_M, CrowdSpace

DATA = Path(os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
ROOT = Path(__file__).resolve().parents[2]
FILES = {
    "duplex": DATA / "ifc" / "Duplex_A_20110907.ifc",
    "fzk": DATA / "ifc" / "AC20-FZK-Haus.ifc",
    "office": ROOT / "models" / "office.ifc",
}
_CACHE: dict[str, tuple] = {}


def loaded(name: str):
    """(building, space, fields) per file, built once per test session."""
    if name not in _CACHE:
        b = load_ifc(FILES[name], frame=twin.city.Frame())
        s = CrowdSpace.from_building(b)
        _CACHE[name] = (b, s, s.distance_fields())
    return _CACHE[name]


@pytest.fixture(params=list(FILES))
def case(request):
    return (request.param, *loaded(request.param))


def space_storeys(b) -> list[str]:
    """GUIDs of storeys that hold spaces with footprints."""
    return sorted(set(b.spaces.loc[b.spaces["footprint"].notna(), "storey"]))


def test_levels_are_the_storeys_with_walkable_area(case):
    name, b, s, _ = case
    walkable = [
        (r["name"], r["elevation_m"])
        for _, r in b.storeys.iterrows()
        if b.walkable.get(r["guid"]) is not None and b.walkable[r["guid"]].area > 0
    ]
    assert s.level_names == [n for n, _ in walkable]
    np.testing.assert_allclose(s.level_z, [z for _, z in walkable])
    assert (np.diff(s.level_z) > 0).all()
    assert s.walkable.shape[0] == s.n_levels == len(s.origins)
    expected = {
        "duplex": ["Level 1", "Level 2", "Roof"],
        "fzk": ["Erdgeschoss", "Dachgeschoss"],
        "office": ["Storey 1", "Storey 2", "Storey 3"],
    }
    assert s.level_names == expected[name]
    if name == "duplex":
        assert "T/FDN" in b.storeys["name"].tolist()
        assert b.walkable_area("T/FDN").is_empty


def test_walkable_raster_matches_the_storey_geometry(case):
    _, b, s, _ = case
    for k, name in enumerate(s.level_names):
        geom = shapely.union_all([b.walkable_area(name), *s.exits.loc[s.exits["level"] == k, "polygon"]])
        area = (s.walkable[k] > 0).sum() * s.cell_size**2
        assert abs(area - geom.area) <= geom.length * s.cell_size, name
        walls = s.walls[s.wall_levels == k]
        assert np.hypot(walls[:, 2] - walls[:, 0], walls[:, 3] - walls[:, 1]).sum() == pytest.approx(
            geom.length
        )


def test_exits_are_the_doors_to_the_outside(case):
    name, b, s, _ = case
    doors = b.exits()
    assert len(s.exits) == len(doors) == {"duplex": 4, "fzk": 2, "office": 3}[name]
    assert s.exits["id"].tolist() == doors["guid"].tolist()
    assert s.exits["name"].tolist() == doors["name"].tolist()
    np.testing.assert_allclose(s.exits["width_m"], doors["width_m"])
    for i, e in s.exits.iterrows():
        d = doors.iloc[i]
        k = s.level_of(b.storey(d["storey"])["name"])
        assert e["level"] == k
        walk = b.walkable[d["storey"]]
        poly = e["polygon"]
        # the region starts at the door's centre line, overlapping the door passage, and reaches out beyond it
        assert poly.distance(Point(d["x_m"], d["y_m"])) < 1e-9
        assert poly.intersection(walk).area > 0
        outside = poly.difference(walk)
        assert outside.area >= 0.95 * d["width_m"] * 1.0
        far = outside.centroid
        assert not walk.contains(far)
        assert not any(fp is not None and fp.contains(far) for fp in b.spaces["footprint"])
        cells = s.exit_cells[k] == i
        assert cells.sum() == e["n_cells"] > 0
        assert (s.walkable[k][cells] > 0).all()
        # the exit is about as wide in cells as the door (its cells start EXIT_SETBACK_M beyond the door's middle)
        assert cells.sum() * s.cell_size**2 >= 0.8 * d["width_m"] * (1.0 - EXIT_SETBACK_M)


def test_every_walkable_cell_of_storeys_with_reachable_spaces_reaches_an_exit(case):
    name, b, s, fields = case
    everything = fields[-1]
    assert len(fields) == len(s.exits) + 1
    for k, level in enumerate(s.level_names):
        walk = s.walkable[k] > 0
        reach = np.isfinite(everything[k])
        if name == "duplex" and level == "Roof":
            assert not reach.any()
        else:
            assert reach[walk].all(), f"{level}: {(walk & ~reach).sum()} walkable cells cannot reach an exit"
        assert not reach[~walk].any()
    # the all-exits field is the minimum of the per-exit fields
    np.testing.assert_array_equal(everything, np.minimum.reduce(fields[:-1]))
    if name != "duplex":
        check = s.validate(field=everything)
        assert check.components["reachable"].all()
        assert len(check.components) == 1  # one house: every storey is joined to the others by a stair


def test_duplex_roof_is_reported_and_the_dwellings_validate():
    b, s, fields = loaded("duplex")
    with pytest.raises(InputError, match=r"area 'Roof' .*cannot reach any exit.*'R301'") as exc:
        s.validate()
    assert exc.value.source == str(FILES["duplex"])
    dwellings = s.areas.loc[s.areas["level"] != s.level_of("Roof"), "id"].tolist()
    assert {"Level 1", "Level 2", "A101", "B201"} <= set(dwellings)
    check = s.validate(dwellings, field=fields[-1])
    comps = check.components
    # two dwellings (each: Level 1 + Level 2 joined by its stair) and the roof
    assert sorted(map(tuple, comps["levels"])) == [(0, 1), (0, 1), (2,)]
    assert comps.loc[comps["levels"].map(tuple) == (2,), "reachable"].tolist() == [False]
    assert check.n_unreachable == (s.walkable[2] > 0).sum()


def test_areas_table_has_storeys_and_spaces(case):
    _, b, s, _ = case
    storeys = s.areas[s.areas["kind"] == "storey"]
    spaces = s.areas[s.areas["kind"] == "space"]
    assert storeys["id"].tolist() == s.level_names
    assert storeys["level"].tolist() == list(range(s.n_levels))
    expected = b.spaces[b.spaces["footprint"].notna() & b.spaces["storey"].isin(set(s.areas["guid"]))]
    assert sorted(spaces["guid"]) == sorted(expected["guid"])
    assert sorted(spaces["id"]) == sorted(expected["name"])
    for _, a in spaces.iterrows():
        assert s.area_cells(a["id"]).any(), a["id"]


def test_stairs_join_levels_at_their_ends(case):
    name, b, s, fields = case
    assert len(s.stairs) == {"duplex": 2, "fzk": 1, "office": 4}[name]
    t = s.stairs_table
    assert t["id"].tolist() == b.stairs["guid"].tolist()
    np.testing.assert_allclose(s.stairs[:, 6], b.stairs["length_m"])
    assert (s.stairs[:, 7] > 0.5).all()
    assert (s.stairs[:, 7] < 2.5).all()
    for j, st in b.stairs.iterrows():
        r = t.iloc[j]
        assert s.level_names[r["from_level"]] == b.storey(st["from_storey"])["name"]
        assert s.level_names[r["to_level"]] == b.storey(st["to_storey"])["name"]
        assert s.walkable[r["from_level"], r["foot_iy"], r["foot_ix"]] == 1
        assert s.walkable[r["to_level"], r["head_iy"], r["head_ix"]] == 1
        assert math.dist((r["foot_x"], r["foot_y"]), st["bottom"][:2]) <= 1.0 + 1e-9
        assert math.dist((r["head_x"], r["head_y"]), st["top"][:2]) <= 1.0 + 1e-9
        cell = s.locate(
            np.array([[r["foot_x"], r["foot_y"]], [r["head_x"], r["head_y"]]]), [r.from_level, r.to_level]
        )
        assert cell.tolist() == [[r.from_level, r.foot_iy, r.foot_ix], [r.to_level, r.head_iy, r.head_ix]]
        np.testing.assert_array_equal(s.stairs[j, [0, 3]], [r["from_level"], r["to_level"]])
    # every exit is on the ground floor: people upstairs walk down, at the down cost
    down, up = s.stair_costs()
    f = fields[-1]
    foot = f[t["from_level"], t["foot_iy"], t["foot_ix"]]
    head = f[t["to_level"], t["head_iy"], t["head_ix"]]
    assert (s.exits["level"] == 0).all()
    np.testing.assert_allclose(head - foot, down)
    assert (down < up).all()


def test_upper_levels_are_reached_only_through_stairs(case):
    _, _, s, fields = case
    flat = dataclasses.replace(s, stairs=np.zeros((0, 8)), stairs_table=s.stairs_table.iloc[:0])
    f = flat.distance_fields([list(range(s.n_exits))])[0]
    assert np.isinf(f[1:]).all()
    np.testing.assert_array_equal(f[0], fields[-1][0])
    assert np.isfinite(fields[-1][1][s.walkable[1] > 0]).all()


def test_office_layout():
    b, s, fields = loaded("office")
    assert (s.n_levels, s.n_exits, len(s.stairs)) == (3, 3, 4)
    assert sorted(s.exits["name"]) == ["Exit A", "Exit B", "Main entrance"]
    links = sorted(zip(s.stairs_table["from_level"], s.stairs_table["to_level"], strict=True))
    assert links == [(0, 1), (0, 1), (1, 2), (1, 2)]
    # per-exit fields: every exit can be reached from every walkable cell of the building
    for f in fields:
        assert np.isfinite(f[s.walkable > 0]).all()
    # from the middle of the top corridor the nearest exit is an end exit, through the stair at that end
    p = np.array([[5.0, 8.0]])
    choice = s.choose_exits(p, [2], [1.34], fields[:-1])
    assert s.exits["name"].iloc[choice[0]] == "Exit A"


def test_the_loaders_notes_on_the_building_are_among_the_warnings():
    b, s, _ = loaded("duplex")
    assert not b.warnings  # Duplex loads without notes
    assert not any(w.startswith("building ") for w in s.warnings)
    noted = copy.copy(b)
    note = "2 space(s) without geometry (footprint None): ['0a', '0b']"
    noted.warnings = [*b.warnings, note]
    assert f"building {b.id!r}: {note}" in CrowdSpace.from_building(noted).warnings


def test_building_without_outside_doors_is_an_error():
    b, _, _ = loaded("fzk")
    closed = copy.copy(b)
    doors = b.doors.copy()
    doors.loc[doors["side_a"] == "outside", "side_a"] = None
    doors.loc[doors["side_b"] == "outside", "side_b"] = None
    closed.doors = doors
    with pytest.raises(InputError, match="building 'AC20-FZK-Haus' has no door to the outside") as exc:
        CrowdSpace.from_building(closed)
    assert exc.value.source == str(FILES["fzk"])


def test_stair_landing_away_from_the_floor_is_an_error():
    b, _, _ = loaded("office")
    broken = copy.copy(b)
    stairs = b.stairs.copy()
    stairs.at[2, "top"] = (60.0, 60.0, 7.0)
    broken.stairs = stairs
    with pytest.raises(InputError, match=r"head of stair '1XOAYHuJTJ5vMafBFavFhH'.*'Storey 3'") as exc:
        CrowdSpace.from_building(broken)
    assert exc.value.element == "1XOAYHuJTJ5vMafBFavFhH"
