"""``CityModel``: LoD1/LoD2 buildings and other city objects (from CityJSON or OSM footprints) in the local frame.

The layer holds three things:

- ``objects`` — one row per city object of the source (buildings, building parts, roads, land use…), in source
  order: ``id`` (str), ``type`` (str, the CityJSON type such as ``"Building"`` or ``"Road"``), ``parent`` (str or
  None), ``lod`` (str, ``""`` when the object has no geometry), ``geometry_type`` (str), ``n_surfaces`` (int64,
  surfaces of the geometry used), ``n_triangles`` (int64, its triangles in the mesh).
- ``buildings`` — one row per ``Building`` / ``BuildingPart``: ``id``, ``type``, ``parent``, ``object`` (int64, row
  in ``objects``), ``lod``, ``height_m`` (float64, m), ``height_source`` (str: ``"attribute"`` or ``"geometry"`` for
  CityJSON; ``"height"``, ``"levels"`` or ``"default"`` for OSM — ``"default"`` marks an estimate),
  ``ground_z_m`` and ``roof_z_m`` (float64, local z of the lowest and highest point, m), ``min_height_m`` (float64,
  m above ground where the volume starts; 0 unless OSM ``min_height``/``building:min_level`` says otherwise),
  ``storeys_above_ground`` (float64, NaN when unknown), ``footprint`` (shapely Polygon/MultiPolygon, local xy,
  metres; None when the object has no geometry) and ``attributes`` (str, the source attributes or tags as JSON).
- one triangle mesh for rendering and ray casting: ``vertices`` (n, 3) float64 metres, local frame; ``faces``
  (m, 3) int64 vertex indices, counter-clockwise seen from outside; ``face_object`` (m,) int64 row in ``objects``;
  ``face_semantic`` (m,) int8 code of :data:`SEMANTIC_TYPES` (``-1`` when the source names none);
  ``face_surface`` (m,) int64 index of the source surface the triangle comes from, counted within its object
  in the order of the source geometry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from twin.city.layer import (
    bounds_of,
    geoms_to_wkb,
    read_arrays,
    read_table,
    wkb_to_geoms,
    write_arrays,
    write_table,
)
from twin.errors import InputError
from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

SEMANTIC_TYPES: tuple[str, ...] = (
    "GroundSurface",
    "WallSurface",
    "RoofSurface",
    "ClosureSurface",
    "OuterCeilingSurface",
    "OuterFloorSurface",
    "Window",
    "Door",
    "InteriorWallSurface",
    "CeilingSurface",
    "FloorSurface",
    "WaterSurface",
    "WaterGroundSurface",
    "WaterClosureSurface",
    "TrafficArea",
    "AuxiliaryTrafficArea",
    "TransportationMarking",
    "TransportationHole",
)
"""Surface semantic names; a face's ``face_semantic`` is the index into this tuple, or -1."""
SEMANTIC_CODE: dict[str, int] = {name: i for i, name in enumerate(SEMANTIC_TYPES)}
GROUND, WALL, ROOF = (
    SEMANTIC_CODE["GroundSurface"],
    SEMANTIC_CODE["WallSurface"],
    SEMANTIC_CODE["RoofSurface"],
)

BUILDING_TYPES: tuple[str, ...] = ("Building", "BuildingPart")
"""City object types that get a row in ``CityModel.buildings``."""

OBJECT_COLUMNS = ("id", "type", "parent", "lod", "geometry_type", "n_surfaces", "n_triangles")
BUILDING_COLUMNS = (
    "id",
    "type",
    "parent",
    "object",
    "lod",
    "height_m",
    "height_source",
    "ground_z_m",
    "roof_z_m",
    "min_height_m",
    "storeys_above_ground",
    "footprint",
    "attributes",
)
MESH_KEYS = ("vertices", "faces", "face_object", "face_semantic", "face_surface")


