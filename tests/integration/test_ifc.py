"""IFC loader on the real IFC files in TWIN_DATA/ifc and on small models authored here with IfcOpenShell.

Reference numbers come from IfcOpenShell itself (entity counts, attributes, ``util.geolocation.xyz2enh``) or from
the authored models, whose geometry is known exactly.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import ifcopenshell
import ifcopenshell.api.aggregate
import ifcopenshell.api.context
import ifcopenshell.api.feature
import ifcopenshell.api.georeference
import ifcopenshell.api.owner
import ifcopenshell.api.owner.settings
import ifcopenshell.api.project
import ifcopenshell.api.root
import ifcopenshell.api.spatial
import ifcopenshell.api.unit
import ifcopenshell.geom  # imported up front so that the timed loads below do not pay for it
import ifcopenshell.util.element
import ifcopenshell.util.geolocation
import ifcopenshell.util.placement
import ifcopenshell.util.unit
import numpy as np
import pandas as pd
import pytest
import shapely

from twin.city import City
from twin.city.building import FAMILIES, OUTSIDE, Building
from twin.city.frame import Frame, Placement
from twin.city.ifc import load_ifc
from twin.errors import InputError

DATA = Path(os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
FZK = DATA / "ifc" / "AC20-FZK-Haus.ifc"
DUPLEX = DATA / "ifc" / "Duplex_A_20110907.ifc"
REAL = {"fzk": FZK, "duplex": DUPLEX}


# -- fixtures ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loaded() -> dict[str, tuple[Building, float]]:
    """Each real file loaded once (unplaced): name → (building, load seconds)."""
    out = {}
    for name, path in REAL.items():
        t0 = time.perf_counter()
        b = load_ifc(path, frame=Frame())
        out[name] = (b, time.perf_counter() - t0)
    return out


@pytest.fixture(scope="module")
def ifc_files() -> dict[str, ifcopenshell.file]:
    return {name: ifcopenshell.open(str(path)) for name, path in REAL.items()}


def _stair_count(f: ifcopenshell.file) -> int:
    """Our stair rule: every IfcStair, plus every IfcStairFlight that is part of no IfcStair."""

    def in_stair(e) -> bool:
        parent = ifcopenshell.util.element.get_aggregate(e)
        while parent is not None:
            if parent.is_a("IfcStair"):
                return True
            parent = ifcopenshell.util.element.get_aggregate(parent)
        return False

    return len(f.by_type("IfcStair")) + sum(not in_stair(fl) for fl in f.by_type("IfcStairFlight"))


# -- real files --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(REAL))
def test_counts_match_ifcopenshell(loaded, ifc_files, name):
    b, _ = loaded[name]
    f = ifc_files[name]
    assert b.schema == f.schema
    assert len(b.storeys) == len(f.by_type("IfcBuildingStorey"))
    assert len(b.spaces) == len(f.by_type("IfcSpace"))
    assert len(b.doors) == len(f.by_type("IfcDoor"))
    assert len(b.stairs) == _stair_count(f)
    assert set(b.spaces["guid"]) == {s.GlobalId for s in f.by_type("IfcSpace")}
    assert set(b.doors["guid"]) == {d.GlobalId for d in f.by_type("IfcDoor")}
    walls = {w.GlobalId for w in f.by_type("IfcWall") + f.by_type("IfcCurtainWall")}
    assert set(b.meshes["walls"].elements["guid"]) == walls
    s = b.summary()
    assert (s["storeys"], s["spaces"], s["doors"], s["stairs"], s["walls"]) == (
        len(b.storeys),
        len(b.spaces),
        len(b.doors),
        len(b.stairs),
        len(walls),
    )
    assert s["slabs"] == sum(
        1 for sl in f.by_type("IfcSlab") if sl.PredefinedType != "ROOF" and not _in_roof(sl)
    )
    assert s["georeferenced"] is False
    assert (
        s["site_lat_lon"] is not None
    )  # both files carry RefLatitude/RefLongitude, which is not a georeference
    assert s["elements_without_geometry"] == 0


def _in_roof(e) -> bool:
    parent = ifcopenshell.util.element.get_aggregate(e)
    return parent is not None and parent.is_a("IfcRoof")


@pytest.mark.parametrize("name", list(REAL))
def test_storey_elevations(loaded, ifc_files, name):
    b, _ = loaded[name]
    f = ifc_files[name]
    scale = ifcopenshell.util.unit.calculate_unit_scale(f)
    elev = b.storeys["elevation_m"].to_numpy()
    assert np.all(np.diff(elev) > 0)
    expected = sorted(s.Elevation * scale for s in f.by_type("IfcBuildingStorey"))
    np.testing.assert_allclose(elev, expected, atol=1e-9)
    np.testing.assert_allclose(b.storeys["elevation_ifc_m"], expected, atol=1e-9)
    assert b.summary()["storey_list"][0]["name"] == b.storeys["name"].iloc[0]
    first = b.storeys.iloc[0]
    assert b.storey(first["name"])["guid"] == first["guid"]
    assert b.storey(first["guid"])["name"] == first["name"]
    with pytest.raises(KeyError, match="no storey"):
        b.storey("no such storey")


def _storey_boxes(b: Building) -> dict[str, np.ndarray]:
    """(2, 3) bounds of every storey from the meshes of the elements it contains."""
    pts: dict[str, list[np.ndarray]] = {}
    for mesh in b.meshes.values():
        for row, storey in enumerate(mesh.elements["storey"]):
            idx = np.unique(mesh.faces[mesh.face_element == row])
            if len(idx):
                pts.setdefault(storey, []).append(mesh.vertices[idx])
    return {k: np.vstack([np.min(np.vstack(v), 0), np.max(np.vstack(v), 0)]) for k, v in pts.items()}


@pytest.mark.parametrize("name", list(REAL))
def test_doors(loaded, ifc_files, name):
    b, _ = loaded[name]
    f = ifc_files[name]
    scale = ifcopenshell.util.unit.calculate_unit_scale(f)
    boxes = _storey_boxes(b)
    spaces = b.spaces.set_index("guid")
    by_guid = {d.GlobalId: d for d in f.by_type("IfcDoor")}
    for door in b.doors.itertuples():
        assert door.width_m > 0.5
        assert door.width_m == pytest.approx(by_guid[door.guid].OverallWidth * scale)
        box = boxes[door.storey]
        assert box[0, 0] <= door.x_m <= box[1, 0]
        assert box[0, 1] <= door.y_m <= box[1, 1]
        assert box[0, 2] - 1e-6 <= door.z_m <= box[1, 2]
        for side in (door.side_a, door.side_b):
            assert side == OUTSIDE or side in spaces.index
            if side != OUTSIDE:
                # independent check: the door sits in the wall right beside the space it opens into
                fp = spaces.loc[side, "footprint"]
                assert fp.distance(shapely.Point(door.x_m, door.y_m)) < 0.5
        assert door.side_a != door.side_b
    exits = b.exits()
    assert len(exits) >= 1
    assert b.summary()["exits"] == len(exits)


def test_exits_are_the_external_doors(loaded, ifc_files):
    """FZK marks exits by EXTERNAL space boundaries, Duplex by Pset_DoorCommon.IsExternal."""
    fzk, _ = loaded["fzk"]
    external = {
        d.GlobalId
        for d in ifc_files["fzk"].by_type("IfcDoor")
        if any(bd.InternalOrExternalBoundary == "EXTERNAL" for bd in d.ProvidesBoundaries)
    }
    assert (
        set(fzk.exits()["guid"])
        == external
        == {
            d.GlobalId for d in ifc_files["fzk"].by_type("IfcDoor") if d.Name in ("Haustuer", "Terrassentuer")
        }
    )
    duplex, _ = loaded["duplex"]
    external = {
        d.GlobalId
        for d in ifc_files["duplex"].by_type("IfcDoor")
        if ifcopenshell.util.element.get_pset(d, "Pset_DoorCommon", "IsExternal")
    }
    assert len(external) == 4
    assert set(duplex.exits()["guid"]) == external


@pytest.mark.parametrize("name", list(REAL))
def test_spaces_and_walkable(loaded, name):
    b, _ = loaded[name]
    assert b.spaces["footprint"].notna().all()
    for sp in b.spaces.itertuples():
        assert sp.area_m2 == pytest.approx(sp.footprint.area)
        assert sp.area_m2 > 0.5
        elev = b.storey(sp.storey)["elevation_m"]
        assert abs(sp.z_m - elev) < 0.2  # floors sit at their storey's elevation (finishes differ by cm)
    with_spaces = set(b.spaces["storey"])
    assert set(b.walkable) == set(b.storeys["guid"])
    for guid in with_spaces:
        area = b.walkable[guid]
        assert not area.is_empty
        own = b.spaces[b.spaces["storey"] == guid]
        # every space lies in its storey's walkable area, which is at least the union of the spaces
        for fp in own["footprint"]:
            assert area.buffer(1e-6).contains(fp)
        assert area.area >= shapely.union_all(list(own["footprint"])).area - 1e-6
    # doors between two spaces join them: each door's two space sides are connected in the walkable area
    for door in b.doors.itertuples():
        sides = [s for s in (door.side_a, door.side_b) if s != OUTSIDE]
        if len(sides) == 2:
            fps = [b.spaces.set_index("guid").loc[s, "footprint"] for s in sides]
            area = b.walkable[door.storey]
            parts = list(getattr(area, "geoms", [area]))
            owner = [
                next(i for i, p in enumerate(parts) if p.buffer(1e-6).contains(fp.representative_point()))
                for fp in fps
            ]
            assert owner[0] == owner[1], door.name


@pytest.mark.parametrize("name", list(REAL))
def test_stairs(loaded, name):
    b, _ = loaded[name]
    assert len(b.stairs) >= 1
    elev = b.storeys.set_index("guid")["elevation_m"]
    for st in b.stairs.itertuples():
        assert st.from_storey in elev.index
        assert st.to_storey in elev.index
        assert st.from_storey != st.to_storey
        assert elev[st.to_storey] > elev[st.from_storey]
        # the ends land on the two floors, so the rise is the storey height
        assert st.rise_m == pytest.approx(elev[st.to_storey] - elev[st.from_storey], abs=1e-6)
        assert st.bottom[2] == pytest.approx(elev[st.from_storey])
        assert st.top[2] == pytest.approx(elev[st.to_storey])
        assert st.length_m == pytest.approx(math.hypot(st.run_m, st.rise_m))
        assert st.footprint.area > 0.5
        assert st.footprint.buffer(0.3).contains(shapely.Point(st.bottom[:2]))
        assert st.footprint.buffer(0.3).contains(shapely.Point(st.top[:2]))
    if name == "duplex":
        # Revit type "200mm Max Riser 250mm Tread": 16 risers of 193.75 mm, so 15 treads × 250 mm
        np.testing.assert_allclose(b.stairs["run_m"], 3.75, rtol=1e-6)
        np.testing.assert_allclose(b.stairs["rise_m"], 3.1, rtol=1e-6)
    else:
        # ArchiCAD spiral stair: its walking line winds around the newel, so it is longer than the chord
        st = b.stairs.iloc[0]
        chord = math.dist(st.bottom[:2], st.top[:2])
        assert st.run_m > 2.0 * chord
        assert 1.5 < st.run_m < 4.0


@pytest.mark.parametrize("name", list(REAL))
def test_meshes(loaded, ifc_files, name):
    b, _ = loaded[name]
    f = ifc_files[name]
    assert set(b.meshes) == set(FAMILIES)
    guids = set()
    for fam, mesh in b.meshes.items():
        assert mesh.vertices.dtype == np.float64
        assert mesh.vertices.shape[1] == 3
        assert mesh.faces.dtype == np.int64
        assert mesh.faces.shape[1] == 3
        assert mesh.face_element.dtype == np.int64
        assert mesh.face_element.shape == (len(mesh.faces),)
        if len(mesh.faces):
            assert mesh.faces.min() >= 0
            assert mesh.faces.max() < len(mesh.vertices)
            assert mesh.face_element.max() < len(mesh.elements)
            # every element with a representation has faces (no failures in these files)
            with_rep = [
                row for row, g in enumerate(mesh.elements["guid"]) if f.by_guid(g).Representation is not None
            ]
            assert set(np.unique(mesh.face_element)) == set(with_rep)
        for g, cls in zip(mesh.elements["guid"], mesh.elements["ifc_class"], strict=True):
            assert f.by_guid(g).is_a() == cls
        assert mesh.elements["storey"].isin(set(b.storeys["guid"])).all(), fam
        guids |= set(mesh.elements["guid"])
    assert len(guids) == sum(m.n_elements for m in b.meshes.values())  # each element in one family
    assert {d.GlobalId for d in f.by_type("IfcWindow")} == set(b.meshes["windows"].elements["guid"])
    assert {s.GlobalId for s in f.by_type("IfcSpace")} == set(b.meshes["spaces"].elements["guid"])
    bb = b.bounds()
    assert bb.shape == (2, 3)
    assert np.all(bb[1] > bb[0])


@pytest.mark.parametrize("name", list(REAL))
def test_bundle_roundtrip_exact_and_fast(loaded, tmp_path, name):
    b, load_s = loaded[name]
    entry = b.save(tmp_path)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        back = Building.load(tmp_path, {"id": b.id, "source": b.source, **entry})
        times.append(time.perf_counter() - t0)
    assert load_s / min(times) >= 20, (load_s, min(times))
    assert_buildings_equal(b, back)


def assert_buildings_equal(a: Building, b: Building) -> None:
    assert (a.id, a.source, a.schema, a.crs_info, a.warnings) == (
        b.id,
        b.source,
        b.schema,
        b.crs_info,
        b.warnings,
    )
    pd.testing.assert_frame_equal(a.storeys, b.storeys)
    for name, geo in (("spaces", ["footprint"]), ("doors", []), ("stairs", ["footprint"])):
        x, y = getattr(a, name), getattr(b, name)
        pd.testing.assert_frame_equal(x.drop(columns=geo), y.drop(columns=geo), check_dtype=False)
        for col in geo:
            assert [None if g is None else g.wkb for g in x[col]] == [
                None if g is None else g.wkb for g in y[col]
            ]
    assert list(a.stairs["bottom"]) == list(b.stairs["bottom"])
    assert a.walkable.keys() == b.walkable.keys()
    for k in a.walkable:
        assert a.walkable[k].wkb == b.walkable[k].wkb
    for fam in FAMILIES:
        ma, mb = a.meshes[fam], b.meshes[fam]
        np.testing.assert_array_equal(ma.vertices, mb.vertices)
        np.testing.assert_array_equal(ma.faces, mb.faces)
        np.testing.assert_array_equal(ma.face_element, mb.face_element)
        pd.testing.assert_frame_equal(ma.elements, mb.elements)


# -- georeference and placement on FZK ---------------------------------------------------------------------------
def test_georeference_map_conversion(loaded, tmp_path):
    """FZK with an IfcMapConversion (ETRS89 / UTM 32N, rotated 36.87°) lands where IfcOpenShell puts it.

    The copy also loses its IfcRelSpaceBoundary, so its door sides come from probing alone (FZK has no
    IsExternal flags, so its exits are found by the storey-hull rule); they must equal the boundary-based ones.
    """
    f = ifcopenshell.open(str(FZK))
    for rel in f.by_type("IfcRelSpaceBoundary"):
        f.remove(rel)
    ifcopenshell.api.georeference.add_georeferencing(f, name="EPSG:25832")
    conv = {
        "Eastings": 458_123.0,
        "Northings": 5_438_456.0,
        "OrthogonalHeight": 110.0,
        "XAxisAbscissa": 0.8,
        "XAxisOrdinate": 0.6,
        "Scale": 1.0,
    }
    ifcopenshell.api.georeference.edit_georeferencing(f, coordinate_operation=conv)
    path = tmp_path / "fzk_georef.ifc"
    f.write(str(path))

    frame = Frame()
    geo = load_ifc(path, frame=frame)
    assert geo.crs_info["georeferenced"]
    assert geo.summary()["georeferenced"]
    assert geo.summary()["crs"] == "EPSG:25832"
    assert frame.crs.to_epsg() == 25832
    np.testing.assert_allclose(frame.origin, [458_000.0, 5_438_000.0, 0.0])

    plain, _ = loaded["fzk"]
    params = (conv["Eastings"], conv["Northings"], conv["OrthogonalHeight"], 0.8, 0.6, 1.0)

    def expected(xyz: np.ndarray) -> np.ndarray:
        enh = np.array([ifcopenshell.util.geolocation.xyz2enh(*p, *params) for p in xyz])
        return enh - frame.origin

    # a known point: the main entrance door (Haustuer)
    d0 = plain.doors.set_index("name").loc["Haustuer"]
    d1 = geo.doors.set_index("name").loc["Haustuer"]
    np.testing.assert_allclose(
        [d1.x_m, d1.y_m, d1.z_m], expected(np.array([[d0.x_m, d0.y_m, d0.z_m]]))[0], atol=1e-6
    )
    np.testing.assert_allclose(geo.storeys["elevation_m"], plain.storeys["elevation_m"] + 110.0)
    # every mesh vertex, and the tables, move with it
    for fam in ("walls", "stairs"):
        v = plain.meshes[fam].vertices
        np.testing.assert_allclose(geo.meshes[fam].vertices, expected(v), atol=1e-6)
    fp0 = plain.spaces["footprint"].iloc[0]
    fp1 = geo.spaces["footprint"].iloc[0]
    ring = np.asarray(fp0.exterior.coords)
    np.testing.assert_allclose(
        np.asarray(fp1.exterior.coords),
        expected(np.column_stack([ring, np.zeros(len(ring))]))[:, :2],
        atol=1e-6,
    )
    assert geo.walkable[plain.storeys["guid"].iloc[0]].area == pytest.approx(
        plain.walkable[plain.storeys["guid"].iloc[0]].area
    )
    pd.testing.assert_frame_equal(
        geo.doors[["guid", "side_a", "side_b"]], plain.doors[["guid", "side_a", "side_b"]]
    )


def test_placement_moves_everything_and_probes_match_boundaries(loaded, tmp_path):
    """Duplex without its IfcRelSpaceBoundary, placed at (x, y, z, 30°): everything moves by the same rigid
    motion, and the door sides found by probing across the walls equal those the space boundaries give."""
    f = ifcopenshell.open(str(DUPLEX))
    for rel in f.by_type("IfcRelSpaceBoundary"):
        f.remove(rel)
    path = tmp_path / "duplex_no_boundaries.ifc"
    f.write(str(path))
    pl = Placement(x=1000.0, y=2000.0, z=5.0, rotation_deg=30.0)
    frame = Frame("EPSG:25832", (900.0, 1900.0, 0.0))
    moved = load_ifc(path, frame=frame, placement=pl)
    plain, _ = loaded["duplex"]
    assert moved.crs_info["method"] == "placement"
    assert not moved.crs_info["georeferenced"]

    c, s = math.cos(math.radians(30.0)), math.sin(math.radians(30.0))

    def expected(xyz: np.ndarray) -> np.ndarray:
        xyz = np.asarray(xyz, dtype=float).reshape(-1, 3)
        return np.column_stack(
            [
                c * xyz[:, 0] - s * xyz[:, 1] + 100.0,
                s * xyz[:, 0] + c * xyz[:, 1] + 100.0,
                xyz[:, 2] + 5.0,
            ]
        )

    for fam in FAMILIES:
        np.testing.assert_allclose(
            moved.meshes[fam].vertices, expected(plain.meshes[fam].vertices), atol=1e-9, err_msg=fam
        )
    np.testing.assert_allclose(
        moved.doors[["x_m", "y_m", "z_m"]].to_numpy(), expected(plain.doors[["x_m", "y_m", "z_m"]].to_numpy())
    )
    np.testing.assert_allclose(moved.storeys["elevation_m"], plain.storeys["elevation_m"] + 5.0)
    np.testing.assert_allclose(moved.spaces["area_m2"], plain.spaces["area_m2"])
    np.testing.assert_allclose(moved.stairs["run_m"], plain.stairs["run_m"])
    np.testing.assert_allclose(moved.stairs["rise_m"], plain.stairs["rise_m"])
    np.testing.assert_allclose(
        np.array(moved.stairs["top"].tolist()), expected(np.array(plain.stairs["top"].tolist()))
    )
    for a, b in zip(moved.spaces["footprint"], plain.spaces["footprint"], strict=True):
        ring = np.asarray(b.exterior.coords)
        want = expected(np.column_stack([ring, np.zeros(len(ring))]))[:, :2]
        np.testing.assert_allclose(np.asarray(a.exterior.coords), want, atol=1e-9)
    for k, area in plain.walkable.items():
        assert moved.walkable[k].area == pytest.approx(area.area)
    pd.testing.assert_frame_equal(
        moved.doors[["guid", "side_a", "side_b"]], plain.doors[["guid", "side_a", "side_b"]]
    )
    np.testing.assert_allclose(moved.bounds()[:, 2], plain.bounds()[:, 2] + 5.0)  # heights move by z only


# -- authored models ---------------------------------------------------------------------------------------------
def author_building(
    path: Path,
    *,
    schema: str = "IFC4",
    mm: bool = False,
    with_storeys: bool = True,
    broken_wall: bool = False,
) -> Path:
    """Write a small two-room house whose answers are known exactly (coordinates in metres below).

    Ground storey (elevation 0): room A x∈[0, 3.9], room B x∈[4.1, 8], both y∈[0, 4], z∈[0, 2.8]; 0.2 m walls
    around x∈[-0.2, 8.2], y∈[-0.2, 4.2]; an interior wall x∈[3.9, 4.1] (placement x-axis along +y) with a
    0.9 m door at y∈[1.5, 2.4]; a 1.0 m front door in the south wall at x∈[1, 2]; a straight stair flight
    (not part of an IfcStair) in room B: x∈[5, 6], 15 treads of 0.25 m from y=0.1, 16 risers of 0.1875 m.
    First storey (elevation 3): no spaces; a slab over the whole house and one wall on its south edge.
    No IfcRelSpaceBoundary and no IsExternal, so door sides come from probing alone.
    """
    s = 1000.0 if mm else 1.0  # file units per metre
    api = ifcopenshell.api
    f = api.project.create_file(version=schema)
    if schema == "IFC2X3":  # IFC2X3 requires an owner history on every rooted entity
        person = api.owner.add_person(f, identification="test", family_name="Test")
        org = api.owner.add_organisation(f, identification="twin", name="twin")
        user = api.owner.add_person_and_organisation(f, person=person, organisation=org)
        app = api.owner.add_application(f)
        saved = (ifcopenshell.api.owner.settings.get_user, ifcopenshell.api.owner.settings.get_application)
        ifcopenshell.api.owner.settings.get_user = lambda _f: user
        ifcopenshell.api.owner.settings.get_application = lambda _f: app
        try:
            return _author(f, path, s, mm, with_storeys, broken_wall)
        finally:
            ifcopenshell.api.owner.settings.get_user, ifcopenshell.api.owner.settings.get_application = saved
    return _author(f, path, s, mm, with_storeys, broken_wall)


def _author(
    f: ifcopenshell.file, path: Path, s: float, mm: bool, with_storeys: bool, broken_wall: bool
) -> Path:
    api = ifcopenshell.api
    project = api.root.create_entity(f, ifc_class="IfcProject", name="Authored")
    length = api.unit.add_si_unit(f, unit_type="LENGTHUNIT", prefix="MILLI" if mm else None)
    api.unit.assign_unit(f, units=[length])
    model = api.context.add_context(f, context_type="Model")
    body = api.context.add_context(
        f, context_type="Model", context_identifier="Body", target_view="MODEL_VIEW", parent=model
    )
    site = api.root.create_entity(f, ifc_class="IfcSite", name="Site")
    building = api.root.create_entity(f, ifc_class="IfcBuilding", name="House")
    api.aggregate.assign_object(f, relating_object=project, products=[site])
    api.aggregate.assign_object(f, relating_object=site, products=[building])

    def placement(origin=(0.0, 0.0, 0.0), xdir=(1.0, 0.0, 0.0)):
        return f.createIfcLocalPlacement(
            None,
            f.createIfcAxis2Placement3D(
                f.createIfcCartesianPoint([float(v) * s for v in origin]),
                f.createIfcDirection((0.0, 0.0, 1.0)),
                f.createIfcDirection([float(v) for v in xdir]),
            ),
        )

    def box(lo, hi, depth=None):
        lo, hi = np.asarray(lo, float) * s, np.asarray(hi, float) * s
        dx, dy, dz = hi - lo
        prof = f.createIfcRectangleProfileDef(
            "AREA",
            None,
            f.createIfcAxis2Placement2D(f.createIfcCartesianPoint((dx / 2, dy / 2)), None),
            dx,
            dy,
        )
        return f.createIfcExtrudedAreaSolid(
            prof,
            f.createIfcAxis2Placement3D(f.createIfcCartesianPoint([float(v) for v in lo]), None, None),
            f.createIfcDirection((0.0, 0.0, 1.0)),
            float(dz) if depth is None else depth,
        )

    def element(cls, name, container, items, *, origin=(0, 0, 0), xdir=(1, 0, 0), aggregate=False):
        e = api.root.create_entity(f, ifc_class=cls, name=name)
        e.ObjectPlacement = placement(origin, xdir)
        rep = f.createIfcShapeRepresentation(body, "Body", "SweptSolid", items)
        e.Representation = f.createIfcProductDefinitionShape(None, None, [rep])
        if container is not None:
            if aggregate:
                api.aggregate.assign_object(f, relating_object=container, products=[e])
            else:
                api.spatial.assign_container(f, relating_structure=container, products=[e])
        return e

    if not with_storeys:
        element("IfcWall", "lonely wall", building, [box((0, 0, 0), (4, 0.2, 2.8))])
        f.write(str(path))
        return path

    ground = api.root.create_entity(f, ifc_class="IfcBuildingStorey", name="Ground")
    first = api.root.create_entity(f, ifc_class="IfcBuildingStorey", name="First")
    ground.ObjectPlacement, ground.Elevation = placement((0, 0, 0)), 0.0
    first.ObjectPlacement, first.Elevation = placement((0, 0, 3.0)), 3.0 * s
    api.aggregate.assign_object(f, relating_object=building, products=[first, ground])

    south = element(
        "IfcWall", "south", ground, [box((0, 0, 0), (8.4, 0.2, 2.8))], origin=(-0.2, -0.2, 0), xdir=(1, 0, 0)
    )
    element("IfcWall", "north", ground, [box((-0.2, 4.0, 0), (8.2, 4.2, 2.8))])
    element("IfcWall", "west", ground, [box((-0.2, 0, 0), (0, 4.0, 2.8))])
    element("IfcWall", "east", ground, [box((8.0, 0, 0), (8.2, 4.0, 2.8))])
    inner = element(
        "IfcWall", "inner", ground, [box((0, 0, 0), (4.0, 0.2, 2.8))], origin=(4.1, 0, 0), xdir=(0, 1, 0)
    )
    if broken_wall:
        element("IfcWall", "broken", ground, [box((1, 1, 0), (2, 1.2, 2.8), depth=0.0)])
    element("IfcSlab", "ground slab", ground, [box((-0.2, -0.2, -0.2), (8.2, 4.2, 0))])
    room_a = element("IfcSpace", "A", ground, [box((0, 0, 0), (3.9, 4, 2.8))], aggregate=True)
    room_b = element("IfcSpace", "B", ground, [box((4.1, 0, 0), (8, 4, 2.8))], aggregate=True)
    room_a.LongName, room_b.LongName = "Room A", "Room B"

    def door(name, host, opening_box, leaf_items, origin, xdir, width):
        opening = element("IfcOpeningElement", f"{name} opening", None, [box(*opening_box)])
        api.feature.add_feature(f, feature=opening, element=host)
        d = element("IfcDoor", name, ground, leaf_items, origin=origin, xdir=xdir)
        d.OverallWidth, d.OverallHeight = width * s, 2.0 * s
        api.feature.add_filling(f, opening=opening, element=d)
        return d

    door(
        "inner door",
        inner,
        ((3.85, 1.5, 0), (4.15, 2.4, 2.0)),
        [box((0, -0.025, 0), (0.9, 0.025, 2.0))],
        (4.0, 1.5, 0),
        (0, 1, 0),
        0.9,
    )
    door(
        "front door",
        south,
        ((1.0, -0.25, 0), (2.0, 0.05, 2.0)),
        [box((0, -0.025, 0), (1.0, 0.025, 2.0))],
        (1.0, -0.1, 0),
        (1, 0, 0),
        1.0,
    )
    riser = 3.0 / 16
    treads = [
        box((5.0, 0.1 + 0.25 * i, riser * i), (6.0, 0.1 + 0.25 * (i + 1), riser * (i + 1))) for i in range(15)
    ]
    element("IfcStairFlight", "flight", ground, treads)
    element("IfcSlab", "first slab", first, [box((-0.2, -0.2, 2.8), (8.2, 4.2, 3.0))])
    element("IfcWall", "first south", first, [box((-0.2, -0.2, 3.0), (8.2, 0.0, 5.8))])
    f.write(str(path))
    return path


@pytest.fixture(scope="module")
def authored(tmp_path_factory) -> Building:
    path = author_building(tmp_path_factory.mktemp("authored") / "house.ifc")
    return load_ifc(path, frame=Frame())


def test_authored_storeys_spaces(authored):
    b = authored
    assert b.storeys["name"].tolist() == ["Ground", "First"]
    np.testing.assert_allclose(b.storeys["elevation_m"], [0.0, 3.0])
    sp = b.spaces.set_index("name")
    assert sp.loc["A", "long_name"] == "Room A"
    assert sp.loc["A", "area_m2"] == pytest.approx(3.9 * 4.0)
    assert sp.loc["B", "footprint"].equals(shapely.box(4.1, 0, 8, 4))
    np.testing.assert_allclose(sp["z_m"], 0.0)
    np.testing.assert_allclose(sp["height_m"], 2.8)


def test_authored_door_sides_by_probing(authored):
    b = authored
    sp = b.spaces.set_index("name")["guid"]
    d = b.doors.set_index("name")
    inner, front = d.loc["inner door"], d.loc["front door"]
    assert {inner.side_a, inner.side_b} == {sp["A"], sp["B"]}
    assert {front.side_a, front.side_b} == {sp["A"], OUTSIDE}
    assert (inner.x_m, inner.y_m, inner.z_m) == pytest.approx((4.0, 1.95, 0.0))
    assert (front.x_m, front.y_m) == pytest.approx((1.5, -0.1))
    assert (inner.width_m, front.width_m, front.height_m) == pytest.approx((0.9, 1.0, 2.0))
    assert b.exits()["name"].tolist() == ["front door"]


def test_authored_stair_and_walkable(authored):
    b = authored
    ground, first = b.storeys["guid"]
    assert len(b.stairs) == 1
    st = b.stairs.iloc[0]
    assert st.ifc_class == "IfcStairFlight"
    assert (st.from_storey, st.to_storey) == (ground, first)
    assert st.run_m == pytest.approx(3.75)
    assert st.rise_m == pytest.approx(3.0)
    assert st.length_m == pytest.approx(math.hypot(3.75, 3.0))
    assert st.bottom == pytest.approx((5.5, 0.1, 0.0))
    assert st.top == pytest.approx((5.5, 3.85, 3.0))
    assert st.footprint.equals(shapely.box(5.0, 0.1, 6.0, 3.85))
    # ground: both rooms (15.6 m² each) + the inner door's passage through its wall (0.9 × 0.2) + the front door's
    # passage from the room to 5 cm beyond the wall's outer face (1.0 × 0.25); the stair lies inside room B
    walk = b.walkable[ground]
    assert walk.geom_type == "Polygon"
    assert walk.area == pytest.approx(2 * 15.6 + 0.18 + 0.25)
    # first: no spaces, so the slab (8.4 × 4.4) minus the wall on its south edge (8.4 × 0.2)
    assert b.walkable[first].area == pytest.approx(8.4 * 4.4 - 8.4 * 0.2)
    assert b.summary()["slabs"] == 2
    assert b.summary()["walls"] == 6


@pytest.mark.parametrize("schema", ["IFC4", "IFC2X3"])
def test_authored_millimetres_equal_metres(authored, tmp_path, schema):
    b = load_ifc(author_building(tmp_path / "mm.ifc", mm=True, schema=schema), frame=Frame())
    assert b.schema == schema
    assert b.crs_info["length_unit_scale"] == pytest.approx(0.001)
    np.testing.assert_allclose(b.storeys["elevation_m"], authored.storeys["elevation_m"])
    np.testing.assert_allclose(b.storeys["elevation_ifc_m"], authored.storeys["elevation_ifc_m"])
    cols = ["x_m", "y_m", "z_m", "width_m", "height_m"]
    np.testing.assert_allclose(b.doors[cols].to_numpy(float), authored.doors[cols].to_numpy(float), atol=1e-9)
    np.testing.assert_allclose(b.spaces["area_m2"], authored.spaces["area_m2"])
    np.testing.assert_allclose(b.stairs[["run_m", "rise_m"]], authored.stairs[["run_m", "rise_m"]])
    np.testing.assert_allclose(b.meshes["walls"].vertices, authored.meshes["walls"].vertices, atol=1e-9)
    for k_mm, k_m in zip(b.storeys["guid"], authored.storeys["guid"], strict=True):
        assert b.walkable[k_mm].area == pytest.approx(authored.walkable[k_m].area)


@pytest.mark.parametrize(("schema", "mm"), [("IFC4", True), ("IFC2X3", False)])
def test_authored_georeference(tmp_path, schema, mm):
    """IfcMapConversion (IFC4, millimetre model, Scale 0.001) and ePSet_MapConversion (IFC2X3)."""
    path = author_building(tmp_path / "geo.ifc", schema=schema, mm=mm)
    f = ifcopenshell.open(str(path))
    ifcopenshell.api.georeference.add_georeferencing(f, name="EPSG:3067")
    conv = {
        "Eastings": 385_500.0,
        "Northings": 6_672_300.0,
        "OrthogonalHeight": 12.0,
        "XAxisAbscissa": 0.0,
        "XAxisOrdinate": 1.0,  # model x points north
        "Scale": 0.001 if mm else 1.0,
    }
    ifcopenshell.api.georeference.edit_georeferencing(f, coordinate_operation=conv)
    f.write(str(path))
    frame = Frame("EPSG:3067", (385_000.0, 6_672_000.0, 0.0))
    b = load_ifc(path, frame=frame)
    assert b.crs_info["georeferenced"]
    assert b.crs_info["method"] == ("IfcMapConversion" if schema == "IFC4" else "ePSet_MapConversion")
    front = b.doors.set_index("name").loc["front door"]
    # model (1.5, -0.1, 0) m rotated by +90°: (0.1, 1.5); plus the offsets; minus the frame origin
    assert (front.x_m, front.y_m, front.z_m) == pytest.approx((500.1, 301.5, 12.0))
    enh = ifcopenshell.util.geolocation.auto_xyz2enh(
        f, 1.5 * (1000 if mm else 1), -0.1 * (1000 if mm else 1), 0.0
    )
    assert (front.x_m, front.y_m) == pytest.approx((enh[0] - 385_000.0, enh[1] - 6_672_000.0))
    np.testing.assert_allclose(b.storeys["elevation_m"], [12.0, 15.0])


def _georeferenced_copy(path: Path, crs: str) -> Path:
    f = ifcopenshell.open(str(path))
    ifcopenshell.api.georeference.add_georeferencing(f, name=crs)
    ifcopenshell.api.georeference.edit_georeferencing(
        f, coordinate_operation={"Eastings": 385_500.0, "Northings": 6_672_300.0, "OrthogonalHeight": 12.0}
    )
    out = path.with_name(f"geo_{path.name}")
    f.write(str(out))
    return out


def test_placement_overrides_georeference(tmp_path):
    path = _georeferenced_copy(author_building(tmp_path / "house.ifc"), "EPSG:3067")
    frame = Frame("EPSG:3067", (385_000.0, 6_672_000.0, 0.0))
    b = load_ifc(path, frame=frame, placement=Placement(x=385_010.0, y=6_672_020.0, z=1.0, rotation_deg=90.0))
    assert b.crs_info["method"] == "placement"
    assert not b.crs_info["georeferenced"]
    assert b.crs_info["map_conversion"]["eastings"] == 385_500.0  # still recorded
    front = b.doors.set_index("name").loc["front door"]
    # model (1.5, -0.1, 0) rotated by 90° → (0.1, 1.5), moved to (10, 20, 1) in the local frame
    assert (front.x_m, front.y_m, front.z_m) == pytest.approx((10.1, 21.5, 1.0))


def test_unknown_crs_is_not_a_georeference(tmp_path):
    path = _georeferenced_copy(author_building(tmp_path / "house.ifc"), "EPSG:999999")
    b = load_ifc(path, frame=Frame())
    assert not b.summary()["georeferenced"]
    assert any("EPSG:999999" in w for w in b.summary()["warnings"])
    assert b.doors.set_index("name").loc["front door", "x_m"] == pytest.approx(1.5)


def test_city_load_and_bundle(tmp_path):
    path = author_building(tmp_path / "house.ifc")
    city = City()
    (layer,) = city.add_file(path, placement={"x": 10.0, "y": 0.0, "z": 0.0, "rotation_deg": 0.0})
    assert isinstance(layer, Building)
    assert city.buildings == {"house": layer}
    assert layer.doors.set_index("name").loc["front door", "x_m"] == pytest.approx(11.5)
    info = city.summary()["layers"][0]
    assert info["kind"] == "building"
    assert info["doors"] == 2
    assert info["exits"] == 1
    city.save(tmp_path / "bundle")
    back = City.load(tmp_path / "bundle")
    assert_buildings_equal(layer, back.buildings["house"])


# -- bad input ---------------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist") as err:
        load_ifc(tmp_path / "nope.ifc", frame=Frame())
    assert err.value.source.endswith("nope.ifc")


def test_truncated_file(tmp_path):
    data = FZK.read_bytes()
    path = tmp_path / "half.ifc"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated") as err:
        load_ifc(path, frame=Frame())
    assert err.value.source == str(path)
    assert "END-ISO-10303-21" in str(err.value)


def test_not_ifc(tmp_path):
    path = tmp_path / "notes.ifc"
    path.write_text("These are meeting notes, not a building model.\n")
    with pytest.raises(InputError, match="not an IFC STEP file") as err:
        load_ifc(path, frame=Frame())
    assert err.value.source == str(path)
    assert "ISO-10303-21" in str(err.value)


def test_garbled_data_section(tmp_path):
    """Header and trailer are fine but the body is not STEP: IfcOpenShell's parse error becomes InputError."""
    path = tmp_path / "garbled.ifc"
    path.write_text("ISO-10303-21;\nHEADER;\nthis is not a header\nEND-ISO-10303-21;\n")
    with pytest.raises(InputError) as err:
        load_ifc(path, frame=Frame())
    assert err.value.source == str(path)


