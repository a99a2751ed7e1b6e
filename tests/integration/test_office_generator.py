"""The generated office IFC: schema and rule validity, counts, door/space topology, stairs, geometry, determinism.

Everything is checked through IfcOpenShell's own reading of the written file (its validator with EXPRESS rules, its
geometry kernel, its placement and georeference utilities), not through the generator's internal plan.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict, deque
from pathlib import Path

import ifcopenshell
import ifcopenshell.geom
import ifcopenshell.util.element
import ifcopenshell.util.geolocation
import ifcopenshell.util.placement
import ifcopenshell.validate
import numpy as np
import pytest
import shapely
from shapely.geometry import Polygon

from twin.city.office_generator import generate_office, main
from twin.errors import InputError

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "models" / "office.ifc"
STOREY_HEIGHT = 3.5
ROOMS_PER_SIDE = 5


@pytest.fixture(scope="module")
def default_office(tmp_path_factory):
    """(path, opened file) of the model with default parameters (what models/office.ifc holds)."""
    out = tmp_path_factory.mktemp("office3") / "office.ifc"
    assert generate_office(out) == out
    return out, ifcopenshell.open(str(out))


@pytest.fixture(scope="module", params=[3, 4], ids=["3-storeys", "4-storeys"])
def office(request, default_office, tmp_path_factory):
    """(number of storeys, path, opened file) for the default model and a 4-storey variant."""
    storeys = request.param
    if storeys == 3:
        return (3, *default_office)
    out = tmp_path_factory.mktemp(f"office{storeys}") / "office.ifc"
    assert generate_office(out, storeys=storeys) == out
    return storeys, out, ifcopenshell.open(str(out))


@pytest.fixture(scope="module")
def shapes(office):
    """World-coordinate meshes of every product with a representation: id -> (verts (n, 3), faces (m, 3))."""
    _, _, f = office
    settings = ifcopenshell.geom.settings()
    settings.set("use-world-coords", True)
    out = {}
    failures = []
    for product in f.by_type("IfcProduct"):
        if product.Representation is None:
            continue
        try:
            shape = ifcopenshell.geom.create_shape(settings, product)
        except Exception as exc:  # noqa: BLE001 - collect every failure for the assertion message
            failures.append(f"{product.is_a()} {product.Name}: {exc}")
            continue
        verts = np.asarray(shape.geometry.verts, dtype=float).reshape(-1, 3)
        faces = np.asarray(shape.geometry.faces, dtype=int).reshape(-1, 3)
        out[product.id()] = (verts, faces)
    assert failures == []
    return out


def _volume(verts: np.ndarray, faces: np.ndarray) -> float:
    """Enclosed volume of a closed triangle mesh (divergence theorem), m³."""
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return float(abs(np.einsum("ij,ij->i", a, np.cross(b, c)).sum()) / 6.0)


def _footprint(verts: np.ndarray, faces: np.ndarray) -> Polygon:
    """Union of the triangles projected on the xy plane."""
    tris = [Polygon(verts[t, :2]) for t in faces]
    return shapely.union_all([t for t in tris if t.area > 1e-12])


def _bbox(shapes, entity) -> tuple[np.ndarray, np.ndarray]:
    verts = shapes[entity.id()][0]
    return verts.min(axis=0), verts.max(axis=0)


def _storey_of(element):
    container = ifcopenshell.util.element.get_container(element)
    return container if container is not None else ifcopenshell.util.element.get_aggregate(element)


def _errors(path: Path, *, express_rules: bool) -> list[dict]:
    logger = ifcopenshell.validate.json_logger()
    ifcopenshell.validate.validate(str(path), logger, express_rules=express_rules)
    return [s for s in logger.statements if s["level"] in ("error", "critical")]


# -- validity ---------------------------------------------------------------------------------------------------


def test_validates_without_errors(office):
    storeys, path, f = office
    assert f.schema == "IFC4"
    # EXPRESS WHERE rules are slow (~8 s); run them on the default model, schema checks on both.
    errors = _errors(path, express_rules=storeys == 3)
    assert errors == [], errors[:5]


def test_validator_catches_a_broken_copy(default_office, tmp_path):
    """The validation above is not vacuous: a copy with two doors sharing a GlobalId fails it."""
    _, f = default_office
    a, b = f.by_type("IfcDoor")[:2]
    guid, b.GlobalId = b.GlobalId, a.GlobalId
    broken = tmp_path / "broken.ifc"
    f.write(str(broken))
    b.GlobalId = guid
    errors = _errors(broken, express_rules=False)
    assert len(errors) == 1
    assert "GlobalId" in errors[0]["message"]


# -- structure and counts ---------------------------------------------------------------------------------------


def test_spatial_hierarchy_units_and_contexts(office):
    storeys, _, f = office
    (project,) = f.by_type("IfcProject")
    (site,) = f.by_type("IfcSite")
    (building,) = f.by_type("IfcBuilding")
    assert ifcopenshell.util.element.get_aggregate(site) == project
    assert ifcopenshell.util.element.get_aggregate(building) == site
    levels = sorted(f.by_type("IfcBuildingStorey"), key=lambda s: s.Elevation)
    assert len(levels) == storeys >= 3
    for i, storey in enumerate(levels):
        assert ifcopenshell.util.element.get_aggregate(storey) == building
        assert storey.Name == f"Storey {i + 1}"
        assert storey.Elevation == pytest.approx(i * STOREY_HEIGHT)
        z = ifcopenshell.util.placement.get_local_placement(storey.ObjectPlacement)[2, 3]
        assert z == pytest.approx(storey.Elevation)
    (length_unit,) = [u for u in project.UnitsInContext.Units if u.UnitType == "LENGTHUNIT"]
    assert length_unit.Name == "METRE"
    assert length_unit.Prefix is None
    subcontexts = {c.ContextIdentifier for c in f.by_type("IfcGeometricRepresentationSubContext")}
    assert {"Body", "Axis", "FootPrint"} <= subcontexts
    assert [c.ContextType for c in project.RepresentationContexts] == ["Model"]
    assert not f.by_type("IfcMapConversion")
    assert not f.by_type("IfcProjectedCRS")


def test_counts(office):
    storeys, _, f = office
    m = ROOMS_PER_SIDE
    assert len(f.by_type("IfcStair")) == 2 * (storeys - 1)
    assert len(f.by_type("IfcStairFlight")) == 2 * (storeys - 1)
    # per storey: 2m rooms (ground: 2m - 1 rooms and the lobby), a corridor and two stair cores
    assert len(f.by_type("IfcSpace")) == storeys * (2 * m + 3)
    # per storey: one door per room (or lobby) and two stair doors; ground: main entrance and two exits
    assert len(f.by_type("IfcDoor")) == storeys * (2 * m + 2) + 3
    assert len(f.by_type("IfcOpeningElement")) == len(f.by_type("IfcDoor"))
    assert len(f.by_type("IfcSlab")) == storeys + 1
    assert len(f.by_type("IfcWall")) == storeys * (8 + 2 * (m - 1))
    names = [s.Name for s in f.by_type("IfcSpace")]
    assert len(set(names)) == len(names)
    for n in range(1, storeys + 1):
        rooms = [s for s in names if s.startswith(f"Room {n}.")]
        assert 6 <= len(rooms) <= 10
        assert {f"Corridor {n}", f"Stair A {n}", f"Stair B {n}"} <= set(names)
    assert "Room 2.04" in names
    assert "Lobby 1" in names
    assert "Room 1.03" not in names
    guids = [e.GlobalId for e in f.by_type("IfcRoot")]
    assert len(set(guids)) == len(guids)


def test_spaces_are_in_their_storey(office):
    _, _, f = office
    for space in f.by_type("IfcSpace"):
        storey = ifcopenshell.util.element.get_aggregate(space)
        assert storey.is_a("IfcBuildingStorey")
        number = int(space.Name.split()[-1].split(".")[0])
        assert storey.Name == f"Storey {number}"
        pset = ifcopenshell.util.element.get_pset(space, "Pset_SpaceCommon")
        assert pset["IsExternal"] is False
        assert pset["Reference"]


# -- doors and space boundaries ---------------------------------------------------------------------------------


def test_every_door_fills_an_opening_in_a_wall_of_its_storey(office, shapes):
    _, _, f = office
    for door in f.by_type("IfcDoor"):
        (fills,) = door.FillsVoids
        opening = fills.RelatingOpeningElement
        (voids,) = opening.VoidsElements
        wall = voids.RelatingBuildingElement
        assert wall.is_a("IfcWall")
        assert ifcopenshell.util.element.get_container(door) == ifcopenshell.util.element.get_container(wall)
        assert 0.9 <= door.OverallWidth <= 1.85
        assert door.OverallHeight == pytest.approx(2.1)
        lo, hi = _bbox(shapes, door)
        wlo, whi = _bbox(shapes, wall)
        olo, ohi = _bbox(shapes, opening)
        tol = 1e-4
        assert np.all((lo >= wlo - tol) & (hi <= whi + tol)), door.Name  # the door lies in its wall
        assert np.all((lo >= olo - tol) & (hi <= ohi + tol)), door.Name  # ... inside its opening
        width = np.sort(hi[:2] - lo[:2])[-1]
        assert width == pytest.approx(door.OverallWidth, abs=1e-4)
        assert hi[2] - lo[2] == pytest.approx(door.OverallHeight, abs=1e-4)


def test_openings_cut_their_walls(office, shapes):
    """Wall volume = axis length x height x thickness minus the door openings through it."""
    _, _, f = office
    for wall in f.by_type("IfcWall"):
        usage = ifcopenshell.util.element.get_material(wall)
        assert usage.is_a("IfcMaterialLayerSetUsage")
        t = sum(layer.LayerThickness for layer in usage.ForLayerSet.MaterialLayers)
        assert usage.OffsetFromReferenceLine == pytest.approx(-t / 2)
        axis = next(r for r in wall.Representation.Representations if r.RepresentationIdentifier == "Axis")
        (curve,) = axis.Items
        pts = np.asarray(
            curve.Points.CoordList
            if curve.is_a("IfcIndexedPolyCurve")
            else [p.Coordinates for p in curve.Points]
        )
        length = float(np.linalg.norm(pts[-1] - pts[0]))
        lo, hi = _bbox(shapes, wall)
        height = hi[2] - lo[2]
        cut = sum(
            rel.RelatedOpeningElement.HasFillings[0].RelatedBuildingElement.OverallWidth * 2.1 * t
            for rel in wall.HasOpenings
        )
        assert _volume(*shapes[wall.id()]) == pytest.approx(length * height * t - cut, rel=1e-6), wall.Name


def test_door_space_boundaries(office, shapes):
    storeys, _, f = office
    one_sided = []
    for door in f.by_type("IfcDoor"):
        rels = door.ProvidesBoundaries
        assert len(rels) in (1, 2), door.Name
        storey = ifcopenshell.util.element.get_container(door)
        dlo, dhi = _bbox(shapes, door)
        for rel in rels:
            assert rel.is_a("IfcRelSpaceBoundary2ndLevel")
            assert rel.PhysicalOrVirtualBoundary == "PHYSICAL"
            assert rel.InternalOrExternalBoundary == ("INTERNAL" if len(rels) == 2 else "EXTERNAL")
            space = rel.RelatingSpace
            assert space.is_a("IfcSpace")
            assert ifcopenshell.util.element.get_aggregate(space) == storey
            # The connection surface is the door rectangle on the space's face of the wall.
            surface = rel.ConnectionGeometry.SurfaceOnRelatingElement
            plane = ifcopenshell.util.placement.get_axis2placement(surface.BasisSurface.Position)
            space_m = ifcopenshell.util.placement.get_local_placement(space.ObjectPlacement)
            pts2 = np.asarray([p.Coordinates for p in surface.OuterBoundary.Points])
            local = np.c_[pts2, np.zeros(len(pts2)), np.ones(len(pts2))]
            world = (space_m @ plane @ local.T).T[:, :3]
            assert np.all((world >= dlo - 1e-6) & (world <= dhi + 1e-6)), door.Name
            slo, shi = _bbox(shapes, space)
            normal = (space_m @ plane)[:3, 2]
            on_face = [np.allclose(world[:, k], slo[k]) or np.allclose(world[:, k], shi[k]) for k in (0, 1)]
            assert any(on_face), door.Name
            assert np.dot((slo + shi) / 2 - world[0], normal) < 0, (
                door.Name
            )  # normal points away from the space
        if len(rels) == 2:
            a, b = rels
            assert a.CorrespondingBoundary == b
            assert b.CorrespondingBoundary == a
            assert a.RelatingSpace != b.RelatingSpace
        else:
            one_sided.append(door)
    assert len(one_sided) >= 2
    ground = min(f.by_type("IfcBuildingStorey"), key=lambda s: s.Elevation)
    for door in one_sided:
        assert ifcopenshell.util.element.get_container(door) == ground
        pset = ifcopenshell.util.element.get_pset(door, "Pset_DoorCommon")
        assert pset["IsExternal"] is True
        assert pset["FireExit"] is True
        assert door.OverallWidth == pytest.approx(1.8)


def test_each_room_has_a_door_to_its_corridor(office):
    _, _, f = office
    doors_of = defaultdict(list)
    for rel in f.by_type("IfcRelSpaceBoundary"):
        doors_of[rel.RelatingSpace.Name].append(rel.RelatedBuildingElement)
    for space in f.by_type("IfcSpace"):
        if not space.Name.startswith("Room "):
            continue
        n = space.Name.split()[1].split(".")[0]
        (door,) = doors_of[space.Name]
        assert 0.9 <= door.OverallWidth <= 1.0
        sides = {rel.RelatingSpace.Name for rel in door.ProvidesBoundaries}
        assert sides == {space.Name, f"Corridor {n}"}


def test_every_space_reaches_an_exit(office):
    """Graph of spaces joined by doors (boundaries) and stairs (stair cores of consecutive storeys)."""
    _, _, f = office
    graph = defaultdict(set)
    exits = set()
    for door in f.by_type("IfcDoor"):
        names = [rel.RelatingSpace.Name for rel in door.ProvidesBoundaries]
        if len(names) == 1:
            exits.add(names[0])
        for a, b in itertools.permutations(names, 2):
            graph[a].add(b)
    for stair in f.by_type("IfcStair"):
        core = stair.Name.split()[1]
        lower = int(ifcopenshell.util.element.get_container(stair).Name.split()[-1])
        graph[f"Stair {core} {lower}"].add(f"Stair {core} {lower + 1}")
        graph[f"Stair {core} {lower + 1}"].add(f"Stair {core} {lower}")
    assert {"Lobby 1", "Stair A 1", "Stair B 1"} <= exits
    reached, queue = set(exits), deque(exits)
    while queue:
        for nxt in graph[queue.popleft()] - reached:
            reached.add(nxt)
            queue.append(nxt)
    assert reached == {s.Name for s in f.by_type("IfcSpace")}


# -- stairs -----------------------------------------------------------------------------------------------------


def test_stairs_link_consecutive_storeys(office, shapes):
    storeys, _, f = office
    levels = {s.Name: s for s in f.by_type("IfcBuildingStorey")}
    spaces = {s.Name: s for s in f.by_type("IfcSpace")}
    for stair in f.by_type("IfcStair"):
        assert stair.PredefinedType == "STRAIGHT_RUN_STAIR"
        lower = ifcopenshell.util.element.get_container(stair)
        (ref,) = stair.ReferencedInStructures
        upper = ref.RelatingStructure
        assert upper.Elevation - lower.Elevation == pytest.approx(STOREY_HEIGHT)
        assert lower.Name in levels
        assert upper.Name in levels
        common = ifcopenshell.util.element.get_pset(stair, "Pset_StairCommon")
        risers, riser, treads, going = (
            common["NumberOfRiser"],
            common["RiserHeight"],
            common["NumberOfTreads"],
            common["TreadLength"],
        )
        assert risers * riser == pytest.approx(STOREY_HEIGHT, abs=1e-3)
        assert treads == risers - 1
        assert 0.15 <= riser <= 0.18
        assert 0.26 <= going <= 0.32
        assert 0.60 <= 2 * riser + going <= 0.65
        run = treads * going
        assert run == pytest.approx(STOREY_HEIGHT / math.tan(math.radians(33)), rel=0.05)
        (flight,) = ifcopenshell.util.element.get_decomposition(stair)
        assert flight.is_a("IfcStairFlight")
        flight_pset = ifcopenshell.util.element.get_pset(flight, "Pset_StairFlightCommon")
        assert flight_pset["NumberOfRiser"] == risers
        assert flight_pset["RiserHeight"] == pytest.approx(riser)
        assert flight.NumberOfRisers == risers
        assert flight.TreadLength == pytest.approx(going)
        lo, hi = _bbox(shapes, flight)
        ext = hi - lo
        assert max(ext[0], ext[1]) == pytest.approx(run, abs=1e-3)
        assert min(ext[0], ext[1]) == pytest.approx(1.2, abs=1e-3)
        assert lo[2] == pytest.approx(lower.Elevation, abs=1e-6)
        assert hi[2] == pytest.approx(upper.Elevation - riser, abs=1e-3)  # the last riser is the slab edge
        assert math.degrees(math.atan2(riser, going)) == pytest.approx(32, abs=3)
        # The flight stands inside the stair core of both storeys it links.
        core = stair.Name.split()[1]
        for storey in (lower, upper):
            core_space = spaces[f"Stair {core} {storey.Name.split()[-1]}"]
            slo, shi = _bbox(shapes, core_space)
            assert np.all(lo[:2] >= slo[:2] - 1e-6)
            assert np.all(hi[:2] <= shi[:2] + 1e-6)
    assert len(f.by_type("IfcStair")) == 2 * (storeys - 1)


def test_slabs_leave_stairwells_open(office, shapes):
    """No flight intersects a floor slab: the slabs above ground have voids over the arriving flights."""
    _, _, f = office
    flights = [_footprint(*shapes[s.id()]) for s in f.by_type("IfcStairFlight")]
    for slab in f.by_type("IfcSlab"):
        lo, hi = _bbox(shapes, slab)
        assert hi[2] - lo[2] == pytest.approx(0.2)
        outline = _footprint(*shapes[slab.id()])
        expected_holes = 0 if slab.Name in ("Slab 1", "Roof slab") else 2
        assert len(outline.interiors) == expected_holes, slab.Name
        for flight, fl in zip(f.by_type("IfcStairFlight"), flights, strict=True):
            flo, fhi = _bbox(shapes, flight)
            overlaps_z = flo[2] < hi[2] - 1e-6 and fhi[2] > lo[2] + 1e-6
            if overlaps_z:
                assert outline.intersection(fl).area < 1e-6, (slab.Name, flight.Name)


# -- geometry ---------------------------------------------------------------------------------------------------


def test_iterator_builds_every_product(office, shapes):
    """The geometry iterator (what loaders use) yields exactly the products that have a representation."""
    _, _, f = office
    settings = ifcopenshell.geom.settings()
    it = ifcopenshell.geom.iterator(settings, f, 1)
    assert it.initialize()
    seen = set()
    while True:
        seen.add(it.get().id)
        if not it.next():
            break
    bodies = {p.id() for p in f.by_type("IfcProduct") if p.Representation is not None}
    assert seen == bodies == set(shapes)


def test_spaces_do_not_overlap(office, shapes):
    _, _, f = office
    by_storey = defaultdict(list)
    for space in f.by_type("IfcSpace"):
        by_storey[_storey_of(space).Name].append(space)
    walls_by_storey = defaultdict(list)
    for wall in f.by_type("IfcWall"):
        walls_by_storey[_storey_of(wall).Name].append(_footprint(*shapes[wall.id()]))
    for storey_name, spaces in by_storey.items():
        storey = next(s for s in f.by_type("IfcBuildingStorey") if s.Name == storey_name)
        prints = {}
        for space in spaces:
            verts, faces = shapes[space.id()]
            assert verts[:, 2].min() == pytest.approx(storey.Elevation)
            assert verts[:, 2].max() == pytest.approx(storey.Elevation + STOREY_HEIGHT - 0.2)
            prints[space.Name] = _footprint(verts, faces)
            qto = ifcopenshell.util.element.get_pset(space, "Qto_SpaceBaseQuantities")
            assert prints[space.Name].area == pytest.approx(qto["NetFloorArea"], rel=1e-6)
            assert _volume(verts, faces) == pytest.approx(qto["NetVolume"], rel=1e-6)
        for (a, pa), (b, pb) in itertools.combinations(prints.items(), 2):
            assert pa.intersection(pb).area < 1e-6, (a, b)
        walls = shapely.union_all(walls_by_storey[storey_name])
        for name, pa in prints.items():
            assert pa.intersection(walls).area < 1e-6, name
        # Spaces and walls tile the 40 m x 16 m footprint.
        total = sum(p.area for p in prints.values()) + walls.area
        assert total == pytest.approx(40.0 * 16.0, rel=1e-6)


# -- determinism, georeference, CLI, bad input ------------------------------------------------------------------


def test_generation_is_deterministic(office, tmp_path):
    storeys, path, _ = office
    again = generate_office(tmp_path / "office.ifc", storeys=storeys)
    assert again.read_bytes() == path.read_bytes()


def test_committed_model_is_fresh(default_office):
    path, _ = default_office
    assert COMMITTED.is_file(), (
        "models/office.ifc is missing: python -m twin.city.office_generator models/office.ifc"
    )
    assert COMMITTED.stat().st_size < 2_000_000
    assert COMMITTED.read_bytes() == path.read_bytes()


def test_georeference(tmp_path):
    georef = dict(
        crs="EPSG:3067", eastings=385000.0, northings=6672000.0, orthogonal_height=12.5, rotation_deg=30.0
    )
    path = generate_office(tmp_path / "geo.ifc", georef=georef)
    assert _errors(path, express_rules=False) == []
    f = ifcopenshell.open(str(path))
    (conversion,) = f.by_type("IfcMapConversion")
    assert conversion.TargetCRS.Name == "EPSG:3067"
    assert conversion.TargetCRS.MapUnit.Name == "METRE"
    a = math.radians(30.0)
    x, y, z = 40.0, 16.0, 3.5
    expected = (
        385000.0 + x * math.cos(a) - y * math.sin(a),
        6672000.0 + x * math.sin(a) + y * math.cos(a),
        16.0,
    )
    assert ifcopenshell.util.geolocation.auto_xyz2enh(f, x, y, z) == pytest.approx(expected, abs=1e-6)


def test_cli(tmp_path):
    out = tmp_path / "sub" / "cli.ifc"
    assert main([str(out), "--storeys", "2", "--rooms-per-side", "4"]) == 0
    f = ifcopenshell.open(str(out))
    assert len(f.by_type("IfcBuildingStorey")) == 2
    assert len([s for s in f.by_type("IfcSpace") if s.Name.startswith("Room 2.")]) == 8


def test_other_dimensions(tmp_path):
    """A bigger footprint, lower storeys and more rooms: still valid, with stairs scaled to the storey height."""
    path = generate_office(
        tmp_path / "big.ifc",
        storeys=2,
        storey_height=3.0,
        length=60.0,
        width=20.0,
        corridor_width=3.0,
        rooms_per_side=8,
    )
    assert _errors(path, express_rules=False) == []
    f = ifcopenshell.open(str(path))
    assert len([s for s in f.by_type("IfcSpace") if s.Name.startswith("Room 2.")]) == 16
    (corridor,) = [s for s in f.by_type("IfcSpace") if s.Name == "Corridor 2"]
    assert ifcopenshell.util.element.get_pset(corridor, "Qto_SpaceBaseQuantities")["Height"] == pytest.approx(
        2.8
    )
    for stair in f.by_type("IfcStair"):
        pset = ifcopenshell.util.element.get_pset(stair, "Pset_StairCommon")
        assert pset["NumberOfRiser"] * pset["RiserHeight"] == pytest.approx(3.0, abs=2e-3)
        assert pset["RiserHeight"] <= 0.18
    settings = ifcopenshell.geom.settings()
    for product in f.by_type("IfcProduct"):
        if product.Representation is not None:
            ifcopenshell.geom.create_shape(settings, product)


@pytest.mark.parametrize(
    ("kwargs", "element"),
    [
        ({"storeys": 0}, "storeys"),
        ({"storeys": 2.5}, "storeys"),
        ({"storey_height": float("nan")}, "storey_height"),
        ({"rooms_per_side": 12}, "length"),
        ({"width": 10.0, "corridor_width": 4.0}, "width"),
        ({"georef": {"eastings": 1.0}}, "georef"),
        ({"georef": {"crs": "EPSG:3067", "rotation_deg": "north"}}, "georef"),
    ],
)
def test_bad_parameters(tmp_path, kwargs, element):
    out = tmp_path / "bad.ifc"
    with pytest.raises(InputError) as info:
        generate_office(out, **kwargs)
    assert info.value.element == element
    assert not out.exists()