class CityModel:
    """A city model layer: city objects, building footprints and heights, and one triangle mesh.

    Build it with :func:`twin.city.cityjson.load_cityjson` or :func:`twin.city.osm_buildings.load_osm_buildings`.
    The tables and arrays are described in the module docstring; ``crs`` names the projected CRS of the local
    frame the coordinates are in (``"EPSG:28992"``…) or is None for a source placed without georeference.
    """

    kind: ClassVar[str] = "citymodel"

    def __init__(
        self,
        *,
        id: str,
        source: str,
        source_format: str,
        crs: str | None,
        objects: pd.DataFrame,
        buildings: pd.DataFrame,
        vertices: FloatArray,
        faces: IntArray,
        face_object: IntArray,
        face_semantic: np.ndarray,
        face_surface: IntArray,
    ):
        self.id = id
        self.source = source
        self.source_format = source_format
        self.crs = crs
        self.objects = objects.reset_index(drop=True)
        self.buildings = buildings.reset_index(drop=True)
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64).reshape(-1, 3)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1, 3)
        m = len(self.faces)
        self.face_object = np.ascontiguousarray(face_object, dtype=np.int64).reshape(m)
        self.face_semantic = np.ascontiguousarray(face_semantic, dtype=np.int8).reshape(m)
        self.face_surface = np.ascontiguousarray(face_surface, dtype=np.int64).reshape(m)
        missing = [c for c in BUILDING_COLUMNS if c not in self.buildings.columns]
        if missing:
            raise ValueError(f"buildings table lacks columns {missing}")
        if m and (self.faces.min() < 0 or self.faces.max() >= len(self.vertices)):
            raise ValueError("faces index vertices out of range")
        if m and (self.face_object.min() < 0 or self.face_object.max() >= len(self.objects)):
            raise ValueError("face_object indexes objects out of range")

    # -- queries ---------------------------------------------------------------------------------------------------
    def bounds(self) -> FloatArray:
        """(2, 3) float64 ``[[xmin, ymin, zmin], [xmax, ymax, zmax]]`` of the mesh, metres, local frame."""
        if len(self.vertices):
            return bounds_of(self.vertices[np.unique(self.faces)] if len(self.faces) else self.vertices)
        return bounds_of(np.empty((0, 3)))

    def footprints(self, *, types: Sequence[str] | None = None) -> list[BaseGeometry | None]:
        """Footprints (shapely Polygon/MultiPolygon, local xy metres) in the order of :attr:`buildings` rows.

        ``types`` keeps only rows of those object types (e.g. ``["Building"]``); None keeps all.
        """
        df = self.buildings if types is None else self.buildings[self.buildings["type"].isin(list(types))]
        return list(df["footprint"])

    def faces_of(self, object_id: str) -> IntArray:
        """Indices (k,) int64 of the mesh faces of the city object ``object_id``."""
        rows = np.flatnonzero(self.objects["id"].to_numpy() == object_id)
        if len(rows) == 0:
            raise KeyError(f"no city object {object_id!r} in {self.id}")
        return np.flatnonzero(np.isin(self.face_object, rows))

    def summary(self) -> dict[str, Any]:
        """Counts by city object type, building counts, LoDs, height range and CRS, as JSON-able data."""
        b = self.buildings
        heights = b["height_m"].to_numpy(dtype=np.float64) if len(b) else np.empty(0)
        finite = heights[np.isfinite(heights)]
        lods = sorted({str(x) for x in self.objects["lod"] if x}, key=lod_key)
        return {
            "format": self.source_format,
            "crs": self.crs,
            "n_objects": len(self.objects),
            "objects_by_type": {
                str(k): int(v) for k, v in self.objects["type"].value_counts().sort_index().items()
            },
            "n_buildings": int((b["type"] == "Building").sum()) if len(b) else 0,
            "buildings_by_type": {str(k): int(v) for k, v in b["type"].value_counts().sort_index().items()},
            "lods": lods,
            "height_m": [float(finite.min()), float(finite.max())] if len(finite) else None,
            "height_sources": {
                str(k): int(v) for k, v in b["height_source"].value_counts().sort_index().items()
            },
            "n_vertices": len(self.vertices),
            "n_triangles": len(self.faces),
        }

    def __repr__(self) -> str:
        return (
            f"CityModel(id={self.id!r}, objects={len(self.objects)}, buildings={len(self.buildings)}, "
            f"triangles={len(self.faces)}, crs={self.crs!r})"
        )

    # -- bundle ----------------------------------------------------------------------------------------------------
    def save(self, directory: Path) -> dict[str, Any]:
        """Write ``objects.parquet``, ``buildings.parquet`` (footprints as WKB) and ``mesh.npz`` into ``directory``."""
        directory = Path(directory)
        write_table(self.objects, directory / "objects.parquet")
        b = self.buildings.copy()
        b["footprint"] = geoms_to_wkb(b["footprint"])
        write_table(b, directory / "buildings.parquet")
        write_arrays({k: getattr(self, k) for k in MESH_KEYS}, directory / "mesh.npz")
        return {"format": self.source_format, "crs": self.crs, "n_buildings": len(self.buildings)}

    @classmethod
    def load(cls, directory: Path, entry: Mapping[str, Any]) -> CityModel:
        """Read a layer written by :meth:`save`; ``entry`` is its bundle-manifest entry."""
        directory = Path(directory)
        try:
            objects = read_table(directory / "objects.parquet")
            b = read_table(directory / "buildings.parquet")
            mesh = read_arrays(directory / "mesh.npz")
        except (OSError, ValueError) as exc:
            raise InputError(directory, f"city model bundle cannot be read ({exc})") from None
        b["footprint"] = wkb_to_geoms(b["footprint"])
        missing = [k for k in MESH_KEYS if k not in mesh]
        if missing:
            raise InputError(directory / "mesh.npz", f"lacks arrays {missing}")
        return cls(
            id=str(entry.get("id", directory.name)),
            source=str(entry.get("source", "")),
            source_format=str(entry.get("format", "")),
            crs=entry.get("crs"),
            objects=objects,
            buildings=b,
            **{k: mesh[k] for k in MESH_KEYS},
        )