def test_no_storeys(tmp_path):
    path = author_building(tmp_path / "nostorey.ifc", with_storeys=False)
    with pytest.raises(InputError, match="no IfcBuildingStorey") as err:
        load_ifc(path, frame=Frame())
    assert err.value.source == str(path)
    assert err.value.element == "IfcBuildingStorey"


def test_broken_geometry_is_a_warning(tmp_path, caplog):
    path = author_building(tmp_path / "broken.ifc", broken_wall=True)
    with caplog.at_level(logging.WARNING, logger="twin.city.ifc"):
        b = load_ifc(path, frame=Frame())
    f = ifcopenshell.open(str(path))
    broken = next(w for w in f.by_type("IfcWall") if w.Name == "broken").GlobalId
    assert b.without_geometry == [broken]
    assert b.summary()["elements_without_geometry"] == 1
    assert any(broken in r.getMessage() for r in caplog.records)
    walls = b.meshes["walls"]
    row = walls.elements.index[walls.elements["guid"] == broken][0]
    assert not (walls.face_element == row).any()  # kept in the table, no faces
    assert b.summary()["walls"] == 7
    # everything else is as in the intact model
    assert len(b.doors) == 2
    assert len(b.exits()) == 1


def test_space_without_geometry(tmp_path, caplog):
    path = author_building(tmp_path / "house.ifc")
    f = ifcopenshell.open(str(path))
    room = next(s for s in f.by_type("IfcSpace") if s.Name == "A")
    room.Representation = None
    f.write(str(path))
    with caplog.at_level(logging.WARNING, logger="twin.city.ifc"):
        b = load_ifc(path, frame=Frame())
    sp = b.spaces.set_index("name")
    assert sp.loc["A", "footprint"] is None
    assert math.isnan(sp.loc["A", "area_m2"])
    assert b.summary()["spaces_without_geometry"] == 1
    assert any("without geometry" in w for w in b.warnings)
    assert any(room.GlobalId in r.getMessage() for r in caplog.records)
    # the front door now opens from "outside"-or-unknown into nothing known; the inner door still finds B
    inner = b.doors.set_index("name").loc["inner door"]
    assert sp.loc["B", "guid"] in (inner.side_a, inner.side_b)
