"""CityJSON (1.0, 1.1, 2.0) → :class:`~twin.city.citymodel.CityModel`, parsed with the ``json`` module.

What is read:

- ``vertices`` with ``transform`` (``scale``, ``translate``) for integer vertices;
- ``metadata.referenceSystem`` (``"https://www.opengis.net/def/crs/EPSG/0/7415"``, ``"urn:ogc:def:crs:EPSG::2056"``,
  ``"EPSG:2056"``…). A compound CRS (e.g. 7415 = RD New + NAP height) is transformed with its horizontal
  component and its heights are kept as they are. Files without a reference system are placed with
  ``placement`` (or taken as local coordinates); a ``placement`` given for a georeferenced file is ignored;
- city objects of every type, their ``parents``/``children`` and ``attributes``;
- geometries ``MultiSurface``, ``CompositeSurface``, ``Solid``, ``MultiSolid``, ``CompositeSolid`` and
  ``GeometryInstance`` (templates), with semantics per surface; ``MultiPoint``/``MultiLineString`` count for
  heights but give no faces. When an object has several geometries, the one with the highest LoD is used (the
  first of them on a tie); its LoD is the object's ``lod``.

Each surface (outer ring and holes) is projected onto the plane of its Newell normal and triangulated with a
constrained Delaunay triangulation; triangles keep the surface's orientation and its semantic code.

Buildings (``Building``, ``BuildingPart``): the footprint is the union of the ``GroundSurface`` polygons projected
to xy or, without ground semantics, the union of the xy projection of all faces; a Building without geometry takes
the union of its parts. ``height_m`` comes from the attributes (``measuredHeight``; 3D BAG ``h_dak_max`` /
``h_dak_70p`` − ``h_maaiveld``) or else from the geometry (highest z − lowest z).
Not read: appearances (materials, textures), CityJSONSeq, extensions' extra root properties.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from twin.city.citymodel import (
    BUILDING_COLUMNS,
    BUILDING_TYPES,
    GROUND,
    OBJECT_COLUMNS,
    SEMANTIC_CODE,
    CityModel,
    add_new_corners,
    attributes_json,
    lod_key,
    match_corners,
    polygonal,
    signed_area_2d,
    triangle_areas,
    triangulate_polygons,
)
from twin.city.frame import Frame, Placement, crs_name
from twin.city.layer import layer_id_from_path
from twin.errors import InputError
from twin.typing import FloatArray, IntArray

log = logging.getLogger(__name__)

SUPPORTED_VERSIONS = ("1.0", "1.1", "2.0")
HEIGHT_ATTRIBUTES = ("measuredHeight", "measuredheight", "height", "Height")
ROOF_ATTRIBUTES = ("b3_h_dak_max", "h_dak_max", "b3_h_dak_70p", "h_dak_70p", "h_dak")
GROUND_ATTRIBUTES = ("b3_h_maaiveld", "h_maaiveld")
STOREY_ATTRIBUTES = ("storeysAboveGround", "storeys_above_ground", "b3_bouwlagen")
_SURFACE_DEPTH = {"MultiSurface": 1, "CompositeSurface": 1, "Solid": 2, "MultiSolid": 3, "CompositeSolid": 3}
_MIN_AREA = 1e-12  # m²; faces below this are degenerate and dropped


@dataclass
class _Geometry:
    """One parsed geometry: surfaces as rings of vertex indices, one semantic code per surface."""

    lod: str
    type: str
    surfaces: list[list[IntArray]] = field(default_factory=list)
    semantics: list[int] = field(default_factory=list)
    vertex_ids: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))


def load_cityjson(
    path: str | os.PathLike[str],
    *,
    frame: Frame,
    placement: Placement | None = None,
    id: str | None = None,
) -> CityModel:
    """Load a CityJSON file (``.city.json``, ``.json``, optionally ``.gz``) into ``frame``.

    Returns a :class:`CityModel` whose coordinates are metres in the local frame. Raises :class:`InputError`
    naming the file and the field for a missing, non-JSON or non-CityJSON file, an unknown ``referenceSystem``,
    bad vertices or transform, or a geometry whose vertex index is out of range (naming the city object).
    """
    p = Path(path)
    doc = _read_json(p)
    src = _source_vertices(doc, p)
    crs = _reference_system(doc, p)
    templates = _templates(doc, p)
    city_objects = doc.get("CityObjects")
    if not isinstance(city_objects, dict):
        raise InputError(
            p, '"CityObjects" must be an object mapping ids to city objects', element="CityObjects"
        )

    # pass 1: parse and check every geometry, keep the highest-LoD one per object
    extra: list[FloatArray] = []  # template instances, in source coordinates
    n_total = len(src)
    rows: list[dict[str, Any]] = []
    chosen: list[_Geometry | None] = []
    for oid, obj in city_objects.items():
        where = f"CityObjects/{oid}"
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise InputError(p, 'must be an object with a string "type"', element=where)
        geoms = obj.get("geometry", [])
        if not isinstance(geoms, list):
            raise InputError(p, '"geometry" must be a list', element=where)
        parsed: list[_Geometry] = []
        for gi, g in enumerate(geoms):
            if isinstance(g, dict) and g.get("type") == "GeometryInstance":
                geom, verts = _instance(g, gi, templates, src, n_total, p, where)
                extra.append(verts)
                n_total += len(verts)
            else:
                geom = _parse_geometry(g, gi, len(src), p, where)
            parsed.append(geom)
        best = max(parsed, key=lambda x: lod_key(x.lod) if x.lod else -1.0) if parsed else None
        parents = obj.get("parents") or []
        rows.append(
            {
                "id": str(oid),
                "type": obj["type"],
                "parent": str(parents[0]) if isinstance(parents, list) and parents else None,
                "lod": best.lod if best is not None else "",
                "geometry_type": best.type if best is not None else "",
                "n_surfaces": len(best.surfaces) if best is not None else 0,
            }
        )
        chosen.append(best)

    # one transform of every vertex into the local frame
    all_src = np.vstack([src, *extra]) if extra else src
    if crs is not None:
        if placement is not None:
            log.warning("%s has a referenceSystem; the placement given is ignored", p.name)
        local = frame.to_local(all_src, crs)
    else:
        local = frame.place(all_src, placement)

    vertices, faces, face_object, face_semantic, face_surface = _triangulate(local, chosen)
    objects = pd.DataFrame(rows, columns=list(OBJECT_COLUMNS[:-1]))
    objects["n_surfaces"] = objects["n_surfaces"].astype(np.int64)
    objects["parent"] = _none_for_missing(objects["parent"])
    objects["n_triangles"] = np.bincount(face_object, minlength=len(objects)).astype(np.int64)

    buildings = _buildings(city_objects, objects, chosen, local, vertices, faces, face_object, frame)
    layer = CityModel(
        id=id or layer_id_from_path(p),
        source=str(p),
        source_format="cityjson",
        crs=crs_name(frame.crs),
        objects=objects,
        buildings=buildings,
        vertices=vertices,
        faces=faces,
        face_object=face_object,
        face_semantic=face_semantic,
        face_surface=face_surface,
    )
    log.info(
        "%s: %d city objects, %d buildings/parts, %d triangles",
        p.name,
        len(objects),
        len(buildings),
        len(faces),
    )
    return layer


def _none_for_missing(col: pd.Series) -> pd.Series:
    return col.astype(object).where(col.notna(), None)


# -- reading and header ----------------------------------------------------------------------------------------------


def _read_json(p: Path) -> dict[str, Any]:
    if not p.exists():
        raise InputError(p, "does not exist")
    if p.is_dir():
        raise InputError(p, "is a directory, not a CityJSON file")
    try:
        data = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
    except (OSError, EOFError) as exc:
        raise InputError(p, f"cannot be read ({exc})") from None
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise InputError(
            p,
            f"is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno} (truncated or corrupt file?)",
            element=f"line {exc.lineno}, column {exc.colno}",
        ) from None
    except UnicodeDecodeError as exc:
        raise InputError(p, f"is not UTF-8 JSON text ({exc.reason} at byte {exc.start})") from None
    if not isinstance(doc, dict) or doc.get("type") != "CityJSON":
        got = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(
            p, f'is not a CityJSON file: the top-level "type" must be "CityJSON", got {got!r}', element="type"
        )
    version = doc.get("version")
    if not isinstance(version, str) or ".".join(version.split(".")[:2]) not in SUPPORTED_VERSIONS:
        raise InputError(
            p,
            f"CityJSON version {version!r} is not supported; expected one of {SUPPORTED_VERSIONS}",
            element="version",
        )
    return doc


def _numbers(value: Any, n: int, p: Path, element: str) -> FloatArray:
    ok = isinstance(value, list) and len(value) == n
    ok = ok and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )
    if not ok:
        raise InputError(p, f"must be a list of {n} finite numbers, got {value!r}", element=element)
    return np.asarray(value, dtype=np.float64)


def _source_vertices(doc: dict[str, Any], p: Path) -> FloatArray:
    """(n, 3) float64 vertices in the file's CRS units, ``transform`` applied."""
    raw = doc.get("vertices")
    if not isinstance(raw, list):
        raise InputError(p, '"vertices" must be a list of [x, y, z]', element="vertices")
    try:
        v = np.asarray(raw, dtype=np.float64) if raw else np.empty((0, 3))
    except (ValueError, TypeError):
        raise InputError(p, "every vertex must be a list of 3 numbers", element="vertices") from None
    if v.ndim != 2 or v.shape[1] != 3:
        raise InputError(
            p, f"every vertex must be a list of 3 numbers, got shape {v.shape}", element="vertices"
        )
    if not np.isfinite(v).all():
        bad = int(np.flatnonzero(~np.isfinite(v).all(axis=1))[0])
        raise InputError(p, "vertex coordinates must be finite", element=f"vertices[{bad}]")
    t = doc.get("transform")
    if t is not None:
        if not isinstance(t, dict):
            raise InputError(p, "must be an object with scale and translate", element="transform")
        v = v * _numbers(t.get("scale"), 3, p, "transform.scale") + _numbers(
            t.get("translate"), 3, p, "transform.translate"
        )
    return v


