"""Building tables, queries and bundle round trip on small hand-made buildings (no IFC file needed)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.city.building import (
    DOOR_COLUMNS,
    ELEMENT_COLUMNS,
    FAMILIES,
    OUTSIDE,
    SPACE_COLUMNS,
    STAIR_COLUMNS,
    Building,
    Mesh,
)
from twin.errors import InputError


def _mesh(vertices, faces, face_element, guids) -> Mesh:
    elements = pd.DataFrame(
        {
            "guid": guids,
            "ifc_class": ["IfcWall"] * len(guids),
            "name": [None] + [f"w{i}" for i in range(1, len(guids))],
            "storey": ["S0"] * len(guids),
        }
    )
    return Mesh(np.asarray(vertices, float), np.asarray(faces), np.asarray(face_element), elements)


def square_house(**overrides) -> Building:
    """Two storeys; a 5 × 5 m room and a second room without geometry; one exit and one unknown-side door."""
    storeys = pd.DataFrame(
        {
            "guid": ["S1", "S0"],
            "name": ["Upper", "Ground"],
            "elevation_m": [3.0, 0.0],
            "elevation_ifc_m": [3.0, 0.0],
        }
    )
    room = shapely.box(0, 0, 5, 5)
    spaces = pd.DataFrame(
        {
            "guid": ["R1", "R2"],
            "name": ["1", "2"],
            "long_name": ["Room", None],
            "storey": ["S0", "S1"],
            "z_m": [0.0, math.nan],
            "height_m": [2.5, math.nan],
            "area_m2": [25.0, math.nan],
            "footprint": [room, None],
        }
    )
    doors = pd.DataFrame(
        {
            "guid": ["D1", "D2"],
            "name": ["front", "inner"],
            "storey": ["S0", "S0"],
            "x_m": [2.5, 5.0],
            "y_m": [0.0, 2.5],
            "z_m": [0.0, 0.0],
            "width_m": [1.0, 0.9],
            "height_m": [2.0, 2.0],
            "side_a": ["R1", "R1"],
            "side_b": [OUTSIDE, None],
        }
    )
    stairs = pd.DataFrame(
        {
            "guid": ["T1", "T2"],
            "name": ["stair", "no geometry"],
            "ifc_class": ["IfcStair", "IfcStairFlight"],
            "from_storey": ["S0", "S0"],
            "to_storey": ["S1", None],
            "footprint": [shapely.box(1, 1, 2, 4), None],
            "run_m": [3.0, math.nan],
            "length_m": [math.hypot(3.0, 3.0), math.nan],
            "rise_m": [3.0, math.nan],
            "bottom": [(1.5, 1.0, 0.0), None],
            "top": [(1.5, 4.0, 3.0), None],
        }
    )
    walls = _mesh(
        [[0, 0, 0], [5, 0, 0], [5, 0, 2.5], [0, 0, 2.5], [0, 5, 0], [0, 5, 2.5]],
        [[0, 1, 2], [0, 2, 3], [0, 3, 5], [0, 5, 4]],
        [0, 0, 1, 1],
        ["W1", "W2", "W3"],  # W3 has no faces (its geometry failed)
    )
    walkable = {
        "S0": shapely.MultiPolygon([room, shapely.box(6, 0, 7, 1)]),
        "S1": shapely.Polygon(),
    }
    kwargs = dict(
        id="house",
        source="/data/house.ifc",
        schema="IFC4",
        crs_info={"georeferenced": False, "method": "none", "crs": None, "site_lat_lon": [49.1, 8.4]},
        storeys=storeys,
        spaces=spaces,
        doors=doors,
        stairs=stairs,
        walkable=walkable,
        meshes={"walls": walls},
        warnings=["1 element(s) have a representation but no geometry could be made: ['W3']"],
        without_geometry=["W3"],
    )
    kwargs.update(overrides)
    return Building(**kwargs)


def assert_same(a: Building, b: Building) -> None:
    assert (a.id, a.source, a.schema, a.crs_info) == (b.id, b.source, b.schema, b.crs_info)
    assert (a.warnings, a.without_geometry) == (b.warnings, b.without_geometry)
    pd.testing.assert_frame_equal(a.storeys, b.storeys)
    for name in ("spaces", "doors", "stairs"):
        x, y = getattr(a, name), getattr(b, name)
        geo = [c for c in x.columns if c == "footprint"]
        pd.testing.assert_frame_equal(x.drop(columns=geo), y.drop(columns=geo))
        for c in geo:
            assert [None if g is None else g.wkb for g in x[c]] == [
                None if g is None else g.wkb for g in y[c]
            ]
    assert list(a.walkable) == list(b.walkable)
    for k in a.walkable:
        assert a.walkable[k].wkb == b.walkable[k].wkb
    for fam in FAMILIES:
        ma, mb = a.meshes[fam], b.meshes[fam]
        for arr in ("vertices", "faces", "face_element"):
            x, y = getattr(ma, arr), getattr(mb, arr)
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        pd.testing.assert_frame_equal(ma.elements, mb.elements)


def _roundtrip(b: Building, tmp_path) -> Building:
    entry = b.save(tmp_path)
    json.dumps(entry)  # the manifest entry must be JSON
    return Building.load(tmp_path, {"id": b.id, "source": b.source, **entry})


def test_tables_are_conformed():
    b = square_house()
    assert list(b.spaces.columns) == SPACE_COLUMNS
    assert list(b.doors.columns) == DOOR_COLUMNS
    assert list(b.stairs.columns) == STAIR_COLUMNS
    assert list(b.meshes["walls"].elements.columns) == ELEMENT_COLUMNS
    # storeys sorted by elevation; strings are Python str or None; floats are float64 with NaN
    assert b.storeys["name"].tolist() == ["Ground", "Upper"]
    assert b.doors["side_b"].tolist() == [OUTSIDE, None]
    assert b.spaces["long_name"].tolist() == ["Room", None]
    assert b.spaces["area_m2"].dtype == np.float64
    assert b.stairs["bottom"].tolist() == [(1.5, 1.0, 0.0), None]
    assert b.meshes["walls"].faces.dtype == np.int64
    assert b.meshes["doors"].vertices.shape == (0, 3)  # families not given are empty


def test_roundtrip_is_exact(tmp_path):
    b = square_house()
    back = _roundtrip(b, tmp_path)
    assert_same(b, back)
    assert back.doors["side_b"].tolist() == [OUTSIDE, None]
    assert back.spaces["footprint"].iloc[1] is None
    assert back.walkable["S1"].is_empty
    assert back.meshes["walls"].elements["name"].tolist() == [None, "w1", "w2"]


def test_roundtrip_of_empty_tables(tmp_path):
    b = square_house(
        spaces=pd.DataFrame(columns=SPACE_COLUMNS),
        doors=pd.DataFrame(columns=DOOR_COLUMNS),
        stairs=pd.DataFrame(columns=STAIR_COLUMNS),
        walkable={},
        meshes={},
    )
    back = _roundtrip(b, tmp_path)
    assert_same(b, back)
    assert back.exits().empty
    assert np.isnan(back.bounds()).all()


def test_queries():
    b = square_house()
    assert b.storey("Ground")["guid"] == "S0"
    assert b.storey("S1")["name"] == "Upper"
    with pytest.raises(KeyError, match="no storey 'Cellar'"):
        b.storey("Cellar")
    assert b.exits()["guid"].tolist() == ["D1"]
    assert b.walkable_area("Ground").area == pytest.approx(26.0)
    np.testing.assert_allclose(b.bounds(), [[0, 0, 0], [5, 5, 2.5]])
    s = b.summary()
    json.dumps(s)
    assert (s["storeys"], s["spaces"], s["doors"], s["stairs"], s["walls"], s["slabs"]) == (2, 2, 2, 2, 3, 0)
    assert s["exits"] == 1
    assert s["spaces_without_geometry"] == 1
    assert s["elements_without_geometry"] == 1
    assert s["storey_list"] == [
        {"guid": "S0", "name": "Ground", "elevation_m": 0.0},
        {"guid": "S1", "name": "Upper", "elevation_m": 3.0},
    ]
    assert s["georeferenced"] is False
    assert s["site_lat_lon"] == [49.1, 8.4]
    mesh = b.meshes["walls"]
    np.testing.assert_array_equal(mesh.element_faces(1), [[0, 3, 5], [0, 5, 4]])
    assert len(mesh.element_faces(2)) == 0


def test_ambiguous_storey_name():
    storeys = pd.DataFrame(
        {
            "guid": ["A", "B"],
            "name": ["Level", "Level"],
            "elevation_m": [0.0, 3.0],
            "elevation_ifc_m": [0.0, 3.0],
        }
    )
    b = square_house(storeys=storeys)
    with pytest.raises(KeyError, match="2 storeys named 'Level'"):
        b.storey("Level")
    assert b.storey("B")["elevation_m"] == 3.0


def test_load_names_missing_bundle_files(tmp_path):
    b = square_house()
    entry = b.save(tmp_path)
    (tmp_path / "meshes.npz").unlink()
    with pytest.raises(InputError, match=r"meshes\.npz") as err:
        Building.load(tmp_path, entry)
    assert err.value.source == str(tmp_path)


@settings(max_examples=25, deadline=None)
@given(
    n_vertices=st.integers(min_value=3, max_value=40),
    n_faces=st.integers(min_value=0, max_value=60),
    n_elements=st.integers(min_value=1, max_value=5),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_mesh_roundtrip_random(tmp_path_factory, n_vertices, n_faces, n_elements, seed):
    rng = np.random.default_rng(seed)
    mesh = Mesh(
        rng.normal(size=(n_vertices, 3)) * 100.0,
        rng.integers(0, n_vertices, size=(n_faces, 3)),
        rng.integers(0, n_elements, size=n_faces),
        pd.DataFrame(
            {
                "guid": [f"g{i}" for i in range(n_elements)],
                "ifc_class": ["IfcSlab"] * n_elements,
                "name": [None if rng.random() < 0.5 else f"n{i}" for i in range(n_elements)],
                "storey": [None if rng.random() < 0.3 else "S0" for _ in range(n_elements)],
            }
        ),
    )
    b = square_house(meshes={"slabs": mesh})
    back = _roundtrip(b, tmp_path_factory.mktemp("rt"))
    assert_same(b, back)
