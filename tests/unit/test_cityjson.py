"""CityJSON loader on small hand-made files: transform, CRS, geometry types, triangulation, errors."""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.city.cityjson import load_cityjson
from twin.city.citymodel import SEMANTIC_CODE, CityModel, triangle_areas
from twin.city.frame import Frame, Placement
from twin.errors import InputError

# A 10 m × 6 m × 4 m box, outward-oriented faces (counter-clockwise seen from outside), 1 mm integer vertices.
BOX = [(0, 0, 0), (10, 0, 0), (10, 6, 0), (0, 6, 0), (0, 0, 4), (10, 0, 4), (10, 6, 4), (0, 6, 4)]
BOX_FACES = [[[0, 3, 2, 1]], [[4, 5, 6, 7]], [[0, 1, 5, 4]], [[1, 2, 6, 5]], [[2, 3, 7, 6]], [[3, 0, 4, 7]]]
TRANSLATE = [85000.5, 447000.25, 1.0]


def box_doc(**meta: Any) -> dict[str, Any]:
    return {
        "type": "CityJSON",
        "version": "2.0",
        "transform": {"scale": [0.001, 0.001, 0.001], "translate": TRANSLATE},
        "metadata": {"referenceSystem": "https://www.opengis.net/def/crs/EPSG/0/7415", **meta},
        "CityObjects": {
            "house-1": {
                "type": "Building",
                "attributes": {"storeysAboveGround": 1},
                "geometry": [
                    {
                        "type": "Solid",
                        "lod": "1.2",
                        "boundaries": [BOX_FACES],
                        "semantics": {
                            "surfaces": [
                                {"type": "GroundSurface"},
                                {"type": "RoofSurface"},
                                {"type": "WallSurface"},
                            ],
                            "values": [[0, 1, 2, 2, 2, 2]],
                        },
                    }
                ],
            }
        },
        "vertices": [[x * 1000, y * 1000, z * 1000] for x, y, z in BOX],
    }


def write(tmp_path: Path, doc: Any, name: str = "model.city.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return p


def signed_volume(m: CityModel, rows: np.ndarray | None = None) -> float:
    f = m.faces if rows is None else m.faces[rows]
    v = m.vertices[f]
    return float(np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0)


def newell_area(points: np.ndarray) -> np.ndarray:
    """Vector area (3,) of a closed ring (n, 3): its norm is the area of a planar ring."""
    q = points - points.mean(axis=0)
    return 0.5 * np.cross(q, np.roll(q, -1, axis=0)).sum(axis=0)


# -- the box -----------------------------------------------------------------------------------------------------------
def test_box_transform_crs_and_closed_mesh(tmp_path: Path) -> None:
    frame = Frame()
    m = load_cityjson(write(tmp_path, box_doc()), frame=frame)
    # compound EPSG:7415 → the frame is its horizontal part, RD New; origin rounded to km
    assert frame.crs.to_epsg() == 28992
    np.testing.assert_array_equal(frame.origin, [85000.0, 447000.0, 0.0])
    expected = np.array(BOX, dtype=float) + np.array(TRANSLATE) - frame.origin
    np.testing.assert_allclose(m.bounds(), [expected.min(axis=0), expected.max(axis=0)], atol=1e-9)
    # 6 quads → 12 triangles, closed and outward: the divergence theorem gives the box volume
    assert len(m.faces) == 12
    assert signed_volume(m) == pytest.approx(240.0, rel=1e-12)
    assert triangle_areas(m.vertices, m.faces).sum() == pytest.approx(2 * (60 + 40 + 24), rel=1e-12)
    sem = {
        name: int((m.face_semantic == SEMANTIC_CODE[name]).sum()) for name in ("GroundSurface", "RoofSurface")
    }
    assert sem == {"GroundSurface": 2, "RoofSurface": 2}
    assert (m.face_semantic == SEMANTIC_CODE["WallSurface"]).sum() == 8
    np.testing.assert_array_equal(np.unique(m.face_surface), np.arange(6))
    # roof normals point up, ground normals down
    v = m.vertices[m.faces]
    nz = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 2]
    assert (nz[m.face_semantic == SEMANTIC_CODE["RoofSurface"]] > 0).all()
    assert (nz[m.face_semantic == SEMANTIC_CODE["GroundSurface"]] < 0).all()


