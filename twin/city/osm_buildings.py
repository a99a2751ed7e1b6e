"""OSM building footprints → an LoD1 :class:`~twin.city.citymodel.CityModel` (pyosmium: XML, .gz, .bz2, PBF).

Every closed way and every multipolygon relation tagged ``building=*`` (except ``building=no``) that osmium's
area assembler can build becomes one row of ``buildings`` (id ``"way/123"`` or ``"relation/456"``, type
``"Building"``, LoD ``"1"``, the OSM tags as JSON ``attributes``). A way that is also the outer ring of a building
relation gives two rows, as in OSM itself. Ways whose nodes are missing from the file (clipped extracts) cannot be
built and are counted in the log.

Heights (``height_m``, metres from the ground to the top; ``height_source`` says which rule gave it):

1. ``height`` (``"12"``, ``"12 m"``, ``"12.5m"``, ``"40 ft"``, ``"12'6\\""``) → ``"height"``;
2. ``building:levels`` (> 0) × 3.0 m, plus ``roof:height`` or else ``roof:levels`` × 3.0 m → ``"levels"``;
3. otherwise an estimate from the building type, :data:`DEFAULT_LEVELS` (3 levels for types not listed) × 3.0 m
   → ``"default"``.

``min_height`` (or ``building:min_level`` × 3.0 m) raises the bottom of the volume (``min_height_m``). OSM has no
ground elevation: ``ground_z_m`` is 0 (the local frame's datum) and ``roof_z_m`` equals ``height_m``.
The mesh is each footprint extruded from ``min_height_m`` to ``height_m``: walls, a flat roof and a floor, all
triangulated and facing outwards (surfaces: 0 roof, 1 floor, 2 + k the wall on the footprint's k-th edge).
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import osmium
import pandas as pd
import pyproj
import shapely

from twin.city.citymodel import (
    BUILDING_COLUMNS,
    GROUND,
    OBJECT_COLUMNS,
    ROOF,
    WALL,
    CityModel,
    add_new_corners,
    attributes_json,
    match_corners,
    polygonal,
    triangulate_polygons,
)
from twin.city.frame import WGS84, Frame, crs_name
from twin.city.layer import layer_id_from_path
from twin.errors import InputError
from twin.typing import FloatArray

log = logging.getLogger(__name__)

LEVEL_HEIGHT_M = 3.0
"""Height of one storey (m) used for ``building:levels``, ``roof:levels``, ``building:min_level`` and defaults."""
DEFAULT_LEVELS: dict[str, float] = {
    **dict.fromkeys(
        (
            "garage",
            "garages",
            "carport",
            "shed",
            "hut",
            "cabin",
            "kiosk",
            "roof",
            "service",
            "toilets",
            "greenhouse",
            "bungalow",
            "container",
            "barn",
            "farm_auxiliary",
            "stable",
            "sty",
            "transformer_tower",
            "static_caravan",
            "bunker",
        ),
        1.0,
    ),
    **dict.fromkeys(("house", "detached", "semidetached_house", "terrace", "farm", "chapel"), 2.0),
}
"""Estimated levels by ``building=*`` value when neither ``height`` nor ``building:levels`` is tagged; other
types get :data:`DEFAULT_FALLBACK_LEVELS`."""
DEFAULT_FALLBACK_LEVELS = 3.0

_FEET = 0.3048
_LENGTH = re.compile(r"^\s*(\d+(?:[.,]\d+)?|\.\d+)\s*(m|meters?|metres?|ft|feet|foot|')?\s*$", re.IGNORECASE)
_FEET_INCHES = re.compile(r"^\s*(\d+)\s*'\s*(\d+(?:\.\d+)?)\s*(?:\"|'')\s*$")


def parse_length(value: str | None) -> float | None:
    """Metres from an OSM length tag: ``"12"``, ``"12 m"``, ``"12.5m"``, ``"12,5"``, ``"40 ft"``, ``"40'"``,
    ``"12'6\\""``. Returns None for anything else (ranges, lists, negative or non-finite values)."""
    if value is None:
        return None
    m = _LENGTH.match(value)
    if m:
        x = float(m.group(1).replace(",", "."))
        unit = (m.group(2) or "m").lower()
        x = x * _FEET if unit in ("ft", "feet", "foot", "'") else x
        return x if math.isfinite(x) else None
    m = _FEET_INCHES.match(value)
    if m:
        return (float(m.group(1)) + float(m.group(2)) / 12.0) * _FEET
    return None


def parse_levels(value: str | None) -> float | None:
    """Number of levels from ``building:levels``-style tags (``"3"``, ``"2.5"``); None if not a number ≥ 0."""
    if value is None:
        return None
    try:
        x = float(value.strip().replace(",", "."))
    except ValueError:
        return None
    return x if math.isfinite(x) and x >= 0 else None