# -- helpers shared by the loaders ---------------------------------------------------------------------------------
def lod_key(lod: str) -> float:
    try:
        return float(lod)
    except ValueError:
        return float("inf")


def attributes_json(attributes: Mapping[str, Any] | None) -> str:
    """Attributes or tags as a compact JSON string (non-JSON values as their string)."""
    return json.dumps(dict(attributes or {}), ensure_ascii=False, sort_keys=True, default=str)


def empty_objects() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in OBJECT_COLUMNS})


def triangulate_polygons(polygons: Sequence[BaseGeometry] | np.ndarray) -> tuple[FloatArray, IntArray]:
    """Constrained Delaunay triangulation of 2-D polygons with holes (GEOS, via shapely).

    ``polygons`` : (p,) shapely Polygon/MultiPolygon. Returns ``tri`` (k, 3, 2) float64 corner coordinates,
    counter-clockwise, and ``owner`` (k,) int64 index of the polygon each triangle belongs to. The corners are the
    polygons' own vertices (no new points) unless a polygon was invalid and had to be repaired first. Every
    polygon's triangles are checked to cover its area (1e-7 relative); invalid polygons are repaired with
    ``shapely.make_valid`` and triangulated again, and what still does not cover is logged.
    """
    arr = np.asarray(polygons, dtype=object).reshape(-1)
    if len(arr) == 0:
        return np.empty((0, 3, 2)), np.empty(0, dtype=np.int64)
    try:
        tri, owner = _cdt(arr)
    except shapely.errors.GEOSException:
        parts = []
        for i, poly in enumerate(arr):
            try:
                t, _ = _cdt(np.array([poly], dtype=object))
            except shapely.errors.GEOSException:
                t = np.empty((0, 3, 2))
            parts.append((t, np.full(len(t), i, dtype=np.int64)))
        tri = np.concatenate([t for t, _ in parts])
        owner = np.concatenate([o for _, o in parts])
    poly_area = shapely.area(arr)
    tri_area = np.bincount(owner, weights=np.abs(signed_area_2d(tri)), minlength=len(arr))
    bad = np.flatnonzero(
        (np.abs(tri_area - poly_area) > 1e-7 * np.maximum(poly_area, 1e-12)) | ~shapely.is_valid(arr)
    )
    if len(bad):
        keep = ~np.isin(owner, bad)
        fixed_tri, fixed_owner = [tri[keep]], [owner[keep]]
        still_bad = 0
        for i in bad:
            poly = _polygonal(shapely.make_valid(arr[i]))
            if poly is None:
                still_bad += int(poly_area[i] > 0)
                continue
            try:
                t, _ = _cdt(np.array([poly], dtype=object))
            except shapely.errors.GEOSException:
                t = np.empty((0, 3, 2))
            if abs(np.abs(signed_area_2d(t)).sum() - poly.area) > 1e-7 * max(poly.area, 1e-12):
                still_bad += 1
            fixed_tri.append(t)
            fixed_owner.append(np.full(len(t), i, dtype=np.int64))
        tri, owner = np.concatenate(fixed_tri), np.concatenate(fixed_owner)
        order = np.argsort(owner, kind="stable")
        tri, owner = tri[order], owner[order]
        log.debug("triangulation: %d polygons repaired, %d still not covered", len(bad), still_bad)
        if still_bad:
            log.warning("%d polygons could not be triangulated to cover their area", still_bad)
    return tri, owner