def test_box_building_row(tmp_path: Path) -> None:
    frame = Frame()
    m = load_cityjson(write(tmp_path, box_doc()), frame=frame)
    b = m.buildings.iloc[0]
    assert (b["id"], b["type"], b["lod"], b["parent"]) == ("house-1", "Building", "1.2", None)
    assert b["ground_z_m"] == pytest.approx(1.0)
    assert b["roof_z_m"] == pytest.approx(5.0)
    assert b["height_m"] == pytest.approx(4.0)
    assert b["height_source"] == "geometry"
    assert b["storeys_above_ground"] == 1.0
    assert json.loads(b["attributes"]) == {"storeysAboveGround": 1}
    # footprint from the GroundSurface: the 10 × 6 rectangle, in local xy
    ref = shapely.box(0.5, 0.25, 10.5, 6.25)
    assert b["footprint"].symmetric_difference(ref).area < 1e-9
    s = m.summary()
    assert s["objects_by_type"] == {"Building": 1}
    assert s["lods"] == ["1.2"]
    assert s["crs"] == "EPSG:28992"
    assert s["height_m"] == pytest.approx([4.0, 4.0])


def test_footprint_without_semantics_is_projection(tmp_path: Path) -> None:
    doc = box_doc()
    del doc["CityObjects"]["house-1"]["geometry"][0]["semantics"]
    m = load_cityjson(write(tmp_path, doc), frame=Frame())
    assert (m.face_semantic == -1).all()
    fp = m.buildings["footprint"][0]
    assert fp.symmetric_difference(shapely.box(0.5, 0.25, 10.5, 6.25)).area < 1e-9


@pytest.mark.parametrize(
    ("reference", "epsg"),
    [
        ("https://www.opengis.net/def/crs/EPSG/0/2056", 2056),
        ("http://www.opengis.net/def/crs/EPSG/0/2056", 2056),
        ("urn:ogc:def:crs:EPSG::2056", 2056),
        ("urn:ogc:def:crs:EPSG:6.12:2056", 2056),
        ("EPSG:2056", 2056),
        ("https://www.opengis.net/def/crs/EPSG/0/7415", 28992),
    ],
)
def test_reference_system_forms(tmp_path: Path, reference: str, epsg: int) -> None:
    doc = box_doc(referenceSystem=reference)
    doc["transform"]["translate"] = [2600000.0, 1200000.0, 400.0] if epsg == 2056 else TRANSLATE
    frame = Frame()
    m = load_cityjson(write(tmp_path, doc), frame=frame)
    assert frame.crs.to_epsg() == epsg
    # heights are kept as they are (no vertical transformation)
    assert m.bounds()[1, 2] == pytest.approx(doc["transform"]["translate"][2] + 4.0)


def test_reprojection_into_an_existing_frame(tmp_path: Path) -> None:
    """A file in RD New loaded into a UTM 31N city lands where pyproj puts it."""
    import pyproj

    frame = Frame("EPSG:32631", (600000.0, 5800000.0, 0.0))
    m = load_cityjson(write(tmp_path, box_doc()), frame=frame)
    t = pyproj.Transformer.from_crs("EPSG:28992", "EPSG:32631", always_xy=True)
    x, y = t.transform(85000.5, 447000.25)
    corner = m.vertices[np.argmin(m.vertices[:, 0] + m.vertices[:, 1])]
    assert corner[0] == pytest.approx(x - 600000.0, abs=0.05)
    assert corner[1] == pytest.approx(y - 5800000.0, abs=0.05)


def test_no_reference_system_placement_or_identity(tmp_path: Path) -> None:
    doc = box_doc()
    del doc["metadata"]
    p = write(tmp_path, doc)
    m = load_cityjson(p, frame=Frame())
    src = np.array(BOX, dtype=float) + TRANSLATE
    np.testing.assert_allclose(m.bounds(), [src.min(axis=0), src.max(axis=0)])
    placement = Placement(x=100.0, y=200.0, z=5.0, rotation_deg=90.0)
    frame = Frame("EPSG:28992", (0.0, 0.0, 0.0))
    placed = load_cityjson(p, frame=frame, placement=placement)
    np.testing.assert_allclose(placed.vertices, placement.apply(m.vertices), atol=1e-9)


