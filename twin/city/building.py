"""The building layer: one IFC model in the city's local frame (see :func:`twin.city.ifc.load_ifc`).

A :class:`Building` holds

- ``storeys`` — one row per ``IfcBuildingStorey``, sorted by elevation (the row index is the storey order);
- ``spaces`` — one row per ``IfcSpace`` with its footprint polygon (``None`` when the space has no geometry);
- ``doors`` — one row per ``IfcDoor`` with its centre, width and the two sides it connects;
- ``stairs`` — one row per stair (an ``IfcStair``, or an ``IfcStairFlight`` that is part of none) with the two
  storeys it links, its footprint and walking-line lengths;
- ``walkable`` — per storey GUID, the area people can walk on as a shapely (Multi)Polygon (spaces, door
  passages and stairs; see :mod:`twin.city.ifc`);
- ``meshes`` — one merged triangle :class:`Mesh` per element family (:data:`FAMILIES`).

All coordinates are metres in the city's local frame (x east, y north, z up). GUIDs (``IfcRoot.GlobalId``) are kept
on every row so that results can be traced back to the IFC file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from twin.city.layer import (
    bounds_of,
    geoms_to_wkb,
    read_arrays,
    read_table,
    union_bounds,
    wkb_to_geoms,
    write_arrays,
    write_table,
)
from twin.errors import InputError
from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

FAMILIES: tuple[str, ...] = ("walls", "slabs", "doors", "windows", "stairs", "roofs", "spaces", "other")
"""Mesh families, in the order they are kept: each IFC element goes into exactly one."""

OUTSIDE = "outside"
"""The door side value meaning "the outside of the building"."""

# Column kinds: "str" (Python str, or None when missing; object dtype), "float" (float64, NaN when missing),
# "geom" (shapely geometry or None), "point" ((x, y, z) tuple of float metres, or None). Tables are conformed to
# these on construction, so that a table built by the loader and one read back from a bundle are identical.
STOREY_SCHEMA = {"guid": "str", "name": "str", "elevation_m": "float", "elevation_ifc_m": "float"}
SPACE_SCHEMA = {
    "guid": "str",
    "name": "str",
    "long_name": "str",
    "storey": "str",
    "z_m": "float",
    "height_m": "float",
    "area_m2": "float",
    "footprint": "geom",
}
DOOR_SCHEMA = {
    "guid": "str",
    "name": "str",
    "storey": "str",
    "x_m": "float",
    "y_m": "float",
    "z_m": "float",
    "width_m": "float",
    "height_m": "float",
    "side_a": "str",
    "side_b": "str",
}
STAIR_SCHEMA = {
    "guid": "str",
    "name": "str",
    "ifc_class": "str",
    "from_storey": "str",
    "to_storey": "str",
    "footprint": "geom",
    "run_m": "float",
    "length_m": "float",
    "rise_m": "float",
    "bottom": "point",
    "top": "point",
}
ELEMENT_SCHEMA = {"guid": "str", "ifc_class": "str", "name": "str", "storey": "str"}
STOREY_COLUMNS = list(STOREY_SCHEMA)
SPACE_COLUMNS = list(SPACE_SCHEMA)
DOOR_COLUMNS = list(DOOR_SCHEMA)
STAIR_COLUMNS = list(STAIR_SCHEMA)
ELEMENT_COLUMNS = list(ELEMENT_SCHEMA)
_SCHEMAS = {"spaces": SPACE_SCHEMA, "doors": DOOR_SCHEMA, "stairs": STAIR_SCHEMA}


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def conform(df: pd.DataFrame | None, schema: Mapping[str, str]) -> pd.DataFrame:
    """A new DataFrame with exactly the columns of ``schema``, in order, typed as the schema says.

    Missing columns raise ``KeyError``; extra columns are dropped; the index becomes 0..n-1.
    """
    cols: dict[str, pd.Series] = {}
    for col, kind in schema.items():
        values = [] if df is None else list(df[col])
        if kind == "float":
            cols[col] = pd.Series(
                np.array([math.nan if _missing(v) else float(v) for v in values], dtype=np.float64)
            )
        elif kind == "str":
            cols[col] = pd.Series([None if _missing(v) else str(v) for v in values], dtype=object)
        elif kind == "point":
            cols[col] = pd.Series(
                [None if v is None else tuple(float(x) for x in v) for v in values], dtype=object
            )
        else:
            cols[col] = pd.Series([None if _missing(v) else v for v in values], dtype=object)
    return pd.DataFrame(cols, columns=list(schema))


@dataclass(eq=False)
class Mesh:
    """A merged triangle mesh of one element family.

    vertices : (n, 3) float64, metres, local frame.
    faces : (m, 3) int64, indices into ``vertices``.
    face_element : (m,) int64, the row of ``elements`` each face belongs to.
    elements : DataFrame with columns ``guid, ifc_class, name, storey`` (storey GUID or ``None``).
    """

    vertices: FloatArray
    faces: IntArray
    face_element: IntArray
    elements: pd.DataFrame

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float64).reshape(-1, 3)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int64).reshape(-1, 3)
        self.face_element = np.ascontiguousarray(self.face_element, dtype=np.int64).reshape(-1)
        self.elements = conform(self.elements, ELEMENT_SCHEMA)

    @classmethod
    def empty(cls) -> Mesh:
        return cls(
            np.zeros((0, 3), dtype=np.float64),
            np.zeros((0, 3), dtype=np.int64),
            np.zeros(0, dtype=np.int64),
            conform(None, ELEMENT_SCHEMA),
        )

    @property
    def n_elements(self) -> int:
        return len(self.elements)

    def element_faces(self, row: int) -> IntArray:
        """(k, 3) int64 faces of the element in row ``row`` of :attr:`elements`."""
        return self.faces[self.face_element == row]

    def bounds(self) -> FloatArray:
        return bounds_of(self.vertices)


class Building:
    """One IFC building in the local frame (kind ``"building"``); built by :func:`twin.city.ifc.load_ifc`.

    Parameters
    ----------
    id : layer id (unique among the city's buildings).
    source : the IFC path it was loaded from.
    schema : the IFC schema name (``"IFC4"``, ``"IFC2X3"``…).
    crs_info : JSON-able description of how the model was placed (georeference or placement).
    storeys, spaces, doors, stairs : tables (see the module docstring and ``*_SCHEMA``); conformed on entry.
    walkable : storey GUID → shapely (Multi)Polygon of walkable area, metres, local frame.
    meshes : family name → :class:`Mesh`.
    warnings : human-readable notes on what could not be read (elements without geometry…).
    without_geometry : GUIDs of elements that have a representation from which no geometry could be made.
    """

    kind: ClassVar[str] = "building"

    def __init__(
        self,
        *,
        id: str,
        source: str,
        schema: str,
        crs_info: Mapping[str, Any],
        storeys: pd.DataFrame,
        spaces: pd.DataFrame,
        doors: pd.DataFrame,
        stairs: pd.DataFrame,
        walkable: Mapping[str, BaseGeometry],
        meshes: Mapping[str, Mesh],
        warnings: list[str] | None = None,
        without_geometry: list[str] | None = None,
    ):
        self.id = id
        self.source = source
        self.schema = schema
        self.crs_info = dict(crs_info)
        self.storeys = conform(storeys.sort_values("elevation_m", kind="stable"), STOREY_SCHEMA)
        self.spaces = conform(spaces, SPACE_SCHEMA)
        self.doors = conform(doors, DOOR_SCHEMA)
        self.stairs = conform(stairs, STAIR_SCHEMA)
        self.walkable = dict(walkable)
        self.meshes = {f: meshes[f] if f in meshes else Mesh.empty() for f in FAMILIES}
        self.warnings = list(warnings or [])
        self.without_geometry = list(without_geometry or [])
        self.timings: dict[str, float] = {}  # set by the loader (open_s, iterator_s, total_s); not saved

    def __repr__(self) -> str:
        return (
            f"Building(id={self.id!r}, schema={self.schema}, storeys={len(self.storeys)}, "
            f"spaces={len(self.spaces)}, doors={len(self.doors)}, stairs={len(self.stairs)})"
        )

    # -- queries -----------------------------------------------------------------------------------------------
    def bounds(self) -> FloatArray:
        """(2, 3) float64 ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` of all meshes, metres, local frame."""
        boxes = [m.bounds() for m in self.meshes.values()]
        if len(self.doors):
            boxes.append(bounds_of(self.doors[["x_m", "y_m", "z_m"]].to_numpy(dtype=np.float64)))
        return union_bounds(boxes)

    def storey(self, name_or_guid: str) -> pd.Series:
        """The storey row whose GUID or name is ``name_or_guid`` (GUIDs first, then names)."""
        hit = self.storeys[self.storeys["guid"] == name_or_guid]
        if hit.empty:
            hit = self.storeys[self.storeys["name"] == name_or_guid]
        if hit.empty:
            raise KeyError(
                f"building {self.id!r} has no storey {name_or_guid!r}; storeys are "
                f"{self.storeys['name'].tolist()}"
            )
        if len(hit) > 1:
            raise KeyError(
                f"building {self.id!r} has {len(hit)} storeys named {name_or_guid!r}; use a GUID of "
                f"{hit['guid'].tolist()}"
            )
        return hit.iloc[0]

    def exits(self) -> pd.DataFrame:
        """The doors that have ``"outside"`` on one side (rows of :attr:`doors`)."""
        if self.doors.empty:
            return self.doors.copy()
        mask = (self.doors["side_a"] == OUTSIDE) | (self.doors["side_b"] == OUTSIDE)
        return self.doors[mask]

    def walkable_area(self, storey: str) -> BaseGeometry:
        """Walkable (Multi)Polygon of a storey given by GUID or name, metres, local frame."""
        return self.walkable[self.storey(storey)["guid"]]

    def summary(self) -> dict[str, Any]:
        """Counts, storey names and elevations, exits and georeference, as JSON-able data."""
        n_walls = self.meshes["walls"].n_elements
        n_slabs = int((self.meshes["slabs"].elements["ifc_class"] == "IfcSlab").sum())
        return {
            "schema": self.schema,
            "storeys": len(self.storeys),
            "spaces": len(self.spaces),
            "doors": len(self.doors),
            "stairs": len(self.stairs),
            "walls": n_walls,
            "slabs": n_slabs,
            "windows": self.meshes["windows"].n_elements,
            "exits": len(self.exits()),
            "storey_list": [
                {"guid": g, "name": n, "elevation_m": float(e)}
                for g, n, e in zip(
                    self.storeys["guid"], self.storeys["name"], self.storeys["elevation_m"], strict=True
                )
            ],
            "spaces_without_geometry": int(self.spaces["footprint"].isna().sum()) if len(self.spaces) else 0,
            "elements_without_geometry": len(self.without_geometry),
            "georeferenced": bool(self.crs_info.get("georeferenced", False)),
            "crs": self.crs_info.get("crs"),
            "site_lat_lon": self.crs_info.get("site_lat_lon"),
            "warnings": list(self.warnings),
        }

    # -- bundle ------------------------------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, Any]:
        """Write the tables (Parquet, geometry as WKB) and meshes (one ``meshes.npz``) into ``directory``."""
        d = Path(directory)
        write_table(self.storeys, d / "storeys.parquet")
        for name in ("spaces", "doors", "stairs"):
            write_table(_encode(getattr(self, name), name), d / f"{name}.parquet")
        guids = list(self.walkable)
        write_table(
            pd.DataFrame({"storey": guids, "geometry": geoms_to_wkb(self.walkable[g] for g in guids)}),
            d / "walkable.parquet",
        )
        arrays: dict[str, np.ndarray] = {}
        element_tables = []
        for fam, mesh in self.meshes.items():
            arrays[f"{fam}.vertices"] = mesh.vertices
            arrays[f"{fam}.faces"] = mesh.faces
            arrays[f"{fam}.face_element"] = mesh.face_element
            element_tables.append(mesh.elements.assign(family=fam))
        write_arrays(arrays, d / "meshes.npz")
        write_table(pd.concat(element_tables, ignore_index=True), d / "elements.parquet")
        return {
            "schema": self.schema,
            "crs_info": self.crs_info,
            "warnings": self.warnings,
            "without_geometry": self.without_geometry,
        }

    @classmethod
    def load(cls, directory: Path, entry: Mapping[str, Any]) -> Building:
        """Read a building written by :meth:`save`; ``entry`` is its manifest entry."""
        d = Path(directory)
        needed = [
            "storeys.parquet",
            "spaces.parquet",
            "doors.parquet",
            "stairs.parquet",
            "walkable.parquet",
            "elements.parquet",
            "meshes.npz",
        ]
        missing = [n for n in needed if not (d / n).exists()]
        if missing:
            raise InputError(d, f"building bundle folder lacks {missing}; expected all of {needed}")
        storeys = read_table(d / "storeys.parquet")
        spaces, doors, stairs = (
            _decode(read_table(d / f"{n}.parquet"), n) for n in ("spaces", "doors", "stairs")
        )
        wk = read_table(d / "walkable.parquet")
        walkable = dict(zip(wk["storey"], wkb_to_geoms(wk["geometry"]), strict=True))
        arrays = read_arrays(d / "meshes.npz")
        elements = read_table(d / "elements.parquet")
        meshes = {}
        for fam in FAMILIES:
            el = elements[elements["family"] == fam].drop(columns="family").reset_index(drop=True)
            meshes[fam] = Mesh(
                arrays[f"{fam}.vertices"], arrays[f"{fam}.faces"], arrays[f"{fam}.face_element"], el
            )
        return cls(
            id=str(entry.get("id", d.name)),
            source=str(entry.get("source", "")),
            schema=str(entry.get("schema", "")),
            crs_info=entry.get("crs_info", {}),
            storeys=storeys,
            spaces=spaces,
            doors=doors,
            stairs=stairs,
            walkable=walkable,
            meshes=meshes,
            warnings=list(entry.get("warnings", [])),
            without_geometry=list(entry.get("without_geometry", [])),
        )


def _encode(df: pd.DataFrame, name: str) -> pd.DataFrame:
    out = df.copy()
    for col, kind in _SCHEMAS[name].items():
        if kind == "geom":
            out[col] = geoms_to_wkb(out[col])
        elif kind == "point":
            out[col] = [None if p is None else list(p) for p in out[col]]
    return out


def _decode(df: pd.DataFrame, name: str) -> pd.DataFrame:
    for col, kind in _SCHEMAS[name].items():
        if kind == "geom":
            df[col] = pd.Series(wkb_to_geoms(df[col]), index=df.index, dtype=object)
        elif kind == "point":
            df[col] = pd.Series(
                [None if p is None else tuple(p) for p in df[col]], index=df.index, dtype=object
            )
    return df