def _cdt(arr: np.ndarray) -> tuple[FloatArray, IntArray]:
    gcs = shapely.constrained_delaunay_triangles(arr)
    tris, owner = shapely.get_parts(gcs, return_index=True)
    if len(tris) == 0:
        return np.empty((0, 3, 2)), np.empty(0, dtype=np.int64)
    coords = shapely.get_coordinates(tris).reshape(-1, 4, 2)[:, :3].copy()
    flip = signed_area_2d(coords) < 0
    coords[flip] = coords[flip][:, ::-1]
    return coords, owner.astype(np.int64)


def _polygonal(geom: BaseGeometry) -> BaseGeometry | None:
    """The polygonal part of ``geom`` (a Polygon or MultiPolygon), or None if it has none."""
    parts = [
        g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty
    ]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.union_all(parts)


def polygonal(geom: BaseGeometry | None) -> BaseGeometry | None:
    """``geom`` made valid and reduced to its Polygon/MultiPolygon part (None when it has no area)."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return _polygonal(geom)


def signed_area_2d(tri: FloatArray) -> FloatArray:
    """Signed areas (k,) of 2-D triangles ``tri`` (k, 3, 2); positive when counter-clockwise."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def match_corners(
    tri: FloatArray, owner: IntArray, key_owner: IntArray, key_xy: FloatArray, key_index: IntArray
) -> IntArray:
    """Vertex index of every triangle corner, found by exact (owner, x, y) equality.

    ``tri`` (k, 3, 2) corners and ``owner`` (k,) from :func:`triangulate_polygons`; ``key_owner`` (r,),
    ``key_xy`` (r, 2) and ``key_index`` (r,) list the known vertices of each polygon. Returns (k, 3) int64 with
    -1 where a corner is not one of its polygon's vertices (a point a repair added).
    """
    left = pd.DataFrame(
        {"o": np.repeat(owner, 3), "x": tri[:, :, 0].reshape(-1), "y": tri[:, :, 1].reshape(-1)}
    )
    right = pd.DataFrame({"o": key_owner, "x": key_xy[:, 0], "y": key_xy[:, 1], "i": key_index})
    right = right.drop_duplicates(["o", "x", "y"])
    merged = left.merge(right, how="left", on=["o", "x", "y"], sort=False)
    return merged["i"].fillna(-1).to_numpy(dtype=np.int64).reshape(-1, 3)


def add_new_corners(
    tri: FloatArray, owner: IntArray, idx: IntArray, start: int
) -> tuple[IntArray, FloatArray]:
    """Number the corners :func:`match_corners` did not find (``idx == -1``) as new vertices from ``start``.

    Equal (owner, x, y) corners share one new vertex. ``idx`` (k, 3) is filled in place. Returns the new
    vertices' owner polygon (u,) int64 and 2-D coordinates (u, 2) float64, in the order of their numbers.
    """
    missing = idx < 0
    if not missing.any():
        return np.empty(0, dtype=np.int64), np.empty((0, 2))
    corner_owner = np.repeat(owner, 3).reshape(-1, 3)[missing]
    keys = np.column_stack([corner_owner.astype(np.float64), tri[missing]])
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    idx[missing] = start + inverse.reshape(-1)
    return uniq[:, 0].astype(np.int64), uniq[:, 1:].copy()


def triangle_areas(vertices: FloatArray, faces: IntArray) -> FloatArray:
    """Areas (m,) float64 m² of the 3-D triangles ``faces`` (m, 3) over ``vertices`` (n, 3)."""
    v = vertices[faces]
    return 0.5 * np.linalg.norm(np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]), axis=1)