def test_placement_ignored_when_georeferenced(tmp_path: Path) -> None:
    p = write(tmp_path, box_doc())
    a = load_cityjson(p, frame=Frame())
    b = load_cityjson(p, frame=Frame(), placement=Placement(x=1000.0))
    np.testing.assert_array_equal(a.vertices, b.vertices)


# -- geometry types and LoD choice ------------------------------------------------------------------------------------
def test_highest_lod_is_used(tmp_path: Path) -> None:
    doc = box_doc()
    geoms = doc["CityObjects"]["house-1"]["geometry"]
    roof_only = {"type": "MultiSurface", "lod": "2.2", "boundaries": [[[4, 5, 6, 7]]]}
    geoms.insert(0, {"type": "MultiSurface", "lod": "0", "boundaries": [[[0, 1, 2, 3]]]})
    geoms.append(roof_only)
    m = load_cityjson(write(tmp_path, doc), frame=Frame())
    row = m.objects.iloc[0]
    assert (row["lod"], row["geometry_type"], row["n_surfaces"], row["n_triangles"]) == (
        "2.2",
        "MultiSurface",
        1,
        2,
    )


def test_version_1_0_numeric_lod_and_float_vertices(tmp_path: Path) -> None:
    doc = box_doc()
    doc["version"] = "1.0"
    del doc["transform"]
    doc["vertices"] = [[x + 0.5, y, z] for x, y, z in BOX]
    doc["metadata"] = {"referenceSystem": "urn:ogc:def:crs:EPSG::7415"}
    doc["CityObjects"]["house-1"]["geometry"][0]["lod"] = 2
    m = load_cityjson(write(tmp_path, doc), frame=Frame("EPSG:28992"))
    assert m.objects["lod"][0] == "2"
    np.testing.assert_allclose(m.bounds(), [[0.5, 0, 0], [10.5, 6, 4]])


def test_multisolid_and_composite_surface(tmp_path: Path) -> None:
    doc = box_doc()
    doc["vertices"] += [[x * 1000 + 20000, y * 1000, z * 1000] for x, y, z in BOX]
    second = [[[i + 8 for i in ring] for ring in face] for face in BOX_FACES]
    doc["CityObjects"]["pair"] = {
        "type": "Building",
        "geometry": [{"type": "MultiSolid", "lod": "1", "boundaries": [[BOX_FACES], [second]]}],
    }
    doc["CityObjects"]["lid"] = {
        "type": "GenericCityObject",
        "geometry": [
            {"type": "CompositeSurface", "lod": "1", "boundaries": [[[4, 5, 6, 7]], [[12, 13, 14, 15]]]}
        ],
    }
    m = load_cityjson(write(tmp_path, doc), frame=Frame())
    rows = m.faces_of("pair")
    assert len(rows) == 24
    assert signed_volume(m, rows) == pytest.approx(480.0, rel=1e-12)
    assert len(m.faces_of("lid")) == 4
    fp = m.buildings.set_index("id").loc["pair", "footprint"]
    assert fp.geom_type == "MultiPolygon"
    assert fp.area == pytest.approx(120.0)
    assert m.summary()["objects_by_type"] == {"Building": 2, "GenericCityObject": 1}