_URL_CRS = re.compile(r"/def/crs/([^/]+)/[^/]*/([^/]+?)/?$", re.IGNORECASE)
_URN_CRS = re.compile(r"^urn:ogc:def:crs:([^:]+):[^:]*:(.+)$", re.IGNORECASE)


def _reference_system(doc: dict[str, Any], p: Path) -> pyproj.CRS | None:
    """The horizontal CRS of ``metadata.referenceSystem`` (None when absent)."""
    meta = doc.get("metadata") or {}
    value = meta.get("referenceSystem") if isinstance(meta, dict) else None
    if value is None:
        return None
    element = "metadata.referenceSystem"
    if not isinstance(value, str) or not value.strip():
        raise InputError(p, f"must be a CRS URL or URN string, got {value!r}", element=element)
    text = value.strip()
    m = _URL_CRS.search(text) or _URN_CRS.match(text)
    user_input = f"{m.group(1)}:{m.group(2)}" if m else text
    try:
        crs = pyproj.CRS.from_user_input(user_input)
    except pyproj.exceptions.CRSError:
        raise InputError(
            p,
            f"{value!r} is not a known coordinate reference system; expected e.g. "
            '"https://www.opengis.net/def/crs/EPSG/0/7415"',
            element=element,
        ) from None
    if crs.is_compound:
        crs = crs.sub_crs_list[0]  # horizontal part; heights (e.g. NAP) are kept as they are
    elif crs.is_vertical:
        raise InputError(
            p, f"{value!r} is a vertical CRS; a horizontal or compound CRS is needed", element=element
        )
    if len(crs.axis_info) == 3:
        crs = crs.to_2d()
    return crs