def building_height(tags: dict[str, str]) -> tuple[float, str, float, float]:
    """(height_m, height_source, min_height_m, levels) of a building from its tags (see the module docstring).

    ``levels`` is ``building:levels`` (NaN when not tagged).
    """
    levels = parse_levels(tags.get("building:levels"))
    height = parse_length(tags.get("height"))
    if height is not None and height > 0:
        source = "height"
    elif levels is not None and levels > 0:
        roof = parse_length(tags.get("roof:height"))
        if roof is None:
            roof = (parse_levels(tags.get("roof:levels")) or 0.0) * LEVEL_HEIGHT_M
        height, source = levels * LEVEL_HEIGHT_M + roof, "levels"
    else:
        kind = tags.get("building", "yes")
        height = DEFAULT_LEVELS.get(kind, DEFAULT_FALLBACK_LEVELS) * LEVEL_HEIGHT_M
        source = "default"
    base = parse_length(tags.get("min_height"))
    if base is None:
        min_level = parse_levels(tags.get("building:min_level"))
        base = min_level * LEVEL_HEIGHT_M if min_level is not None else 0.0
    if base >= height:
        if source == "default":
            height = base + LEVEL_HEIGHT_M
        else:
            base = 0.0  # contradictory tags: keep the stated height, drop the raised bottom
    return height, source, base, levels if levels is not None else math.nan