def test_surface_with_hole_in_a_vertical_plane(tmp_path: Path) -> None:
    """A 10 × 10 m wall in the plane x = 3 with a 2 × 2 m window hole: 96 m² of triangles, none in the hole."""
    outer = [(3, 0, 0), (3, 10, 0), (3, 10, 10), (3, 0, 10)]
    hole = [(3, 4, 4), (3, 4, 6), (3, 6, 6), (3, 6, 4)]
    doc = {
        "type": "CityJSON",
        "version": "1.1",
        "CityObjects": {
            "wall": {
                "type": "GenericCityObject",
                "geometry": [
                    {"type": "MultiSurface", "lod": "2", "boundaries": [[[0, 1, 2, 3], [4, 5, 6, 7]]]}
                ],
            }
        },
        "vertices": [list(v) for v in outer + hole],
    }
    m = load_cityjson(write(tmp_path, doc), frame=Frame())
    assert triangle_areas(m.vertices, m.faces).sum() == pytest.approx(96.0, rel=1e-12)
    centroids = m.vertices[m.faces].mean(axis=1)
    in_hole = (np.abs(centroids[:, 1] - 5) < 1) & (np.abs(centroids[:, 2] - 5) < 1)
    assert not in_hole.any()
    assert len(m.vertices) == 8  # no new points: corners are the rings' own vertices
    # orientation follows the outer ring (counter-clockwise seen from +x: normal +x)
    v = m.vertices[m.faces]
    assert (np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])[:, 0] > 0).all()


def test_self_intersecting_surface_is_repaired(tmp_path: Path) -> None:
    """A bow-tie ring with unequal lobes is made valid: its triangles cover both lobes (shapely's area of the
    repaired polygon) and the crossing point is lifted back into the surface's plane."""
    ring = [(0.0, 0.0), (3.0, 3.0), (3.0, 0.0), (0.0, 1.0)]
    doc = {
        "type": "CityJSON",
        "version": "2.0",
        "CityObjects": {
            "tie": {
                "type": "GenericCityObject",
                "geometry": [{"type": "MultiSurface", "lod": "1", "boundaries": [[[0, 1, 2, 3]]]}],
            }
        },
        "vertices": [[x, y, 5.0] for x, y in ring],
    }
    m = load_cityjson(write(tmp_path, doc), frame=Frame())
    repaired = shapely.make_valid(shapely.Polygon(ring))
    assert triangle_areas(m.vertices, m.faces).sum() == pytest.approx(repaired.area, rel=1e-12)
    np.testing.assert_allclose(m.vertices[:, 2], 5.0)
    assert len(m.vertices) == 5  # the four corners and the crossing point


def test_degenerate_surfaces_give_no_faces(tmp_path: Path) -> None:
    doc = {
        "type": "CityJSON",
        "version": "2.0",
        "CityObjects": {
            "bad": {
                "type": "GenericCityObject",
                "geometry": [
                    {"type": "MultiSurface", "lod": "1", "boundaries": [[[0, 1, 2]], [[0, 1]], [[0, 0, 1]]]}
                ],
            }
        },
        "vertices": [[0, 0, 0], [1, 1, 1], [2, 2, 2]],
    }
    m = load_cityjson(write(tmp_path, doc), frame=Frame())
    assert len(m.faces) == 0
    assert m.objects["n_surfaces"][0] == 3