# -- geometry parsing ------------------------------------------------------------------------------------------------
def _lod_str(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


def _ring(value: Any, p: Path, where: str) -> IntArray:
    if not isinstance(value, list) or not value or not all(type(i) is int for i in value):
        raise InputError(
            p, f"a ring must be a non-empty list of vertex indices, got {value!r:.80}", element=where
        )
    r = np.asarray(value, dtype=np.int64)
    if len(r) > 1:
        r = r[r != np.roll(r, 1)]  # drop repeated consecutive vertices and a closing repeat of the first
    return r


def _parse_geometry(g: Any, gi: int, n_vertices: int, p: Path, where: str) -> _Geometry:
    if not isinstance(g, dict) or not isinstance(g.get("type"), str):
        raise InputError(p, f'geometry {gi} must be an object with a "type"', element=where)
    gtype = g["type"]
    lod = _lod_str(g.get("lod"))
    b = g.get("boundaries")
    if not isinstance(b, list):
        raise InputError(p, f'geometry {gi} ({gtype}) has no "boundaries" list', element=where)
    geom = _Geometry(lod=lod, type=gtype)
    if gtype == "MultiPoint":
        geom.vertex_ids = _ring(b, p, where) if b else np.empty(0, dtype=np.int64)
    elif gtype == "MultiLineString":
        geom.vertex_ids = (
            np.concatenate([_ring(x, p, where) for x in b]) if b else np.empty(0, dtype=np.int64)
        )
    elif gtype in _SURFACE_DEPTH:
        depth = _SURFACE_DEPTH[gtype]
        surfaces: list[Any] = b
        for _ in range(depth - 1):
            if not all(isinstance(s, list) for s in surfaces):
                raise InputError(
                    p, f"geometry {gi} ({gtype}) boundaries are not nested as expected", element=where
                )
            surfaces = [s for shell in surfaces for s in shell]
        for s in surfaces:
            if not isinstance(s, list) or not s:
                raise InputError(
                    p, f"geometry {gi} ({gtype}): a surface must be a list of rings", element=where
                )
            geom.surfaces.append([_ring(r, p, where) for r in s])
        geom.semantics = _semantics(g.get("semantics"), depth, len(geom.surfaces), gi, p, where)
        ids = [r for s in geom.surfaces for r in s]
        geom.vertex_ids = np.concatenate(ids) if ids else np.empty(0, dtype=np.int64)
    else:
        raise InputError(
            p,
            f"geometry {gi} has unknown type {gtype!r}; expected MultiSurface, CompositeSurface, Solid, "
            "MultiSolid, CompositeSolid, GeometryInstance, MultiPoint or MultiLineString",
            element=where,
        )
    ids = geom.vertex_ids
    if len(ids) and (ids.min() < 0 or ids.max() >= n_vertices):
        bad = int(ids[(ids < 0) | (ids >= n_vertices)][0])
        raise InputError(
            p,
            f"geometry {gi} ({gtype}, LoD {lod}) uses vertex index {bad}, out of range: the file has "
            f"{n_vertices} vertices",
            element=where,
        )
    return geom


def _semantics(sem: Any, depth: int, n_surfaces: int, gi: int, p: Path, where: str) -> list[int]:
    if not isinstance(sem, dict):
        return [-1] * n_surfaces
    kinds = sem.get("surfaces") or []
    codes = [SEMANTIC_CODE.get(k.get("type"), -1) if isinstance(k, dict) else -1 for k in kinds]
    values = sem.get("values")
    if values is None:
        return [-1] * n_surfaces
    flat = values
    for _ in range(depth - 1):
        flat = (
            [v for x in flat for v in (x if isinstance(x, list) else [x])] if isinstance(flat, list) else []
        )
    if not isinstance(flat, list) or len(flat) != n_surfaces:
        raise InputError(
            p,
            f"geometry {gi}: semantics values do not match the {n_surfaces} surfaces of the boundaries",
            element=where,
        )
    out = []
    for v in flat:
        if v is None:
            out.append(-1)
        elif type(v) is int and 0 <= v < len(codes):
            out.append(codes[v])
        else:
            raise InputError(p, f"geometry {gi}: semantics value {v!r} indexes no surface", element=where)
    return out


def _templates(doc: dict[str, Any], p: Path) -> tuple[list[Any], FloatArray] | None:
    t = doc.get("geometry-templates")
    if t is None:
        return None
    if not isinstance(t, dict) or not isinstance(t.get("templates"), list):
        raise InputError(p, "must hold a templates list", element="geometry-templates")
    raw = t.get("vertices-templates") or []
    try:
        verts = np.asarray(raw, dtype=np.float64).reshape(-1, 3) if raw else np.empty((0, 3))
    except (ValueError, TypeError):
        raise InputError(
            p, "must be a list of [x, y, z]", element="geometry-templates.vertices-templates"
        ) from None
    return t["templates"], verts


def _instance(
    g: dict[str, Any],
    gi: int,
    templates: tuple[list[Any], FloatArray] | None,
    src: FloatArray,
    base: int,
    p: Path,
    where: str,
) -> tuple[_Geometry, FloatArray]:
    """Expand a GeometryInstance: its vertices (source CRS) and the geometry indexing them from ``base``."""
    ti = g.get("template")
    if templates is None or type(ti) is not int or not 0 <= ti < len(templates[0]):
        raise InputError(p, f"geometry {gi}: GeometryInstance template {ti!r} does not exist", element=where)
    tverts = templates[1]
    tgeom = _parse_geometry(templates[0][ti], gi, len(tverts), p, f"geometry-templates/templates/{ti}")
    ref = g.get("boundaries")
    if not isinstance(ref, list) or len(ref) != 1 or type(ref[0]) is not int or not 0 <= ref[0] < len(src):
        raise InputError(
            p,
            f"geometry {gi}: GeometryInstance boundaries must be [one vertex index], got {ref!r}",
            element=where,
        )
    m = _numbers(g.get("transformationMatrix"), 16, p, f"{where}/geometry/{gi}/transformationMatrix").reshape(
        4, 4
    )
    used = np.unique(tgeom.vertex_ids)
    homog = np.column_stack([tverts[used], np.ones(len(used))]) @ m.T
    verts = homog[:, :3] + src[ref[0]]
    remap = np.full(len(tverts), -1, dtype=np.int64)
    remap[used] = base + np.arange(len(used))
    tgeom.surfaces = [[remap[r] for r in s] for s in tgeom.surfaces]
    tgeom.vertex_ids = remap[tgeom.vertex_ids]
    tgeom.type = f"GeometryInstance/{tgeom.type}"
    return tgeom, verts


# -- triangulation ---------------------------------------------------------------------------------------------------
def _plane_basis(pts: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray] | None:
    """Centroid and in-plane axes (u, v) with u × v = the Newell normal of the ring ``pts`` (n, 3)."""
    c = pts.mean(axis=0)
    q = pts - c
    nxt = np.roll(q, -1, axis=0)
    n = np.array(
        [
            np.sum((q[:, 1] - nxt[:, 1]) * (q[:, 2] + nxt[:, 2])),
            np.sum((q[:, 2] - nxt[:, 2]) * (q[:, 0] + nxt[:, 0])),
            np.sum((q[:, 0] - nxt[:, 0]) * (q[:, 1] + nxt[:, 1])),
        ]
    )
    norm = np.linalg.norm(n)
    if norm <= 1e-14 * max(1.0, float(np.abs(q).max()) ** 2):
        return None
    n /= norm
    helper = np.array([0.0, 0.0, 1.0]) if abs(n[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(helper, n)
    u /= np.linalg.norm(u)
    v = np.cross(n, u)
    return c, u, v


def _triangulate(
    local: FloatArray, chosen: list[_Geometry | None]
) -> tuple[FloatArray, IntArray, IntArray, np.ndarray, IntArray]:
    """Triangles of every chosen geometry: (vertices, faces, face_object, face_semantic, face_surface)."""
    tri_faces: list[IntArray] = []
    tri_meta: list[tuple[int, int, int]] = []  # (object, surface, semantic) of each simple triangle
    polys: list[Any] = []
    poly_meta: list[tuple[int, int, int]] = []
    key_owner: list[IntArray] = []
    key_xy: list[FloatArray] = []
    key_index: list[IntArray] = []
    frames: list[tuple[FloatArray, FloatArray, FloatArray]] = []
    skipped = 0
    for oi, geom in enumerate(chosen):
        if geom is None:
            continue
        for si, (rings, sem) in enumerate(zip(geom.surfaces, geom.semantics, strict=True)):
            outer = rings[0]
            if len(rings) == 1 and len(outer) == 3:
                tri_faces.append(outer)
                tri_meta.append((oi, si, sem))
                continue
            if len(outer) < 3:
                skipped += 1
                continue
            basis = _plane_basis(local[outer])
            if basis is None:
                skipped += 1
                continue
            c, u, v = basis
            uv = np.column_stack([u, v])
            ring_xy = [(local[r] - c) @ uv for r in rings if len(r) >= 3]
            polys.append(shapely.Polygon(ring_xy[0], ring_xy[1:]))
            owner = len(frames)
            frames.append(basis)
            poly_meta.append((oi, si, sem))
            all_ids = np.concatenate([r for r in rings if len(r) >= 3])
            key_owner.append(np.full(len(all_ids), owner, dtype=np.int64))
            key_xy.append(np.vstack(ring_xy))
            key_index.append(all_ids)
    if skipped:
        log.debug("%d degenerate surfaces (fewer than 3 distinct vertices or zero area) skipped", skipped)

    vertices = local
    faces_simple = np.array(tri_faces, dtype=np.int64).reshape(-1, 3)
    meta_simple = np.array(tri_meta, dtype=np.int64).reshape(-1, 3)
    faces_poly = np.empty((0, 3), dtype=np.int64)
    meta_poly = np.empty((0, 3), dtype=np.int64)
    if polys:
        tri, owner = triangulate_polygons(polys)
        idx = match_corners(
            tri, owner, np.concatenate(key_owner), np.vstack(key_xy), np.concatenate(key_index)
        )
        new_owner, new_xy = add_new_corners(tri, owner, idx, len(vertices))
        if len(new_owner):  # corners a polygon repair added: lift them back onto their surface's plane
            c, u, v = (np.array([frames[o][i] for o in new_owner]) for i in range(3))
            vertices = np.vstack([vertices, c + new_xy[:, :1] * u + new_xy[:, 1:] * v])
        faces_poly = idx
        meta_poly = np.asarray(poly_meta, dtype=np.int64)[owner]
    faces = np.vstack([faces_simple, faces_poly])
    meta = np.vstack([meta_simple, meta_poly])
    keep = triangle_areas(vertices, faces) > _MIN_AREA
    faces, meta = faces[keep], meta[keep]
    order = np.lexsort((meta[:, 1], meta[:, 0]))
    faces, meta = faces[order], meta[order]
    return vertices, faces, meta[:, 0].copy(), meta[:, 2].astype(np.int8), meta[:, 1].copy()


# -- buildings -------------------------------------------------------------------------------------------------------
def _number(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _attribute_height(attrs: dict[str, Any], ground_abs: float) -> float | None:
    for key in HEIGHT_ATTRIBUTES:
        h = _number(attrs.get(key))
        if h is not None and h > 0:
            return h
    for key in ROOF_ATTRIBUTES:
        roof = _number(attrs.get(key))
        if roof is None:
            continue
        ground = next(
            (g for g in (_number(attrs.get(k)) for k in GROUND_ATTRIBUTES) if g is not None), ground_abs
        )
        if math.isfinite(ground) and roof > ground:
            return roof - ground
    return None


def _footprint(
    geom: _Geometry, oi: int, local: FloatArray, vertices: FloatArray, faces: IntArray, face_object: IntArray
) -> Any:
    """Union of GroundSurface polygons in xy, else of the xy projection of the object's faces (local metres)."""
    ground = [rings for rings, sem in zip(geom.surfaces, geom.semantics, strict=True) if sem == GROUND]
    parts = []
    for rings in ground:
        valid = [local[r, :2] for r in rings if len(r) >= 3]
        if valid:
            poly = polygonal(shapely.Polygon(valid[0], valid[1:]))
            if poly is not None:
                parts.append(poly)
    if not parts:
        lo, hi = np.searchsorted(face_object, [oi, oi + 1])
        tri = vertices[faces[lo:hi]][:, :, :2]
        tri = tri[np.abs(signed_area_2d(tri)) > 1e-9]
        if len(tri) == 0:
            return None
        parts = list(shapely.polygons(tri))
    return polygonal(shapely.union_all(parts))


def _buildings(
    city_objects: dict[str, Any],
    objects: pd.DataFrame,
    chosen: list[_Geometry | None],
    local: FloatArray,
    vertices: FloatArray,
    faces: IntArray,
    face_object: IntArray,
    frame: Frame,
) -> pd.DataFrame:
    rows: dict[str, dict[str, Any]] = {}
    raw = list(city_objects.values())
    for oi, (oid, otype) in enumerate(zip(objects["id"], objects["type"], strict=True)):
        if otype not in BUILDING_TYPES:
            continue
        obj = raw[oi]
        geom = chosen[oi]
        attrs = obj.get("attributes") if isinstance(obj.get("attributes"), dict) else {}
        row: dict[str, Any] = {
            "id": oid,
            "type": otype,
            "parent": objects.at[oi, "parent"],
            "object": oi,
            "lod": objects.at[oi, "lod"],
            "ground_z_m": np.nan,
            "roof_z_m": np.nan,
            "min_height_m": 0.0,
            "footprint": None,
            "attributes": attributes_json(attrs),
            "storeys_above_ground": next(
                (s for s in (_number(attrs.get(k)) for k in STOREY_ATTRIBUTES) if s is not None), np.nan
            ),
            "_attrs": attrs,
            "_children": [str(c) for c in obj.get("children") or [] if isinstance(c, str | int)],
        }
        if geom is not None and len(geom.vertex_ids):
            z = local[geom.vertex_ids, 2]
            row["ground_z_m"], row["roof_z_m"] = float(z.min()), float(z.max())
            if geom.surfaces:
                row["footprint"] = _footprint(geom, oi, local, vertices, faces, face_object)
        rows[oid] = row
    # a Building without its own geometry takes its parts' extent (parts first: they may nest)
    for row in sorted(rows.values(), key=lambda r: r["type"] != "BuildingPart"):
        kids = [rows[c] for c in row["_children"] if c in rows]
        if not kids or np.isfinite(row["ground_z_m"]):
            continue
        grounds = [k["ground_z_m"] for k in kids if np.isfinite(k["ground_z_m"])]
        roofs = [k["roof_z_m"] for k in kids if np.isfinite(k["roof_z_m"])]
        if grounds:
            row["ground_z_m"], row["roof_z_m"] = min(grounds), max(roofs)
        prints = [k["footprint"] for k in kids if k["footprint"] is not None]
        row["footprint"] = polygonal(shapely.union_all(prints)) if prints else None
        lods = [k["lod"] for k in kids if k["lod"]]
        row["lod"] = max(lods, key=lod_key) if lods else row["lod"]
    out = []
    for row in rows.values():
        ground_abs = row["ground_z_m"] + float(frame.origin[2])
        h = _attribute_height(row.pop("_attrs"), ground_abs)
        row.pop("_children")
        if h is not None:
            row["height_m"], row["height_source"] = h, "attribute"
        else:
            row["height_m"], row["height_source"] = row["roof_z_m"] - row["ground_z_m"], "geometry"
        out.append(row)
    df = pd.DataFrame(out, columns=list(BUILDING_COLUMNS))
    for col in ("height_m", "ground_z_m", "roof_z_m", "min_height_m", "storeys_above_ground"):
        df[col] = df[col].astype(np.float64)
    df["object"] = df["object"].astype(np.int64)
    df["parent"] = _none_for_missing(df["parent"])
    return df