def load_osm_buildings(
    path: str | os.PathLike[str], *, frame: Frame, id: str | None = None
) -> CityModel | None:
    """Building footprints of an OSM file as an LoD1 city model in ``frame``; None when the file has none.

    Raises :class:`InputError` naming the file when it is missing or osmium cannot read it.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(p, "does not exist")
    if p.is_dir():
        raise InputError(p, "is a directory, not an OSM file")
    records, wkbs, candidates = _read(p)
    if len(records) < candidates:
        log.warning(
            "%s: %d of %d building ways/relations could not be built as areas (nodes or members missing "
            "from the file, or broken rings) and are skipped",
            p.name,
            candidates - len(records),
            candidates,
        )
    if not records:
        log.info("%s has no building footprints", p.name)
        return None
    footprints = _footprints(wkbs, frame)
    ok = np.array([f is not None for f in footprints])
    if not ok.all():
        log.warning("%s: %d building footprints have no area and are skipped", p.name, int((~ok).sum()))
        records = [r for r, k in zip(records, ok, strict=True) if k]
        footprints = footprints[ok]
    if not records:
        return None

    heights = [building_height(r["tags"]) for r in records]
    height = np.array([h[0] for h in heights])
    base = np.array([h[2] for h in heights])
    ids = [f"{r['type']}/{r['osm_id']}" for r in records]
    buildings = pd.DataFrame(
        {
            "id": ids,
            "type": "Building",
            "parent": None,
            "object": np.arange(len(records), dtype=np.int64),
            "lod": "1",
            "height_m": height,
            "height_source": [h[1] for h in heights],
            "ground_z_m": 0.0,
            "roof_z_m": height,
            "min_height_m": base,
            "storeys_above_ground": np.array([h[3] for h in heights]),
            "footprint": list(footprints),
            "attributes": [attributes_json(r["tags"]) for r in records],
        },
        columns=list(BUILDING_COLUMNS),
    )
    vertices, faces, face_object, face_semantic, face_surface = extrude(footprints, base, height)
    objects = pd.DataFrame(
        {
            "id": ids,
            "type": "Building",
            "parent": None,
            "lod": "1",
            "geometry_type": "Solid",
            "n_surfaces": 2 + np.bincount(face_object[face_semantic == WALL], minlength=len(ids)) // 2,
            "n_triangles": np.bincount(face_object, minlength=len(ids)),
        },
        columns=list(OBJECT_COLUMNS),
    )
    layer = CityModel(
        id=id or layer_id_from_path(p),
        source=str(p),
        source_format="osm",
        crs=crs_name(frame.crs),
        objects=objects,
        buildings=buildings,
        vertices=vertices,
        faces=faces,
        face_object=face_object,
        face_semantic=face_semantic,
        face_surface=face_surface,
    )
    log.info("%s: %d building footprints, %d triangles", p.name, len(buildings), len(faces))
    return layer


def _read(p: Path) -> tuple[list[dict[str, Any]], list[str], int]:
    """Building areas: records (type, osm_id, tags), their (multi)polygons as hex WKB in lon/lat, and the number
    of building ways and multipolygon relations seen (candidates)."""
    records: list[dict[str, Any]] = []
    wkbs: list[str] = []
    candidates = 0
    factory = osmium.geom.WKBFactory()
    processor = (
        osmium.FileProcessor(str(p))
        .with_areas(osmium.filter.KeyFilter("building"))
        .with_filter(osmium.filter.KeyFilter("building"))
    )
    try:
        for obj in processor:
            if obj.tags.get("building") == "no":
                continue
            if obj.is_area():
                try:
                    wkb = factory.create_multipolygon(obj)
                except RuntimeError as exc:  # osmium could not build the geometry
                    log.debug("area %s skipped: %s", obj.orig_id(), exc)
                    continue
                wkbs.append(wkb)
                records.append(
                    {
                        "type": "way" if obj.from_way() else "relation",
                        "osm_id": obj.orig_id(),
                        "tags": dict(obj.tags),
                    }
                )
            elif obj.is_way():
                candidates += 1
            elif obj.is_relation() and obj.tags.get("type") in ("multipolygon", "boundary"):
                candidates += 1
    except RuntimeError as exc:
        raise InputError(p, f"cannot be read as OSM data ({exc})") from None
    return records, wkbs, candidates


def _footprints(wkbs: list[str], frame: Frame) -> np.ndarray:
    """(b,) object array of footprints in local xy (metres): valid, exteriors counter-clockwise, a Polygon when
    the building has one part; None where nothing with an area remains."""
    geoms = shapely.from_wkb(wkbs)
    coords = shapely.get_coordinates(geoms)
    local = frame.to_local(coords, pyproj.CRS.from_user_input(WGS84))[:, :2]
    geoms = shapely.set_coordinates(geoms, local)
    single = shapely.get_num_geometries(geoms) == 1
    geoms[single] = shapely.get_geometry(geoms[single], 0)
    geoms = shapely.remove_repeated_points(geoms)
    invalid = np.flatnonzero(~shapely.is_valid(geoms) | shapely.is_empty(geoms))
    for i in invalid:
        geoms[i] = polygonal(geoms[i])
    ok = np.array([g is not None for g in geoms])
    geoms[ok] = shapely.orient_polygons(geoms[ok])
    return geoms


def extrude(
    footprints: np.ndarray, base: FloatArray, top: FloatArray
) -> tuple[FloatArray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Closed prisms: each footprint (local xy, metres) from z = ``base[i]`` to z = ``top[i]`` (m).

    ``footprints`` (b,) shapely Polygon/MultiPolygon with exteriors counter-clockwise; ``base``, ``top`` (b,)
    float64. Returns ``vertices`` (n, 3) float64, ``faces`` (m, 3) int64 facing outwards, ``face_object`` (m,)
    int64 footprint index, ``face_semantic`` (m,) int8 and ``face_surface`` (m,) int64 (0 roof, 1 floor,
    2 + k wall on edge k).
    """
    parts, part_owner = shapely.get_parts(footprints, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    # drop each ring's closing point
    last = np.r_[coord_ring[1:] != coord_ring[:-1], True]
    coords, coord_ring = coords[~last], coord_ring[~last]
    owner = part_owner[ring_part[coord_ring]]
    n = len(coords)
    bottom = np.column_stack([coords, base[owner]])
    upper = np.column_stack([coords, top[owner]])
    vertices = np.vstack([bottom, upper])

    # walls: edge j → next point of the same ring
    first = np.r_[True, coord_ring[1:] != coord_ring[:-1]]
    ring_start = np.flatnonzero(first)
    ring_len = np.diff(np.r_[ring_start, n])
    start_of = np.repeat(ring_start, ring_len)
    j = np.arange(n)
    nxt = start_of + (j - start_of + 1) % np.repeat(ring_len, ring_len)
    walls = np.concatenate([np.column_stack([j, nxt, n + nxt]), np.column_stack([j, n + nxt, n + j])])
    wall_owner = np.concatenate([owner, owner])
    owner_first = np.searchsorted(owner, owner)  # owners are sorted: first point of each footprint
    wall_surface = np.concatenate([2 + j - owner_first, 2 + j - owner_first])

    # roof and floor: triangulate each footprint once, map corners back to the ring points
    tri, tri_owner = triangulate_polygons(footprints)
    idx = match_corners(tri, tri_owner, owner, coords, j)
    new_owner, new_xy = add_new_corners(tri, tri_owner, idx, n)
    if len(new_owner):  # a footprint the triangulation had to repair: its new corners become points
        k = len(new_owner)
        vertices = np.vstack(
            [
                vertices[:n],
                np.column_stack([new_xy, base[new_owner]]),
                vertices[n:],
                np.column_stack([new_xy, top[new_owner]]),
            ]
        )
        walls = np.where(walls >= n, walls + k, walls)
        n += k
    roof = n + idx
    floor = idx[:, ::-1]
    faces = np.vstack([roof, floor, walls])
    face_object = np.concatenate([tri_owner, tri_owner, wall_owner])
    face_semantic = np.concatenate(
        [np.full(len(tri), ROOF), np.full(len(tri), GROUND), np.full(len(walls), WALL)]
    ).astype(np.int8)
    face_surface = np.concatenate(
        [np.zeros(len(tri), dtype=np.int64), np.ones(len(tri), dtype=np.int64), wall_surface]
    )
    order = np.argsort(face_object, kind="stable")
    return vertices, faces[order], face_object[order], face_semantic[order], face_surface[order]