def test_geometry_instance(tmp_path: Path) -> None:
    doc = box_doc()
    doc["geometry-templates"] = {
        "templates": [{"type": "MultiSurface", "lod": "2", "boundaries": [[[0, 1, 2]]]}],
        "vertices-templates": [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    }
    matrix = [2.0, 0, 0, 1.0, 0, 2.0, 0, 0, 0, 0, 2.0, 0, 0, 0, 0, 1]  # scale 2, then +1 m in x
    doc["CityObjects"]["tree"] = {
        "type": "SolitaryVegetationObject",
        "geometry": [
            {"type": "GeometryInstance", "template": 0, "boundaries": [6], "transformationMatrix": matrix}
        ],
    }
    frame = Frame()
    m = load_cityjson(write(tmp_path, doc), frame=frame)
    f = m.faces_of("tree")
    ref = np.array(BOX[6], dtype=float) + TRANSLATE - frame.origin
    expected = ref + np.array([[1.0, 0, 0], [3.0, 0, 0], [1.0, 2.0, 0]])
    np.testing.assert_allclose(m.vertices[m.faces[f[0]]], expected, atol=1e-9)
    assert m.objects.set_index("id").loc["tree", "lod"] == "2"


def test_building_parts_and_height_attributes(tmp_path: Path) -> None:
    doc = box_doc()
    doc["vertices"] += [[x * 1000 + 10000, y * 1000, z * 2000] for x, y, z in BOX]
    part2 = [[[i + 8 for i in ring] for ring in face] for face in BOX_FACES]
    house = doc["CityObjects"].pop("house-1")
    doc["CityObjects"] = {
        "b": {"type": "Building", "children": ["p1", "p2"], "attributes": {"measuredHeight": 7.5}},
        "p1": {"type": "BuildingPart", "parents": ["b"], "geometry": house["geometry"]},
        "p2": {
            "type": "BuildingPart",
            "parents": ["b"],
            "attributes": {"h_dak_max": 9.0, "h_maaiveld": 1.0},
            "geometry": [{"type": "Solid", "lod": "2.2", "boundaries": [part2]}],
        },
    }
    m = load_cityjson(write(tmp_path, doc), frame=Frame())
    b = m.buildings.set_index("id")
    assert b.loc["p1", "parent"] == "b"
    assert b.loc["b", "parent"] is None
    assert b.loc["b", "lod"] == "2.2"  # the highest of its parts
    assert b.loc["b", "height_m"] == 7.5
    assert b.loc["b", "height_source"] == "attribute"
    assert b.loc["p2", "height_m"] == 8.0
    assert b.loc["p2", "height_source"] == "attribute"
    assert b.loc["p1", "height_m"] == pytest.approx(4.0)
    assert b.loc["p1", "height_source"] == "geometry"
    assert b.loc["b", "roof_z_m"] == pytest.approx(9.0)
    assert b.loc["b", "ground_z_m"] == pytest.approx(1.0)
    assert b.loc["b", "footprint"].area == pytest.approx(120.0)
    assert b.loc["b", "footprint"].geom_type == "Polygon"  # the two parts touch along x = 10
    assert m.summary()["n_buildings"] == 1
    assert (m.objects["n_triangles"].to_numpy() == [0, 12, 12]).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    radii=st.lists(st.floats(2.0, 20.0), min_size=3, max_size=24),
    hole=st.booleans(),
    axis=st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1)).filter(
        lambda a: math.sqrt(sum(x * x for x in a)) > 0.1
    ),
    angle=st.floats(0.0, 2 * math.pi),
)
def test_triangulation_covers_random_planar_polygons(
    radii: list[float], hole: bool, axis: tuple[float, float, float], angle: float
) -> None:
    """Star-shaped polygons (with a square hole) in a random 3-D plane: the triangles cover exactly their area
    (compared with the shoelace area in the plane) and face the same way as the polygon."""
    n = len(radii)
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    outer = np.column_stack([np.cos(theta) * radii, np.sin(theta) * radii, np.zeros(n)])
    rings = [outer]
    if hole:  # inside every star polygon: min radius ≥ 2 m and the edge midpoints are farther than 0.5 m
        rings.append(np.array([[-0.5, -0.5, 0], [-0.5, 0.5, 0], [0.5, 0.5, 0], [0.5, -0.5, 0]]))
    poly = shapely.Polygon(outer[:, :2], [r[:, :2] for r in rings[1:]])
    if not poly.is_valid:
        return
    k = np.array(axis) / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rot = np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx
    pts = np.vstack(rings) @ rot.T + [1000.0, 2000.0, 30.0]
    sizes = np.cumsum([0] + [len(r) for r in rings])
    boundary = [list(range(sizes[i], sizes[i + 1])) for i in range(len(rings))]
    doc = {
        "type": "CityJSON",
        "version": "2.0",
        "CityObjects": {
            "s": {
                "type": "GenericCityObject",
                "geometry": [{"type": "MultiSurface", "lod": "2", "boundaries": [boundary]}],
            }
        },
        "vertices": pts.tolist(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        m = load_cityjson(write(Path(tmp), doc), frame=Frame())
    assert triangle_areas(m.vertices, m.faces).sum() == pytest.approx(poly.area, rel=1e-9)
    v = m.vertices[m.faces]
    normal = rot @ np.array([0.0, 0.0, 1.0])
    assert (np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]) @ normal > 0).all()


def test_save_load_round_trip(tmp_path: Path) -> None:
    m = load_cityjson(write(tmp_path, box_doc()), frame=Frame(), id="box")
    d = tmp_path / "bundle"
    d.mkdir()
    entry = m.save(d)
    back = CityModel.load(d, {"id": "box", "source": m.source, **entry})
    assert back.id == "box"
    assert back.crs == "EPSG:28992"
    assert back.source_format == "cityjson"
    for key in ("vertices", "faces", "face_object", "face_semantic", "face_surface"):
        np.testing.assert_array_equal(getattr(back, key), getattr(m, key))
    assert back.objects.equals(m.objects)
    assert back.buildings.drop(columns="footprint").equals(m.buildings.drop(columns="footprint"))
    assert all(a.equals(b) for a, b in zip(back.footprints(), m.footprints(), strict=True))
    assert back.summary() == m.summary()


def test_city_loads_and_bundles_cityjson(tmp_path: Path) -> None:
    from twin.city import City

    city = City()
    (layer,) = city.add_file(write(tmp_path, box_doc()))
    assert layer.kind == "citymodel"
    assert city.citymodel is layer
    city.save(tmp_path / "city.bundle")
    again = City.load(tmp_path / "city.bundle")
    np.testing.assert_array_equal(again.citymodel.faces, layer.faces)
    assert again.summary() == city.summary()


# -- errors ------------------------------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as e:
        load_cityjson(tmp_path / "nope.city.json", frame=Frame())
    assert "nope.city.json" in str(e.value)


def test_json_that_is_not_cityjson(tmp_path: Path) -> None:
    p = write(tmp_path, {"type": "FeatureCollection", "features": []}, "features.json")
    with pytest.raises(InputError, match="not a CityJSON file") as e:
        load_cityjson(p, frame=Frame())
    assert e.value.element == "type"
    assert "features.json" in str(e.value)


def test_truncated_json_names_line_and_column(tmp_path: Path) -> None:
    text = json.dumps(box_doc(), indent=1)
    p = write(tmp_path, text[: len(text) // 2])
    with pytest.raises(InputError, match=r"line \d+, column \d+") as e:
        load_cityjson(p, frame=Frame())
    assert e.value.element.startswith("line ")
    assert str(p) in str(e.value)


def test_vertex_index_out_of_range_names_the_object(tmp_path: Path) -> None:
    doc = box_doc()
    doc["CityObjects"]["house-1"]["geometry"][0]["boundaries"][0][3][0][2] = 99
    with pytest.raises(InputError, match="vertex index 99") as e:
        load_cityjson(write(tmp_path, doc), frame=Frame())
    assert "house-1" in e.value.element
    assert "8 vertices" in str(e.value)


@pytest.mark.parametrize("reference", ["https://www.opengis.net/def/crs/EPSG/0/999999", "not a crs", 7415])
def test_unknown_reference_system(tmp_path: Path, reference: Any) -> None:
    p = write(tmp_path, box_doc(referenceSystem=reference))
    with pytest.raises(InputError) as e:
        load_cityjson(p, frame=Frame())
    assert e.value.element == "metadata.referenceSystem"
    assert str(p) in str(e.value)


def _broken(doc: dict[str, Any], what: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    geom = doc["CityObjects"]["house-1"]["geometry"][0]
    if what == "version":
        doc["version"] = "3.0"
    elif what == "semantics":
        geom["semantics"]["values"] = [[0, 1]]
    elif what == "geometry type":
        geom["type"] = "Polyhedron"
    elif what == "transform":
        doc["transform"]["scale"] = [0.001, 0.001]
    elif what == "vertices":
        doc["vertices"][2] = [1, 2]
    elif what == "ring":
        geom["boundaries"][0][0] = [[0, "a", 2]]
    elif what == "objects":
        doc["CityObjects"] = []
    return doc


@pytest.mark.parametrize(
    ("what", "element"),
    [
        ("version", "version"),
        ("semantics", "CityObjects/house-1"),
        ("geometry type", "CityObjects/house-1"),
        ("transform", "transform.scale"),
        ("vertices", "vertices"),
        ("ring", "CityObjects/house-1"),
        ("objects", "CityObjects"),
    ],
)
def test_malformed_parts_name_the_field(tmp_path: Path, what: str, element: str) -> None:
    with pytest.raises(InputError) as e:
        load_cityjson(write(tmp_path, _broken(box_doc(), what)), frame=Frame())
    assert e.value.element == element
